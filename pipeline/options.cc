#include "pipeline/options.hh"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>

namespace closetap {

SplitArgs split_args(int argc, const char* const* argv) {
    SplitArgs s;
    std::vector<std::string> all(argv + 1, argv + argc);
    auto sep = std::find(all.begin(), all.end(), std::string("--"));
    if (sep == all.end()) {
        s.app = std::move(all);
        return s;
    }
    s.had_separator = true;
    s.eal.assign(all.begin(), sep);
    s.app.assign(sep + 1, all.end());
    return s;
}

Options parse_options(const std::vector<std::string>& app_args) {
    Options o;
    CLI::App app{"closetap: watches TCP connections end (see README.md)", "closetap"};
    app.set_version_flag("--version", "closetap 0.1.0");
    app.get_formatter()->column_width(34);
    std::string config_unused;  // taken out by take_config_path before parsing; listed for --help
    app.add_option("--config", config_unused,
                   "YAML configuration (deploy/closetap.yaml); flags given here override it");
    app.add_option("--pcap", o.pcaps,
                   "Replay this capture (pcap or pcapng) through DPDK and exit; repeat it for "
                   "captures of one tap's separate ports")
        ->check(CLI::ExistingFile)
        ->allow_extra_args(false);
    app.add_option("--conn-log", o.conn_log, "Write one JSON line per ended connection ('-': stdout)");
    app.add_option("--metrics-file", o.metrics_file, "Write the final metrics (Prometheus text) at exit");
    app.add_option("--metrics", o.metrics_addr,
                   "Serve /metrics on ADDR:PORT while running (a bare PORT binds 127.0.0.1; give "
                   "0.0.0.0:PORT or an interface address to listen beyond loopback)");
    app.add_option("--events", o.events, "Write one JSON line per abnormal close");
    app.add_option("--events-rate", o.events_rate, "Abnormal-close events per second, sustained")
        ->check(CLI::Range(0.001, 1e9));
    app.add_option("--events-burst", o.events_burst, "Abnormal-close events allowed in a burst")
        ->check(CLI::Range(1.0, 1e9));
    app.add_option("--flows", o.capacity, "Flow table capacity per worker, in entries (an IPv6 connection takes two)")
        ->check(CLI::Range(2u, 1u << 28));
    double to[4] = {o.timeouts.us[0] / 1e6, o.timeouts.us[1] / 1e6, o.timeouts.us[2] / 1e6,
                    o.timeouts.us[3] / 1e6};
    app.add_option("--timeout-syn", to[0], "Seconds an unanswered SYN is kept")
        ->check(CLI::Range(0.000001, 86400.0 * 7));
    app.add_option("--timeout-established", to[1], "Seconds an idle established flow is kept")
        ->check(CLI::Range(0.000001, 86400.0 * 7));
    app.add_option("--timeout-half-closed", to[2], "Seconds a flow with one FIN is kept")
        ->check(CLI::Range(0.000001, 86400.0 * 7));
    app.add_option("--timeout-closed", to[3], "Seconds a closed flow lingers for late packets")
        ->check(CLI::Range(0.000001, 86400.0 * 7));
    app.add_option("--duration", o.duration_s, "Live ports: stop after this many seconds")
        ->check(CLI::Range(0.0, 1e9));
    app.add_option("--port", o.ports, "Use only this ethdev (by name); repeatable");
    app.add_option("--signatures", o.signatures,
                   "Application signatures (YAML; default: deploy/signatures.yaml beside the "
                   "build, then /etc/closetap/signatures.yaml; 'none' turns labels off)");
    app.add_option("--app-scan-bytes", o.app_scan_bytes,
                   "Payload bytes scanned per direction for the application label")
        ->check(CLI::Range(1u, 65535u));
    app.add_option("--workers", o.workers,
                   "Worker lcores, one flow-table shard each (ports without symmetric multi-queue "
                   "receive get a dispatch lcore)")
        ->check(CLI::Range(1u, 16u));
    app.add_option("--burst", o.burst, "Packets per rx burst")->check(CLI::Range(1u, 512u));
    app.add_option("--rx-desc", o.rx_desc, "Rx descriptors per queue")->check(CLI::Range(64u, 32768u));
    app.add_option("--mbufs", o.mbufs, "Mbufs in the pool per port")->check(CLI::Range(1023u, 16777215u));
    app.add_flag("--quiet,-q", o.quiet, "No summary on stdout");
    app.add_flag("--verify-checksums", o.verify_checksums,
                 "Check IPv4 and TCP checksums; packets that fail are counted and ignored");

    std::vector<std::string> rev(app_args.rbegin(), app_args.rend());
    try {
        app.parse(rev);
    } catch (const CLI::CallForHelp&) {
        throw HelpRequested{app.help()};
    } catch (const CLI::CallForVersion&) {
        throw HelpRequested{"closetap 0.1.0\n"};
    } catch (const CLI::ParseError& e) {
        std::string msg = e.what();
        std::replace(msg.begin(), msg.end(), '\n', ' ');
        throw UsageError(msg);
    }
    for (size_t i = 0; i < 4; i++) o.timeouts.us[i] = static_cast<uint64_t>(std::llround(to[i] * 1e6));
    for (const auto& f : o.pcaps)
        if (f.find(',') != std::string::npos)
            throw UsageError("--pcap: a path with ',' cannot be passed to DPDK's pcap driver: '" + f + "'");
    if (o.pcaps.size() > 8) throw UsageError("--pcap: at most 8 captures");
    if (!o.metrics_addr.empty() && o.metrics_addr.find(':') == std::string::npos)
        o.metrics_addr = "127.0.0.1:" + o.metrics_addr;  // loopback unless told otherwise
    if (!o.metrics_addr.empty()) {
        auto colon = o.metrics_addr.rfind(':');
        if (colon == std::string::npos || colon + 1 == o.metrics_addr.size())
            throw UsageError("--metrics wants ADDR:PORT (for example 127.0.0.1:9490), not '" +
                             o.metrics_addr + "'");
        const std::string port = o.metrics_addr.substr(colon + 1);
        if (port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535)
            throw UsageError("--metrics: '" + port + "' is not a TCP port");
    }
    return o;
}

HostFacts probe_host() {
    HostFacts h;
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    uint64_t free_pages = 0;
    while (meminfo >> key) {
        if (key == "HugePages_Free:") {
            meminfo >> free_pages;
            break;
        }
        meminfo.ignore(1 << 12, '\n');
    }
    bool mounted = false;
    std::ifstream mounts("/proc/mounts");
    std::string line;
    while (std::getline(mounts, line))
        if (line.find(" hugetlbfs ") != std::string::npos) mounted = true;
    h.hugepages_usable = free_pages > 0 && mounted;

    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        for (unsigned c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) h.cpus.push_back(c);
    if (h.cpus.empty()) h.cpus.push_back(0);
    return h;
}

namespace {

bool has_any(const std::vector<std::string>& args, std::initializer_list<const char*> names) {
    for (const auto& a : args)
        for (const char* n : names) {
            std::string_view nv(n);
            if (a == nv || (a.size() > nv.size() && a.compare(0, nv.size(), nv) == 0 &&
                            a[nv.size()] == '='))
                return true;
            // short options glued to their value: -l0-1, -c3
            if (nv.size() == 2 && nv[0] == '-' && nv[1] != '-' && a.size() > 2 && a.compare(0, 2, nv) == 0)
                return true;
        }
    return false;
}

}  // namespace

std::vector<std::string> build_eal_args(const std::string& prog, const std::vector<std::string>& user,
                                        const Options& opt, const HostFacts& host,
                                        std::vector<std::string>& notes) {
    std::vector<std::string> a{prog};
    a.insert(a.end(), user.begin(), user.end());
    if (!has_any(user, {"-l", "-c", "--lcores"}) && opt.workers > 1) {
        // main (control), a dispatch lcore (used when the ports cannot spread traffic
        // symmetrically themselves), then the workers, round-robin over the CPUs we may use.
        std::string m;
        for (unsigned l = 0; l < opt.workers + 2; l++)
            m += (l ? "," : "") + std::to_string(l) + "@" + std::to_string(host.cpus[l % host.cpus.size()]);
        a.push_back("--lcores");
        a.push_back(m);
        if (host.cpus.size() < opt.workers + 2)
            notes.push_back(std::to_string(opt.workers + 2) + " lcores share " +
                            std::to_string(host.cpus.size()) + " CPUs: fine for replays, not for line rate");
    } else if (!has_any(user, {"-l", "-c", "--lcores"})) {
        // The main lcore runs the control loop (log writer, metrics); one worker lcore polls.
        if (host.cpus.size() > 1) {
            a.push_back("-l");
            a.push_back(std::to_string(host.cpus[0]) + "," + std::to_string(host.cpus[1]));
        } else {
            // One CPU: both lcores share it (slower, but a laptop VM can still replay a file).
            std::string c = std::to_string(host.cpus[0]);
            a.push_back("--lcores");
            a.push_back("0@" + c + ",1@" + c);
            notes.push_back("one CPU: control and worker lcores share CPU " + c);
        }
    }
    if (!host.hugepages_usable && !has_any(user, {"--no-huge", "--socket-mem", "--huge-dir"})) {
        a.push_back("--no-huge");
        notes.push_back("no usable hugepages: running with --no-huge");
        if (!has_any(user, {"-m"})) {
            // Mbuf pool, rings and DPDK's own allocations; the flow table lives outside EAL memory.
            a.push_back("-m");
            a.push_back("256");
        }
    }
    // A tap tool must not take over a NIC nobody named: PCI devices are used only when the user
    // lists them with -a (or excludes some with -b); a --pcap replay or --vdev ports alone run
    // with --no-pci.
    if ((!opt.pcaps.empty() || has_any(user, {"--vdev"})) &&
        !has_any(user, {"-a", "--allow", "-b", "--block", "--no-pci"})) {
        a.push_back("--no-pci");
    }
    for (size_t i = 0; i < opt.pcaps.size(); i++) {
        a.push_back("--vdev");
        a.push_back("net_pcap" + std::to_string(i) + ",rx_pcap=" + opt.pcaps[i]);
    }
    if (!has_any(user, {"--file-prefix", "--in-memory", "--proc-type", "--no-shconf"})) {
        // Several instances (and parallel tests) must not share a runtime directory. --in-memory
        // does that with hugepages; without them (legacy memory) EAL refuses it, and a private
        // prefix with no shared config is the equivalent.
        if (std::find(a.begin(), a.end(), "--no-huge") != a.end()) {
            a.push_back("--no-shconf");
            a.push_back("--file-prefix=closetap-" + std::to_string(::getpid()));
        } else {
            a.push_back("--in-memory");
        }
    }
    // A replay is a batch job: no telemetry socket (it only announces itself on stderr).
    if (!opt.pcaps.empty() && !has_any(user, {"--telemetry", "--no-telemetry"}))
        a.push_back("--no-telemetry");
    if (!has_any(user, {"--log-level"})) {
        a.push_back("--log-level=lib.eal:warning");
        a.push_back("--log-level=lib.telemetry:warning");
    }
    return a;
}

}  // namespace closetap
