// The workload flags closetap-bench and closetap-gen share (bench/workload.hh WorkloadConfig):
// one definition of their names, help and checks, and of how they fill the config. Each tool
// adds its own (the bench's table and window, the generator's port and rate) and works out
// --churn and --inflight's final values itself, from what it knows of packet time.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "bench/workload.hh"

namespace closetap::bench {

struct WorkloadFlags {
    unsigned inflight = 1024;
    std::string mix;  // empty: WorkloadConfig's default weights
    double resp_closes = 0.5;
    double http_share = 0.5;
    double ipv6 = 0;
    uint64_t seed = 1;
};

inline void add_workload_flags(CLI::App& app, WorkloadFlags& f) {
    app.add_option("--inflight", f.inflight, "Open/close lifecycles interleaved at once")
        ->check(CLI::Range(1u, 1u << 20));
    app.add_option("--mix", f.mix,
                   "Close pattern weights (SPEC section 2; patterns not named get 0); default "
                   "fin_4way=25,fin_3way=35,fin_simultaneous=3,fin_one_side=5,fin_rst=5,rst=15,"
                   "rejected=7,no_answer=5");
    app.add_option("--resp-closes", f.resp_closes, "Share of FIN/RST closes the responder starts")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--http-share", f.http_share, "Share of flows whose first request is HTTP")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--ipv6", f.ipv6,
                   "Share of flows over IPv6 (2001:db8::/32; default 0); each takes two "
                   "flow-table entries")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--seed", f.seed, "Workload seed");
}

// Throws std::invalid_argument naming the flag when --mix does not parse.
inline void apply_workload_flags(const WorkloadFlags& f, WorkloadConfig& wc) {
    if (!f.mix.empty()) wc.mix = parse_mix(f.mix);
    wc.inflight = f.inflight;
    wc.resp_closes = f.resp_closes;
    wc.http_share = f.http_share;
    wc.ipv6_share = f.ipv6;
    wc.seed = f.seed;
}

}  // namespace closetap::bench
