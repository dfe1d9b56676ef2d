// The flow table: symmetric keys, fixed capacity, counted eviction that protects closing flows,
// expiry by packet time, flush at end of input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include <vector>

#include "flowtable/flow_key.hh"
#include "flowtable/flow_table.hh"

using namespace closetap;

namespace {

std::array<uint8_t, 16> v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

struct Ended {
    FlowKey key;
    ConnResult r;
};

struct Collect {
    std::vector<Ended>* out;
    void operator()(const FlowEntry&, const ConnResult& r) const { out->push_back({r.key, r}); }
};

struct Pkt {
    std::array<uint8_t, 16> src, dst;
    uint16_t sport, dport;
    uint8_t flags;
    uint32_t seq, ack;
    uint64_t ts;
};

// `hash`: the key's own when 0 (a test may give another, as a collision would).
FlowEntry* feed(FlowTable& t, const Pkt& p, std::vector<Ended>& out, uint32_t hash = 0) {
    FlowKey k;
    TcpSegment s{};
    s.dir = make_flow_key(p.src, p.sport, p.dst, p.dport, k);
    s.ts_us = p.ts;
    s.seq = p.seq;
    s.ack = p.ack;
    s.flags = p.flags;
    s.window = 65535;
    s.src_port = p.sport;
    s.dst_port = p.dport;
    s.wscale = 0xff;
    return t.process(k, hash != 0 ? hash : flow_hash(k), s, Collect{&out});
}

Pkt syn(uint16_t cport, uint64_t ts, uint8_t host = 1) {
    return {v4(10, 0, 0, host), v4(10, 0, 0, 200), cport, 80, tcp_flag::syn, 1000, 0, ts};
}

}  // namespace

TEST(FlowKey, BothDirectionsMapToOneKey) {
    FlowKey a, b;
    uint8_t da = make_flow_key(v4(10, 0, 0, 1), 1234, v4(10, 0, 0, 2), 80, a);
    uint8_t db = make_flow_key(v4(10, 0, 0, 2), 80, v4(10, 0, 0, 1), 1234, b);
    EXPECT_EQ(a, b);
    EXPECT_NE(da, db);
    EXPECT_EQ(flow_hash(a), flow_hash(b));
}

TEST(FlowKey, SameAddressesOrderByPort) {
    FlowKey a, b;
    uint8_t da = make_flow_key(v4(127, 0, 0, 1), 5000, v4(127, 0, 0, 1), 80, a);
    uint8_t db = make_flow_key(v4(127, 0, 0, 1), 80, v4(127, 0, 0, 1), 5000, b);
    EXPECT_EQ(a, b);
    EXPECT_EQ(da, 1);
    EXPECT_EQ(db, 0);
}

TEST(FlowKey, OrderAndEqualityAgreeWithMemcmp) {
    // The inline comparisons (flow_key.hh) must order endpoints exactly as memcmp of the
    // 16-byte addresses would, and compare keys as memcmp of all 36 bytes would.
    uint64_t x = 88172645463325252ull;
    auto rnd = [&] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
    for (int i = 0; i < 200000; ++i) {
        std::array<uint8_t, 16> a{}, b{};
        for (auto& c : a) c = static_cast<uint8_t>(rnd() % 4);  // small alphabet: many ties
        b = a;
        const int flips = static_cast<int>(rnd() % 3);
        for (int f = 0; f < flips; ++f) b[rnd() % 16] = static_cast<uint8_t>(rnd() % 4);
        const auto pa = static_cast<uint16_t>(rnd() % 3), pb = static_cast<uint16_t>(rnd() % 3);
        FlowKey k;
        const uint8_t dir = make_flow_key(a, pa, b, pb, k);
        const int c = std::memcmp(a.data(), b.data(), 16);
        ASSERT_EQ(dir, (c > 0 || (c == 0 && pa > pb)) ? 1 : 0);
        FlowKey k2;
        make_flow_key(b, pb, a, pa, k2);
        ASSERT_TRUE(k == k2);
        FlowKey k3 = k;
        reinterpret_cast<uint8_t*>(&k3)[rnd() % sizeof k3] ^= static_cast<uint8_t>(1u << (rnd() % 8));
        ASSERT_EQ(k == k3, std::memcmp(&k, &k3, sizeof k) == 0);
    }
}

// The parser's fast path hashes the 12-byte IPv4 key (flow_hash4, its first CRC word folded at
// compile time); the dispatcher and every other path hash the 36-byte FlowKey. They must agree,
// or a flow's packets would land in different buckets and shards.
TEST(FlowKey, Hash4IsTheHashOfTheExpandedKey) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    auto rnd = [&] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
    for (int i = 0; i < 100000; ++i) {
        FlowKey4 k4;
        k4.a[0] = static_cast<uint32_t>(rnd());
        k4.a[1] = i % 7 == 0 ? k4.a[0] : static_cast<uint32_t>(rnd());
        k4.port[0] = static_cast<uint16_t>(rnd());
        k4.port[1] = static_cast<uint16_t>(rnd());
        const FlowKey k = k4.expand();
        ASSERT_TRUE(FlowTable::ipv4_key(k));
        ASSERT_EQ(std::memcmp(k.addr[0].data() + 12, &k4.a[0], 4), 0);
        ASSERT_EQ(std::memcmp(k.addr[1].data() + 12, &k4.a[1], 4), 0);
        ASSERT_EQ(k.port[0], k4.port[0]);
        ASSERT_EQ(k.port[1], k4.port[1]);
        ASSERT_EQ(flow_hash4(k4), flow_hash(k)) << i;
    }
}

// A connection's packets may reach the table as FlowKey4 (the worker's fast parser) or as
// FlowKey (every other parse, the tools): both must find the one entry, whichever inserted it.
TEST(FlowTable, Ipv4KeysInEitherFormFindOneEntry) {
    FlowTable t(1024, FlowTimeouts{});
    std::vector<Ended> out;
    for (unsigned n = 0; n < 200; n++) {
        FlowKey4 k4{{0x0100000au + (n << 24), 0xc800000au}, {uint16_t(1000 + n), 80}};
        const FlowKey k = k4.expand();
        const uint32_t h = flow_hash(k);
        TcpSegment s{};
        s.dir = 0;
        s.ts_us = 1000 + n;
        s.seq = 1000;
        s.flags = tcp_flag::syn;
        s.window = 65535;
        s.src_port = k4.port[0];
        s.dst_port = k4.port[1];
        s.wscale = 0xff;
        FlowEntry* a =
            n % 2 ? t.process(k4, h, s, Collect{&out}) : t.process(k, h, s, Collect{&out});
        ASSERT_NE(a, nullptr);
        s.dir = 1;
        s.flags = tcp_flag::syn | tcp_flag::ack;
        s.seq = 5000;
        s.ack = 1001;
        s.src_port = k4.port[1];
        s.dst_port = k4.port[0];
        FlowEntry* b =
            n % 2 ? t.process(k, h, s, Collect{&out}) : t.process(k4, h, s, Collect{&out});
        ASSERT_EQ(a, b) << n;
        ASSERT_EQ(t.lookup(k, h), a) << n;
        ASSERT_TRUE(t.key_of(*a) == k) << n;
    }
    EXPECT_EQ(t.active(), 200u);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(t.verify(), "");
}

TEST(FlowKey, DifferentTuplesHashApart) {
    // Not a proof of quality: a regression guard against a hash that ignores part of the key.
    std::vector<uint32_t> hs;
    for (uint16_t p = 1000; p < 1100; p++) {
        FlowKey k;
        make_flow_key(v4(10, 0, 0, 1), p, v4(10, 0, 0, 2), 80, k);
        hs.push_back(flow_hash(k));
    }
    std::sort(hs.begin(), hs.end());
    EXPECT_EQ(std::unique(hs.begin(), hs.end()), hs.end());
}

TEST(FlowTable, RejectsZeroCapacity) {
    EXPECT_THROW(FlowTable(0, FlowTimeouts{}), std::invalid_argument);
    EXPECT_THROW(FlowTable(1, FlowTimeouts{}), std::invalid_argument);  // no room for IPv6
}

TEST(FlowTable, BothDirectionsShareOneEntry) {
    FlowTable t(16, FlowTimeouts{});
    std::vector<Ended> out;
    FlowEntry* a = feed(t, syn(40000, 1), out);
    Pkt synack{v4(10, 0, 0, 200), v4(10, 0, 0, 1), 80, 40000, tcp_flag::syn | tcp_flag::ack, 5000, 1001, 2};
    FlowEntry* b = feed(t, synack, out);
    EXPECT_EQ(a, b);
    EXPECT_EQ(t.active(), 1u);
    EXPECT_TRUE(out.empty());
}

namespace {

std::array<uint8_t, 16> v6(uint16_t last, uint8_t net = 1) {
    return {0x20, 0x01, 0x0d, 0xb8, 0, net, 0, 0, 0, 0, 0, 0, 0, 0, uint8_t(last >> 8), uint8_t(last)};
}

Pkt syn6(uint16_t cport, uint64_t ts, uint16_t host = 1) {
    return {v6(host), v6(0x200), cport, 443, tcp_flag::syn, 1000, 0, ts};
}

FlowKey key_of_pkt(const Pkt& p) {
    FlowKey k;
    make_flow_key(p.src, p.sport, p.dst, p.dport, k);
    return k;
}

}  // namespace

// An IPv4 connection's key lives in its entry; an IPv6 connection takes a second entry for its
// addresses. Both give their whole key back in the record.
TEST(FlowTable, Ipv6ConnectionsTakeTwoEntries) {
    FlowTable t(10, FlowTimeouts{});
    std::vector<Ended> out;
    std::vector<Pkt> sent;
    for (uint16_t i = 0; i < 3; i++) sent.push_back(syn6(40000 + i, 1 + i, 1 + i));
    for (uint16_t i = 0; i < 4; i++) sent.push_back(syn(41000 + i, 10 + i));
    for (const Pkt& p : sent) ASSERT_NE(feed(t, p, out), nullptr);
    EXPECT_EQ(t.active(), 7u);
    EXPECT_EQ(t.entries_used(), 10u);
    EXPECT_EQ(t.verify(), "");
    // Both directions of an IPv6 connection find it.
    Pkt back{v6(0x200), v6(1), 443, 40000, tcp_flag::syn | tcp_flag::ack, 7000, 1001, 20};
    EXPECT_EQ(feed(t, back, out), t.lookup(key_of_pkt(sent[0]), flow_hash(key_of_pkt(sent[0]))));
    EXPECT_EQ(t.active(), 7u);
    // Full: a new IPv6 connection needs two entries. The oldest attempt among the key's
    // buckets (an IPv6 one, two entries) goes first; enough room then.
    ASSERT_NE(feed(t, syn6(40100, 30, 9), out), nullptr);
    EXPECT_EQ(t.verify(), "");
    EXPECT_LE(t.entries_used(), 10u);
    ASSERT_FALSE(out.empty());
    for (const Ended& e : out) EXPECT_EQ(e.r.end_cause, EndCause::evicted);
    // Every record carries its connection's whole key, IPv4 or IPv6.
    t.flush(40, EndCause::end_of_input, Collect{&out});
    EXPECT_EQ(t.active(), 0u);
    EXPECT_EQ(t.entries_used(), 0u);
    EXPECT_EQ(t.verify(), "");
    sent.push_back(syn6(40100, 30, 9));
    ASSERT_EQ(out.size(), sent.size());
    for (const Pkt& p : sent) {
        const FlowKey k = key_of_pkt(p);
        EXPECT_EQ(std::count_if(out.begin(), out.end(), [&](const Ended& e) { return e.key == k; }), 1)
            << "port " << p.sport;
    }
}

// A full table of IPv4 connections makes room for an IPv6 one: two victims when the first
// freed one entry only.
TEST(FlowTable, Ipv6OnAFullIpv4TableEvictsTwo) {
    FlowTable t(4, FlowTimeouts{});
    std::vector<Ended> out;
    for (uint16_t p = 0; p < 4; p++) ASSERT_NE(feed(t, syn(40000 + p, 10 + p), out), nullptr);
    ASSERT_NE(feed(t, syn6(40100, 20), out), nullptr);
    EXPECT_EQ(out.size(), 2u);
    EXPECT_EQ(t.active(), 3u);
    EXPECT_EQ(t.entries_used(), 4u);
    EXPECT_EQ(t.counters().evicted[size_t(EvictVictim::attempt)], 2u);
    EXPECT_EQ(t.verify(), "");
    // The smallest table holds an IPv6 connection: two entries.
    FlowTable two(2, FlowTimeouts{});
    out.clear();
    ASSERT_NE(feed(two, syn(40000, 1), out), nullptr);
    ASSERT_NE(feed(two, syn6(40100, 2), out), nullptr);
    EXPECT_EQ(out.size(), 1u);
    EXPECT_EQ(two.active(), 1u);
    EXPECT_EQ(two.verify(), "");
}

// Lookups compare the whole key, not the hash: keys given one hash (as a collision would) and
// the same ports stay apart, IPv4 and IPv6 alike, and an IPv6 packet between IPv4-mapped
// addresses is the IPv4 connection.
TEST(FlowTable, KeysWithOneHashStayApart) {
    FlowTable t(64, FlowTimeouts{});
    std::vector<Ended> out;
    auto at = [&](const Pkt& p, uint32_t hash) { return feed(t, p, out, hash); };
    const uint32_t h = 0x12345678;
    const Pkt a4 = syn(40000, 1, 1), b4 = syn(40000, 1, 2);
    const Pkt a6 = syn6(40000, 1, 1), b6 = syn6(40000, 1, 2);
    FlowEntry* e[4] = {at(a4, h), at(b4, h), at(a6, h), at(b6, h)};
    EXPECT_EQ(t.active(), 4u);
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++) EXPECT_NE(e[i], e[j]);
    EXPECT_EQ(t.lookup(key_of_pkt(b4), h), e[1]);
    EXPECT_EQ(t.lookup(key_of_pkt(b6), h), e[3]);
    EXPECT_EQ(t.key_of(*e[3]), key_of_pkt(b6));
    EXPECT_EQ(t.key_of(*e[1]), key_of_pkt(b4));
    EXPECT_TRUE(FlowTable::ipv4_key(key_of_pkt(a4)));
    EXPECT_FALSE(FlowTable::ipv4_key(key_of_pkt(a6)));
    // One address IPv4-mapped, the other not: an IPv6 key.
    Pkt mixed = a6;
    mixed.src = v4(10, 0, 0, 1);
    EXPECT_FALSE(FlowTable::ipv4_key(key_of_pkt(mixed)));
    // (No verify(): the hashes given were not the keys' own, as process() requires.)
}

TEST(FlowTable, FullTableEvictsAndCounts) {
    FlowTable t(4, FlowTimeouts{});
    std::vector<Ended> out;
    for (uint16_t p = 0; p < 10; p++) ASSERT_NE(feed(t, syn(40000 + p, 10 + p), out), nullptr);
    EXPECT_EQ(t.active(), 4u);
    EXPECT_EQ(out.size(), 6u);
    uint64_t ev = t.counters().evictions[0] + t.counters().evictions[1];
    EXPECT_EQ(ev, 6u);
    for (auto& e : out) EXPECT_EQ(e.r.end_cause, EndCause::evicted);
}

TEST(FlowTable, EvictionSparesClosingFlows) {
    FlowTable t(2, FlowTimeouts{});
    std::vector<Ended> out;
    // Flow A: oldest, but in the middle of a close (FIN sent).
    feed(t, syn(40000, 1), out);
    Pkt fin{v4(10, 0, 0, 1), v4(10, 0, 0, 200), 40000, 80, tcp_flag::fin | tcp_flag::ack, 1001, 1, 2};
    feed(t, fin, out);
    // Flow B: newer and not closing.
    feed(t, syn(40001, 3), out);
    // Flow C needs room: B goes, A stays although it is older.
    feed(t, syn(40002, 4), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].key.port[0] == 40001 || out[0].key.port[1] == 40001, true);
}

// A SYN flood far beyond capacity: established flows, idle far longer than the flood's attempts,
// keep their entries; every eviction takes an attempt and is counted by reason and by victim.
TEST(FlowTable, SynFloodEvictsAttemptsNotEstablishedFlows) {
    FlowTable t(64, FlowTimeouts{});
    std::vector<Ended> out;
    std::vector<FlowEntry*> est;
    for (uint16_t p = 0; p < 32; p++) {
        const uint16_t cp = static_cast<uint16_t>(30000 + p);
        feed(t, syn(cp, 10 + p), out);
        Pkt synack{v4(10, 0, 0, 200), v4(10, 0, 0, 1), 80, cp, tcp_flag::syn | tcp_flag::ack, 5000, 1001, 100};
        feed(t, synack, out);
        Pkt ack{v4(10, 0, 0, 1), v4(10, 0, 0, 200), cp, 80, tcp_flag::ack, 1001, 5001, 200};
        est.push_back(feed(t, ack, out));
    }
    ASSERT_TRUE(out.empty());
    const unsigned flood = 10000;
    for (unsigned i = 0; i < flood; i++)
        ASSERT_NE(feed(t, syn(static_cast<uint16_t>(1000 + i % 50000), 1000 + i,
                              static_cast<uint8_t>(2 + i / 50000)), out), nullptr);
    EXPECT_EQ(t.active(), 64u);
    const auto& c = t.counters();
    const uint64_t ev = c.evictions[0] + c.evictions[1];
    EXPECT_EQ(ev, flood - 32);
    EXPECT_EQ(c.evicted[static_cast<size_t>(EvictVictim::attempt)], ev);
    EXPECT_EQ(c.evicted[static_cast<size_t>(EvictVictim::established)], 0u);
    EXPECT_EQ(c.evicted[static_cast<size_t>(EvictVictim::closing)], 0u);
    ASSERT_EQ(out.size(), ev);
    for (auto& e : out) {
        EXPECT_EQ(e.r.end_cause, EndCause::evicted);
        EXPECT_EQ(e.r.close, Close::no_answer);
    }
    for (uint16_t p = 0; p < 32; p++) {
        FlowKey k;
        make_flow_key(v4(10, 0, 0, 1), static_cast<uint16_t>(30000 + p), v4(10, 0, 0, 200), 80, k);
        EXPECT_EQ(t.lookup(k, flow_hash(k)), est[p]) << "established flow " << p << " lost its entry";
    }
}

// The same flood on a table nearly all established (4000 of 4096 entries): 32 random probes
// would miss every attempt about half the time (0.977^32) and give up an established flow; the
// attempts ring names the oldest attempt every time (and a key whose two buckets are full
// first moves a neighbour, the cuckoo step), so the flood only ever evicts its own SYNs.
TEST(FlowTable, SynFloodOnANearlyEstablishedTableEvictsOnlyAttempts) {
    const uint32_t cap = 4096, established = 4000;
    FlowTable t(cap, FlowTimeouts{});
    std::vector<Ended> out;
    for (uint32_t i = 0; i < established; i++) {
        const uint16_t cp = static_cast<uint16_t>(10000 + i % 50000);
        const uint8_t host = static_cast<uint8_t>(1 + i / 50000);
        feed(t, syn(cp, 10 + i, host), out);
        Pkt synack{v4(10, 0, 0, 200), v4(10, 0, 0, host), 80, cp, tcp_flag::syn | tcp_flag::ack,
                   5000, 1001, 20 + i};
        feed(t, synack, out);
        Pkt ack{v4(10, 0, 0, host), v4(10, 0, 0, 200), cp, 80, tcp_flag::ack, 1001, 5001, 30 + i};
        ASSERT_NE(feed(t, ack, out), nullptr);
    }
    ASSERT_TRUE(out.empty());
    const unsigned flood = 50000;
    for (unsigned i = 0; i < flood; i++) {
        Pkt p = syn(static_cast<uint16_t>(1000 + i % 50000), 100000 + i,
                    static_cast<uint8_t>(100 + i / 50000));
        p.src[13] = 7;  // 10.7.x.1: apart from the established clients
        ASSERT_NE(feed(t, p, out), nullptr);
    }
    const auto& c = t.counters();
    const uint64_t ev = c.evictions[0] + c.evictions[1];
    EXPECT_EQ(ev, out.size());
    EXPECT_EQ(c.evicted[static_cast<size_t>(EvictVictim::established)], 0u);
    EXPECT_EQ(c.evicted[static_cast<size_t>(EvictVictim::attempt)], ev);
    for (auto& e : out) {
        EXPECT_EQ(e.r.close, Close::no_answer);
        EXPECT_TRUE(e.key.addr[0][13] == 7 || e.key.addr[1][13] == 7) << "not a flood SYN";
    }
    EXPECT_EQ(t.verify(), "");
}

TEST(FlowTable, ExpiresByPacketTime) {
    FlowTimeouts to;
    FlowTable t(16, to);
    std::vector<Ended> out;
    feed(t, syn(40000, 1'000'000), out);
    // The attempt times out at exactly start + timeout (Zeek's timer); the sweep, which walks
    // buckets by 65.5 ms ticks of packet time, never ends it earlier and at most a tick later.
    const uint64_t deadline = 1'000'000 + to.of(TimeoutClass::syn_sent);
    EXPECT_EQ(t.expire(deadline - 1, 100, Collect{&out}), 0u);
    EXPECT_EQ(t.expire(deadline + 65'536, 100, Collect{&out}), 1u);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].r.end_cause, EndCause::idle_timeout);
    EXPECT_EQ(out[0].r.close, Close::no_answer);
    EXPECT_EQ(t.active(), 0u);
}

TEST(FlowTable, SweepHonoursLongTimeoutsAndTimeJumps) {
    // A 10-hour attempt timeout is beyond what a slot's 16-bit due can say (17.9 min ahead):
    // the sweep looks at it early, keeps it, and ends it once it really timed out.
    FlowTimeouts to;
    to.us[static_cast<size_t>(TimeoutClass::syn_sent)] = 36'000'000'000ull;
    FlowTable t(16, to);
    std::vector<Ended> out;
    feed(t, syn(40000, 1'000'000), out);
    for (uint64_t now = 1'000'000; now < 1'000'000 + 36'000'000'000ull; now += 60'000'000)
        ASSERT_EQ(t.expire(now, 100, Collect{&out}), 0u) << "ended early at " << now;
    EXPECT_EQ(t.expire(1'000'000 + 36'000'000'000ull + 65'536, 100, Collect{&out}), 1u);

    // Packet time that jumps far beyond a due (a capture with a gap of an hour or more, so the
    // 16-bit ticks wrap; 4000 s lands the 5 s attempt's due 4578 ticks "ahead"): the flow is
    // still ended within the next passes. The first sweeps run at the flow's own time, so the
    // table's first pass (which reads every entry) is over before the jump.
    for (uint64_t gap_s : {3'000u, 4'000u, 7'000u, 20'000u}) {
        FlowTable t2(16, FlowTimeouts{});
        feed(t2, syn(40002, 1'000'000), out);
        ASSERT_EQ(t2.expire(1'000'001, 100, Collect{&out}), 0u);
        ASSERT_EQ(t2.expire(1'000'002, 100, Collect{&out}), 0u);
        EXPECT_EQ(t2.expire(1'000'000 + gap_s * 1'000'000ull, 100, Collect{&out}), 1u)
            << "gap " << gap_s << " s";
    }
}

TEST(FlowTable, SweepPacesAPassOverPacketTime) {
    // 6000 attempts in a table of 10000 buckets, all timing out at the same instant. The
    // worker's sweep(), called every 10 us of packet time, must end none early, all within a
    // pass (sweep_pass_us) and a tick, spread over that pass rather than at once (unpaced, 32
    // buckets a call would cover the table in 3 ms), and with bounded work per call.
    FlowTimeouts to;
    FlowTable t(30000, to);
    std::vector<Ended> out;
    const uint64_t t0 = 1'000'000;
    for (uint16_t i = 0; i < 6000; i++)
        feed(t, syn(static_cast<uint16_t>(10000 + i), t0, static_cast<uint8_t>(1 + i % 100)), out);
    ASSERT_EQ(t.active(), 6000u);
    const uint64_t deadline = t0 + to.of(TimeoutClass::syn_sent);
    uint64_t first = 0, last = 0;
    unsigned max_per_call = 0;
    for (uint64_t now = t0; now <= deadline + FlowTable::sweep_pass_us + 65'536; now += 10) {
        const unsigned n = t.sweep(now, Collect{&out});
        if (n == 0) continue;
        ASSERT_GE(now, deadline) << "ended early";
        if (first == 0) first = now;
        last = now;
        max_per_call = std::max(max_per_call, n);
    }
    EXPECT_EQ(out.size(), 6000u);
    EXPECT_EQ(t.active(), 0u);
    EXPECT_GT(last - first, FlowTable::sweep_pass_us / 2);
    EXPECT_LE(max_per_call, FlowTable::expire_budget * FlowTable::bucket_slots);

    // Fallen behind (packet time jumps by more than a pass): it catches up at expire_budget
    // buckets a call.
    FlowTable t2(30000, to);
    for (uint16_t i = 0; i < 6000; i++)
        feed(t2, syn(static_cast<uint16_t>(10000 + i), t0, static_cast<uint8_t>(1 + i % 100)), out);
    t2.sweep(t0, Collect{&out});
    const uint64_t later = deadline + 10 * FlowTable::sweep_pass_us;
    unsigned calls = 0;
    while (t2.active() > 0 && calls < 100000) {
        t2.sweep(later + calls, Collect{&out});
        calls++;
    }
    EXPECT_EQ(t2.active(), 0u);
    EXPECT_LE(calls, FlowTable::buckets_for(30000) / FlowTable::expire_budget + 2);
}

TEST(FlowTable, LatePacketEndsTheTimedOutConnectionFirst) {
    FlowTimeouts to;
    FlowTable t(16, to);
    std::vector<Ended> out;
    feed(t, syn(40000, 1), out);
    feed(t, syn(40000, 2 + to.of(TimeoutClass::syn_sent)), out);  // the sweep never ran
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].r.end_cause, EndCause::idle_timeout);
    EXPECT_EQ(t.active(), 1u);
}

TEST(FlowTable, FlushEndsEverything) {
    FlowTable t(64, FlowTimeouts{});
    std::vector<Ended> out;
    for (uint16_t p = 0; p < 20; p++) feed(t, syn(40000 + p, 100), out);
    t.flush(200, EndCause::end_of_input, Collect{&out});
    EXPECT_EQ(out.size(), 20u);
    EXPECT_EQ(t.active(), 0u);
    for (auto& e : out) EXPECT_EQ(e.r.end_cause, EndCause::end_of_input);
}

TEST(FlowTable, FlushHonoursTimeoutsAtTheFlushTime) {
    FlowTimeouts to;
    FlowTable t(64, to);
    std::vector<Ended> out;
    feed(t, syn(40000, 1), out);
    feed(t, syn(40001, 2 + to.of(TimeoutClass::syn_sent)), out);
    t.flush(2 + to.of(TimeoutClass::syn_sent), EndCause::end_of_input, Collect{&out});
    ASSERT_EQ(out.size(), 2u);
    int timed_out = 0;
    for (auto& e : out) timed_out += e.r.end_cause == EndCause::idle_timeout;
    EXPECT_EQ(timed_out, 1);
}

TEST(FlowTable, ManyFlowsAllFindable) {
    const uint32_t n = 50000;
    FlowTable t(n, FlowTimeouts{});
    std::vector<Ended> out;
    for (uint32_t i = 0; i < n; i++) {
        Pkt p = syn(static_cast<uint16_t>(1024 + i % 60000), 1, static_cast<uint8_t>(i / 60000 + 1));
        p.src[13] = static_cast<uint8_t>(i >> 16);
        p.src[14] = static_cast<uint8_t>(i >> 8);
        ASSERT_NE(feed(t, p, out), nullptr);
    }
    // At capacity with no bucket overflow: nothing was evicted.
    EXPECT_EQ(t.active(), n);
    EXPECT_EQ(out.size(), 0u);
}

namespace {

// The bucket sizing (FlowTable::buckets_for: 4/3 slots per entry, with the cuckoo step when both
// of a key's buckets are full) must hold a table filled to capacity with random flows, and keep
// holding it under churn, with no more than a rare bucket_full eviction; and the memory it
// reports is what the sizing says (buckets, entries, and the attempts ring of cap/4 indices).
TEST(FlowTable, FullTableUnderChurnRarelyOverflowsABucket) {
    const uint32_t cap = 1u << 19;
    FlowTable t(cap, FlowTimeouts{});
    EXPECT_EQ(t.bytes_per_capacity(), uint64_t{FlowTable::buckets_for(cap)} * 64 +
                                          uint64_t{cap} * sizeof(FlowEntry) + uint64_t{cap / 4} * 4);
    EXPECT_LE(double(t.bytes_per_capacity()) / cap, 96.0);  // issue #4's target per flow
    std::vector<Ended> out;
    uint64_t x = 0x2545f4914f6cdd1dull;
    auto rnd = [&] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
    std::vector<Pkt> live;
    live.reserve(cap);
    auto random_syn = [&](uint64_t ts) {
        uint64_t r = rnd();
        Pkt p = syn(static_cast<uint16_t>(1024 + r % 60000), ts);
        std::memcpy(p.src.data() + 12, &r, 4);
        p.src[12] = 10;
        return p;
    };
    for (uint32_t i = 0; i < cap; i++) {
        live.push_back(random_syn(1));
        ASSERT_NE(feed(t, live.back(), out), nullptr);
    }
    // Churn: end a random live flow (a RST from its client), then open a new one, 2 x cap times.
    for (uint32_t i = 0; i < 2 * cap; i++) {
        Pkt& victim = live[rnd() % live.size()];
        Pkt r = victim;
        r.flags = tcp_flag::rst;
        r.ts = 2;
        feed(t, r, out);
        victim = random_syn(2);
        feed(t, victim, out);
        // RSTs linger until their close timer: expire them so the table stays at capacity.
        t.expire(2 + FlowTimeouts{}.of(TimeoutClass::closed), 64, Collect{&out});
        if (out.size() > 100000) out.clear();
    }
    // The cuckoo step ran, and left every moved slot where lookups look for it.
    EXPECT_GT(t.counters().displaced, 0u);
    EXPECT_EQ(t.verify(), "");
    const uint64_t bucket_full = t.counters().evictions[size_t(EvictReason::bucket_full)];
    // Random source addresses can collide (same 5-tuple): those find their entry, not a slot.
    EXPECT_LT(bucket_full, uint64_t{cap} * 3 / 10000) << "bucket_full evictions per 3 x cap inserts";
    std::printf("full table, %u entries, %u churn inserts: %llu bucket_full, %llu table_full\n", cap, 2 * cap,
                (unsigned long long)bucket_full,
                (unsigned long long)t.counters().evictions[size_t(EvictReason::table_full)]);
}

// IPv4 and IPv6 connections mixed, a full table churned: the entries of ended IPv6
// connections come back in pairs, victims make room for either family, and every created
// connection is either still active or ended once.
TEST(FlowTable, MixedFamiliesUnderChurnKeepTheirInvariants) {
    const uint32_t cap = 1u << 14;
    FlowTable t(cap, FlowTimeouts{});
    std::vector<Ended> out;
    uint64_t ended = 0;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    auto rnd = [&] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
    auto random_syn = [&](uint64_t ts) {
        const uint64_t r = rnd();
        Pkt p = r % 10 < 3 ? syn6(static_cast<uint16_t>(1024 + r % 60000), ts)
                           : syn(static_cast<uint16_t>(1024 + r % 60000), ts);
        std::memcpy(p.src.data() + 12, &r, 4);
        if (p.src[10] == 0xff) p.src[12] = 10;  // IPv4-mapped: keep it a private address
        return p;
    };
    std::vector<Pkt> live;
    for (uint32_t i = 0; i < cap; i++) {
        live.push_back(random_syn(1));
        ASSERT_NE(feed(t, live.back(), out), nullptr);
    }
    EXPECT_EQ(t.entries_used(), cap);  // full: the IPv6 ones made room for themselves
    EXPECT_EQ(t.verify(), "");
    for (uint32_t i = 0; i < 4 * cap; i++) {
        Pkt& victim = live[rnd() % live.size()];
        Pkt r = victim;
        r.flags = tcp_flag::rst;
        r.ts = 2 + i / 1000;
        feed(t, r, out);
        victim = random_syn(r.ts);
        feed(t, victim, out);
        t.expire(r.ts + FlowTimeouts{}.of(TimeoutClass::closed), 64, Collect{&out});
        ended += out.size();
        out.clear();
        if (i % 8192 == 0) {
            ASSERT_EQ(t.verify(), "") << "after " << i << " churn steps";
        }
    }
    EXPECT_EQ(t.verify(), "");
    uint64_t ended_counted = 0;
    for (uint64_t n : t.counters().ended) ended_counted += n;
    EXPECT_EQ(ended_counted, ended);
    EXPECT_EQ(t.counters().created, ended + t.active());
    t.flush(1u << 30, EndCause::end_of_input, Collect{&out});
    EXPECT_EQ(t.entries_used(), 0u);
    EXPECT_EQ(t.verify(), "");
}

}  // namespace
