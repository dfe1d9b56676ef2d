// A main() for a fuzz target's LLVMFuzzerTestOneInput, so that ordinary (gcc, plain and ASan)
// builds replay the seeds and the committed regressions (tests/fuzz/regressions/<target>/)
// through the same code libFuzzer runs. Arguments are files or directories (read recursively,
// in sorted order, hidden files and README* skipped); a missing directory is skipped. Each
// input is copied into a heap buffer of exactly its size, as libFuzzer does, so ASan reports a
// read past the end.
//
//   fuzz_parse_replay tests/fuzz/regressions/fuzz_parse build/fuzz-seeds/fuzz_parse
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

namespace {

// The input being replayed, for the crash handler (a fixed buffer: nothing to allocate there).
char g_current[4096];

extern "C" void on_crash(int sig) {
    const char pre[] = "replay: crashed on ";
    ssize_t r = write(STDERR_FILENO, pre, sizeof(pre) - 1);
    r = write(STDERR_FILENO, g_current, strnlen(g_current, sizeof(g_current)));
    r = write(STDERR_FILENO, "\n", 1);
    (void)r;
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

bool wanted(const fs::path& p) {
    const std::string name = p.filename().string();
    return !name.empty() && name[0] != '.' && name.rfind("README", 0) != 0;
}

}  // namespace

int main(int argc, char** argv) {
    // SIGSEGV stays with ASan, which reports it with a stack; traps (broken invariants) and
    // aborts (ASan with abort_on_error) name the input.
    for (int sig : {SIGILL, SIGABRT, SIGFPE, SIGTRAP}) std::signal(sig, on_crash);
    std::vector<fs::path> files;
    for (int i = 1; i < argc; i++) {
        fs::path a = argv[i];
        std::error_code ec;
        if (fs::is_directory(a, ec)) {
            for (auto& e : fs::recursive_directory_iterator(a))
                if (e.is_regular_file() && wanted(e.path())) files.push_back(e.path());
        } else if (fs::is_regular_file(a, ec)) {
            files.push_back(a);
        } else {
            std::fprintf(stderr, "replay: %s: not found, skipped\n", argv[i]);
        }
    }
    std::sort(files.begin(), files.end());
    size_t bytes = 0;
    for (const fs::path& p : files) {
        std::ifstream in(p, std::ios::binary);
        std::vector<char> v((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!in.eof() && in.fail()) {
            std::fprintf(stderr, "replay: cannot read %s\n", p.c_str());
            return 1;
        }
        // Exactly `size` bytes on the heap (a zero-size input still gets a valid pointer).
        std::unique_ptr<uint8_t[]> buf(new uint8_t[v.size() ? v.size() : 1]);
        std::copy(v.begin(), v.end(), buf.get());
        std::snprintf(g_current, sizeof(g_current), "%s (%zu bytes)", p.c_str(), v.size());
        LLVMFuzzerTestOneInput(buf.get(), v.size());
        bytes += v.size();
    }
    std::printf("replayed %zu inputs (%zu bytes)\n", files.size(), bytes);
    if (files.empty()) {
        std::printf("no inputs: skipped\n");
        return 77;
    }
    return 0;
}
