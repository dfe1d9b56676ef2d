#include "pipeline/explain.hh"

#include <arpa/inet.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "exporters/conn_log.hh"
#include "exporters/ladder.hh"

extern char** environ;

namespace closetap {
namespace {

using json = nlohmann::ordered_json;

// ADDR or [ADDR] -> the conn log's text for it (format_addr), so any spelling matches.
std::string canonical_host(std::string h) {
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    std::array<uint8_t, 16> a{};
    uint8_t v4[4];
    if (inet_pton(AF_INET, h.c_str(), v4) == 1) {
        a[10] = a[11] = 0xff;
        std::memcpy(a.data() + 12, v4, 4);
    } else if (inet_pton(AF_INET6, h.c_str(), a.data()) != 1) {
        throw std::invalid_argument("'" + h + "' is not an IPv4 or IPv6 address");
    }
    return format_addr(a);
}

void parse_endpoint(const std::string& e, std::string& host, unsigned& port) {
    size_t colon = e.rfind(':');
    if (e.empty() || colon == std::string::npos || colon + 1 == e.size())
        throw std::invalid_argument("'" + e + "' is not ADDR:PORT ([ADDR]:PORT for IPv6)");
    std::string h = e.substr(0, colon), p = e.substr(colon + 1);
    if (h.find(':') != std::string::npos && h.front() != '[')
        throw std::invalid_argument("'" + e + "': write IPv6 endpoints as [ADDR]:PORT");
    if (p.find_first_not_of("0123456789") != std::string::npos || p.size() > 5 || std::stoul(p) > 65535)
        throw std::invalid_argument("'" + p + "' is not a TCP port");
    host = canonical_host(h);
    port = static_cast<unsigned>(std::stoul(p));
}

bool matches(const ConnFilter& f, const json& r) {
    const std::string oh = r.value("orig_h", ""), rh = r.value("resp_h", "");
    const unsigned op = r.value("orig_p", 0u), rp = r.value("resp_p", 0u);
    return (oh == f.a_host && op == f.a_port && rh == f.b_host && rp == f.b_port) ||
           (oh == f.b_host && op == f.b_port && rh == f.a_host && rp == f.a_port);
}

// Runs this binary's offline replay, its stdout sent to our stderr (ours carries the ladders).
// Returns the child's exit status, or -1 with errno when it could not start.
int run_replay(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

bool want_color(const std::string& mode) {
    if (mode == "always") return true;
    if (mode == "never") return false;
    const char* term = std::getenv("TERM");
    return isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr &&
           !(term != nullptr && std::strcmp(term, "dumb") == 0);
}

}  // namespace

ConnFilter parse_conn_filter(const std::string& text) {
    // Neither IPv4 nor IPv6 text contains '-': the first one separates the endpoints.
    size_t dash = text.find('-');
    if (dash == std::string::npos)
        throw std::invalid_argument("--conn wants ADDR:PORT-ADDR:PORT, not '" + text + "'");
    ConnFilter f;
    parse_endpoint(text.substr(0, dash), f.a_host, f.a_port);
    parse_endpoint(text.substr(dash + 1), f.b_host, f.b_port);
    return f;
}

int explain_main(int argc, char** argv) {
    std::string pcap, conn, color = "auto";
    bool abnormal = false, all = false;
    std::vector<std::string> extra;
    CLI::App app{"closetap explain: the teardown ladder of a capture's connections, the way an "
                 "engineer reads a close in Wireshark (docs/explain.md). Options after -- go to "
                 "the replay (e.g. -- --timeout-half-closed 5).",
                 "closetap explain"};
    app.add_option("--pcap", pcap, "Capture to replay (pcap or pcapng)")->required();
    auto* c = app.add_option("--conn", conn, "Only this connection: ADDR:PORT-ADDR:PORT, either order, "
                                             "IPv6 as [ADDR]:PORT");
    auto* ab = app.add_flag("--abnormal", abnormal, "Only connections whose close has a reason");
    auto* al = app.add_flag("--all", all, "Every connection, also those that never closed");
    c->excludes(ab);
    c->excludes(al);
    ab->excludes(al);
    app.add_option("--color,--colour", color, "Colour: auto (on a terminal), always, never")
        ->check(CLI::IsMember({"auto", "always", "never"}));
    app.allow_extras();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        return 0;
    } catch (const CLI::ParseError& e) {
        std::string msg = e.what();
        std::replace(msg.begin(), msg.end(), '\n', ' ');
        std::fprintf(stderr, "closetap explain: error: %s\n", msg.c_str());
        return 2;
    }
    for (const auto& x : app.remaining()) {
        if (x == "--") continue;
        extra.push_back(x);
    }
    for (const auto& x : extra) {
        if (x == "--conn-log" || x == "--pcap" || x.rfind("--conn-log=", 0) == 0) {
            std::fprintf(stderr, "closetap explain: error: %s is explain's own; drop it\n", x.c_str());
            return 2;
        }
    }
    ConnFilter filter;
    if (!conn.empty()) {
        try {
            filter = parse_conn_filter(conn);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "closetap explain: error: --conn: %s\n", e.what());
            return 2;
        }
    }

    char tmpl[] = "/tmp/closetap-explain-XXXXXX";
    const char* tmpdir = std::getenv("TMPDIR");
    std::string path = tmpdir != nullptr && *tmpdir ? std::string(tmpdir) + "/closetap-explain-XXXXXX" : tmpl;
    std::vector<char> pbuf(path.begin(), path.end());
    pbuf.push_back('\0');
    int fd = mkstemp(pbuf.data());
    if (fd < 0) {
        std::fprintf(stderr, "closetap explain: error: cannot create a temporary file in %s: %s\n",
                     tmpdir ? tmpdir : "/tmp", std::strerror(errno));
        return 1;
    }
    close(fd);
    path = pbuf.data();
    // Application labels do not change a ladder: no signature file is needed.
    std::vector<std::string> args = {"closetap", "--pcap", pcap, "--conn-log", path, "--quiet",
                                     "--signatures", "none"};
    args.insert(args.end(), extra.begin(), extra.end());
    const int rc = run_replay(args);
    if (rc != 0) {
        if (rc < 0)
            std::fprintf(stderr, "closetap explain: error: cannot run the replay: %s\n", std::strerror(errno));
        else
            std::fprintf(stderr, "closetap explain: error: the replay of %s failed (exit %d)\n",
                         pcap.c_str(), rc);
        unlink(path.c_str());
        return 1;
    }

    std::vector<json> recs;
    {
        std::ifstream in(path);
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty()) continue;
            try {
                recs.push_back(json::parse(line));
            } catch (const std::exception& e) {
                std::fprintf(stderr, "closetap explain: error: bad conn log line: %s\n", e.what());
                unlink(path.c_str());
                return 1;
            }
        }
    }
    unlink(path.c_str());
    // Records arrive in the order connections ended; draw them in the order they began.
    std::stable_sort(recs.begin(), recs.end(), [](const json& a, const json& b) {
        const double ta = a.value("ts", 0.0), tb = b.value("ts", 0.0);
        if (ta != tb) return ta < tb;
        return a.value("orig_p", 0u) < b.value("orig_p", 0u);
    });

    LadderStyle style;
    style.color = want_color(color);
    std::string out;
    size_t shown = 0;
    for (const json& r : recs) {
        const std::string close = r.value("close", "none");
        bool take;
        if (!conn.empty())
            take = matches(filter, r);
        else if (abnormal)
            take = r.contains("reason") && !r["reason"].is_null();
        else
            take = all || (close != "none" && close != "no_answer");
        if (!take) continue;
        if (shown++ > 0) out += "\n";
        out += render_ladder(r, style);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    if (shown == 0) {
        std::fprintf(stderr, "closetap explain: no connection of %s %s\n", pcap.c_str(),
                     !conn.empty() ? ("matches --conn " + conn).c_str()
                     : abnormal    ? "closed abnormally"
                                   : "closed");
        return conn.empty() ? 0 : 1;
    }
    return 0;
}

}  // namespace closetap
