// The workload's frames with closetap-gen's encapsulations and impairments: every frame parses
// back to what was meant (checksums verified) and equals PacketBuilder's frame for the same
// layers (bench/workload.cc self_check); the skew delay line keeps each flow's lifecycle in
// order and ends with every lifecycle played out.
#include <gtest/gtest.h>

#include "bench/workload.hh"
#include "pipeline/parse.hh"

using namespace closetap;
using namespace closetap::bench;

namespace {

WorkloadConfig small() {
    WorkloadConfig c;
    c.flows = 500;
    c.inflight = 64;
    c.churn = 0.5;
    return c;
}

TEST(WorkloadEncap, FramesMatchPacketBuilder) {
    WorkloadConfig c = small();
    c.vlan = 100;
    EXPECT_EQ(Workload::self_check(c), "") << "vlan";
    c.vxlan_vni = 4242;
    EXPECT_EQ(Workload::self_check(c), "") << "vlan + vxlan";
    c.vlan = 0;
    c.frames = FrameMix::imix;
    EXPECT_EQ(Workload::self_check(c), "") << "imix in vxlan";
    c = small();
    c.frames = FrameMix::fixed;
    c.payload = 1000;
    c.vxlan_vni = 1;
    EXPECT_EQ(Workload::self_check(c), "") << "fixed payload in vxlan";
    // IPv6 flows (half, then all), plain and in each encapsulation, IMIX at the MTU.
    for (double share : {0.5, 1.0}) {
        c = small();
        c.ipv6_share = share;
        EXPECT_EQ(Workload::self_check(c), "") << "ipv6 " << share;
        c.vlan = 7;
        EXPECT_EQ(Workload::self_check(c), "") << "ipv6 in vlan " << share;
        c.vxlan_vni = 99;
        c.frames = FrameMix::imix;
        EXPECT_EQ(Workload::self_check(c), "") << "ipv6 imix in vlan + vxlan " << share;
    }
}

TEST(WorkloadEncap, ImixFrameSizesIncludeTheEncapsulation) {
    for (double v6 : {0.0, 1.0}) {  // IPv6's 20 more header bytes come out of the payload too
        WorkloadConfig c = small();
        c.frames = FrameMix::imix;
        c.vxlan_vni = 7;
        c.ipv6_share = v6;
        Workload w(c);
        std::vector<uint8_t> f(Workload::max_frame);
        uint64_t ts;
        unsigned biggest = 0;
        while (unsigned n = w.next(f.data(), ts)) biggest = std::max(biggest, n);
        w.begin_steady();
        for (int i = 0; i < 20000; i++) biggest = std::max(biggest, w.next(f.data(), ts));
        EXPECT_EQ(biggest, 1500u - 4) << "ipv6 share " << v6;  // 1500 with FCS, VXLAN included
    }
}

TEST(WorkloadEncap, BadEncapsulationIsRefused) {
    WorkloadConfig c = small();
    c.vlan = 4095;
    EXPECT_THROW(Workload{c}, std::invalid_argument);
    c = small();
    c.vxlan_vni = 1 << 24;
    EXPECT_THROW(Workload{c}, std::invalid_argument);
    c = small();
    c.loss = 1.0;
    EXPECT_THROW(Workload{c}, std::invalid_argument);
}

TEST(WorkloadEncap, SkewDelaysTheResponderAndKeepsEveryFlowInOrder) {
    WorkloadConfig c = small();
    c.skew_ns = 50'000;  // 50 us
    c.warmup_ns_per_pkt = 0;
    c.steady_ns_per_pkt = 0;
    Workload w(c);
    std::vector<uint8_t> f(Workload::max_frame);
    uint64_t t = 1'000'000'000'000ull, ts;
    std::map<uint64_t, uint32_t> syn_time;  // client port+addr of a SYN -> when it left (us)
    unsigned waits = 0, synacks = 0;
    ParseOptions po;
    auto step = [&](uint64_t max_packets) {
        for (uint64_t n = 0; n < max_packets;) {
            w.set_time_ns(t);
            const unsigned len = w.next(f.data(), ts);
            t += 1000;  // 1 us a packet
            if (len == 0) {
                if (!w.waiting()) return;
                waits++;
                continue;
            }
            n++;
            ParsedPacket pp;
            ParseError err;
            ASSERT_EQ(parse_packet(f.data(), len, po, pp, err), PacketClass::tcp);
            const bool syn = pp.flags & tcp_flag::syn, ackf = pp.flags & tcp_flag::ack;
            if (syn && !ackf) syn_time[pp.seq] = static_cast<uint32_t>(ts);
            if (syn && ackf) {
                // The SYN-ACK acks the SYN's seq + 1 and is seen at least the skew after it.
                auto it = syn_time.find(pp.ack - 1);
                ASSERT_NE(it, syn_time.end()) << "SYN-ACK before its SYN";
                EXPECT_GE(ts - it->second, 50u);
                synacks++;
            }
        }
    };
    step(UINT64_MAX);  // the warm-up ends once its delayed packets have left
    EXPECT_EQ(w.delayed_now(), 0u);
    EXPECT_EQ(synacks, c.flows);
    w.begin_steady();
    step(20000);
    w.begin_drain();
    step(UINT64_MAX);
    EXPECT_EQ(w.phase(), Workload::Phase::done);
    EXPECT_EQ(w.delayed_now(), 0u);
    EXPECT_EQ(w.inflight_now(), 0u);
    EXPECT_GT(waits, 0u);
    EXPECT_GT(synacks, c.flows + 500);  // lifecycles opened new flows in the steady phase
}

}  // namespace
