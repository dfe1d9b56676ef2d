// closetap-gen: transmits the synthetic tap workload of closetap-bench (bench/workload.hh: both
// directions of N concurrent TCP flows, lifecycles of every close pattern of SPEC section 2) on
// any DPDK port -- a NIC, net_memif to a closetap on the same host, a pcap file -- at a target
// packet rate, and writes its ground truth (connections of each close pattern and initiator) as
// JSON. closetap, fed this traffic and flushed at the end, must count exactly these closes.
//
//   closetap-gen [EAL args] -- [generator args]
//   closetap-gen --pcap-out FILE [generator args]      (net_pcap tx, --no-huge --no-pci)
//
// The run: a warm-up that opens every flow (5 packets a flow), the steady phase of --packets
// packets or --duration seconds, then a drain that plays out every lifecycle still in flight.
// The main lcore builds each burst into mbufs from a pool and sends it with rte_eth_tx_burst,
// paced by the TSC. What the port does not take after --tx-retries further attempts is freed
// and counted as not sent (separately when it was a lifecycle packet, which makes the truth
// inexact): a lossless-rate search must see every packet the port refused.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/workload.hh"
#include "bench/workload_flags.hh"
#include "pipeline/eal.hh"
#include "pipeline/options.hh"

using namespace closetap;
using namespace closetap::bench;

namespace {

std::atomic<int> g_signals{0};
extern "C" void on_signal(int) { g_signals.fetch_add(1); }

[[noreturn]] void die(int code, const std::string& msg) {
    std::fprintf(stderr, "closetap-gen: error: %s\n", msg.c_str());
    std::exit(code);
}

struct GenOptions {
    uint32_t flows = 10'000;
    double rate = 0;         // packets per second; 0 = as fast as the port takes them
    double warmup_rate = 0;  // the warm-up's own rate (0: --rate)
    double new_flows_per_sec = -1;
    double churn = -1;
    WorkloadFlags wl;  // --inflight, --mix, --resp-closes, --http-share, --ipv6, --seed
    bool inflight_given = false;
    std::string frames = "min64";
    int payload = -1;
    unsigned vlan = 0;
    int64_t vxlan = -1;
    double skew_us = 0;
    double loss = 0;
    double duration_s = 0;
    uint64_t packets = 0;
    std::string truth;
    std::string pcap_out;
    std::string port;
    unsigned burst = 32;
    double tx_retry_us = 100;
    unsigned mbufs = 8191;
    double link_wait_s = 10;
    double linger_ms = 200;
    bool quiet = false;
};

bool has_arg(const std::vector<std::string>& args, std::initializer_list<const char*> names) {
    for (const auto& a : args)
        for (const char* n : names) {
            const std::string nv(n);
            if (a == nv || a.rfind(nv + "=", 0) == 0) return true;
            if (nv.size() == 2 && a.size() > 2 && a.compare(0, 2, nv) == 0) return true;  // -l0
        }
    return false;
}

uint64_t realtime_ns() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

GenOptions parse(const std::vector<std::string>& args) {
    GenOptions o;
    CLI::App app{
        "closetap-gen: realistic TCP lifecycles on a DPDK port, with ground truth "
        "(docs/capacity.md)",
        "closetap-gen"};
    app.get_formatter()->column_width(30);
    // The last of a repeated option wins, so a script can override what it put first.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_option("--flows", o.flows, "Concurrent open flows")->check(CLI::Range(1u, 1u << 24));
    app.add_option("--rate", o.rate, "Target packets per second (0: as fast as possible)")
        ->check(CLI::Range(0.0, 1e9));
    app.add_option("--warmup-rate", o.warmup_rate,
                   "Packets per second while the flows open (default: --rate)")
        ->check(CLI::Range(0.0, 1e9));
    auto* nfps = app.add_option("--new-flows-per-sec", o.new_flows_per_sec,
                                "Lifecycles (a close and a new flow, or a failed attempt) started "
                                "per second; needs --rate")
                     ->check(CLI::Range(0.0, 1e9));
    app.add_option("--churn", o.churn,
                   "Share of steady packets that are lifecycle packets (default 0.2)")
        ->check(CLI::Range(0.0, 1.0))
        ->excludes(nfps);
    add_workload_flags(app, o.wl);
    app.add_option("--frames", o.frames,
                   "Data segment sizes: min64 (64-byte frames, the worst case) or imix (7:4:1 of "
                   "64, 576, 1500 bytes)")
        ->check(CLI::IsMember({"min64", "imix"}));
    auto* imix = app.add_flag_callback(
        "--imix", [&o] { o.frames = "imix"; }, "Same as --frames imix");
    app.add_option("--payload", o.payload, "Every data segment carries this many payload bytes")
        ->check(CLI::Range(0, 1460))
        ->excludes(imix);
    app.add_option("--vlan", o.vlan, "802.1Q VLAN ID on every frame")->check(CLI::Range(1u, 4094u));
    app.add_option("--vxlan", o.vxlan,
                   "Carry every frame in VXLAN with this VNI (outer IPv4/UDP 4789)")
        ->check(CLI::Range(int64_t{0}, int64_t{0xffffff}));
    app.add_option("--skew-us", o.skew_us,
                   "The responder's direction reaches the tap this many microseconds later")
        ->check(CLI::Range(0.0, 10e6));
    app.add_option("--loss", o.loss,
                   "Share of the responder's data segments not sent (closes stay exact)")
        ->check(CLI::Range(0.0, 0.99));
    auto* dur = app.add_option("--duration", o.duration_s, "Seconds of steady traffic")
                    ->check(CLI::Range(0.001, 86400.0 * 7));
    app.add_option("--packets", o.packets, "Packets of steady traffic (after the warm-up)")
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 50))
        ->excludes(dur);
    app.add_option("--truth", o.truth, "Write the ground truth and tx counters here (JSON)");
    app.add_option("--pcap-out", o.pcap_out,
                   "Transmit into this pcap file (net_pcap tx_pcap, --no-huge --no-pci)");
    app.add_option("--port", o.port, "ethdev name to transmit on (default: the first port)");
    app.add_option("--burst", o.burst, "Packets per rte_eth_tx_burst")->check(CLI::Range(1u, 512u));
    app.add_option("--tx-retry-us", o.tx_retry_us,
                   "Microseconds to keep offering what a burst left behind before it counts as "
                   "not sent (the port's backpressure budget)")
        ->check(CLI::Range(0.0, 60e6));
    app.add_option("--mbufs", o.mbufs, "Mbuf pool size")->check(CLI::Range(1023u, 1u << 22));
    app.add_option("--link-wait", o.link_wait_s, "Seconds to wait for the port's link (memif peer)")
        ->check(CLI::Range(0.0, 3600.0));
    app.add_option("--linger-ms", o.linger_ms,
                   "Milliseconds to keep the port open after the last packet (the peer drains); "
                   "less if the peer takes the link down")
        ->check(CLI::Range(0.0, 60000.0));
    app.add_flag("--quiet", o.quiet, "No summary on stdout");
    std::vector<std::string> rev(args.rbegin(), args.rend());
    try {
        app.parse(rev);
    } catch (const CLI::CallForHelp&) {
        std::printf("%s", app.help().c_str());
        std::exit(0);
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        what = what.substr(0, what.find('\n'));
        die(2, what);
    }
    o.inflight_given = app.count("--inflight") > 0;
    if (o.packets == 0 && o.duration_s == 0) die(2, "give --packets N or --duration S");
    if (o.new_flows_per_sec >= 0 && o.rate <= 0)
        die(2, "--new-flows-per-sec needs a --rate to turn into a share of packets");
    return o;
}

struct Counters {
    uint64_t offered = 0;  // packets built and handed to the port
    uint64_t sent = 0, bytes = 0;
    uint64_t not_sent = 0, not_sent_lifecycle = 0;
    uint64_t no_mbuf = 0;         // bursts deferred: the pool was empty (nothing lost)
    uint64_t retried_bursts = 0;  // bursts the port did not take whole at once
    uint64_t warmup = 0, steady = 0, drain = 0;
};

// Keeps the port open after the last packet, so the peer can drain its queue, for up to `ms`:
// less if the peer takes the link down first (it stopped) or a signal comes. A memif peer should
// stop first: DPDK 22.11's net_memif unmaps the shared rings from its interrupt thread when the
// other side leaves, under a poller that may be inside rx_burst (docs/capacity.md).
void keep_port_up(uint16_t port, double ms, uint64_t hz) {
    const uint64_t until = rte_rdtsc() + static_cast<uint64_t>(ms * 1e-3 * double(hz));
    rte_eth_link link{};
    while (rte_rdtsc() < until && g_signals.load() == 0) {
        rte_eth_link_get_nowait(port, &link);
        if (link.link_status == RTE_ETH_LINK_DOWN) return;
        rte_delay_ms(5);
    }
}

}  // namespace

int main(int argc, char** argv) {
    SplitArgs split = split_args(argc, argv);
    GenOptions o = parse(split.app);

    WorkloadConfig wc;
    wc.flows = o.flows;
    wc.frames = o.frames == "imix" ? FrameMix::imix : FrameMix::min64;
    if (o.payload >= 0) {
        wc.frames = FrameMix::fixed;
        wc.payload = static_cast<uint16_t>(o.payload);
    }
    wc.vlan = static_cast<uint16_t>(o.vlan);
    wc.vxlan_vni = static_cast<int32_t>(o.vxlan);
    wc.skew_ns = static_cast<uint64_t>(o.skew_us * 1000);
    wc.loss = o.loss;
    // The generator drives the workload's clock with the wall clock.
    wc.warmup_ns_per_pkt = 0;
    wc.steady_ns_per_pkt = 0;
    std::vector<std::string> notes;
    try {
        apply_workload_flags(o.wl, wc);
        WorkloadConfig one = wc;
        one.flows = 1;
        const double script_pkts = Workload(one).mean_script_packets();
        wc.churn = o.churn >= 0 ? o.churn : 0.2;
        if (o.new_flows_per_sec >= 0) {
            wc.churn = o.new_flows_per_sec * script_pkts / o.rate;
            if (wc.churn > 1)
                throw std::invalid_argument(
                    "--new-flows-per-sec: " + std::to_string(o.new_flows_per_sec) +
                    " lifecycles of " + std::to_string(script_pkts) +
                    " packets each need more than --rate packets");
        }
        if (o.rate > 0 && wc.churn > 0) {
            // A lifecycle gets one of every `inflight` lifecycle packets: keep one within ~1 s of
            // packet time, far below closetap's 5 s SYN timeout, so no flow splits at a low rate.
            const double cap = std::max(1.0, wc.churn * o.rate / 10.0);
            if (wc.inflight > cap) {
                if (o.inflight_given)
                    notes.push_back("--inflight " + std::to_string(wc.inflight) +
                                    " at this rate "
                                    "stretches a lifecycle over " +
                                    std::to_string(10.0 * wc.inflight / (wc.churn * o.rate)) +
                                    " s");
                else
                    wc.inflight = static_cast<uint32_t>(cap);
            }
        }
        if (wc.skew_ns > 0) {
            const double in_line = o.rate > 0 ? o.rate * o.skew_us * 1e-6 : 1e6;
            wc.delay_slots = static_cast<uint32_t>(std::clamp(2 * in_line + 1024, 4096.0, 1e7));
        }
        WorkloadConfig check = wc;  // validates the whole configuration before EAL starts
        check.flows = 1;
        Workload probe(check);
    } catch (const std::invalid_argument& e) {
        die(2, e.what());
    }

    std::vector<std::string> eal = split.eal;
    if (!o.pcap_out.empty()) {
        eal.push_back("--vdev");
        eal.push_back("net_pcap_gen0,tx_pcap=" + o.pcap_out);
    } else if (!has_arg(eal, {"--vdev", "-a", "--allow"})) {
        die(2,
            "no port: give --pcap-out FILE, or EAL arguments naming one (--vdev ..., -a PCI) "
            "before --");
    }
    HostFacts host = probe_host();
    if (!has_arg(eal, {"-l", "-c", "--lcores"})) {
        // One lcore: the main lcore generates and transmits.
        eal.push_back("-l");
        eal.push_back(std::to_string(host.cpus[0]));
    }
    if (!has_arg(eal, {"--telemetry", "--no-telemetry"})) eal.push_back("--no-telemetry");
    Options copt;  // closetap's EAL defaults: --no-huge without hugepages, --no-pci for vdevs
    std::vector<std::string> eal_args = build_eal_args(argv[0], eal, copt, host, notes);
    try {
        start_eal(eal_args);
    } catch (const std::exception& e) {
        die(1, e.what());
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    uint16_t port = RTE_MAX_ETHPORTS;
    if (!o.port.empty()) {
        if (rte_eth_dev_get_port_by_name(o.port.c_str(), &port) != 0)
            die(1, "no DPDK port named '" + o.port + "'");
    } else {
        uint16_t p;
        RTE_ETH_FOREACH_DEV(p) {
            port = p;
            break;
        }
        if (port == RTE_MAX_ETHPORTS) die(1, "DPDK found no port");
    }
    char pname[RTE_ETH_NAME_MAX_LEN] = {};
    rte_eth_dev_get_name_by_port(port, pname);

    rte_mempool* pool = rte_pktmbuf_pool_create("ctgen_pool", o.mbufs, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    if (!pool) die(1, std::string("cannot create the mbuf pool: ") + rte_strerror(rte_errno));
    rte_eth_dev_info info;
    if (int rc = rte_eth_dev_info_get(port, &info); rc != 0)
        die(1, std::string(pname) + ": " + rte_strerror(-rc));
    const uint16_t nb_rx = info.max_rx_queues > 0 ? 1 : 0;  // never polled: a tap sends nothing
    rte_eth_conf conf{};
    uint16_t rxd = 512, txd = 1024;
    int rc = rte_eth_dev_configure(port, nb_rx, 1, &conf);
    if (rc == 0) rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
    if (rc == 0 && nb_rx)
        rc = rte_eth_rx_queue_setup(port, 0, rxd, rte_eth_dev_socket_id(port), nullptr, pool);
    if (rc == 0) rc = rte_eth_tx_queue_setup(port, 0, txd, rte_eth_dev_socket_id(port), nullptr);
    if (rc == 0) rc = rte_eth_dev_start(port);
    if (rc != 0) die(1, std::string("cannot start port ") + pname + ": " + rte_strerror(-rc));

    const uint64_t hz = rte_get_tsc_hz();
    {
        const uint64_t until = rte_rdtsc() + static_cast<uint64_t>(o.link_wait_s * double(hz));
        rte_eth_link link{};
        for (;;) {
            rte_eth_link_get_nowait(port, &link);
            if (link.link_status == RTE_ETH_LINK_UP) break;
            if (rte_rdtsc() > until || g_signals.load())
                die(1, std::string("port ") + pname + ": link down after " +
                           std::to_string(o.link_wait_s) + " s (is the peer running?)");
            rte_delay_ms(10);
        }
    }
    for (const auto& n : notes)
        if (!o.quiet) std::fprintf(stderr, "closetap-gen: %s\n", n.c_str());

    Workload w(wc);
    Counters c;
    const unsigned burst = o.burst;
    const uint64_t retry_tsc = static_cast<uint64_t>(o.tx_retry_us * 1e-6 * double(hz));
    std::vector<rte_mbuf*> m(burst);
    std::vector<uint8_t> life(burst);
    const uint64_t wall0 = realtime_ns();
    const uint64_t tsc0 = rte_rdtsc();
    auto now_ns = [&](uint64_t tsc) {
        return wall0 + static_cast<uint64_t>(double(tsc - tsc0) * 1e9 / double(hz));
    };
    // Pacing: packet k is due at k / rate; a backlog of more than 4 bursts is forgiven rather
    // than sent at once (the achieved rate shows it).
    double per_tsc = (o.warmup_rate > 0 ? o.warmup_rate : o.rate) / double(hz);
    double credit_base = 0;  // packets whose due time passed without being sent
    uint64_t pace_tsc = tsc0, pace_offered = 0;
    uint64_t steady_start = 0, steady_end_tsc = 0, end_tsc = 0, steady_tsc = 0, steady_sent = 0;
    bool draining = false;
    while (w.phase() != Workload::Phase::done || w.delayed_now() > 0) {
        uint64_t tsc = rte_rdtsc();
        unsigned n = burst;
        if (per_tsc > 0) {
            double due =
                double(tsc - pace_tsc) * per_tsc - credit_base - double(c.offered - pace_offered);
            if (due > 4.0 * burst) {
                credit_base += due - 4.0 * burst;
                due = 4.0 * burst;
            }
            if (due < 1) {
                rte_pause();
                continue;
            }
            n = std::min<unsigned>(burst, static_cast<unsigned>(due));
        }
        if (w.phase() == Workload::Phase::steady && !draining) {
            const bool stop = g_signals.load() > 0 ||
                              (o.packets && c.offered - steady_start >= o.packets) ||
                              (steady_end_tsc && tsc >= steady_end_tsc);
            if (stop) {
                w.begin_drain();
                draining = true;
            } else if (o.packets) {
                n = static_cast<unsigned>(
                    std::min<uint64_t>(n, o.packets - (c.offered - steady_start)));
            }
        }
        if (g_signals.load() > 1) break;  // a second signal: stop at once, the truth is inexact
        if (rte_pktmbuf_alloc_bulk(pool, m.data(), n) != 0) {
            c.no_mbuf++;  // the pool refills as the port completes transmissions
            rte_pause();
            continue;
        }
        w.set_time_ns(now_ns(tsc));
        unsigned k = 0;
        bool phase_over = false;
        for (; k < n; k++) {
            uint64_t ts;
            const unsigned len = w.next(rte_pktmbuf_mtod(m[k], uint8_t*), ts);
            if (len == 0) {
                phase_over = !w.waiting();
                break;
            }
            m[k]->data_len = static_cast<uint16_t>(len);
            m[k]->pkt_len = len;
            life[k] = w.last_lifecycle();
        }
        if (k < n) rte_pktmbuf_free_bulk(m.data() + k, n - k);
        if (k > 0) {
            unsigned sent = rte_eth_tx_burst(port, 0, m.data(), static_cast<uint16_t>(k));
            if (sent < k) {
                const uint64_t give_up = rte_rdtsc() + retry_tsc;
                do {
                    rte_pause();
                    sent +=
                        rte_eth_tx_burst(port, 0, m.data() + sent, static_cast<uint16_t>(k - sent));
                } while (sent < k && rte_rdtsc() < give_up);
                c.retried_bursts++;
            }
            for (unsigned i = sent; i < k; i++) {
                c.not_sent++;
                c.not_sent_lifecycle += life[i];
            }
            if (sent < k) rte_pktmbuf_free_bulk(m.data() + sent, k - sent);
            c.offered += k;
            c.sent += sent;
            switch (w.phase()) {
                case Workload::Phase::warmup:
                    c.warmup += k;
                    break;
                case Workload::Phase::steady:
                    c.steady += k;
                    break;
                default:
                    c.drain += k;
                    break;
            }
        }
        if (phase_over) {
            if (w.phase() == Workload::Phase::warmup) {
                w.begin_steady();
                steady_start = c.offered;
                per_tsc = o.rate / double(hz);  // the warm-up may have had its own rate
                pace_tsc = rte_rdtsc();
                pace_offered = c.offered;
                credit_base = 0;
                steady_tsc = pace_tsc;
                steady_sent = c.sent;
                if (o.duration_s > 0)
                    steady_end_tsc = rte_rdtsc() + static_cast<uint64_t>(o.duration_s * double(hz));
            }  // steady never ends by itself; the drain ends in Phase::done
        }
    }
    end_tsc = rte_rdtsc();
    rte_eth_stats st{};
    rte_eth_stats_get(port, &st);
    c.bytes = st.obytes;
    const bool interrupted = w.phase() != Workload::Phase::done;
    w.expect_open_flows();
    const double secs = double(end_tsc - tsc0) / double(hz);
    const bool exact = c.not_sent_lifecycle == 0 && !interrupted;

    nlohmann::ordered_json j;
    j["generator"] = "closetap-gen";
    j["port"] = pname;
    j["flows"] = o.flows;
    j["seed"] = o.wl.seed;
    j["target_pps"] = o.rate;
    j["warmup_pps"] = o.warmup_rate > 0 ? o.warmup_rate : o.rate;
    j["frames"] = o.payload >= 0 ? "payload=" + std::to_string(o.payload) : o.frames;
    j["vlan"] = o.vlan;
    j["vxlan"] = o.vxlan;
    j["skew_us"] = o.skew_us;
    j["loss"] = o.loss;
    j["churn"] = wc.churn;
    j["inflight"] = wc.inflight;
    j["duration_s"] = secs;
    j["tsc_hz"] = hz;  // the host's TSC: closetap's busy cycles over this give its busy share
    j["achieved_pps"] = secs > 0 ? double(c.sent) / secs : 0.0;
    // From the end of the warm-up to the end of the drain: the rate a capacity trial measures.
    const double steady_secs = steady_tsc ? double(end_tsc - steady_tsc) / double(hz) : 0;
    j["steady_duration_s"] = steady_secs;
    j["steady_achieved_pps"] = steady_secs > 0 ? double(c.sent - steady_sent) / steady_secs : 0.0;
    j["packets"] = {{"offered", c.offered},
                    {"sent", c.sent},
                    {"not_sent", c.not_sent},
                    {"not_sent_lifecycle", c.not_sent_lifecycle},
                    {"lost_by_design", w.lost_packets()},
                    {"warmup", c.warmup},
                    {"steady", c.steady},
                    {"drain", c.drain},
                    {"lifecycle", w.lifecycle_packets()},
                    {"data", w.data_packets()}};
    j["bytes_sent"] = c.bytes;
    j["port_opackets"] = st.opackets;
    j["port_oerrors"] = st.oerrors;
    j["no_mbuf_waits"] = c.no_mbuf;
    j["tx_retry_us"] = o.tx_retry_us;
    j["retried_bursts"] = c.retried_bursts;
    j["flows_started"] = w.flows_started();
    j["truth_exact"] = exact;
    nlohmann::ordered_json closes;
    uint64_t conns = 0;
    for (size_t ci = 0; ci < count_of<Close>; ci++) {
        nlohmann::ordered_json by;
        for (size_t ii = 0; ii < count_of<Initiator>; ii++) {
            by[std::string(initiator_names[ii])] = w.expected()[ci][ii];
            conns += w.expected()[ci][ii];
        }
        closes[std::string(close_names[ci])] = by;
    }
    j["connections"] = conns;
    j["closes"] = closes;
    if (!o.truth.empty()) {
        // Whole or not at all: a harness takes the file's appearance as "the last packet is out"
        // (below).
        const std::string tmp = o.truth + ".tmp";
        std::ofstream f(tmp);
        f << j.dump(2) << "\n";
        f.close();
        if (!f || std::rename(tmp.c_str(), o.truth.c_str()) != 0)
            std::fprintf(stderr, "closetap-gen: error: cannot write %s\n", o.truth.c_str());
    }
    if (!o.quiet) {
        std::printf(
            "closetap-gen: %s: %lu packets sent (%lu not sent, %lu of them lifecycle) in "
            "%.2f s, %.3f Mpps (target %s), %lu connections\n",
            pname, (unsigned long)c.sent, (unsigned long)c.not_sent,
            (unsigned long)c.not_sent_lifecycle, secs, double(c.sent) / secs / 1e6,
            o.rate > 0 ? (std::to_string(o.rate / 1e6) + " Mpps").c_str() : "max",
            (unsigned long)conns);
        std::printf("  %-18s %8s %8s %8s\n", "close", "orig", "resp", "none");
        for (size_t ci = 0; ci < count_of<Close>; ci++) {
            const auto& e = w.expected()[ci];
            std::printf("  %-18s %8lu %8lu %8lu\n", std::string(close_names[ci]).c_str(),
                        (unsigned long)e[0], (unsigned long)e[1], (unsigned long)e[2]);
        }
        if (!exact)
            std::printf("  truth inexact: %s\n", interrupted ? "interrupted before the drain ended"
                                                             : "lifecycle packets were not sent");
    }
    std::fflush(stdout);
    keep_port_up(port, o.linger_ms, hz);
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
    rte_mempool_free(pool);
    stop_eal();
    return exact ? 0 : 3;
}
