// Seed corpora for the fuzz targets, made from the project's own builders and captures at test
// time (so nothing large is committed and the seeds follow the code):
//
//   fuzz_seeds OUTDIR [CAPTURE...]
//
// writes OUTDIR/fuzz_parse/      a frame per encapsulation (PacketBuilder, as tests/test_parse.cc
//                                builds them) and up to 64 distinct frames of each capture
//        OUTDIR/fuzz_close_machine/  each capture's TCP segments in close_machine_input.hh's
//                                encoding: the whole capture on 8 flows, and each connection alone
//        OUTDIR/fuzz_pcap/       each capture (its first 16 KB when larger, which cuts its last
//                                record), cut and corrupted copies, and a capture per link type
//                                carrying the builder's frames
// The YAML seeds of fuzz_config are small committed files (tests/fuzz/seeds/fuzz_config/).
#include <pcap/pcap.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "flowtable/flow_key.hh"
#include "pipeline/parse.hh"
#include "tests/fuzz/close_machine_input.hh"
#include "tests/packet_builder.hh"

namespace fs = std::filesystem;
using namespace closetap;
using namespace closetap::testing;
using Bytes = std::vector<uint8_t>;
namespace cm = closetap::fuzz::cm;

namespace {

void write_file(const fs::path& p, const Bytes& b) {
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    if (!out) throw std::runtime_error("cannot write " + p.string());
}

Bytes read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void put32(Bytes& b, uint32_t v) {
    for (int i = 0; i < 4; i++) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put16(Bytes& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v));
    b.push_back(static_cast<uint8_t>(v >> 8));
}

// A classic little-endian microsecond pcap.
Bytes make_pcap(uint32_t linktype, const std::vector<Bytes>& frames) {
    Bytes b;
    put32(b, 0xa1b2c3d4);
    put16(b, 2);
    put16(b, 4);
    put32(b, 0);
    put32(b, 0);
    put32(b, 262144);
    put32(b, linktype);
    uint32_t t = 1700000000;
    for (size_t i = 0; i < frames.size(); i++) {
        put32(b, t);
        put32(b, static_cast<uint32_t>(i * 1000));
        put32(b, static_cast<uint32_t>(frames[i].size()));
        put32(b, static_cast<uint32_t>(frames[i].size()));
        b.insert(b.end(), frames[i].begin(), frames[i].end());
    }
    return b;
}

struct Frame {
    std::string name;
    LinkType link;
    Bytes bytes;
};

// One frame per header and encapsulation the parser knows (the cases of tests/test_parse.cc).
std::vector<Frame> builder_frames() {
    const Ip4 a4 = ip4(192, 0, 2, 1), b4 = ip4(198, 51, 100, 7);
    const Ipv4Spec out4{.src = ip4(172, 16, 0, 1), .dst = ip4(172, 16, 0, 2)};
    const Ip6 a6 = ip6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10}),
              b6 = ip6({0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x20});
    const Ip6 teredo_client = ip6({0x2001, 0, 0x4136, 0xe378, 0x8000, 0x63bf, 0x3fff, 0xfdd2});
    const Ipv6Spec out6{.src = b6, .dst = a6};
    const Ipv4Spec in4{.src = a4, .dst = b4};
    const Ipv6Spec in6{.src = a6, .dst = b6};
    const TcpSpec seg{.sport = 40000,
                      .dport = 443,
                      .seq = 0x11223344,
                      .ack = 0x55667788,
                      .flags = tcpf::ack | tcpf::psh,
                      .window = 1234,
                      .payload = 10};
    const TcpSpec syn{
        .sport = 40000, .dport = 443, .seq = 1, .flags = tcpf::syn, .options = syn_options(7)};
    using LT = LinkType;
    std::vector<Frame> f;
    auto add = [&](std::string name, const PacketBuilder& b, LT link = LT::ethernet) {
        f.push_back(Frame{std::move(name), link, b.build()});
    };
    add("eth_ipv4", PacketBuilder().eth().ipv4(in4).tcp(seg));
    add("eth_ipv6", PacketBuilder().eth().ipv6(in6).tcp(seg));
    add("syn_options", PacketBuilder().eth().ipv4(in4).tcp(syn));
    add("ipv4_options",
        PacketBuilder()
            .eth()
            .ipv4(Ipv4Spec{.src = a4, .dst = b4, .options = {0x94, 0x04, 0, 0, 1, 1, 1, 0}})
            .tcp(seg));
    add("vlan", PacketBuilder().eth().vlan(10).ipv4(in4).tcp(seg));
    add("qinq_88a8", PacketBuilder().eth().vlan(100, 0x88a8).vlan(10).ipv6(in6).tcp(seg));
    add("qinq_9100", PacketBuilder().eth().vlan(100, 0x9100).vlan(10).ipv4(in4).tcp(seg));
    {
        PacketBuilder b;
        b.eth();
        for (int i = 0; i < max_vlan_tags; ++i)
            b.vlan(static_cast<uint16_t>(i + 1), i == 0 ? 0x88a8 : 0x8100);
        add("vlan_x8", b.ipv4(in4).tcp(seg));
    }
    add("llc_snap", PacketBuilder().eth(100).llc_snap().ipv4(in4).tcp(seg));
    add("mpls_ipv4", PacketBuilder().eth().mpls(16106).ipv4(in4).tcp(seg));
    add("mpls3_ipv6", PacketBuilder().eth().mpls(1).mpls(2).mpls(3).ipv6(in6).tcp(seg));
    add("mpls_pw_eth",
        PacketBuilder().eth().mpls(100).mpls(200).pw_control_word().eth().vlan(5).ipv4(in4).tcp(
            seg));
    add("pbb", PacketBuilder().eth().vlan(4051, 0x88a8).pbb(0x1ebb30).vlan(20).ipv4(in4).tcp(seg));
    add("fabricpath", PacketBuilder().fabricpath().eth().vlan(3).ipv6(in6).tcp(seg));
    add("pppoe_qinq", PacketBuilder().eth().vlan(0xe78).vlan(0x9aa).pppoe().ipv4(in4).tcp(seg));
    add("pppoe_ipv6", PacketBuilder().eth().pppoe().ipv6(in6).tcp(seg));
    add("gre_ipv4", PacketBuilder().eth().ipv4(out4).gre().ipv4(in4).tcp(seg));
    add("gre_csum_key_seq",
        PacketBuilder().eth().ipv4(out4).gre(true, 0xabcd, 77).ipv6(in6).tcp(seg));
    add("gre_teb", PacketBuilder().eth().ipv6(out6).gre(false, 9).eth().ipv4(in4).tcp(seg));
    add("gre_mpls", PacketBuilder().eth().ipv4(out4).gre().mpls(30).ipv4(in4).tcp(seg));
    add("erspan1", PacketBuilder().eth().ipv4(out4).gre().erspan1().eth().ipv4(in4).tcp(seg));
    add("erspan2", PacketBuilder()
                       .eth()
                       .ipv4(out4)
                       .gre(false, {}, 5)
                       .erspan2()
                       .eth()
                       .vlan(7)
                       .ipv4(in4)
                       .tcp(seg));
    add("erspan3",
        PacketBuilder().eth().ipv4(out4).gre(false, {}, 5).erspan3().eth().ipv6(in6).tcp(seg));
    add("erspan3_platform",
        PacketBuilder().eth().ipv4(out4).gre(false, {}, 5).erspan3(true).eth().ipv4(in4).tcp(seg));
    add("erspan3_ip", PacketBuilder().eth().ipv4(out4).gre().erspan3(false, 2).ipv4(in4).tcp(seg));
    add("aruba_wlan", PacketBuilder().eth().vlan(22).ipv4(out4).gre().wlan().ipv4(in4).tcp(seg));
    add("aruba_amsdu",
        PacketBuilder().eth().ipv4(out4).gre().wlan(true, 0x8200).ipv4(in4).tcp(seg));
    add("vxlan", PacketBuilder().eth().ipv4(out4).vxlan().eth().ipv4(in4).tcp(seg));
    add("vxlan_ipv6_outer",
        PacketBuilder().eth().vlan(9).ipv6(out6).vxlan(7).eth().vlan(8).ipv6(in6).tcp(seg));
    add("geneve_opts", PacketBuilder().eth().ipv4(out4).geneve(19).eth().ipv4(in4).tcp(seg));
    add("geneve_ip", PacketBuilder().eth().ipv4(out4).geneve(2).ipv6(in6).tcp(seg));
    add("ipip", PacketBuilder().eth().ipv4(out4).ipv4(in4).tcp(seg));
    add("6in4", PacketBuilder().eth().ipv4(out4).ipv6(in6).tcp(seg));
    add("4in6", PacketBuilder().eth().ipv6(out6).ipv4(in4).tcp(seg));
    add("6in6", PacketBuilder().eth().ipv6(out6).ipv6(in6).tcp(seg));
    add("gtp", PacketBuilder().eth().ipv4(out4).gtp().ipv4(in4).tcp(seg));
    add("gtp_ext", PacketBuilder().eth().ipv4(out4).gtp(true).ipv6(in6).tcp(seg));
    add("teredo", PacketBuilder().eth().ipv4(out4).teredo().ipv6(teredo_client, b6).tcp(seg));
    add("teredo_origin",
        PacketBuilder().eth().ipv4(out4).teredo(true).ipv6(teredo_client, b6).tcp(seg));
    add("teredo_relay_port",
        PacketBuilder().eth().ipv4(out4).teredo(false, 32900).ipv6(b6, teredo_client).tcp(seg));
    add("ayiya", PacketBuilder().eth().ipv4(out4).ayiya().ipv6(in6).tcp(seg));
    add("ipv6_ext_chain", PacketBuilder()
                              .eth()
                              .ipv6(in6)
                              .v6_opts(0)
                              .v6_routing(4, 1, {b6, a6})
                              .v6_opts(60, 16)
                              .ah()
                              .tcp(seg));
    add("ipv6_routing0", PacketBuilder().eth().ipv6(in6).v6_routing(0, 2, {a6, b6}).tcp(seg));
    add("ipv6_atomic_frag", PacketBuilder().eth().ipv6(in6).v6_frag(0, false).tcp(seg));
    add("ipv6_frag", PacketBuilder().eth().ipv6(in6).v6_frag(8, true).tcp(seg));
    add("ipv4_frag",
        PacketBuilder().eth().ipv4(Ipv4Spec{.src = a4, .dst = b4, .frag = 0x2001}).tcp(seg));
    add("ipv4_ah", PacketBuilder().eth().ipv4(in4).ah(16).tcp(seg));
    add("ipv4_esp", PacketBuilder().eth().ipv4(in4).esp());
    add("udp", PacketBuilder().eth().ipv4(in4).udp(1234, 53));
    add("null_ipv4", PacketBuilder().null_link(2).ipv4(in4).tcp(seg), LT::null_bsd);
    add("null_ipv6_30_be", PacketBuilder().null_link(30, true).ipv6(in6).tcp(seg), LT::null_bsd);
    add("loop_ipv4", PacketBuilder().loop_link(2).ipv4(in4).tcp(seg), LT::loop);
    add("loop_ipv6", PacketBuilder().loop_link(28).ipv6(in6).tcp(seg), LT::loop);
    add("raw_ipv4", PacketBuilder().ipv4(in4).tcp(seg), LT::raw);
    add("raw_ipv6", PacketBuilder().ipv6(in6).tcp(seg), LT::raw);
    add("link_ipv4", PacketBuilder().ipv4(in4).tcp(seg), LT::ipv4);
    add("link_ipv6", PacketBuilder().ipv6(in6).tcp(seg), LT::ipv6);
    add("sll", PacketBuilder().sll().ipv4(in4).tcp(seg), LT::linux_sll);
    add("sll_vlan", PacketBuilder().sll().vlan(4).ipv6(in6).tcp(seg), LT::linux_sll);
    add("sll2", PacketBuilder().sll2().ipv6(in6).tcp(seg), LT::linux_sll2);
    add("everything", PacketBuilder()
                          .eth()
                          .vlan(1)
                          .mpls(5)
                          .pw_control_word()
                          .eth()
                          .ipv4(out4)
                          .gre(false, {}, 1)
                          .erspan2()
                          .eth()
                          .ipv6(out6)
                          .vxlan()
                          .eth()
                          .vlan(2)
                          .ipv4(in4)
                          .tcp(seg));
    return f;
}

struct Capture {
    int linktype = 1;
    std::vector<Bytes> frames;
    std::vector<uint64_t> ts_us;
};

Capture read_capture(const fs::path& p, size_t max_packets) {
    char err[PCAP_ERRBUF_SIZE] = {};
    Capture c;
    pcap_t* h = pcap_open_offline(p.c_str(), err);
    if (h == nullptr) {
        std::fprintf(stderr, "fuzz_seeds: %s: %s (skipped)\n", p.c_str(), err);
        return c;
    }
    c.linktype = pcap_datalink(h);
    pcap_pkthdr* hdr;
    const u_char* data;
    while (c.frames.size() < max_packets && pcap_next_ex(h, &hdr, &data) == 1) {
        c.frames.emplace_back(data, data + hdr->caplen);
        c.ts_us.push_back(uint64_t(hdr->ts.tv_sec) * 1000000u + uint64_t(hdr->ts.tv_usec));
    }
    pcap_close(h);
    return c;
}

// --- close_machine_input.hh encoding of a capture -------------------------------------------

struct CmFlow {
    std::array<uint8_t, 16> client;  // who sent the flow's first packet
    uint16_t client_port;
    uint32_t nxt[2];
    bool seen[2];
};

int8_t clamp8(int64_t v) {
    return static_cast<int8_t>(v < -127 ? -127 : (v > 127 ? 127 : v));
}

// `conn`: encode only the packets of that connection (flow 0); -1: all, flows by first
// appearance modulo 8. Returns the number of segments encoded.
size_t encode_capture(const Capture& c, int conn, Bytes& out) {
    out = {0x0f, 0x5a, 0, 0};  // 16 flows, Zeek's timeouts, ISN seed
    std::map<std::vector<uint8_t>, int> conn_of;
    std::vector<CmFlow> flows;
    uint64_t last_ts = 0;
    size_t n = 0;
    for (size_t i = 0; i < c.frames.size() && out.size() + cm::record_bytes <= 4096; i++) {
        ParsedPacket pp;
        ParseError err;
        if (parse_packet(c.frames[i].data(), static_cast<uint32_t>(c.frames[i].size()),
                         ParseOptions{.link = static_cast<LinkType>(c.linktype)}, pp,
                         err) != PacketClass::tcp)
            continue;
        FlowKey key;
        make_flow_key(pp.src, pp.sport, pp.dst, pp.dport, key);
        std::vector<uint8_t> kb(reinterpret_cast<uint8_t*>(&key),
                                reinterpret_cast<uint8_t*>(&key) + sizeof key);
        auto it = conn_of.find(kb);
        if (it == conn_of.end()) {
            it = conn_of.emplace(kb, static_cast<int>(flows.size())).first;
            flows.push_back(CmFlow{pp.src, pp.sport, {0, 0}, {false, false}});
        }
        const int ci = it->second;
        if (conn >= 0 && ci != conn) continue;
        CmFlow& f = flows[static_cast<size_t>(ci)];
        const unsigned d = (pp.src == f.client && pp.sport == f.client_port) ? 0 : 1;
        uint8_t r[cm::record_bytes] = {};
        r[0] = static_cast<uint8_t>((conn >= 0 ? 0 : ci % cm::max_flows) | (d ? cm::r0_dir : 0));
        r[1] = pp.flags;
        if (!f.seen[d]) {
            r[0] |= 1u << cm::r0_seq_mode_shift;  // ISN + 0
            f.seen[d] = true;
            f.nxt[d] = pp.seq;
        } else {
            const int64_t delta = static_cast<int32_t>(pp.seq - f.nxt[d]);
            if (delta >= -127 && delta <= 127) {
                r[2] = static_cast<uint8_t>(clamp8(delta));
            } else {
                r[0] |= 2u << cm::r0_seq_mode_shift;
                r[2] = static_cast<uint8_t>(clamp8(delta / 65536));
            }
        }
        if (f.seen[1 - d]) {
            r[3] = static_cast<uint8_t>(clamp8(static_cast<int32_t>(pp.ack - f.nxt[1 - d])));
        } else {
            r[0] |= cm::r0_ack_mode;
        }
        r[4] = cm::encode_payload_len(pp.payload_len);
        const uint64_t ts = c.ts_us[i];
        r[5] = cm::encode_time_step(n == 0 || ts < last_ts ? 0 : ts - last_ts);
        last_ts = ts;
        r[6] = static_cast<uint8_t>(pp.window >> 8);
        if ((pp.flags & tcpf::syn) != 0)
            r[6] = static_cast<uint8_t>((r[6] & 0xf0) | (pp.wscale > 14 ? 15 : pp.wscale));
        if (n % 32 == 31) r[0] |= cm::r0_burst_end;
        const uint32_t end = pp.seq + pp.payload_len + ((pp.flags & tcpf::syn) ? 1 : 0) +
                             ((pp.flags & tcpf::fin) ? 1 : 0);
        if (static_cast<int32_t>(end - f.nxt[d]) > 0) f.nxt[d] = end;
        out.insert(out.end(), r, r + cm::record_bytes);
        n++;
    }
    return n;
}

// The capture's distinct connections (by key), in order of appearance.
int count_conns(const Capture& c) {
    std::set<std::vector<uint8_t>> keys;
    for (const Bytes& fr : c.frames) {
        ParsedPacket pp;
        ParseError err;
        if (parse_packet(fr.data(), static_cast<uint32_t>(fr.size()),
                         ParseOptions{.link = static_cast<LinkType>(c.linktype)}, pp,
                         err) != PacketClass::tcp)
            continue;
        FlowKey key;
        make_flow_key(pp.src, pp.sport, pp.dst, pp.dport, key);
        keys.insert(std::vector<uint8_t>(reinterpret_cast<uint8_t*>(&key),
                                         reinterpret_cast<uint8_t*>(&key) + sizeof key));
    }
    return static_cast<int>(keys.size());
}

std::string stem_of(const fs::path& p) {
    std::string s = p.parent_path().filename().string() + "-" + p.stem().string();
    for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: fuzz_seeds OUTDIR [CAPTURE...]\n");
        return 2;
    }
    try {
        const fs::path out = argv[1];
        const fs::path parse_dir = out / "fuzz_parse", cm_dir = out / "fuzz_close_machine",
                       pcap_dir = out / "fuzz_pcap";
        for (const fs::path& d : {parse_dir, cm_dir, pcap_dir}) fs::create_directories(d);
        size_t counts[3] = {};

        // Builder frames: raw for the parser; as one capture per link type for the pcap path.
        std::map<LinkType, std::vector<Bytes>> by_link;
        for (const Frame& f : builder_frames()) {
            // Each encapsulation's seed must reach the TCP header, or it seeds nothing there.
            ParsedPacket pp;
            ParseError err;
            const bool want_tcp = f.name != "ipv4_frag" && f.name != "ipv6_frag" &&
                                  f.name != "ipv4_esp" && f.name != "udp";
            const bool is_tcp =
                parse_packet(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()),
                             ParseOptions{.link = f.link}, pp, err) == PacketClass::tcp;
            if (want_tcp != is_tcp)
                throw std::runtime_error("builder frame " + f.name + " does not parse as expected");
            write_file(parse_dir / ("b-" + f.name), f.bytes);
            by_link[f.link].push_back(f.bytes);
            counts[0]++;
        }
        for (auto& [lt, frames] : by_link) {
            write_file(pcap_dir / ("b-link" + std::to_string(static_cast<int>(lt)) + ".pcap"),
                       make_pcap(static_cast<uint32_t>(lt), frames));
            counts[2]++;
        }
        // A capture with malformed frames: empty, 1 byte, every builder frame cut in half.
        {
            std::vector<Bytes> bad = {{}, {0x45}};
            for (auto& fr : by_link[LinkType::ethernet])
                bad.emplace_back(fr.begin(),
                                 fr.begin() + static_cast<std::ptrdiff_t>(fr.size() / 2));
            write_file(pcap_dir / "b-malformed.pcap", make_pcap(1, bad));
            counts[2]++;
        }

        for (int i = 2; i < argc; i++) {
            const fs::path cap = argv[i];
            const std::string stem = stem_of(cap);
            Capture c = read_capture(cap, 4096);
            if (c.frames.empty()) continue;
            // Parser: up to 64 distinct frames.
            std::set<Bytes> seen;
            for (const Bytes& fr : c.frames) {
                if (seen.size() >= 64) break;
                if (!seen.insert(fr).second) continue;
                write_file(parse_dir / ("c-" + stem + "-" + std::to_string(seen.size())), fr);
                counts[0]++;
            }
            // Close machine: the whole capture, and each of its first 32 connections alone.
            Bytes enc;
            if (encode_capture(c, -1, enc) > 0) {
                write_file(cm_dir / ("c-" + stem), enc);
                counts[1]++;
            }
            const int nconn = count_conns(c);
            for (int k = 0; k < nconn && k < 32; k++) {
                if (encode_capture(c, k, enc) == 0) continue;
                write_file(cm_dir / ("c-" + stem + "-" + std::to_string(k)), enc);
                counts[1]++;
            }
            // The pcap path: the file (or its head), its global header alone, and a first record
            // with a corrupt length.
            Bytes file = read_file(cap);
            const size_t keep = std::min<size_t>(file.size(), 16384);
            write_file(pcap_dir / ("c-" + stem),
                       Bytes(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(keep)));
            counts[2]++;
            if (file.size() >= 24 + 16) {
                write_file(pcap_dir / ("c-" + stem + "-hdr"),
                           Bytes(file.begin(), file.begin() + 24));
                Bytes bad(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(
                                                           std::min<size_t>(file.size(), 4096)));
                bad[24 + 8] ^=
                    0xff;  // classic pcap: caplen of the first record (pcapng: a block length)
                write_file(pcap_dir / ("c-" + stem + "-badlen"), bad);
                counts[2] += 2;
            }
        }
        std::printf(
            "fuzz_seeds: %zu parser frames, %zu close-machine sequences, %zu captures in %s\n",
            counts[0], counts[1], counts[2], out.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_seeds: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
