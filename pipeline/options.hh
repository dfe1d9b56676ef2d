// Command line: EAL arguments before `--`, closetap's own after it (or all of them when there is
// no `--`). Everything is validated before EAL starts, so a bad argument never touches a packet.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowtable/timeouts.hh"
#include "pipeline/one_line.hh"

namespace closetap {

// One line, whatever the offending value holds (pipeline/one_line.hh).
struct UsageError : std::runtime_error {
    explicit UsageError(const std::string& what) : std::runtime_error(one_line(what)) {}
};

// `closetap --help` / `--version` asked for: print this and exit 0.
struct HelpRequested {
    std::string text;
};

struct Options {
    // Offline replay of these captures through net_pcap, one port each (a tap's two directions
    // can come as two files, as from two tap ports).
    std::vector<std::string> pcaps;
    std::string conn_log;      // JSON lines per ended connection ("-" = stdout)
    std::string metrics_file;  // Prometheus text at exit
    std::string metrics_addr;  // ADDR:PORT for a live /metrics
    std::string events;        // JSON lines per abnormal close
    double events_rate = 100;  // events per second of packet time, sustained
    double events_burst = 1000;
    uint32_t capacity = 1u << 20;  // flows per worker
    FlowTimeouts timeouts;
    double duration_s = 0;     // live runs: stop after this long (0 = until SIGINT/SIGTERM)
    std::vector<std::string> ports;  // ethdev names to use (default: every port EAL found)
    std::string signatures;    // application signatures (YAML); empty = search, "none" = off
    uint32_t app_scan_bytes = 0;  // 0 = the signature file's value (default 256)
    unsigned workers = 1;      // worker lcores, one flow-table shard each
    unsigned burst = 32;
    unsigned rx_desc = 1024;
    unsigned mbufs = 8191;
    bool quiet = false;
    bool verify_checksums = false;
};

struct SplitArgs {
    std::vector<std::string> eal;  // what the user put before `--`
    std::vector<std::string> app;
    bool had_separator = false;
};
SplitArgs split_args(int argc, const char* const* argv);

// Throws UsageError (one line) or HelpRequested.
Options parse_options(const std::vector<std::string>& app_args);

// Facts about the host that decide EAL's defaults.
struct HostFacts {
    bool hugepages_usable = false;  // free hugepages and a mounted hugetlbfs
    std::vector<unsigned> cpus;     // CPUs this process may run on
};
HostFacts probe_host();

// The EAL argument vector: the user's EAL arguments, plus what closetap adds when the user left
// it out: lcores, --no-huge without hugepages, --no-pci and the pcap vdev for --pcap, an
// in-memory runtime so several instances and tests can run side by side. `notes` says what was
// added, for the start-up report.
std::vector<std::string> build_eal_args(const std::string& prog, const std::vector<std::string>& user,
                                        const Options& opt, const HostFacts& host,
                                        std::vector<std::string>& notes);

}  // namespace closetap
