// libFuzzer target for the configuration loader: the bytes become a YAML file (a memfd, named
// through /proc/self/fd) that goes through what main.cc does with `--config`: config_to_args
// (pipeline/config_file.cc), CLI11's checks of the result (parse_options, pipeline/options.cc),
// the error rewritten to name the file's line (ConfigArgs::explain), and the merge with a
// command line.
//
// Invariant: it never crashes and never throws anything main does not catch. Either a clean
// error (std::runtime_error or UsageError, which main turns into "closetap: error: ..." on one
// line, so the message must be one line) or options.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipeline/config_file.hh"
#include "pipeline/options.hh"
#include "tests/fuzz/fuzz_common.hh"

namespace {

void check_one_line(const std::string& m) {
    FUZZ_CHECK(!m.empty());
    FUZZ_CHECK(m.find('\n') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace closetap;
    if (size > 65536) return 0;  // a configuration file, not a data set
    const closetap::fuzz::MemFile f("closetap.yaml", data, size);
    if (!f.ok()) return 0;
    const std::string path = f.path();

    ConfigArgs cfg;
    try {
        cfg = config_to_args(path);
    } catch (const std::runtime_error& e) {
        check_one_line(e.what());
        return 0;
    }
    FUZZ_CHECK(cfg.origins.size() <= cfg.app.size());
    // What main does next: CLI11's rules on the file's flags, the error pointed at its line.
    try {
        Options o = parse_options(cfg.app);
        FUZZ_CHECK(o.workers >= 1 && o.capacity >= 1 && o.burst >= 1);
        FUZZ_CHECK(o.pcaps.size() <= 8);
    } catch (const HelpRequested&) {
        // closetap prints the help and exits 0
    } catch (const UsageError& e) {
        check_one_line(e.what());
        check_one_line(cfg.explain(e.what()));
    } catch (const std::runtime_error& e) {
        check_one_line(e.what());
    }
    // The command line overrides the file; both merges keep the command line's arguments.
    const std::vector<std::string> cli = {"--quiet", "--flows", "1000", "--pcap", "x.pcap"};
    std::vector<std::string> app = merge_app_args(cfg.app, cli);
    FUZZ_CHECK(app.size() >= cli.size());
    FUZZ_CHECK(std::vector<std::string>(app.end() - static_cast<std::ptrdiff_t>(cli.size()),
                                        app.end()) == cli);
    const std::vector<std::string> eal_cli = {"-l", "0,1", "--no-huge"};
    std::vector<std::string> eal = merge_eal_args(cfg.eal, eal_cli);
    FUZZ_CHECK(eal.size() >= eal_cli.size());
    return 0;
}
