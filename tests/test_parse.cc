// Parser tests: every header and encapsulation built by PacketBuilder, then every valid frame cut
// at every length and a few thousand mutated copies. Buffers handed to the parser are heap
// allocations of exactly the frame's length, so that ASan (CI) reports any read past caplen.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "pipeline/parse.hh"
#include "pipeline/segment.hh"
#include "tests/packet_builder.hh"

namespace closetap {
namespace {

using testing::Ip4;
using testing::Ip6;
using testing::Ipv4Spec;
using testing::Ipv6Spec;
using testing::PacketBuilder;
using testing::TcpSpec;
using testing::ip4;
using testing::ip6;
using testing::mapped;
namespace tcpf = testing::tcpf;

struct Result {
    PacketClass cls;
    ParseError err;
    ParsedPacket p;
};

// Parses the first `len` bytes of `frame` from a heap copy of exactly `len` bytes.
Result parse(const std::vector<uint8_t>& frame, LinkType link = LinkType::ethernet,
             bool verify = false, size_t len = SIZE_MAX) {
    if (len > frame.size()) {
        len = frame.size();
    }
    std::unique_ptr<uint8_t[]> buf(new uint8_t[len]);
    if (len != 0) {
        std::memcpy(buf.get(), frame.data(), len);
    }
    Result r{};
    r.err = ParseError::count_;  // must stay untouched unless the class is error
    r.cls = parse_packet(buf.get(), static_cast<uint32_t>(len),
                         ParseOptions{.link = link, .verify_checksums = verify}, r.p, r.err);
    return r;
}

std::string name_of(ParseError e) {
    return e == ParseError::count_ ? "(none)" : std::string(parse_error_names[size_t(e)]);
}
std::string name_of(PacketClass c) { return std::string(packet_class_names[size_t(c)]); }

// Evaluates `r` once (it usually builds the frame).
#define EXPECT_ERROR(r, e)                                         \
    do {                                                           \
        const Result res_ = (r);                                   \
        EXPECT_EQ(name_of(res_.cls), "error");                     \
        EXPECT_EQ(name_of(res_.err), name_of(ParseError::e));      \
    } while (0)

const Ip4 a4 = ip4(192, 0, 2, 1);
const Ip4 b4 = ip4(198, 51, 100, 7);
const Ip4 outer_a = ip4(172, 16, 0, 1);
const Ip4 outer_b = ip4(172, 16, 0, 2);
const Ip6 a6 = ip6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10});
const Ip6 b6 = ip6({0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x20});
const Ip6 teredo_client = ip6({0x2001, 0, 0x4136, 0xe378, 0x8000, 0x63bf, 0x3fff, 0xfdd2});

TcpSpec data_segment(uint32_t payload = 10) {
    return TcpSpec{.sport = 40000, .dport = 443, .seq = 0x11223344, .ack = 0x55667788,
                   .flags = tcpf::ack | tcpf::psh, .window = 1234, .payload = payload};
}

// --- the valid frames: one per header / encapsulation ---------------------------------------

struct Case {
    std::string name;
    std::vector<uint8_t> frame;
    LinkType link;
    uint32_t encap;
    uint8_t ip_version;
    uint32_t payload;
    uint32_t tcp_hdr_len = 20;
    // A heuristic tunnel (Teredo, GTP, AYIYA): once truncated it may read as plain UDP.
    bool may_degrade = false;
};

std::vector<uint8_t> gre_v1_pptp() {
    // Enhanced GRE: K + S + A, version 1, PPP (with address/control) carrying IPv4.
    std::vector<uint8_t> inner = PacketBuilder().ipv4(a4, b4).tcp(data_segment()).build();
    std::vector<uint8_t> g = {0x30, 0x81, 0x88, 0x0b};
    const uint32_t ppp_len = static_cast<uint32_t>(inner.size() + 4);
    g.push_back(static_cast<uint8_t>(ppp_len >> 8));
    g.push_back(static_cast<uint8_t>(ppp_len));
    g.insert(g.end(), {0x00, 0x07, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0x03, 0x00, 0x21});
    g.insert(g.end(), inner.begin(), inner.end());
    return PacketBuilder().eth().ipv4(Ipv4Spec{.src = outer_a, .dst = outer_b}, 47).raw(g).build();
}

std::vector<Case> valid_cases() {
    const TcpSpec seg = data_segment();
    const Ipv4Spec out4{.src = outer_a, .dst = outer_b};
    const Ipv6Spec out6{.src = b6, .dst = a6};
    const Ipv4Spec in4{.src = a4, .dst = b4};
    const Ipv6Spec in6{.src = a6, .dst = b6};
    using LT = LinkType;
    namespace e = encap;
    std::vector<Case> c;
    auto add = [&](std::string name, const PacketBuilder& b, uint32_t enc, uint8_t v,
                   LT link = LT::ethernet, uint32_t payload = 10) {
        c.push_back(Case{std::move(name), b.build(), link, enc, v, payload});
    };
    add("eth_ipv4", PacketBuilder().eth().ipv4(in4).tcp(seg), 0, 4);
    add("eth_ipv6", PacketBuilder().eth().ipv6(in6).tcp(seg), 0, 6);
    add("odd_payload", PacketBuilder().eth().ipv4(in4).tcp(data_segment(11)), 0, 4,
        LT::ethernet, 11);
    add("ipv4_options",
        PacketBuilder().eth().ipv4(Ipv4Spec{.src = a4, .dst = b4,
                                             .options = {0x94, 0x04, 0, 0, 1, 1, 1, 0}})
            .tcp(seg),
        0, 4);
    {
        TcpSpec syn{.sport = 40000, .dport = 443, .seq = 1, .flags = tcpf::syn,
                    .options = testing::syn_options(7)};
        add("syn_options", PacketBuilder().eth().ipv4(in4).tcp(syn), 0, 4, LT::ethernet, 0);
        c.back().tcp_hdr_len = 40;
    }
    add("vlan", PacketBuilder().eth().vlan(10).ipv4(in4).tcp(seg), e::vlan, 4);
    add("qinq_88a8", PacketBuilder().eth().vlan(100, 0x88a8).vlan(10).ipv6(in6).tcp(seg),
        e::vlan | e::qinq, 6);
    add("qinq_9100", PacketBuilder().eth().vlan(100, 0x9100).vlan(10).ipv4(in4).tcp(seg),
        e::vlan | e::qinq, 4);
    {
        PacketBuilder b;
        b.eth();
        for (int i = 0; i < max_vlan_tags; ++i) {
            b.vlan(static_cast<uint16_t>(i + 1), i == 0 ? 0x88a8 : 0x8100);
        }
        add("vlan_x8", b.ipv4(in4).tcp(seg), e::vlan | e::qinq, 4);
    }
    add("llc_snap", PacketBuilder().eth(100).llc_snap().ipv4(in4).tcp(seg), 0, 4);
    add("mpls_ipv4", PacketBuilder().eth().mpls(16106).ipv4(in4).tcp(seg), e::mpls, 4);
    add("mpls3_ipv6", PacketBuilder().eth().mpls(1).mpls(2).mpls(3).ipv6(in6).tcp(seg), e::mpls,
        6);
    add("vlan_mpls", PacketBuilder().eth().vlan(0).mpls(16106).ipv4(in4).tcp(seg),
        e::vlan | e::mpls, 4);
    add("mpls_pw_eth",
        PacketBuilder().eth().mpls(100).mpls(200).pw_control_word().eth().vlan(5).ipv4(in4)
            .tcp(seg),
        e::mpls | e::vlan, 4);
    add("pbb", PacketBuilder().eth().vlan(4051, 0x88a8).pbb(0x1ebb30).vlan(20).ipv4(in4).tcp(seg),
        e::vlan | e::pbb, 4);
    add("fabricpath", PacketBuilder().fabricpath().eth().ipv4(in4).tcp(seg), e::fabricpath, 4);
    add("fabricpath_ipv6", PacketBuilder().fabricpath().eth().vlan(3).ipv6(in6).tcp(seg),
        e::fabricpath | e::vlan, 6);
    add("pppoe_qinq", PacketBuilder().eth().vlan(0xe78).vlan(0x9aa).pppoe().ipv4(in4).tcp(seg),
        e::vlan | e::qinq | e::pppoe, 4);
    add("pppoe_ipv6", PacketBuilder().eth().pppoe().ipv6(in6).tcp(seg), e::pppoe, 6);
    add("gre_ipv4", PacketBuilder().eth().ipv4(out4).gre().ipv4(in4).tcp(seg), e::gre, 4);
    add("gre_ckszs_ipv6",
        PacketBuilder().eth().ipv4(out4).gre(true, 0xabcd, 77).ipv6(in6).tcp(seg), e::gre, 6);
    add("gre_teb", PacketBuilder().eth().ipv6(out6).gre(false, 9).eth().ipv4(in4).tcp(seg),
        e::gre, 4);
    add("gre_mpls", PacketBuilder().eth().ipv4(out4).gre().mpls(30).ipv4(in4).tcp(seg),
        e::gre | e::mpls, 4);
    add("erspan1", PacketBuilder().eth().ipv4(out4).gre().erspan1().eth().ipv4(in4).tcp(seg),
        e::gre | e::erspan, 4);
    add("erspan2",
        PacketBuilder().eth().ipv4(out4).gre(false, {}, 5).erspan2().eth().vlan(7).ipv4(in4)
            .tcp(seg),
        e::gre | e::erspan | e::vlan, 4);
    add("erspan3", PacketBuilder().eth().ipv4(out4).gre(false, {}, 5).erspan3().eth().ipv6(in6)
                       .tcp(seg),
        e::gre | e::erspan, 6);
    add("erspan3_platform",
        PacketBuilder().eth().ipv4(out4).gre(false, {}, 5).erspan3(true).eth().ipv4(in4).tcp(seg),
        e::gre | e::erspan, 4);
    add("erspan3_ip", PacketBuilder().eth().ipv4(out4).gre().erspan3(false, 2).ipv4(in4).tcp(seg),
        e::gre | e::erspan, 4);
    add("aruba_wlan", PacketBuilder().eth().vlan(22).ipv4(out4).gre().wlan().ipv4(in4).tcp(seg),
        e::vlan | e::gre | e::wlan, 4);
    add("aruba_amsdu", PacketBuilder().eth().ipv4(out4).gre().wlan(true, 0x8200).ipv4(in4)
                           .tcp(seg),
        e::gre | e::wlan, 4);
    c.push_back(Case{"gre_v1_pptp", gre_v1_pptp(), LT::ethernet, e::gre, 4, 10});
    add("vxlan", PacketBuilder().eth().ipv4(out4).vxlan().eth().ipv4(in4).tcp(seg), e::vxlan, 4);
    add("vxlan_ipv6_outer",
        PacketBuilder().eth().vlan(9).ipv6(out6).vxlan(7).eth().vlan(8).ipv6(in6).tcp(seg),
        e::vxlan | e::vlan, 6);
    add("geneve_opts", PacketBuilder().eth().ipv4(out4).geneve(19).eth().ipv4(in4).tcp(seg),
        e::geneve, 4);
    add("geneve_ip", PacketBuilder().eth().ipv4(out4).geneve(2).ipv6(in6).tcp(seg), e::geneve, 6);
    add("ipip", PacketBuilder().eth().ipv4(out4).ipv4(in4).tcp(seg), e::ip_in_ip, 4);
    add("6in4", PacketBuilder().eth().ipv4(out4).ipv6(in6).tcp(seg), e::ip_in_ip, 6);
    add("4in6", PacketBuilder().eth().ipv6(out6).ipv4(in4).tcp(seg), e::ip_in_ip, 4);
    add("6in6", PacketBuilder().eth().ipv6(out6).ipv6(in6).tcp(seg), e::ip_in_ip, 6);
    add("gtp", PacketBuilder().eth().ipv4(out4).gtp().ipv4(in4).tcp(seg), e::gtp, 4);
    add("gtp_ext", PacketBuilder().eth().ipv4(out4).gtp(true).ipv6(in6).tcp(seg), e::gtp, 6);
    add("teredo", PacketBuilder().eth().ipv4(out4).teredo().ipv6(teredo_client, b6).tcp(seg),
        e::teredo, 6);
    add("teredo_origin",
        PacketBuilder().eth().ipv4(out4).teredo(true).ipv6(teredo_client, b6).tcp(seg),
        e::teredo, 6);
    add("teredo_relay_port",
        PacketBuilder().eth().ipv4(out4).teredo(false, 32900).ipv6(b6, teredo_client).tcp(seg),
        e::teredo, 6);
    add("ayiya", PacketBuilder().eth().ipv4(out4).ayiya().ipv6(in6).tcp(seg), e::ayiya, 6);
    add("ipv6_ext_chain",
        PacketBuilder().eth().ipv6(in6).v6_opts(0).v6_routing(4, 1, {b6, a6}).v6_opts(60, 16)
            .ah().tcp(seg),
        0, 6);
    add("ipv6_routing0", PacketBuilder().eth().ipv6(in6).v6_routing(0, 2, {a6, b6}).tcp(seg), 0,
        6);
    add("ipv6_atomic_frag", PacketBuilder().eth().ipv6(in6).v6_frag(0, false).tcp(seg), 0, 6);
    add("ipv4_ah", PacketBuilder().eth().ipv4(in4).ah(16).tcp(seg), 0, 4);
    add("null_ipv4", PacketBuilder().null_link(2).ipv4(in4).tcp(seg), 0, 4, LT::null_bsd);
    add("null_ipv6_24", PacketBuilder().null_link(24).ipv6(in6).tcp(seg), 0, 6, LT::null_bsd);
    add("null_ipv6_28", PacketBuilder().null_link(28).ipv6(in6).tcp(seg), 0, 6, LT::null_bsd);
    add("null_ipv6_30_be", PacketBuilder().null_link(30, true).ipv6(in6).tcp(seg), 0, 6,
        LT::null_bsd);
    add("loop_ipv4", PacketBuilder().loop_link(2).ipv4(in4).tcp(seg), 0, 4, LT::loop);
    add("loop_ipv6", PacketBuilder().loop_link(28).ipv6(in6).tcp(seg), 0, 6, LT::loop);
    add("raw_ipv4", PacketBuilder().ipv4(in4).tcp(seg), 0, 4, LT::raw);
    add("raw_ipv6", PacketBuilder().ipv6(in6).tcp(seg), 0, 6, LT::raw);
    add("link_ipv4", PacketBuilder().ipv4(in4).tcp(seg), 0, 4, LT::ipv4);
    add("link_ipv6", PacketBuilder().ipv6(in6).tcp(seg), 0, 6, LT::ipv6);
    add("sll", PacketBuilder().sll().ipv4(in4).tcp(seg), 0, 4, LT::linux_sll);
    add("sll_vlan", PacketBuilder().sll().vlan(4).ipv6(in6).tcp(seg), e::vlan, 6, LT::linux_sll);
    add("sll2", PacketBuilder().sll2().ipv6(in6).tcp(seg), 0, 6, LT::linux_sll2);
    add("everything",
        PacketBuilder().eth().vlan(1).mpls(5).pw_control_word().eth().ipv4(out4)
            .gre(false, {}, 1).erspan2().eth().ipv6(out6).vxlan().eth().vlan(2).ipv4(in4)
            .tcp(seg),
        e::vlan | e::mpls | e::gre | e::erspan | e::vxlan, 4);
    for (Case& k : c) {
        k.may_degrade = (k.encap & (e::teredo | e::gtp | e::ayiya)) != 0;
    }
    return c;
}

class ValidFrame : public ::testing::TestWithParam<Case> {};

// Every valid frame parses as TCP with the right fields, encap bits and lengths, and its
// checksums (computed by the builder's own, independent code) verify.
TEST_P(ValidFrame, ParsesAsTcp) {
    const Case& k = GetParam();
    for (bool verify : {false, true}) {
        Result r = parse(k.frame, k.link, verify);
        ASSERT_EQ(name_of(r.cls), "tcp") << k.name << ": " << name_of(r.err);
        EXPECT_EQ(r.err, ParseError::count_);
        EXPECT_EQ(r.p.encap, k.encap) << k.name;
        EXPECT_EQ(r.p.ip_version, k.ip_version);
        EXPECT_EQ(r.p.sport, 40000);
        EXPECT_EQ(r.p.payload_len, k.payload);
        EXPECT_EQ(r.p.payload_offset, k.frame.size() - k.payload);
        EXPECT_EQ(r.p.payload_caplen, k.payload);
        EXPECT_FALSE(r.p.checksum_bad) << k.name << " verify=" << verify;
        if (k.payload != 0) {
            EXPECT_EQ(r.p.dport, 443);
            EXPECT_EQ(r.p.seq, 0x11223344u);
            EXPECT_EQ(r.p.ack, 0x55667788u);
            EXPECT_EQ(r.p.flags, tcpf::ack | tcpf::psh);
            EXPECT_EQ(r.p.window, 1234);
            EXPECT_EQ(r.p.wscale, 0xff);
            EXPECT_EQ(k.frame[r.p.payload_offset], 'a');
        }
    }
}

// Cut at every length: below the end of the fixed TCP header the parser must say why (a
// truncated_* error; heuristic tunnels may fall back to non_tcp); from there on it is TCP with
// the captured payload clamped. ASan sees the exact-size heap copies.
TEST_P(ValidFrame, EveryTruncation) {
    const Case& k = GetParam();
    const Result full = parse(k.frame, k.link);
    ASSERT_EQ(full.cls, PacketClass::tcp);
    const size_t tcp_off = full.p.payload_offset - k.tcp_hdr_len;
    for (size_t len = 0; len < k.frame.size(); ++len) {
        SCOPED_TRACE(k.name + " cut at " + std::to_string(len));
        for (bool verify : {false, true}) {
            Result r = parse(k.frame, k.link, verify, len);
            if (len < tcp_off + 20) {
                ASSERT_NE(r.cls, PacketClass::tcp);
                if (r.cls == PacketClass::error) {
                    EXPECT_EQ(name_of(r.err).rfind("truncated_", 0), 0u) << name_of(r.err);
                } else {
                    EXPECT_TRUE(k.may_degrade) << name_of(r.cls);
                    EXPECT_EQ(r.cls, PacketClass::non_tcp);
                }
                continue;
            }
            ASSERT_EQ(name_of(r.cls), "tcp") << name_of(r.err);
            EXPECT_EQ(r.p.seq, full.p.seq);
            EXPECT_EQ(r.p.payload_len, full.p.payload_len);
            EXPECT_EQ(r.p.payload_offset, full.p.payload_offset);
            const size_t want = len > full.p.payload_offset ? len - full.p.payload_offset : 0;
            EXPECT_EQ(r.p.payload_caplen, want);
            EXPECT_FALSE(r.p.checksum_bad);  // incomplete segments are not checked
            if (len >= full.p.payload_offset) {
                EXPECT_EQ(r.p.wscale, full.p.wscale);
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Frames, ValidFrame, ::testing::ValuesIn(valid_cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

// Random corruption of the valid frames under every link type: no over-read (ASan), and the
// outputs stay within the buffer whatever the bytes say.
TEST(ParseFuzz, MutatedFramesKeepInvariants) {
    std::mt19937 rng(12345);
    const LinkType links[] = {LinkType::ethernet, LinkType::null_bsd, LinkType::loop,
                              LinkType::raw,      LinkType::ipv4,     LinkType::ipv6,
                              LinkType::linux_sll, LinkType::linux_sll2};
    size_t tcp = 0;
    size_t total = 0;
    for (const Case& k : valid_cases()) {
        for (int round = 0; round < 200; ++round) {
            std::vector<uint8_t> f = k.frame;
            const int flips = 1 + static_cast<int>(rng() % 4);
            for (int i = 0; i < flips; ++i) {
                f[rng() % f.size()] = static_cast<uint8_t>(rng());
            }
            const size_t len = rng() % 2 ? f.size() : rng() % (f.size() + 1);
            for (LinkType link : links) {
                Result r = parse(f, link, rng() % 2 == 0, len);
                ++total;
                ASSERT_LT(static_cast<size_t>(r.cls), static_cast<size_t>(PacketClass::count_));
                if (r.cls == PacketClass::error) {
                    ASSERT_LT(static_cast<size_t>(r.err), static_cast<size_t>(ParseError::count_));
                } else {
                    ASSERT_EQ(r.err, ParseError::count_);
                }
                if (r.cls == PacketClass::tcp) {
                    ++tcp;
                    ASSERT_LE(r.p.payload_caplen, r.p.payload_len);
                    if (r.p.payload_caplen != 0) {
                        ASSERT_LE(r.p.payload_offset + size_t{r.p.payload_caplen}, len);
                    }
                    ASSERT_TRUE(r.p.ip_version == 4 || r.p.ip_version == 6);
                    ASSERT_LE(r.p.vlan_depth, max_vlan_tags);
                }
            }
        }
    }
    EXPECT_GT(tcp, total / 20);  // the mutations still reach TCP often enough to mean something
}

// --- fields --------------------------------------------------------------------------------

TEST(ParseTcp, FieldsIpv4) {
    auto f = PacketBuilder().eth().ipv4(a4, b4).tcp(data_segment(100)).build();
    Result r = parse(f);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.src, mapped(a4));
    EXPECT_EQ(r.p.dst, mapped(b4));
    EXPECT_EQ(r.p.ip_version, 4);
    EXPECT_EQ(r.p.sport, 40000);
    EXPECT_EQ(r.p.dport, 443);
    EXPECT_EQ(r.p.seq, 0x11223344u);
    EXPECT_EQ(r.p.ack, 0x55667788u);
    EXPECT_EQ(r.p.window, 1234);
    EXPECT_EQ(r.p.flags, tcpf::ack | tcpf::psh);
    EXPECT_EQ(r.p.payload_len, 100u);
    EXPECT_EQ(r.p.payload_offset, 54);
    EXPECT_EQ(r.p.payload_caplen, 100);
    EXPECT_EQ(r.p.vlan_depth, 0);
    EXPECT_EQ(r.p.encap, 0u);
}

TEST(ParseTcp, FieldsIpv6) {
    auto f = PacketBuilder().eth().ipv6(a6, b6).tcp(data_segment(3)).build();
    Result r = parse(f);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.src, a6);
    EXPECT_EQ(r.p.dst, b6);
    EXPECT_EQ(r.p.ip_version, 6);
    EXPECT_EQ(r.p.payload_offset, 74);
    EXPECT_EQ(r.p.payload_len, 3u);
}

TEST(ParseTcp, InnermostAddressesWin) {
    auto f = PacketBuilder().eth().ipv6(b6, a6).vxlan().eth().ipv4(a4, b4).tcp().build();
    Result r = parse(f);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.src, mapped(a4));
    EXPECT_EQ(r.p.dst, mapped(b4));
    EXPECT_EQ(r.p.ip_version, 4);
}

TEST(ParseTcp, VlanDepthCountsAllLayers) {
    auto f = PacketBuilder().eth().vlan(1).vlan(2).ipv4().vxlan().eth().vlan(3).ipv4().tcp()
                 .build();
    Result r = parse(f);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.vlan_depth, 3);
    EXPECT_EQ(r.p.encap, encap::vlan | encap::qinq | encap::vxlan);
}

TEST(ParseTcp, WindowScaleOnSyn) {
    for (uint8_t ws : {0, 7, 14}) {
        auto f = PacketBuilder().eth().ipv4().tcp({.flags = tcpf::syn,
                                                   .options = testing::syn_options(ws)}).build();
        Result r = parse(f);
        ASSERT_EQ(r.cls, PacketClass::tcp);
        EXPECT_EQ(r.p.wscale, ws);
        EXPECT_EQ(r.p.payload_offset, 14 + 20 + 40);
    }
    // SYN-ACK too.
    auto sa = PacketBuilder().eth().ipv6().tcp({.flags = tcpf::syn | tcpf::ack,
                                                .options = {1, 1, 1, 3, 3, 9, 0, 0}})
                  .build();
    EXPECT_EQ(parse(sa).p.wscale, 9);
}

TEST(ParseTcp, WindowScaleClampedTo14) {
    auto f = PacketBuilder().eth().ipv4().tcp({.flags = tcpf::syn, .options = {3, 3, 200, 0}})
                 .build();
    EXPECT_EQ(parse(f).p.wscale, 14);
}

// tcp_window_scale tests the common stacks' layouts before it walks the options: on those
// layouts, on every truncation of them and on every one-byte change to them it must answer as
// the RFC 7323 walk does (written here apart, as the oracle).
TEST(ParseTcp, WindowScaleLayoutsAnswerAsTheWalk) {
    auto walk = [](const std::vector<uint8_t>& h, uint32_t end) -> uint8_t {
        for (uint32_t i = 20; i < end && h[i] != 0;) {
            if (h[i] == 1) {
                i++;
            } else if (i + 1 >= end || h[i + 1] < 2 || i + h[i + 1] > end) {
                break;
            } else if (h[i] == 3 && h[i + 1] == 3) {
                return std::min<uint8_t>(h[i + 2], 14);
            } else {
                i += h[i + 1];
            }
        }
        return 0xff;
    };
    const std::vector<std::vector<uint8_t>> layouts = {
        testing::syn_options(7),                          // Linux
        {2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2},       // Windows
        {2, 4, 0x05, 0xb4, 1, 3, 3, 6, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 4, 2, 0, 0},  // macOS
    };
    const uint8_t values[] = {0, 1, 2, 3, 4, 6, 8, 10, 14, 15, 0xb4, 0xff};
    unsigned checked = 0;
    for (const auto& opts : layouts) {
        std::vector<uint8_t> h(20, 0);
        h.insert(h.end(), opts.begin(), opts.end());
        for (size_t at = 20; at <= h.size(); at++) {  // at == size: the layout unchanged
            for (uint8_t v : values) {
                std::vector<uint8_t> m = h;
                if (at < m.size()) m[at] = v;
                for (uint32_t end = 20; end <= m.size(); end++, checked++)
                    ASSERT_EQ(tcp_window_scale(m.data(), end), walk(m, end))
                        << "layout of " << opts.size() << " bytes, byte " << at << " = " << +v
                        << ", end " << end;
            }
        }
    }
    EXPECT_GT(checked, 10000u);
    std::vector<uint8_t> linux_syn(20, 0);
    for (uint8_t b : testing::syn_options(9)) linux_syn.push_back(b);
    EXPECT_EQ(tcp_window_scale(linux_syn.data(), 40), 9);
}

TEST(ParseTcp, WindowScaleAbsentOrIgnored) {
    // No window scale option on a SYN.
    auto none = PacketBuilder().eth().ipv4().tcp({.flags = tcpf::syn,
                                                  .options = {2, 4, 5, 0xb4}}).build();
    EXPECT_EQ(parse(none).p.wscale, 0xff);
    // Not a SYN: the option means nothing (RFC 7323) and is not reported.
    auto ack = PacketBuilder().eth().ipv4().tcp({.flags = tcpf::ack,
                                                 .options = {1, 3, 3, 7}}).build();
    EXPECT_EQ(parse(ack).p.wscale, 0xff);
    // Malformed option list (length 0 / length past the header) stops the walk.
    auto zero = PacketBuilder().eth().ipv4().tcp({.flags = tcpf::syn,
                                                  .options = {8, 0, 3, 3, 7, 0, 0, 0}}).build();
    EXPECT_EQ(parse(zero).p.wscale, 0xff);
    auto past = PacketBuilder().eth().ipv4().tcp({.flags = tcpf::syn,
                                                  .options = {1, 1, 8, 10}, .payload = 8}).build();
    Result r = parse(past);
    EXPECT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.wscale, 0xff);
    // End of option list before the window scale.
    auto eol = PacketBuilder().eth().ipv4().tcp({.flags = tcpf::syn,
                                                 .options = {0, 3, 3, 7}}).build();
    EXPECT_EQ(parse(eol).p.wscale, 0xff);
}

TEST(ParseTcp, OptionsCutBySnapLength) {
    auto f = PacketBuilder().eth().ipv4().tcp({.flags = tcpf::syn,
                                               .options = testing::syn_options(7)}).build();
    // The window scale is the last option: 3 bytes short of it, the SYN still parses.
    Result r = parse(f, LinkType::ethernet, false, f.size() - 3);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.wscale, 0xff);
    EXPECT_EQ(r.p.payload_offset, 74);
    EXPECT_EQ(r.p.payload_caplen, 0);
    EXPECT_EQ(r.p.flags, tcpf::syn);
}

// --- lengths -------------------------------------------------------------------------------

TEST(ParseLengths, EthernetPaddingIsNotPayload) {
    auto f = PacketBuilder().eth().ipv4().tcp({.flags = tcpf::ack}).pad_to(60).build();
    ASSERT_EQ(f.size(), 60u);
    Result r = parse(f, LinkType::ethernet, true);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.payload_len, 0u);
    EXPECT_EQ(r.p.payload_caplen, 0);
    EXPECT_FALSE(r.p.checksum_bad);  // the padding is not summed either

    auto two = PacketBuilder().eth().vlan(3).ipv4().tcp({.payload = 2}).pad_to(64).build();
    r = parse(two, LinkType::ethernet, true);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.payload_len, 2u);
    EXPECT_EQ(r.p.payload_caplen, 2);
    EXPECT_FALSE(r.p.checksum_bad);

    // Inner frames are padded too (VXLAN of a small segment).
    auto inner = PacketBuilder().eth().ipv4().tcp().pad_to(60).build();
    auto outer = PacketBuilder().eth().ipv4().vxlan().raw(inner).build();
    r = parse(outer, LinkType::ethernet, true);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.payload_len, 0u);
    EXPECT_EQ(r.p.payload_caplen, 0);
    EXPECT_FALSE(r.p.checksum_bad);
}

TEST(ParseLengths, SnapLengthShorterThanIpLength) {
    auto f = PacketBuilder().eth().ipv6().tcp({.payload = 1000}).build();
    Result r = parse(f, LinkType::ethernet, true, 96);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.payload_len, 1000u);
    EXPECT_EQ(r.p.payload_offset, 74);
    EXPECT_EQ(r.p.payload_caplen, 96 - 74);
    EXPECT_FALSE(r.p.checksum_bad);
}

TEST(ParseLengths, TotalLengthBeyondCaplen) {
    // The header claims more than was captured (or sent): a snapped packet, not an error; the
    // payload length comes from the header, the captured part from caplen.
    auto f = PacketBuilder().eth().ipv4({.total_len = 1500}).tcp({.payload = 4}).build();
    Result r = parse(f, LinkType::ethernet, true);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.payload_len, 1500u - 40);
    EXPECT_EQ(r.p.payload_caplen, 4);
    EXPECT_FALSE(r.p.checksum_bad);  // incomplete: not verified
}

TEST(ParseLengths, TsoZeroTotalLength) {
    auto f = PacketBuilder().eth().ipv4({.total_len = 0}).tcp({.payload = 3000}).build();
    Result r = parse(f);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.payload_len, 3000u);
    auto g = PacketBuilder().eth().ipv6({.payload_len = 0}).tcp({.payload = 3000}).build();
    r = parse(g);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.payload_len, 3000u);
}

TEST(ParseLengths, InnerLengthBeyondOuterIsBad) {
    auto inner4 = PacketBuilder().eth().ipv4().gre().ipv4({.total_len = 400}).tcp().build();
    EXPECT_ERROR(parse(inner4), ipv4_bad_header);
    auto inner6 = PacketBuilder().eth().ipv4().ipv6({.payload_len = 400}).tcp().build();
    EXPECT_ERROR(parse(inner6), ipv6_bad_header);
}

// --- corrupted headers ---------------------------------------------------------------------

TEST(ParseErrors, Ipv4BadHeader) {
    auto ihl4 = PacketBuilder().eth().ipv4({.ihl = 4}).tcp().build();
    EXPECT_ERROR(parse(ihl4), ipv4_bad_header);
    auto ihl0 = PacketBuilder().eth().ipv4({.ihl = 0}).tcp().build();
    EXPECT_ERROR(parse(ihl0), ipv4_bad_header);
    // IHL 15 (60 bytes) but total length 40.
    auto ihl15 = PacketBuilder().eth().ipv4({.ihl = 15}).tcp({.payload = 30}).build();
    ihl15[16] = 0;
    ihl15[17] = 40;
    EXPECT_ERROR(parse(ihl15), ipv4_bad_header);
    // IHL 15 with fewer than 60 bytes captured: truncated.
    auto ihl15s = PacketBuilder().eth().ipv4({.ihl = 15}).tcp().build();
    EXPECT_ERROR(parse(ihl15s), truncated_ipv4);
    auto tot = PacketBuilder().eth().ipv4({.total_len = 19}).tcp().build();
    EXPECT_ERROR(parse(tot), ipv4_bad_header);
    auto ver = PacketBuilder().eth().ipv4().tcp().build();
    ver[14] = 0x65;
    EXPECT_ERROR(parse(ver), ipv4_bad_header);
    EXPECT_ERROR(parse(PacketBuilder().ipv6().tcp().build(), LinkType::ipv4), ipv4_bad_header);
}

TEST(ParseErrors, Ipv6BadHeader) {
    EXPECT_ERROR(parse(PacketBuilder().ipv4().tcp().build(), LinkType::ipv6), ipv6_bad_header);
    // An extension header running past the payload length.
    auto f = PacketBuilder().eth().ipv6().v6_opts(60).tcp().build();
    f[14 + 40 + 1] = 200;
    EXPECT_ERROR(parse(f), ipv6_bad_header);
}

TEST(ParseErrors, Ipv6ExtensionChainBound) {
    PacketBuilder ok;
    ok.eth().ipv6();
    for (int i = 0; i < max_ipv6_ext_headers; ++i) {
        ok.v6_opts(60);
    }
    EXPECT_EQ(parse(ok.tcp().build()).cls, PacketClass::tcp);

    PacketBuilder bad;
    bad.eth().ipv6();
    for (int i = 0; i < max_ipv6_ext_headers + 1; ++i) {
        bad.v6_opts(60);
    }
    EXPECT_ERROR(parse(bad.tcp().build()), ipv6_too_many_ext);

    // A huge chain (a DoS-shaped packet) stops at the bound, not at the end of the buffer.
    PacketBuilder huge;
    huge.eth().ipv6();
    for (int i = 0; i < 1000; ++i) {
        huge.v6_opts(60);
    }
    EXPECT_ERROR(parse(huge.tcp().build()), ipv6_too_many_ext);
}

TEST(ParseErrors, TcpBadOffset) {
    auto small = PacketBuilder().eth().ipv4().tcp({.doff = 4}).build();
    EXPECT_ERROR(parse(small), tcp_bad_offset);
    auto zero = PacketBuilder().eth().ipv6().tcp({.doff = 0}).build();
    EXPECT_ERROR(parse(zero), tcp_bad_offset);
    // 60-byte header in a 30-byte segment.
    auto big = PacketBuilder().eth().ipv4().tcp({.payload = 10, .doff = 15}).build();
    EXPECT_ERROR(parse(big), tcp_bad_offset);
    // Offset fits the capture (Ethernet padding) but not the IP datagram.
    auto padded = PacketBuilder().eth().ipv4().tcp({.doff = 6}).pad_to(80).build();
    EXPECT_ERROR(parse(padded), tcp_bad_offset);
    // The IP length leaves no room for a TCP header at all.
    auto tiny = PacketBuilder().eth().ipv4({.total_len = 30}).tcp().build();
    EXPECT_ERROR(parse(tiny), tcp_bad_offset);
}

TEST(ParseErrors, VlanBound) {
    PacketBuilder b;
    b.eth();
    for (int i = 0; i < max_vlan_tags + 1; ++i) {
        b.vlan(1);
    }
    EXPECT_ERROR(parse(b.ipv4().tcp().build()), too_many_vlans);
    // The budget is shared by all layers.
    PacketBuilder c;
    c.eth().vlan(1).vlan(2).vlan(3).vlan(4).ipv4().vxlan().eth();
    for (int i = 0; i < 5; ++i) {
        c.vlan(1);
    }
    EXPECT_ERROR(parse(c.ipv4().tcp().build()), too_many_vlans);
}

TEST(ParseErrors, MplsLabelBound) {
    PacketBuilder ok;
    ok.eth();
    for (int i = 0; i < max_mpls_labels; ++i) {
        ok.mpls(static_cast<uint32_t>(i + 16));
    }
    EXPECT_EQ(parse(ok.ipv4().tcp().build()).cls, PacketClass::tcp);
    PacketBuilder bad;
    bad.eth();
    for (int i = 0; i < max_mpls_labels + 1; ++i) {
        bad.mpls(static_cast<uint32_t>(i + 16));
    }
    EXPECT_ERROR(parse(bad.ipv4().tcp().build()), too_many_mpls_labels);
}

TEST(ParseErrors, LayerBound) {
    auto nested = [](int n) {
        PacketBuilder b;
        b.eth().ipv4();
        for (int i = 0; i < n; ++i) {
            b.ipv4();
        }
        return b.tcp().build();
    };
    Result r = parse(nested(max_encap_layers));
    EXPECT_EQ(r.cls, PacketClass::tcp);
    EXPECT_EQ(r.p.encap, encap::ip_in_ip);
    EXPECT_ERROR(parse(nested(max_encap_layers + 1)), too_many_layers);
    // Mixed tunnels count against the same budget.
    PacketBuilder b;
    b.eth();
    for (int i = 0; i < max_encap_layers / 2 + 1; ++i) {
        b.ipv4().gre().eth().ipv4().vxlan().eth();
    }
    EXPECT_ERROR(parse(b.ipv4().tcp().build()), too_many_layers);
}

TEST(ParseErrors, HeadersTooLong) {
    // Five IPv6 layers with eight 2 KiB destination options each: the TCP header starts past
    // 65535, where payload_offset cannot point. Payload length 0 (jumbo/TSO) because the
    // outer layers' lengths do not fit 16 bits.
    PacketBuilder b;
    b.eth();
    for (int layer = 0; layer < 5; ++layer) {
        b.ipv6({.payload_len = 0});
        for (int i = 0; i < max_ipv6_ext_headers; ++i) {
            b.v6_opts(60, 2048);
        }
    }
    auto f = b.tcp().build();
    ASSERT_GT(f.size(), 65535u);
    EXPECT_ERROR(parse(f), headers_too_long);
}

TEST(ParseErrors, TunnelBadHeaders) {
    // GRE with the routing bit (RFC 1701), and GRE version 2.
    auto gre = PacketBuilder().eth().ipv4().gre().ipv4().tcp().build();
    auto routing = gre;
    routing[34] |= 0x40;
    EXPECT_ERROR(parse(routing), tunnel_bad_header);
    auto v2 = gre;
    v2[35] |= 0x02;
    EXPECT_ERROR(parse(v2), tunnel_bad_header);
    // Geneve version 1.
    auto gnv = PacketBuilder().eth().ipv4().geneve(0, 1).eth().ipv4().tcp().build();
    EXPECT_ERROR(parse(gnv), tunnel_bad_header);
    // ERSPAN II header with version 2 / ERSPAN III with version 1.
    auto e2 = PacketBuilder().eth().ipv4().gre(false, {}, 1).erspan2().eth().ipv4().tcp().build();
    e2[14 + 20 + 8] = 0x20;
    EXPECT_ERROR(parse(e2), tunnel_bad_header);
    auto e3 = PacketBuilder().eth().ipv4().gre().erspan3().eth().ipv4().tcp().build();
    e3[14 + 20 + 4] = 0x10;
    EXPECT_ERROR(parse(e3), tunnel_bad_header);
    // PPPoE with a bad version/type.
    auto pppoe = PacketBuilder().eth().pppoe().ipv4().tcp().build();
    pppoe[14] = 0x21;
    EXPECT_ERROR(parse(pppoe), tunnel_bad_header);
}

TEST(ParseErrors, UnsupportedLink) {
    auto f = PacketBuilder().eth().ipv4().tcp().build();
    EXPECT_ERROR(parse(f, static_cast<LinkType>(999)), unsupported_link);
}

TEST(ParseErrors, EmptyAndNull) {
    ParsedPacket p;
    ParseError e = ParseError::count_;
    EXPECT_EQ(parse_packet(nullptr, 0, {}, p, e), PacketClass::error);
    EXPECT_EQ(e, ParseError::truncated_link);
    EXPECT_ERROR(parse({}, LinkType::raw), truncated_link);
    EXPECT_ERROR(parse({}, LinkType::ipv6), truncated_ipv6);
}

// --- classes other than tcp ----------------------------------------------------------------

TEST(ParseClasses, NonIp) {
    auto arp = PacketBuilder().eth(0x0806).raw(std::vector<uint8_t>(28, 1)).build();
    EXPECT_EQ(parse(arp).cls, PacketClass::non_ip);
    auto lldp = PacketBuilder().eth(0x88cc).raw(std::vector<uint8_t>(40, 2)).build();
    EXPECT_EQ(parse(lldp).cls, PacketClass::non_ip);
    auto stp = PacketBuilder().eth(38).raw({0x42, 0x42, 0x03, 0, 0, 0, 0, 0, 0, 0}).build();
    EXPECT_EQ(parse(stp).cls, PacketClass::non_ip);
    auto tagged_arp = PacketBuilder().eth().vlan(5).raw({}).build();
    tagged_arp[16] = 0x08;
    tagged_arp[17] = 0x06;
    tagged_arp.resize(60);
    Result r = parse(tagged_arp);
    EXPECT_EQ(r.cls, PacketClass::non_ip);
    EXPECT_EQ(r.p.encap, encap::vlan);
    // Non-IP inside a tunnel: the encapsulation is still reported.
    auto vx = PacketBuilder().eth().ipv4().vxlan().eth(0x0806).raw(std::vector<uint8_t>(28))
                  .build();
    r = parse(vx);
    EXPECT_EQ(r.cls, PacketClass::non_ip);
    EXPECT_EQ(r.p.encap, encap::vxlan);
    auto lcp = PacketBuilder().eth().pppoe(1, 0xc021).raw({1, 1, 0, 4}).build();
    EXPECT_EQ(parse(lcp).cls, PacketClass::non_ip);
    auto af = PacketBuilder().null_link(7).ipv4().tcp().build();
    EXPECT_EQ(parse(af, LinkType::null_bsd).cls, PacketClass::non_ip);
    auto raw = PacketBuilder().raw({0x50, 0, 0, 0}).build();
    EXPECT_EQ(parse(raw, LinkType::raw).cls, PacketClass::non_ip);
    auto mpls_other = PacketBuilder().eth().mpls(3).raw({0x10, 0, 0, 0}).build();
    EXPECT_EQ(parse(mpls_other).cls, PacketClass::non_ip);
    auto netlink = PacketBuilder().sll(0x0800).ipv4().tcp().build();
    netlink[2] = 0x03;  // ARPHRD_NETLINK (824)
    netlink[3] = 0x38;
    EXPECT_EQ(parse(netlink, LinkType::linux_sll).cls, PacketClass::non_ip);
    // Protected 802.11 frame in Aruba GRE.
    auto wl = PacketBuilder().eth().ipv4().gre().wlan().ipv4().tcp().build();
    wl[14 + 20 + 4 + 1] |= 0x40;
    EXPECT_EQ(parse(wl).cls, PacketClass::non_ip);
}

TEST(ParseClasses, NonTcp) {
    auto udp = PacketBuilder().eth().ipv4().udp(5353, 53).raw(std::vector<uint8_t>(20)).build();
    Result r = parse(udp);
    EXPECT_EQ(r.cls, PacketClass::non_tcp);
    EXPECT_EQ(r.p.ip_version, 4);
    auto icmp = PacketBuilder().eth().ipv4({}, 1).raw(std::vector<uint8_t>(8)).build();
    EXPECT_EQ(parse(icmp).cls, PacketClass::non_tcp);
    auto icmp6 = PacketBuilder().eth().ipv6({}, 58).raw(std::vector<uint8_t>(8)).build();
    EXPECT_EQ(parse(icmp6).cls, PacketClass::non_tcp);
    auto esp = PacketBuilder().eth().ipv6().v6_opts(0).esp().build();
    EXPECT_EQ(parse(esp).cls, PacketClass::non_tcp);
    auto nonext = PacketBuilder().eth().ipv6().v6_opts(60).build();
    EXPECT_EQ(parse(nonext).cls, PacketClass::non_tcp);
    // UDP on a tunnel port that is not a tunnel packet.
    auto gtp_echo = PacketBuilder().eth().ipv4().udp(2152, 2152)
                        .raw({0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0}).build();
    EXPECT_EQ(parse(gtp_echo).cls, PacketClass::non_tcp);
    auto teredo_rs = PacketBuilder().eth().ipv4().udp(3544, 3544)
                         .raw(std::vector<uint8_t>(48, 0x60)).build();
    EXPECT_EQ(parse(teredo_rs).cls, PacketClass::non_tcp);
    // IPv6 in random UDP without a Teredo address is left alone.
    auto v6udp = PacketBuilder().eth().ipv4().udp(1000, 2000).ipv6(a6, b6).tcp().build();
    r = parse(v6udp);
    EXPECT_EQ(r.cls, PacketClass::non_tcp);
    EXPECT_EQ(r.p.encap, 0u);
}

TEST(ParseClasses, Fragments) {
    auto mf = PacketBuilder().eth().ipv4({.frag = 0x2000}).tcp().build();
    EXPECT_EQ(parse(mf).cls, PacketClass::ip_fragment);
    auto off = PacketBuilder().eth().ipv4({.frag = 0x00b9}).raw(std::vector<uint8_t>(20)).build();
    Result r = parse(off);
    EXPECT_EQ(r.cls, PacketClass::ip_fragment);
    EXPECT_EQ(r.p.src, mapped(ip4(10, 0, 0, 1)));
    auto df = PacketBuilder().eth().ipv4({.frag = 0x4000}).tcp().build();
    EXPECT_EQ(parse(df).cls, PacketClass::tcp);
    auto v6_first = PacketBuilder().eth().ipv6().v6_frag(0, true).tcp().build();
    EXPECT_EQ(parse(v6_first).cls, PacketClass::ip_fragment);
    auto v6_later = PacketBuilder().eth().ipv6().v6_opts(0).v6_frag(100, false).raw({1, 2})
                        .build();
    EXPECT_EQ(parse(v6_later).cls, PacketClass::ip_fragment);
    auto atomic = PacketBuilder().eth().ipv6().v6_frag(0, false).tcp().build();
    EXPECT_EQ(parse(atomic).cls, PacketClass::tcp);
    // A fragmented outer tunnel packet is a fragment too: the inner headers are not trusted.
    auto outer = PacketBuilder().eth().ipv4({.frag = 0x2000}).vxlan().eth().ipv4().tcp().build();
    EXPECT_EQ(parse(outer).cls, PacketClass::ip_fragment);
}

// --- checksums -----------------------------------------------------------------------------

TEST(ParseChecksum, BadTcpChecksum) {
    for (auto f : {PacketBuilder().eth().ipv4().tcp({.payload = 7, .bad_checksum = true}).build(),
                   PacketBuilder().eth().ipv6().tcp({.payload = 8, .bad_checksum = true}).build(),
                   PacketBuilder().eth().ipv4().gre().ipv6().tcp({.bad_checksum = true}).build()}) {
        Result on = parse(f, LinkType::ethernet, true);
        ASSERT_EQ(on.cls, PacketClass::tcp);
        EXPECT_TRUE(on.p.checksum_bad);
        Result off = parse(f, LinkType::ethernet, false);
        EXPECT_FALSE(off.p.checksum_bad);  // off by default: offloads make it noise
    }
}

TEST(ParseChecksum, BadIpv4HeaderChecksum) {
    auto f = PacketBuilder().eth().ipv4({.bad_checksum = true}).tcp().build();
    EXPECT_TRUE(parse(f, LinkType::ethernet, true).p.checksum_bad);
    // An outer header counts too.
    auto g = PacketBuilder().eth().ipv4({.bad_checksum = true}).ipv4().tcp().build();
    EXPECT_TRUE(parse(g, LinkType::ethernet, true).p.checksum_bad);
}

TEST(ParseChecksum, EveryByteMatters) {
    auto f = PacketBuilder().eth().ipv6().tcp({.payload = 33}).build();
    for (size_t i = 14 + 8; i < f.size(); ++i) {
        auto g = f;
        g[i] ^= 0x01;
        Result r = parse(g, LinkType::ethernet, true);
        if (r.cls == PacketClass::tcp) {
            EXPECT_TRUE(r.p.checksum_bad) << "flipped byte " << i;
        }
    }
}

TEST(ParseChecksum, RoutingHeaderFinalDestination) {
    // The builder sums with the final destination (RFC 8200 8.1); with the wire destination
    // the check would fail.
    auto srh = PacketBuilder().eth().ipv6(a6, b6).v6_routing(4, 1, {teredo_client, b6}).tcp()
                   .build();
    Result r = parse(srh, LinkType::ethernet, true);
    ASSERT_EQ(r.cls, PacketClass::tcp);
    EXPECT_FALSE(r.p.checksum_bad);
    EXPECT_EQ(r.p.dst, b6);  // the key keeps the wire destination
    auto rh0 = PacketBuilder().eth().ipv6(a6, b6).v6_routing(0, 2, {b6, teredo_client}).tcp()
                   .build();
    EXPECT_FALSE(parse(rh0, LinkType::ethernet, true).p.checksum_bad);
    // Segments left 0: the wire destination is final.
    auto done = PacketBuilder().eth().ipv6(a6, b6).v6_routing(4, 0, {teredo_client}).tcp()
                    .build();
    EXPECT_FALSE(parse(done, LinkType::ethernet, true).p.checksum_bad);
}

TEST(ParseNames, ErrorNamesAreSnakeCaseAndUnique) {
    for (size_t i = 0; i < parse_error_names.size(); ++i) {
        const auto n = parse_error_names[i];
        ASSERT_FALSE(n.empty());
        for (char ch : n) {
            EXPECT_TRUE((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') << n;
        }
        for (size_t j = 0; j < i; ++j) {
            EXPECT_NE(n, parse_error_names[j]);
        }
    }
    EXPECT_EQ(parse_error_names[size_t(ParseError::truncated_mpls)], "truncated_mpls");
    EXPECT_EQ(parse_error_names[size_t(ParseError::unsupported_link)], "unsupported_link");
    EXPECT_EQ(encap_names[9], "ip_in_ip");
    EXPECT_EQ(encap::other, 1u << 15);
}

}  // namespace
}  // namespace closetap

namespace closetap {
namespace {

// parse_packet's fast path for plain Ethernet[/802.1Q]/IPv4/TCP must give exactly what the
// general walk gives: every valid case above, each truncated at every length and with random
// bytes of its headers overwritten, compared field by field with parse_packet_walk.
//
// The worker's make_fast_segment (pipeline/segment.hh) must give, for every frame it takes, the
// key, segment and payload position that the walk + make_segment give, and take exactly the
// frames parse_packet's fast path takes.
TEST(FastPath, EqualsTheWalkOnMutatedFrames) {
    std::mt19937 rng(7);
    size_t frames = 0, fast_taken = 0;
    auto same = [&](const std::vector<uint8_t>& f, size_t len, const std::string& what) {
        std::unique_ptr<uint8_t[]> buf(new uint8_t[len + 1]);
        if (len != 0) std::memcpy(buf.get(), f.data(), len);
        ParsedPacket a{}, b{};
        ParseError ea = ParseError::count_, eb = ParseError::count_;
        const ParseOptions opt{.link = LinkType::ethernet, .verify_checksums = false};
        PacketClass ca = parse_packet(buf.get(), static_cast<uint32_t>(len), opt, a, ea);
        PacketClass cb = parse_packet_walk(buf.get(), static_cast<uint32_t>(len), opt, b, eb);
        ASSERT_EQ(ca, cb) << what;
        ASSERT_EQ(ea, eb) << what;
        ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0) << what;
        frames++;

        PlainTcp4 shape;
        const bool plain = len != 0 && plain_ipv4_tcp(buf.get(), static_cast<uint32_t>(len), shape);
        FlowKey4 fk;
        FlowKey wk;
        TcpSegment fs{}, ws{};
        uint16_t off = 0, cap = 0;
        const bool took = len != 0 && make_fast_segment(buf.get(), static_cast<uint32_t>(len), 42, fk,
                                                        fs, off, cap);
        ASSERT_EQ(took, plain) << what;
        if (!took) return;
        fast_taken++;
        ASSERT_EQ(cb, PacketClass::tcp) << what;
        make_segment(b, 42, wk, ws);
        ASSERT_TRUE(fk.expand() == wk) << what;
        ASSERT_EQ(flow_hash4(fk), flow_hash(wk)) << what;
        EXPECT_EQ(fs.dir, ws.dir) << what;
        EXPECT_EQ(fs.ts_us, ws.ts_us) << what;
        EXPECT_EQ(fs.seq, ws.seq) << what;
        EXPECT_EQ(fs.ack, ws.ack) << what;
        EXPECT_EQ(fs.payload_len, ws.payload_len) << what;
        EXPECT_EQ(fs.window, ws.window) << what;
        EXPECT_EQ(fs.flags, ws.flags) << what;
        EXPECT_EQ(fs.src_port, ws.src_port) << what;
        EXPECT_EQ(fs.dst_port, ws.dst_port) << what;
        EXPECT_EQ(fs.wscale, ws.wscale) << what;
        EXPECT_EQ(off, b.payload_offset) << what;
        EXPECT_EQ(cap, b.payload_caplen) << what;
    };
    std::vector<std::vector<uint8_t>> seeds;
    for (const Case& c : valid_cases())
        if (c.link == LinkType::ethernet) seeds.push_back(c.frame);
    for (uint8_t flags : {tcpf::ack, uint8_t(tcpf::ack | tcpf::psh), uint8_t(tcpf::fin | tcpf::ack),
                          tcpf::rst, uint8_t(0)}) {
        for (uint32_t payload : {0u, 1u, 6u, 1400u}) {
            TcpSpec t = data_segment(payload);
            t.flags = flags;
            seeds.push_back(PacketBuilder().eth().ipv4(Ipv4Spec{.src = a4, .dst = b4}).tcp(t).build());
            seeds.push_back(PacketBuilder().eth().vlan(7).ipv4(Ipv4Spec{.src = a4, .dst = b4}).tcp(t).build());
            seeds.push_back(
                PacketBuilder().eth().ipv4(Ipv4Spec{.src = a4, .dst = b4}).tcp(t).pad_to(60).build());
            // The key's endpoint order both ways, and by port alone (same address).
            seeds.push_back(PacketBuilder().eth().ipv4(Ipv4Spec{.src = b4, .dst = a4}).tcp(t).build());
            seeds.push_back(PacketBuilder().eth().ipv4(Ipv4Spec{.src = a4, .dst = a4}).tcp(t).build());
        }
    }
    // SYNs take the fast paths too: their window scale is read from the options, which
    // truncations and mutations cut short, malform or push past the header.
    for (const std::vector<uint8_t>& opts : std::vector<std::vector<uint8_t>>{
             testing::syn_options(7), testing::syn_options(20), {1, 1, 1, 3, 3, 9, 0, 0},
             {3, 3, 200, 0}, {8, 0, 3, 3, 7, 0, 0, 0}, {1, 3, 3, 7}, {2, 4, 5, 0xb4}, {}}) {
        for (uint8_t flags : {tcpf::syn, uint8_t(tcpf::syn | tcpf::ack)}) {
            TcpSpec t{.flags = flags, .options = opts};
            const Ipv4Spec ab{.src = a4, .dst = b4}, ba{.src = b4, .dst = a4};
            seeds.push_back(PacketBuilder().eth().ipv4(ab).tcp(t).build());
            seeds.push_back(PacketBuilder().eth().vlan(7).ipv4(ba).tcp(t).build());
        }
    }
    for (const auto& f : seeds) {
        for (size_t len = 0; len <= f.size(); ++len) same(f, len, "truncated at " + std::to_string(len));
        for (int m = 0; m < 300; ++m) {
            std::vector<uint8_t> g = f;
            const size_t hdr = std::min<size_t>(g.size(), 80);
            for (int k = 1 + int(rng() % 3); k-- > 0;) {
                const size_t at = rng() % hdr;
                // Mostly values that matter to the shape checks (type, version, lengths, flags).
                static constexpr uint8_t pick[] = {0x00, 0x01, 0x02, 0x06, 0x08, 0x11, 0x20, 0x40,
                                                   0x45, 0x46, 0x50, 0x81, 0xff};
                g[at] = rng() % 2 ? pick[rng() % sizeof pick] : static_cast<uint8_t>(rng());
            }
            same(g, g.size(), "mutation " + std::to_string(m));
        }
    }
    EXPECT_GT(frames, 10000u);
    EXPECT_GT(fast_taken, 1000u);
}

}  // namespace
}  // namespace closetap
