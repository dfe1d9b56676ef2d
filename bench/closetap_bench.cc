// closetap-bench: replays an in-memory synthetic tap workload (bench/workload.hh) through the
// worker's own burst path (pipeline/worker.hh process_rx_burst: parse, keys, prefetch, flow
// table, close machine, application classifier, rte_pktmbuf_free_bulk) and the flow table's
// expiry sweep, exactly as worker_main runs them after each rte_eth_rx_burst, on a worker lcore
// timed with the TSC. Ends with one line (SPEC section 4):
//
//   RESULT flows=<concurrent flows> workers=<n> mpps_per_worker=<x> ns_per_pkt=<y>
//   bytes_per_flow=<z>
//
// The mbufs of a measured window are allocated from a mempool and written before the window
// starts (untimed, as a NIC's DMA would have done), then the worker frees them into the pool as
// it does on a port: nothing but the worker's code runs inside the timed loop. The main lcore
// drains the workers' record rings meanwhile, as closetap's control thread does.
//
// After the measurement the remaining lifecycles are played out and the table is flushed; the
// worker's close counters must then equal the workload's ground truth, pattern by pattern.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <unistd.h>

#include <emmintrin.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/workload.hh"
#include "bench/workload_flags.hh"
#include "exporters/conn_log.hh"
#include "pipeline/eal.hh"
#include "pipeline/port.hh"
#include "pipeline/worker.hh"
#include "tests/packet_builder.hh"

using namespace closetap;
using namespace closetap::bench;

namespace {


struct BenchOptions {
    std::string flows = "1M";
    unsigned workers = 1;
    std::string window = "";  // default: 4M packets (min64), 1M (imix)
    unsigned runs = 5;
    unsigned burst = 32;
    double churn = -1;  // < 0: auto
    WorkloadFlags wl;  // --inflight, --mix, --resp-closes, --http-share, --ipv6, --seed
    bool imix = false;
    std::string capacity;
    std::string signatures;
    unsigned ns_per_pkt = 1000;
    std::string lcores;  // EAL --lcores map, e.g. 0@1,1@0 (worker on CPU 0)
    double syn_flood = 0;  // share of measured packets that are SYNs from random sources
    bool stages = false;   // time each pipeline stage and the sweep
    std::string rx = "window";  // window: a fresh mbuf per packet; ring: recycled as by a PMD
};

// The burst pipeline's stages (pipeline/worker.cc) and the sweep, as --stages prints them.
constexpr std::array<const char*, 8> stage_names = {
    "receive", "prefetch_data", "parse", "prefetch_entries", "prefetch_alt", "apply", "sweep",
    "rx_feed"};

uint64_t parse_count(const std::string& what, const std::string& s) {
    // 10K, 1M, 16M (decimal), 4Mi (binary), or a plain number.
    size_t pos = 0;
    double v = 0;
    try {
        v = std::stod(s, &pos);
    } catch (const std::exception&) {
        throw std::invalid_argument(what + ": not a number: '" + s + "'");
    }
    std::string suf = s.substr(pos);
    double mul = 1;
    if (suf == "K" || suf == "k")
        mul = 1e3;
    else if (suf == "M" || suf == "m")
        mul = 1e6;
    else if (suf == "Ki")
        mul = 1024;
    else if (suf == "Mi")
        mul = 1024.0 * 1024;
    else if (!suf.empty())
        throw std::invalid_argument(what + ": bad suffix in '" + s + "' (K, M, Ki, Mi)");
    if (v < 0) throw std::invalid_argument(what + ": negative: '" + s + "'");
    return static_cast<uint64_t>(std::llround(v * mul));
}

uint64_t rss_bytes() {
    long pages = 0, rss = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        std::fclose(f);
    }
    return static_cast<uint64_t>(rss) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

double thread_cpu_s() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

// VmRSS and VmHWM (peak) of this process, bytes.
std::pair<uint64_t, uint64_t> vm_rss_hwm() {
    uint64_t rss = 0, hwm = 0;
    if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof(line), f)) {
            unsigned long long kb = 0;
            if (std::sscanf(line, "VmRSS: %llu kB", &kb) == 1) rss = kb * 1024;
            if (std::sscanf(line, "VmHWM: %llu kB", &kb) == 1) hwm = kb * 1024;
        }
        std::fclose(f);
    }
    return {rss, hwm};
}

// --syn-flood: SYNs from random sources to one server, mixed into the measured phase. Source
// 198.18.0.0/15 (RFC 2544's benchmark range: never one of the workload's 10.x clients) and
// source port come from a bijection of a counter, so every flood SYN is a distinct flow that
// looks random to the hash, and each ends as exactly one `no_answer` record (evicted, timed out
// or flushed): the ground truth. Frames are patched copies of one PacketBuilder frame, written
// untimed, like the rest of the window.
struct SynFlood {
    double share = 0;
    uint64_t rng = 0;
    uint32_t next = 0;
    uint64_t sent = 0;

    static uint32_t mix32(uint32_t x) {  // invertible: odd multiplies and xor-shifts
        x ^= x >> 16;
        x *= 0x7feb352du;
        x ^= x >> 15;
        x *= 0x846ca68bu;
        x ^= x >> 16;
        return x;
    }
    bool draw() {  // splitmix64
        uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        return double(z >> 11) * 0x1.0p-53 < share;
    }
    std::vector<uint8_t> tmpl;  // one SYN frame by PacketBuilder; addresses patched per SYN

    unsigned write(uint8_t* out, size_t room) {
        namespace pb = closetap::testing;
        if (tmpl.empty())
            tmpl = pb::PacketBuilder()
                       .eth()
                       .ipv4(pb::ip4(198, 18, 0, 0), pb::ip4(10, 255, 0, 1))
                       .tcp({.sport = 1, .dport = 80, .seq = 0, .ack = 0, .flags = pb::tcpf::syn})
                       .build();
        if (tmpl.size() > room) return 0;
        uint32_t x;
        do x = mix32(next++);
        while ((x & 0xffff) == 0);  // no source port 0
        // Patched in place (no allocation per SYN: under ASan a freed vector per packet would
        // sit in the quarantine and swamp the memory figures), checksums by DPDK's own helpers.
        std::memcpy(out, tmpl.data(), tmpl.size());
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(out + sizeof(rte_ether_hdr));
        auto* tcp = reinterpret_cast<rte_tcp_hdr*>(reinterpret_cast<uint8_t*>(ip) + sizeof(rte_ipv4_hdr));
        const uint8_t src[4] = {198, static_cast<uint8_t>(18 + (x >> 31)), static_cast<uint8_t>(x >> 23),
                                static_cast<uint8_t>(x >> 16)};
        std::memcpy(&ip->src_addr, src, 4);
        tcp->src_port = rte_cpu_to_be_16(static_cast<uint16_t>(x));
        tcp->sent_seq = rte_cpu_to_be_32(mix32(x));
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        tcp->cksum = 0;
        tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
        sent++;
        return static_cast<unsigned>(tmpl.size());
    }
};

struct Shard {
    std::unique_ptr<Worker> w;
    std::unique_ptr<Workload> wl;
    rte_mempool* pool = nullptr;
    std::vector<rte_mbuf*> win;  // --rx window: the window's mbufs, in rx order
    // --rx ring: the window's frames (fixed stride), lengths and packet times, which the timed
    // loop writes into mbufs recycled through the pool's lcore cache, as a NIC and its PMD do.
    bool ring = false;
    RxTimestamp ts{};
    uint32_t stride = 0;
    std::vector<uint8_t> frames;
    std::vector<uint16_t> frame_len;
    std::vector<uint64_t> frame_ts;
    size_t n = 0;
    uint64_t now_us = 0;
    uint64_t cycles = 0;
    double cpu_s = 0;  // the lcore thread's CPU time in the timed loop (the rest: other tasks)
    bool flush = false;
    std::atomic<bool> done{false};
    SynFlood flood;
    uint64_t last_t = 0;  // packet time of the last workload packet (flood SYNs share it)
    std::array<uint64_t, stage_names.size()> stage_cycles{};  // --stages
    bool time_sweep = false;
};

// The next packet of the workload's current phase (or of the SYN flood) into buf; 0 at the end.
unsigned next_frame(Shard& s, uint8_t* buf, unsigned room, uint64_t& t) {
    if (s.flood.share > 0 && s.wl->phase() == Workload::Phase::steady && s.flood.draw()) {
        t = s.last_t;
        return s.flood.write(buf, room);
    }
    const unsigned len = s.wl->next(buf, t);
    if (len != 0) s.last_t = t;
    return len;
}

// Writes up to `max` packets of the workload's current phase: --rx window into freshly allocated
// mbufs, --rx ring into the frame store.
size_t build_window(Shard& s, size_t max, const RxTimestamp& ts) {
    s.n = 0;
    if (s.ring) {
        if (s.frames.size() < max * s.stride) {
            s.frames.resize(max * s.stride);
            s.frame_len.resize(max);
            s.frame_ts.resize(max);
        }
        for (; s.n < max; s.n++) {
            uint64_t t = 0;
            const unsigned len = next_frame(s, &s.frames[s.n * s.stride], s.stride, t);
            if (len == 0) break;
            s.frame_len[s.n] = static_cast<uint16_t>(len);
            s.frame_ts[s.n] = t;
        }
        return s.n;
    }
    s.win.resize(max);
    constexpr unsigned chunk = 256;
    while (s.n < max) {
        unsigned want = static_cast<unsigned>(std::min<size_t>(chunk, max - s.n));
        if (rte_pktmbuf_alloc_bulk(s.pool, &s.win[s.n], want) != 0)
            throw std::runtime_error("mbuf pool exhausted while building the window");
        unsigned got = 0;
        for (; got < want; got++) {
            rte_mbuf* m = s.win[s.n + got];
            uint64_t t = 0;
            const unsigned len = next_frame(s, rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_tailroom(m), t);
            if (len == 0) break;
            m->data_len = static_cast<uint16_t>(len);
            m->pkt_len = len;
            *RTE_MBUF_DYNFIELD(m, ts.offset, rte_mbuf_timestamp_t*) = t;
            m->ol_flags |= ts.flag;
        }
        if (got < want) rte_pktmbuf_free_bulk(&s.win[s.n + got], want - got);
        s.n += got;
        if (got < want) break;
    }
    return s.n;
}

// --rx ring, in the timed loop: what a NIC and its PMD's rx burst do. Fresh mbufs from the pool
// (its lcore cache hands back the ones the worker freed a few bursts ago, as a PMD's refill
// does, so their headers are in cache); the frame written with non-temporal stores, as DMA
// writes it to memory past the CPU's caches (the worker's first read of it is a miss, as on a
// host without DDIO); lengths and the rx timestamp set as the PMD sets them. Its cost is counted
// in the worker's time (--stages: rx_feed). False when the pool is empty (it is sized so that
// this cannot happen).
bool feed_burst(Shard& s, size_t first, unsigned k, rte_mbuf** pkts) noexcept {
    if (rte_pktmbuf_alloc_bulk(s.pool, pkts, k) != 0) return false;
    for (unsigned j = 0; j < k; j++) {
        rte_mbuf* m = pkts[j];
        const uint8_t* src = &s.frames[(first + j) * s.stride];
        const unsigned len = s.frame_len[first + j];
        uint8_t* dst = rte_pktmbuf_mtod(m, uint8_t*);
        if ((reinterpret_cast<uintptr_t>(dst) & 15) == 0) {
            // Whole 16-byte units: within the stride and the data room (both multiples of 16).
            for (unsigned o = 0; o < len; o += 16)
                _mm_stream_si128(reinterpret_cast<__m128i*>(dst + o),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + o)));
        } else {
            std::memcpy(dst, src, len);
        }
        m->data_len = static_cast<uint16_t>(len);
        m->pkt_len = len;
        *RTE_MBUF_DYNFIELD(m, s.ts.offset, rte_mbuf_timestamp_t*) = s.frame_ts[first + j];
        m->ol_flags |= s.ts.flag;
    }
    _mm_sfence();  // the frames are in memory before the "descriptors" are handed over
    return true;
}

// On the worker lcore: what worker_main does per loop after rte_eth_rx_burst, timed.
int run_shard(void* arg) {
    Shard& s = *static_cast<Shard*>(arg);
    Worker& w = *s.w;
    RecordSink sink{w};
    if (s.flush) {
        w.lossless = true;  // as worker_main's final flush
        w.table->flush(s.now_us, EndCause::end_of_input, sink);
        w.lossless = false;
        s.done.store(true, std::memory_order_release);
        return 0;
    }
    const unsigned burst = w.burst;
    const WorkerQueue& q = w.queues[0];
    rte_mbuf* rx[max_burst];
    const size_t n = s.n;
    const double c0 = thread_cpu_s();
    const uint64_t t0 = rte_rdtsc_precise();
    for (size_t i = 0; i < n; i += burst) {
        const unsigned k = static_cast<unsigned>(std::min<size_t>(burst, n - i));
        rte_mbuf** pkts = rx;
        if (!s.ring) {
            pkts = s.win.data() + i;
        } else if (s.time_sweep) {
            const uint64_t t = rte_rdtsc();
            if (!feed_burst(s, i, k, rx)) break;
            s.stage_cycles[7] += rte_rdtsc() - t;
        } else if (!feed_burst(s, i, k, rx)) {
            break;
        }
        process_rx_burst(w, q, pkts, k, s.now_us);
        if (s.time_sweep) {
            const uint64_t t = rte_rdtsc();
            w.table->sweep(s.now_us, sink);
            s.stage_cycles[6] += rte_rdtsc() - t;
        } else {
            w.table->sweep(s.now_us, sink);
        }
    }
    drain_rx(w, s.now_us);  // the window's last bursts, still in the pipeline
    s.cycles = rte_rdtsc_precise() - t0;
    s.cpu_s = thread_cpu_s() - c0;
    s.done.store(true, std::memory_order_release);
    return 0;
}

uint64_t drain(std::vector<std::unique_ptr<Shard>>& shards) {
    static ConnRecord recs[256];
    uint64_t total = 0;
    for (auto& s : shards) {
        unsigned n;
        while ((n = rte_ring_sc_dequeue_burst_elem(s->w->records, recs, sizeof(ConnRecord), 256,
                                                   nullptr)) > 0)
            total += n;
    }
    return total;
}

// Runs every shard's window (or flush) on its lcore at once; the main lcore drains the rings.
uint64_t run_all(std::vector<std::unique_ptr<Shard>>& shards, bool flush) {
    for (auto& s : shards) {
        s->flush = flush;
        s->done.store(false);
        if (rte_eal_remote_launch(run_shard, s.get(), s->w->lcore) != 0)
            throw std::runtime_error("cannot launch a worker lcore");
    }
    uint64_t records = 0;
    for (;;) {
        bool all = true;
        for (auto& s : shards) all &= s->done.load(std::memory_order_acquire);
        uint64_t n = drain(shards);
        records += n;
        if (all) break;
        if (n == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    rte_eal_mp_wait_lcore();
    records += drain(shards);
    return records;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string default_signatures() {
    try {
        return find_signature_file();
    } catch (const std::exception&) {
#ifdef CLOSETAP_SOURCE_ROOT
        std::string p = std::string(CLOSETAP_SOURCE_ROOT) + "/deploy/signatures.yaml";
        if (std::filesystem::exists(p)) return p;
#endif
        throw;
    }
}

}  // namespace

int main(int argc, char** argv) {
    BenchOptions o;
    CLI::App app{
        "closetap-bench: the worker's packet rate on a synthetic tap workload (BENCHMARKS.md)",
        "closetap-bench"};
    app.get_formatter()->column_width(30);
    app.add_option("--flows", o.flows,
                   "Concurrent open flows per worker (10K, 1M, 16M; at most 16Mi)");
    app.add_option("--workers", o.workers, "Worker lcores, each with its own table and flows")
        ->check(CLI::Range(1u, 16u));
    app.add_option("--window", o.window,
                   "Packets per measured window per worker (default 4M; imix 1M)");
    app.add_option("--runs", o.runs, "Measured windows (the median is reported)")
        ->check(CLI::Range(1u, 100u));
    app.add_option("--burst", o.burst, "Packets per burst")->check(CLI::Range(1u, max_burst));
    app.add_option("--churn", o.churn,
                   "Share of measured packets that open or close a flow (default: 0.2, lowered for "
                   "small tables so closed flows lingering 5 s stay below flows/8)")
        ->check(CLI::Range(0.0, 1.0));
    add_workload_flags(app, o.wl);
    app.add_flag("--imix", o.imix, "Data frames 64/576/1500 bytes 7:4:1 (default: 64-byte frames)");
    app.add_option("--capacity", o.capacity,
                   "Flow-table capacity (default: flows + lingering + 1/8)");
    app.add_option("--signatures", o.signatures, "Application signatures ('none': no classifier)");
    app.add_option("--ns-per-pkt", o.ns_per_pkt, "Packet time per measured packet, ns")
        ->check(CLI::Range(1u, 1000000u));
    app.add_option("--lcores", o.lcores,
                   "EAL lcore map (main lcore 0, workers 1..n), e.g. 0@1,1@0 to run the worker on "
                   "CPU 0; default: -l 0-n");
    app.add_flag("--stages", o.stages,
                 "Also print TSC cycles per packet of each pipeline stage and of the sweep (adds "
                 "about 7 rdtsc per burst)");
    app.add_option("--rx", o.rx,
                   "How packets reach the worker: window (the default: a fresh mbuf per packet, "
                   "written before the timed loop; no rx cost is counted) or ring (mbufs recycled "
                   "through the pool's lcore cache and frames written past the caches, as by a NIC "
                   "and its PMD, in the timed loop)")
        ->check(CLI::IsMember({"ring", "window"}));
    app.add_option("--syn-flood", o.syn_flood,
                   "Share of measured packets that are SYNs from random sources (distinct flows, "
                   "never answered): a SYN flood far beyond the table's capacity")
        ->check(CLI::Range(0.0, 0.95));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    WorkloadConfig wc;
    uint64_t window = 0, capacity = 0;
    try {
        uint64_t flows = parse_count("--flows", o.flows);
        if (flows == 0 || flows > (1u << 24))
            throw std::invalid_argument("--flows: between 1 and 16Mi");
        wc.flows = static_cast<uint32_t>(flows);
        window =
            o.window.empty() ? (o.imix ? 1'000'000 : 4'000'000) : parse_count("--window", o.window);
        if (window < o.burst || window > 64'000'000)
            throw std::invalid_argument("--window: between the burst and 64M");
        apply_workload_flags(o.wl, wc);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "closetap-bench: error: %s\n", e.what());
        return 2;
    }
    wc.frames = o.imix ? FrameMix::imix : FrameMix::min64;
    wc.inflight = std::min<uint32_t>(wc.inflight, std::max<uint32_t>(16, wc.flows / 64));
    wc.steady_ns_per_pkt = o.ns_per_pkt;
    const FlowTimeouts timeouts;
    const double linger_s = static_cast<double>(timeouts.of(TimeoutClass::closed)) / 1e6;
    {
        Workload probe_cfg_only(WorkloadConfig{.flows = 1, .mix = wc.mix});
        const double len = probe_cfg_only.mean_script_packets();
        // Each lifecycle leaves an entry lingering 5 s of packet time (closed or unanswered).
        const double linger_pkts = linger_s * 1e9 / o.ns_per_pkt;
        if (o.churn < 0)
            wc.churn = std::min(0.2, wc.flows / 8.0 * len / linger_pkts);
        else
            wc.churn = o.churn;
        // ... and up to a sweep pass more (FlowTable::sweep) before the sweep ends it.
        const double lingering = wc.churn / len * linger_pkts *
                                 (1 + static_cast<double>(FlowTable::sweep_pass_us) / 1e6 / linger_s);
        // fin_one_side flows stay half-open (300 s) for the whole run.
        double one_side_w = wc.mix[size_t(Pattern::fin_one_side)], tot = 0;
        for (double x : wc.mix) tot += x;
        const double half_open = wc.churn / len * one_side_w / tot * double(window) * (o.runs + 3);
        try {
            capacity =
                o.capacity.empty()
                    ? uint64_t((wc.flows + wc.flows / 8 + 2 * lingering + 1.5 * half_open) *
                                   (1 + wc.ipv6_share) + 1024)  // an IPv6 flow: two entries
                    : parse_count("--capacity", o.capacity);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "closetap-bench: error: %s\n", e.what());
            return 2;
        }
        if (capacity < 2 || capacity > (1u << 28)) {
            std::fprintf(stderr, "closetap-bench: error: --capacity: between 2 and 268435456\n");
            return 2;
        }
    }

    // The frame writer against PacketBuilder and the parser, before anything is measured.
    if (std::string err = Workload::self_check(wc); !err.empty()) {
        std::fprintf(stderr, "closetap-bench: error: workload self-check: %s\n", err.c_str());
        return 1;
    }

    std::string sig_path = o.signatures;
    std::unique_ptr<AppClassifier> apps;
    try {
        if (sig_path != "none") {
            if (sig_path.empty()) sig_path = default_signatures();
            apps = std::make_unique<AppClassifier>(AppClassifier::from_file(sig_path));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "closetap-bench: error: %s\n", e.what());
        return 1;
    }

    // EAL: --no-huge memory sized for the windows' mbuf pools.
    const uint16_t data_room = static_cast<uint16_t>(RTE_PKTMBUF_HEADROOM + (o.imix ? 1536 : 128));
    // --rx ring: the worker's pipeline (burst_pipeline_depth + 1 bursts), a burst being fed, and
    // the lcore cache (512, flushed at 1.5x); --rx window: the whole window as well.
    const bool ring = o.rx == "ring";
    const uint64_t pool_n = ring ? 4096 : window + 4096;
    const uint64_t obj_bytes = sizeof(rte_mbuf) + data_room + 128;  // + mempool header, alignment
    const uint64_t mem_mb = (pool_n * obj_bytes * o.workers * 11 / 10) / (1 << 20) + 256;
    const unsigned ncpu = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::string> eal = {argv[0],
                                    "--no-huge",
                                    "--no-pci",
                                    "-m",
                                    std::to_string(mem_mb),
                                    "--no-telemetry",
                                    "--log-level=lib.eal:warning",
                                    "--file-prefix=closetap-bench-" + std::to_string(::getpid())};
    if (!o.lcores.empty()) {
        eal.push_back("--lcores");
        eal.push_back(o.lcores);
    } else if (o.workers + 1 <= ncpu) {
        eal.push_back("-l");
        eal.push_back("0-" + std::to_string(o.workers));
    } else {
        eal.push_back("--lcores");
        eal.push_back("(0-" + std::to_string(o.workers) + ")@(0-" + std::to_string(ncpu - 1) + ")");
    }
    std::vector<std::unique_ptr<Shard>> shards;
    RxTimestamp ts;
    uint64_t rss0 = 0;
    try {
        start_eal(eal);
        ts = register_rx_timestamp();
        if (ts.offset < 0) throw std::runtime_error("cannot register the rx timestamp dynfield");
        unsigned lcore = rte_get_next_lcore(-1, 1, 0);
        for (unsigned k = 0; k < o.workers; k++, lcore = rte_get_next_lcore(lcore, 1, 0)) {
            if (lcore >= RTE_MAX_LCORE) throw std::runtime_error("not enough lcores");
            auto s = std::make_unique<Shard>();
            WorkloadConfig c = wc;
            c.worker = static_cast<uint8_t>(k);
            c.seed = wc.seed + k;
            s->wl = std::make_unique<Workload>(c);
            s->flood.share = o.syn_flood;
            s->flood.rng = 0x5eed0000u + c.seed;
            std::string pname = "bench_pool_" + std::to_string(k);
            s->pool = rte_pktmbuf_pool_create(pname.c_str(), static_cast<unsigned>(pool_n), 512, 0,
                                              data_room, static_cast<int>(rte_socket_id()));
            if (s->pool == nullptr)
                throw std::runtime_error("cannot create the mbuf pool (" + std::to_string(pool_n) +
                                         " mbufs): " + rte_strerror(rte_errno));
            if (ring) {
                s->ring = true;
                s->ts = ts;
                s->stride = data_room - RTE_PKTMBUF_HEADROOM;
            } else {
                s->win.reserve(window);
            }
            auto w = std::make_unique<Worker>();
            w->id = k;
            w->lcore = lcore;
            w->burst = o.burst;
            w->lossless = false;  // a live tap: a full record ring drops (counted), never waits
            w->ts = ts;
            w->tsc_hz = rte_get_tsc_hz();
            WorkerQueue& q = w->queues[w->nb_queues++];
            q.port_id = 0;
            q.queue = 0;
            q.slot = 0;
            q.ts_from_mbuf = true;
            q.parse.link = LinkType::ethernet;
            q.parse.verify_checksums = false;
            w->records = create_record_ring(k, rte_lcore_to_socket_id(lcore));
            if (apps) {
                w->apps = apps.get();
                w->app_scratch = apps->make_scratch();
            }
            s->w = std::move(w);
            shards.push_back(std::move(s));
        }
        rss0 = rss_bytes();  // after the pools and the workload state, before the tables
        for (auto& s : shards) {
            s->w->table = std::make_unique<FlowTable>(static_cast<uint32_t>(capacity), timeouts);
            s->w->stats.flow_capacity.set(capacity);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "closetap-bench: error: %s\n", e.what());
        return 1;
    }

    const uint64_t hz = rte_get_tsc_hz();
    // What the table reserved for its capacity (buckets, entries), from the table
    // itself; the fixed-size teardown-wave pool is reported beside it.
    const uint64_t nbuckets = FlowTable::buckets_for(static_cast<uint32_t>(capacity));
    const uint64_t table_bytes = shards[0]->w->table->bytes_per_capacity();
    const uint64_t fixed_bytes = shards[0]->w->table->bytes_fixed();
    const double bytes_per_flow = double(table_bytes) / double(capacity);
    const Workload& wl0 = *shards[0]->wl;
    std::printf(
        "closetap-bench: %u worker(s), %u concurrent flows each, table capacity %llu, burst %u\n",
        o.workers, wc.flows, (unsigned long long)capacity, o.burst);
    std::printf(
        "workload: %s frames, churn %.4f (lifecycle packets), %u lifecycles in flight, "
        "%.2f packets each, packet time %u ns/pkt, classifier %s\n",
        o.imix ? "IMIX 64/576/1500 7:4:1" : "64-byte", wc.churn, wc.inflight,
        wl0.mean_script_packets(), o.ns_per_pkt, apps ? sig_path.c_str() : "off");
    if (ring)
        std::printf(
            "window: %llu packets per worker, fed in the timed loop into a pool of %llu mbufs "
            "of %u-byte data room (--rx ring: recycled as by a PMD, frames written with "
            "non-temporal stores)\n",
            (unsigned long long)window, (unsigned long long)pool_n, data_room);
    else
        std::printf(
            "window: %llu packets per worker (%llu mbufs of %u-byte data room, refilled from "
            "the pool before each window: --rx window)\n",
            (unsigned long long)window, (unsigned long long)pool_n, data_room);
    std::fflush(stdout);

    auto wall = [] { return std::chrono::steady_clock::now(); };
    auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    const auto t_start = wall();
    uint64_t records = 0;

    // Warm-up: open every flow (5 packets each), through the same loop, untimed.
    uint64_t warm_pkts = 0, warm_cycles = 0;
    for (;;) {
        size_t built = 0;
        for (auto& s : shards) built += build_window(*s, window, ts);
        if (built == 0) break;
        records += run_all(shards, false);
        warm_pkts += built;
        uint64_t c = 0;
        for (auto& s : shards) c = std::max(c, s->cycles);
        warm_cycles += c;
    }
    const uint64_t rss_warm = rss_bytes();
    const auto [vm_warm, hwm_warm] = vm_rss_hwm();
    for (auto& s : shards) s->wl->begin_steady();
    std::printf(
        "warm-up: %llu packets opened %u flows per worker in %.1f s, table active %u, "
        "RSS +%.1f MB\n",
        (unsigned long long)warm_pkts, wc.flows, secs(t_start, wall()),
        shards[0]->w->table->active(), double(rss_warm - rss0) / 1e6);

    // One untimed window first (lingering closed flows reach their steady number), then the runs.
    std::vector<double> mpps, oncpu_share;
    for (unsigned r = 0; r <= o.runs; r++) {
        for (auto& s : shards) {
            build_window(*s, window, ts);
            s->stage_cycles = {};
            s->time_sweep = o.stages;
            s->w->stage_cycles = o.stages ? s->stage_cycles.data() : nullptr;
        }
        records += run_all(shards, false);
        if (r == 0) continue;
        double sum = 0, worst = 1e300, oncpu = 0;
        for (auto& s : shards) {
            const double secs_wall = double(s->cycles) / double(hz);
            double m = double(s->n) / secs_wall / 1e6;
            sum += m;
            worst = std::min(worst, m);
            oncpu += s->cpu_s / secs_wall;
        }
        double m = sum / shards.size();
        mpps.push_back(m);
        oncpu_share.push_back(oncpu / shards.size());
        const Worker& w = *shards[0]->w;
        std::printf(
            "run %u: %.3f Mpps per worker (%.1f ns/pkt%s; on CPU %.0f%% of it), table active %u, "
            "closes so far %llu, evictions %llu\n",
            r, m, 1e3 / m, shards.size() > 1 ? (", slowest " + std::to_string(worst)).c_str() : "",
            100.0 * oncpu / shards.size(), w.table->active(),
            (unsigned long long)(w.table->counters().ended[0] + w.table->counters().ended[1]),
            (unsigned long long)(w.table->counters().evictions[0] +
                                 w.table->counters().evictions[1]));
        if (o.syn_flood > 0) {
            const auto [rss, hwm] = vm_rss_hwm();
            const auto& ev = w.table->counters().evicted;
            std::printf("flood run %u: %llu SYNs so far, VmRSS %.1f MB, VmHWM %.1f MB; evicted "
                        "attempt %llu established %llu closing %llu\n",
                        r, (unsigned long long)shards[0]->flood.sent, double(rss) / 1e6,
                        double(hwm) / 1e6, (unsigned long long)ev[0], (unsigned long long)ev[1],
                        (unsigned long long)ev[2]);
        }
        if (o.stages) {
            std::string line;
            for (size_t k = 0; k < stage_names.size(); k++) {
                uint64_t c = 0, pk = 0;
                for (auto& s : shards) c += s->stage_cycles[k], pk += s->n;
                line += std::string(k ? ", " : "") + stage_names[k] + " " +
                        std::to_string(double(c) / double(pk)).substr(0, 5);
            }
            std::printf("run %u stages (cycles/pkt): %s\n", r, line.c_str());
        }
        std::fflush(stdout);
    }
    const uint64_t steady_lifecycle = wl0.lifecycle_packets(), steady_data = wl0.data_packets();

    // Play out the lifecycles still in flight, then end every flow (end of input).
    for (auto& s : shards) s->wl->begin_drain();
    for (;;) {
        size_t built = 0;
        for (auto& s : shards) built += build_window(*s, window, ts);
        if (built == 0) break;
        records += run_all(shards, false);
    }
    records += run_all(shards, true);

    // Ground truth: the closes the workload produced against what the worker concluded.
    bool ok = true;
    std::printf("check: close             initiator      expected       counted\n");
    Workload::Expected exp{};
    std::array<std::array<uint64_t, count_of<Initiator>>, count_of<Close>> got{};
    uint64_t parse_errors = 0, non_tcp = 0, alloc_failed = 0, dropped = 0, evictions = 0, rx = 0,
             gen = 0;
    for (auto& s : shards) {
        s->wl->expect_open_flows();
        const WorkerStats& st = s->w->stats;
        for (size_t c = 0; c < count_of<Close>; c++)
            for (size_t i = 0; i < count_of<Initiator>; i++) {
                exp[c][i] += s->wl->expected()[c][i];
                got[c][i] += st.closes[c][i].get();
            }
        for (auto& e : st.parse_errors) parse_errors += e.get();
        for (size_t c = 1; c < count_of<PacketClass>; c++) non_tcp += st.packet_class[c].get();
        alloc_failed += st.flow_alloc_failed.get();
        dropped += st.records_dropped.get();
        for (auto& e : s->w->table->counters().evictions) evictions += e;
        rx += st.rx_packets[0].get();
        gen += s->wl->lifecycle_packets() + s->wl->data_packets() + s->wl->warmup_packets();
        // Every flood SYN is its own unanswered attempt: one no_answer record each.
        exp[size_t(Close::no_answer)][size_t(Initiator::none)] += s->flood.sent;
        gen += s->flood.sent;
    }
    uint64_t exp_total = 0, got_total = 0;
    for (size_t c = 0; c < count_of<Close>; c++)
        for (size_t i = 0; i < count_of<Initiator>; i++) {
            exp_total += exp[c][i];
            got_total += got[c][i];
            if (exp[c][i] == 0 && got[c][i] == 0) continue;
            bool same = exp[c][i] == got[c][i];
            ok &= same;
            std::printf("check: %-17s %-9s %13llu %13llu  %s\n",
                        std::string(close_names[c]).c_str(),
                        std::string(initiator_names[i]).c_str(), (unsigned long long)exp[c][i],
                        (unsigned long long)got[c][i], same ? "ok" : "MISMATCH");
        }
    const bool counts_ok = rx == gen && parse_errors == 0 && non_tcp == 0 && alloc_failed == 0;
    ok &= counts_ok && got_total == exp_total;
    std::printf(
        "check: %llu records (%llu expected), %llu reached the ring drain, %llu dropped; "
        "%llu packets received of %llu generated; parse errors %llu, non-tcp %llu, "
        "no-entry %llu, evictions %llu: %s\n",
        (unsigned long long)got_total, (unsigned long long)exp_total, (unsigned long long)records,
        (unsigned long long)dropped, (unsigned long long)rx, (unsigned long long)gen,
        (unsigned long long)parse_errors, (unsigned long long)non_tcp,
        (unsigned long long)alloc_failed, (unsigned long long)evictions, ok ? "ok" : "FAILED");
    std::printf(
        "measured phase: %.1f%% lifecycle packets, %.1f%% data; warm-up rate %.2f Mpps "
        "(inserts); total %.1f s\n",
        100.0 * steady_lifecycle / double(steady_lifecycle + steady_data),
        100.0 * steady_data / double(steady_lifecycle + steady_data),
        warm_cycles ? double(warm_pkts) / o.workers / (double(warm_cycles) / hz) / 1e6 : 0.0,
        secs(t_start, wall()));

    if (o.syn_flood > 0) {
        // The table's memory is fixed by its capacity; the flood may only fill it, never grow it.
        uint64_t flood = 0, ev_reason[count_of<EvictReason>] = {}, ev_victim[count_of<EvictVictim>] = {};
        for (auto& s : shards) {
            flood += s->flood.sent;
            for (size_t r = 0; r < count_of<EvictReason>; r++)
                ev_reason[r] += s->w->table->counters().evictions[r];
            for (size_t v = 0; v < count_of<EvictVictim>; v++)
                ev_victim[v] += s->w->table->counters().evicted[v];
        }
        const auto [vm_end, hwm_end] = vm_rss_hwm();
        // The tables' whole memory, fixed at start: buckets, entries, wave pool.
        const WavePool& wp = shards[0]->w->table->wave_pool();
        const uint64_t bound =
            (table_bytes + uint64_t(wp.size()) * (sizeof(CloseWaves) + sizeof(uint32_t))) * o.workers;
        // Workload attempts (a new flow's SYN, a refused SYN) that lost their entry to the flood
        // before the answer came: each leaves one extra no_answer record.
        const uint64_t na = size_t(Close::no_answer), ni = size_t(Initiator::none);
        const uint64_t lost_attempts = got[na][ni] > exp[na][ni] ? got[na][ni] - exp[na][ni] : 0;
        const double flood_mpps = median(mpps) * o.syn_flood;
        std::printf(
            "flood: %llu SYNs (%.1f%% of measured packets, %.2f M SYN/s per worker at the measured "
            "rate) into %llu entries: %.0fx the capacity\n",
            (unsigned long long)flood, 100.0 * o.syn_flood, flood_mpps,
            (unsigned long long)capacity * o.workers, double(flood) / double(capacity * o.workers));
        std::printf("flood: evictions bucket_full=%llu table_full=%llu; victims attempt=%llu "
                    "established=%llu closing=%llu\n",
                    (unsigned long long)ev_reason[0], (unsigned long long)ev_reason[1],
                    (unsigned long long)ev_victim[0], (unsigned long long)ev_victim[1],
                    (unsigned long long)ev_victim[2]);
        std::printf("flood: memory before tables %.1f MB, after warm-up VmRSS %.1f MB (VmHWM %.1f), "
                    "at end VmRSS %.1f MB (VmHWM %.1f); table bound %.1f MB per worker; peak "
                    "growth during the flood %.1f MB\n",
                    double(rss0) / 1e6, double(vm_warm) / 1e6, double(hwm_warm) / 1e6,
                    double(vm_end) / 1e6, double(hwm_end) / 1e6, double(table_bytes) / 1e6,
                    double(hwm_end - hwm_warm) / 1e6);
        std::printf("flood: tables' fixed memory (entries, buckets, wave pool) %.1f MB; "
                    "VmHWM at end - RSS before the tables %.1f MB; workload attempts lost to the "
                    "flood %llu\n",
                    double(bound) / 1e6, double(hwm_end - rss0) / 1e6,
                    (unsigned long long)lost_attempts);
        std::printf("FLOOD syns=%llu capacity=%llu evicted_attempt=%llu evicted_established=%llu "
                    "evicted_closing=%llu bucket_full=%llu table_full=%llu hwm_before=%llu "
                    "hwm_after=%llu rss_tables0=%llu bound_bytes=%llu lost_attempts=%llu closes_ok=%d\n",
                    (unsigned long long)flood, (unsigned long long)capacity,
                    (unsigned long long)ev_victim[0], (unsigned long long)ev_victim[1],
                    (unsigned long long)ev_victim[2], (unsigned long long)ev_reason[0],
                    (unsigned long long)ev_reason[1], (unsigned long long)hwm_warm,
                    (unsigned long long)hwm_end, (unsigned long long)rss0,
                    (unsigned long long)bound, (unsigned long long)lost_attempts, ok ? 1 : 0);
    }
    const double med = median(mpps);
    const auto [mn, mx] = std::minmax_element(mpps.begin(), mpps.end());
    std::printf(
        "memory: table %.1f MB for %llu entries (%llu buckets of 64 B, FlowEntry %zu B, "
        "free list in the entries, attempts ring %llu x 4 B): %.1f B per entry, %.1f B per "
        "concurrent flow, plus %.1f MB fixed (teardown-wave pool); RSS grew %.1f B per entry "
        "during the warm-up\n",
        double(table_bytes) / 1e6, (unsigned long long)capacity, (unsigned long long)nbuckets,
        sizeof(FlowEntry),
        (unsigned long long)FlowTable::attempt_slots_for(static_cast<uint32_t>(capacity)),
        bytes_per_flow, double(table_bytes) / wc.flows, double(fixed_bytes) / 1e6,
        double(rss_warm - rss0) / double(o.workers) / double(capacity));
    std::printf("spread: %u runs, min %.3f median %.3f max %.3f Mpps (%.1f%%)\n", o.runs, *mn, med,
                *mx, 100.0 * (*mx - *mn) / med);
    // TSC time is wall time: on a shared machine the worker thread also waits for the CPU. Say so.
    const double share = median(oncpu_share);
    if (share < 0.9)
        std::printf("warning: the worker thread was on a CPU only %.0f%% of the measured time (other "
                    "load on this machine); on-CPU rate %.2f Mpps (%.1f ns/pkt)\n",
                    100.0 * share, med / share, 1e3 * share / med);
    for (auto& s : shards) {
        rte_ring_free(s->w->records);
        rte_mempool_free(s->pool);
    }
    std::printf(
        "RESULT flows=%u workers=%u mpps_per_worker=%.2f ns_per_pkt=%.1f bytes_per_flow=%.1f\n",
        wc.flows, o.workers, med, 1e3 / med, bytes_per_flow);
    std::fflush(stdout);
    shards.clear();
    stop_eal();
    return ok ? 0 : 1;
}
