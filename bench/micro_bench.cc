// closetap-microbench: what each stage of the worker's per-packet path costs, in isolation, so
// closetap-bench's end-to-end figure can be read as a sum (BENCHMARKS.md). Pure code, no EAL.
// Every benchmark reports ns (Google Benchmark) and TSC cycles per packet ("cycles").
//
//   parse/*            parse_packet on a 64-byte data segment: Ethernet+IPv4+TCP, 802.1Q, VXLAN
//   flow_hash          make_flow_key + flow_hash
//   flowtable_*/N      FlowTable::process (lookup + TcpConn::update) of an ACK on a random one of
//                      N established flows: one at a time (each miss exposed), and as the worker
//                      does it, a burst of 32 prefetched first
//   tcpconn_update     TcpConn::update of an established connection, data both ways (in cache)
//   classify/*         AppClassifier::classify of a new flow's first payload
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <x86intrin.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <vector>

#include "flowtable/flow_key.hh"
#include "flowtable/flow_table.hh"
#include "flowtable/tcp_conn.hh"
#include "pipeline/app_classifier.hh"
#include "pipeline/parse.hh"
#include "pipeline/segment.hh"
#include "tests/packet_builder.hh"

using namespace closetap;
namespace pb = closetap::testing;

namespace {

// Adds the TSC ticks of the timed loop per packet (an iteration handles `per_iter` packets) as
// the "cycles" counter, and ns per packet as "ns_per_pkt".
struct Cycles {
    benchmark::State& st;
    unsigned per_iter = 1;
    uint64_t t0 = __rdtsc();
    ~Cycles() {
        const double pkts = static_cast<double>(st.iterations()) * per_iter;
        st.counters["cycles"] = benchmark::Counter(static_cast<double>(__rdtsc() - t0) / pkts);
        st.counters["ns_per_pkt"] =
            benchmark::Counter(pkts, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    }
};

std::vector<uint8_t> data_frame(int kind) {
    pb::PacketBuilder b;
    if (kind == 2) b.eth().ipv4(pb::ip4(192, 168, 0, 1), pb::ip4(192, 168, 0, 2)).vxlan(7);
    b.eth();
    if (kind == 1) b.vlan(100);
    return b.ipv4(pb::ip4(10, 0, 0, 1), pb::ip4(172, 16, 0, 1))
        .tcp({.sport = 40000,
              .dport = 80,
              .seq = 1000,
              .ack = 2000,
              .flags = pb::tcpf::ack | pb::tcpf::psh,
              .payload = 6})
        .pad_to(60)
        .build();
}

void BM_parse(benchmark::State& st) {
    const std::vector<uint8_t> f = data_frame(static_cast<int>(st.range(0)));
    ParseOptions opt;
    ParsedPacket pp;
    ParseError err;
    Cycles c{st};
    for (auto _ : st) {
        benchmark::DoNotOptimize(f.data());
        PacketClass k = parse_packet(f.data(), static_cast<uint32_t>(f.size()), opt, pp, err);
        benchmark::DoNotOptimize(k);
        benchmark::DoNotOptimize(pp);
    }
}
BENCHMARK(BM_parse)->ArgName("eth_ipv4_tcp")->Arg(0);
BENCHMARK(BM_parse)->ArgName("vlan")->Arg(1);
BENCHMARK(BM_parse)->ArgName("vxlan")->Arg(2);

// The worker's path for plain frames: straight to key and segment, then the hash.
void BM_fast_segment(benchmark::State& st) {
    const std::vector<uint8_t> f = data_frame(static_cast<int>(st.range(0)));
    FlowKey4 key;
    TcpSegment seg{};
    uint16_t off = 0, cap = 0;
    Cycles c{st};
    for (auto _ : st) {
        benchmark::DoNotOptimize(f.data());
        bool ok = make_fast_segment(f.data(), static_cast<uint32_t>(f.size()), 1, key, seg, off, cap);
        uint32_t h = flow_hash4(key);
        benchmark::DoNotOptimize(ok);
        benchmark::DoNotOptimize(h);
        benchmark::DoNotOptimize(seg);
    }
}
BENCHMARK(BM_fast_segment)->ArgName("eth_ipv4_tcp")->Arg(0);
BENCHMARK(BM_fast_segment)->ArgName("vlan")->Arg(1);

std::array<uint8_t, 16> v4(uint32_t a) {
    return {0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0xff,
            0xff,
            uint8_t(a >> 24),
            uint8_t(a >> 16),
            uint8_t(a >> 8),
            uint8_t(a)};
}

void BM_flow_hash(benchmark::State& st) {
    std::vector<std::array<uint8_t, 16>> src(1024);
    for (uint32_t i = 0; i < src.size(); i++) src[i] = v4(0x0a000000u + i * 7919);
    const auto dst = v4(0xac100001u);
    unsigned i = 0;
    Cycles c{st};
    for (auto _ : st) {
        FlowKey k;
        uint8_t d = make_flow_key(src[i++ & 1023], 40000, dst, 80, k);
        uint32_t h = flow_hash(k);
        benchmark::DoNotOptimize(d);
        benchmark::DoNotOptimize(h);
    }
}
BENCHMARK(BM_flow_hash);

struct NoSink {
    void operator()(const FlowEntry&, const ConnResult&) const noexcept {}
};

// N established flows (SYN, SYN-ACK, ACK each) and a stream of ACKs to random ones.
struct TableFixture {
    static constexpr size_t ops = 1 << 20;
    struct Op {
        FlowKey key;
        uint32_t hash;
        TcpSegment seg;
    };
    uint32_t n;
    std::unique_ptr<FlowTable> table;
    std::vector<Op> op;

    static TcpSegment seg(uint8_t dir, uint8_t flags, uint32_t seq, uint32_t ack, uint64_t ts) {
        TcpSegment s{};
        s.dir = dir;
        s.flags = flags;
        s.seq = seq;
        s.ack = ack;
        s.ts_us = ts;
        s.window = 29200;
        s.wscale = 0xff;
        return s;
    }
    static void flow(uint32_t i, FlowKey& k, uint8_t& cdir, uint16_t& cport) {
        cport = static_cast<uint16_t>(1024 + i % 60000);
        cdir = make_flow_key(v4(0x0a000000u + i), cport, v4(0xac100000u + (i * 2654435761u >> 20)),
                             80, k);
    }
    explicit TableFixture(uint32_t n_) : n(n_) {
        table = std::make_unique<FlowTable>(n + n / 8 + 64, FlowTimeouts{});
        const uint64_t t = 1'700'000'000'000'000ull;
        for (uint32_t i = 0; i < n; i++) {
            FlowKey k;
            uint8_t cd;
            uint16_t cp;
            flow(i, k, cd, cp);
            const uint32_t h = flow_hash(k);
            TcpSegment s = seg(cd, tcp_flag::syn, 100, 0, t);
            s.src_port = cp;
            s.dst_port = 80;
            table->process(k, h, s, NoSink{});
            s = seg(1 - cd, tcp_flag::syn | tcp_flag::ack, 500, 101, t + 1);
            s.src_port = 80;
            s.dst_port = cp;
            table->process(k, h, s, NoSink{});
            s = seg(cd, tcp_flag::ack, 101, 501, t + 2);
            s.src_port = cp;
            s.dst_port = 80;
            table->process(k, h, s, NoSink{});
        }
        std::mt19937_64 rng(42);
        op.resize(ops);
        for (auto& o : op) {
            const uint32_t i = static_cast<uint32_t>(rng() % n);
            uint8_t cd;
            uint16_t cp;
            flow(i, o.key, cd, cp);
            o.hash = flow_hash(o.key);
            const bool client = rng() & 1;
            o.seg = client ? seg(cd, tcp_flag::ack, 101, 501, t + 10)
                           : seg(1 - cd, tcp_flag::ack, 501, 101, t + 10);
            o.seg.src_port = client ? cp : 80;
            o.seg.dst_port = client ? 80 : cp;
        }
    }
    static TableFixture& get(uint32_t n) {
        static std::unique_ptr<TableFixture> f;
        if (!f || f->n != n) {
            f.reset();  // one table at a time: 10M flows take ~2 GB
            f = std::make_unique<TableFixture>(n);
        }
        return *f;
    }
};

void BM_flowtable_single(benchmark::State& st) {
    TableFixture& f = TableFixture::get(static_cast<uint32_t>(st.range(0)));
    size_t i = 0;
    Cycles c{st};
    for (auto _ : st) {
        const auto& o = f.op[i++ & (TableFixture::ops - 1)];
        FlowEntry* e = f.table->process(o.key, o.hash, o.seg, NoSink{});
        benchmark::DoNotOptimize(e);
    }
}
BENCHMARK(BM_flowtable_single)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->Arg(10'000'000);

void BM_flowtable_burst32(benchmark::State& st) {
    TableFixture& f = TableFixture::get(static_cast<uint32_t>(st.range(0)));
    size_t i = 0;
    Cycles c{st, 32};
    for (auto _ : st) {
        const auto* o = &f.op[i & (TableFixture::ops - 1)];
        i += 32;
        for (unsigned k = 0; k < 32; k++) f.table->prefetch(o[k].hash);
        for (unsigned k = 0; k < 32; k++) {
            FlowEntry* e = f.table->process(o[k].key, o[k].hash, o[k].seg, NoSink{});
            benchmark::DoNotOptimize(e);
        }
    }
}
BENCHMARK(BM_flowtable_burst32)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->Arg(10'000'000);

// As the worker's pipeline (docs/hot-path.md) prefetches: buckets two bursts ahead, entries
// (or the alternative bucket) one burst ahead, then the segments of this burst.
void BM_flowtable_pipelined(benchmark::State& st) {
    TableFixture& f = TableFixture::get(static_cast<uint32_t>(st.range(0)));
    constexpr size_t mask = TableFixture::ops - 1;
    size_t i = 0;
    Cycles c{st, 32};
    for (auto _ : st) {
        for (unsigned k = 0; k < 32; k++) f.table->prefetch(f.op[(i + 64 + k) & mask].hash);
        for (unsigned k = 0; k < 32; k++) {
            const uint32_t h = f.op[(i + 32 + k) & mask].hash;
            if (!f.table->prefetch_entries(h)) f.table->prefetch_alt(h);
        }
        for (unsigned k = 0; k < 32; k++) {
            const auto& o = f.op[(i + k) & mask];
            FlowEntry* e = f.table->process(o.key, o.hash, o.seg, NoSink{});
            benchmark::DoNotOptimize(e);
        }
        i += 32;
    }
}
BENCHMARK(BM_flowtable_pipelined)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->Arg(10'000'000);

void BM_tcpconn_update(benchmark::State& st) {
    TcpConn conn;
    auto seg = TableFixture::seg;
    const uint64_t t = 1'700'000'000'000'000ull;
    TcpSegment s = seg(0, tcp_flag::syn, 100, 0, t);
    s.src_port = 40000;
    s.dst_port = 80;
    conn.start(s);
    s = seg(1, tcp_flag::syn | tcp_flag::ack, 500, 101, t);
    s.src_port = 80;
    s.dst_port = 40000;
    conn.update(s);
    uint32_t cseq = 101, sseq = 501;
    unsigned i = 0;
    Cycles c{st};
    for (auto _ : st) {
        const bool client = i++ & 1;
        TcpSegment d = client ? seg(0, tcp_flag::ack | tcp_flag::psh, cseq, sseq, t + i)
                              : seg(1, tcp_flag::ack | tcp_flag::psh, sseq, cseq, t + i);
        d.payload_len = 6;
        d.src_port = client ? 40000 : 80;
        d.dst_port = client ? 80 : 40000;
        (client ? cseq : sseq) += 6;
        benchmark::DoNotOptimize(conn.update(d));
    }
}
BENCHMARK(BM_tcpconn_update);

std::string signatures() {
    if (const char* p = std::getenv("CLOSETAP_SIGNATURES")) return p;
    try {
        return find_signature_file();
    } catch (const std::exception&) {
        return std::string(CLOSETAP_SOURCE_ROOT) + "/deploy/signatures.yaml";
    }
}

void BM_classify(benchmark::State& st) {
    static const AppClassifier apps = AppClassifier::from_file(signatures());
    AppScratch scratch = apps.make_scratch();
    std::string p;
    switch (st.range(0)) {
    case 0: p = "GET /api/v1/items?id=42 HTTP/1.1\r\nHost: service.internal\r\n\r\n"; break;
    case 1: p = "GET /a"; break;  // the 6 bytes of a 64-byte frame
    case 2: p = std::string(200, 'x'); break;
    case 3: p = "abcdef"; break;
    }
    const uint16_t port = st.range(0) < 2 ? 80 : 9000;
    Cycles c{st};
    for (auto _ : st) {
        uint16_t id = apps.classify(scratch, true, port, reinterpret_cast<const uint8_t*>(p.data()),
                                    static_cast<uint32_t>(p.size()));
        benchmark::DoNotOptimize(id);
    }
    st.SetLabel(p.size() > 8 ? std::to_string(p.size()) + " bytes" : "'" + p + "'");
}
BENCHMARK(BM_classify)->ArgName("http_request")->Arg(0);
BENCHMARK(BM_classify)->ArgName("http_6_bytes")->Arg(1);
BENCHMARK(BM_classify)->ArgName("no_match_200_bytes")->Arg(2);
BENCHMARK(BM_classify)->ArgName("no_match_6_bytes")->Arg(3);

// Not closetap code: the cost of one dependent random read in a 2 GiB array (a table of ~10M
// flows) with 4 KiB pages, as ZeroedArray maps them today, and with transparent huge pages
// (madvise; this kernel's THP mode is "madvise"). Shows what TLB misses add under a hypervisor.
void BM_random_read_2GiB(benchmark::State& st) {
    const size_t bytes = size_t{2} << 30, n = bytes / sizeof(uint64_t);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        st.SkipWithError("mmap failed");
        return;
    }
    if (st.range(0) == 1) madvise(p, bytes, MADV_HUGEPAGE);
    auto* a = static_cast<uint64_t*>(p);
    for (size_t i = 0; i < n; i++) a[i] = i * 0x9e3779b97f4a7c15ull;
    uint64_t x = 1;
    Cycles c{st};
    for (auto _ : st) {
        x = a[(x * 0xbf58476d1ce4e5b9ull >> 17) % n] + x;  // dependent: one miss at a time
        benchmark::DoNotOptimize(x);
    }
    munmap(p, bytes);
}
BENCHMARK(BM_random_read_2GiB)->ArgName("thp")->Arg(0)->Arg(1);

// Not closetap code either: the memory system's ceiling for a flow table of this shape. Per
// "packet", one random 64-byte bucket and one random 84-byte entry (2-3 lines) are read and
// written, all prefetched 16 packets ahead as the worker does, and `work` rounds of a dependent
// multiply chain stand in for the packet's compute (40 rounds are ~120 cycles). At work 0 the
// cycles are what memory alone allows; with work, whether it overlaps with the compute.
void BM_memory_ceiling(benchmark::State& st) {
    const size_t flows = static_cast<size_t>(st.range(0));
    const int work = static_cast<int>(st.range(1));
    const size_t nb = flows / 6 + 1, ne = flows + flows / 8;
    constexpr size_t esz = 84, ahead = 16, nidx = size_t{1} << 22;
    const size_t bytes = nb * 64 + ne * esz + 4096;
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        st.SkipWithError("mmap failed");
        return;
    }
    madvise(mem, bytes, MADV_HUGEPAGE);
    auto* buckets = static_cast<char*>(mem);
    char* entries = buckets + nb * 64;
    for (size_t i = 0; i < bytes; i += 4096) buckets[i] = 1;
    std::vector<uint32_t> bi(nidx), ei(nidx);
    std::mt19937_64 rng(1);
    for (size_t i = 0; i < nidx; i++) {
        bi[i] = static_cast<uint32_t>(rng() % nb);
        ei[i] = static_cast<uint32_t>(rng() % ne);
    }
    uint64_t sum = 1;
    size_t i = 0;
    Cycles c{st};
    for (auto _ : st) {
        const size_t j = (i + ahead) & (nidx - 1);
        prefetch_line(buckets + 64 * size_t{bi[j]});
        const char* pe = entries + esz * size_t{ei[j]};
        prefetch_line(pe);
        prefetch_line(pe + 64);
        prefetch_line(pe + esz - 1);
        for (int k = 0; k < work; k++) sum = sum * 6364136223846793005ull + (sum >> 7);
        char* b = buckets + 64 * size_t{bi[i]};
        char* e = entries + esz * size_t{ei[i]};
        sum += static_cast<uint64_t>(b[0] + e[0] + e[esz - 1]);
        b[16] = static_cast<char>(sum);
        e[20] = static_cast<char>(sum);
        e[70] = static_cast<char>(sum);
        i = (i + 1) & (nidx - 1);
    }
    benchmark::DoNotOptimize(sum);
    munmap(mem, bytes);
}
BENCHMARK(BM_memory_ceiling)
    ->ArgNames({"flows", "work"})
    ->ArgsProduct({{10'000, 1'000'000, 10'000'000}, {0, 20, 40}});

}  // namespace

BENCHMARK_MAIN();
