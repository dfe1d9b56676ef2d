// Bounds-checked packet parser: link layer down to TCP. Pure code on a byte span (no DPDK types)
// so that units, fuzzers and benchmarks run it without EAL. Never reads past `caplen`.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace closetap {

// Link types the parser understands, numbered as pcap's LINKTYPE_* values so a capture's
// header maps onto them directly.
enum class LinkType : uint16_t {
    null_bsd = 0,      // LINKTYPE_NULL: 4-byte host-order AF_ value
    ethernet = 1,      // LINKTYPE_ETHERNET
    raw = 101,         // LINKTYPE_RAW: IPv4 or IPv6, no link header
    loop = 108,        // LINKTYPE_LOOP: 4-byte network-order AF_ value
    linux_sll = 113,   // LINKTYPE_LINUX_SLL
    ipv4 = 228,        // LINKTYPE_IPV4
    ipv6 = 229,        // LINKTYPE_IPV6
    linux_sll2 = 276,  // LINKTYPE_LINUX_SLL2
};

// A capture's LINKTYPE_* value the parser reads.
constexpr bool is_supported_link(int linktype) noexcept {
    switch (static_cast<LinkType>(linktype)) {
        case LinkType::null_bsd:
        case LinkType::ethernet:
        case LinkType::raw:
        case LinkType::loop:
        case LinkType::linux_sll:
        case LinkType::ipv4:
        case LinkType::ipv6:
        case LinkType::linux_sll2:
            return true;
    }
    return false;
}

// What happened to a packet. Every packet gets exactly one class; `error` comes with a ParseError.
enum class PacketClass : uint8_t { tcp, non_ip, non_tcp, ip_fragment, error, count_ };
inline constexpr std::array<std::string_view, 5> packet_class_names = {"tcp", "non_ip", "non_tcp",
                                                                       "ip_fragment", "error"};

// Reasons a packet could not be parsed; the names are the values of the `reason` label of
// closetap_parse_errors_total. Keep the two lists in the same order.
enum class ParseError : uint8_t {
    truncated_link,
    truncated_vlan,
    too_many_vlans,
    truncated_ipv4,
    ipv4_bad_header,
    truncated_ipv6,
    ipv6_bad_header,
    truncated_tcp,
    tcp_bad_offset,
    // Added with the tunnels: one per header family so that a broken mirror session (say, a
    // truncating ERSPAN source) shows up under its own label instead of inside truncated_ipv4.
    truncated_mpls,
    too_many_mpls_labels,    // no bottom-of-stack within max_mpls_labels
    truncated_pppoe,
    truncated_gre,
    truncated_udp,
    truncated_tunnel,        // VXLAN, Geneve, ERSPAN, PBB, FabricPath, 802.11, GTP headers
    tunnel_bad_header,       // unknown GRE/ERSPAN/Geneve version, GRE routing present
    too_many_layers,         // more than max_encap_layers encapsulations
    ipv6_too_many_ext,       // more than max_ipv6_ext_headers extension headers
    headers_too_long,        // TCP payload starts beyond 65535 (does not fit payload_offset)
    unsupported_link,        // ParseOptions::link is not a LinkType the parser knows
    count_
};
inline constexpr std::array<std::string_view, static_cast<size_t>(ParseError::count_)>
    parse_error_names = {"truncated_link",    "truncated_vlan",       "too_many_vlans",
                         "truncated_ipv4",    "ipv4_bad_header",      "truncated_ipv6",
                         "ipv6_bad_header",   "truncated_tcp",        "tcp_bad_offset",
                         "truncated_mpls",    "too_many_mpls_labels", "truncated_pppoe",
                         "truncated_gre",     "truncated_udp",        "truncated_tunnel",
                         "tunnel_bad_header", "too_many_layers",      "ipv6_too_many_ext",
                         "headers_too_long",  "unsupported_link"};

// Bounds that keep the work per packet constant whatever the bytes say.
inline constexpr int max_vlan_tags = 8;         // 802.1Q/802.1ad tags over all layers
inline constexpr int max_mpls_labels = 16;      // labels in one MPLS stack
inline constexpr int max_ipv6_ext_headers = 8;  // extension headers in one IPv6 (or AH in IPv4)
inline constexpr int max_encap_layers = 8;      // MPLS stacks, PBB, PPPoE, tunnels, IP-in-IP

// Bits of ParsedPacket::encap: outer layers the packet arrived in.
namespace encap {
inline constexpr uint32_t vlan = 1u << 0;  // any 802.1Q/802.1ad tag
inline constexpr uint32_t qinq = 1u << 1;  // two or more tags stacked (whatever the TPIDs)
inline constexpr uint32_t mpls = 1u << 2;
inline constexpr uint32_t pbb = 1u << 3;
inline constexpr uint32_t pppoe = 1u << 4;
inline constexpr uint32_t gre = 1u << 5;
inline constexpr uint32_t erspan = 1u << 6;
inline constexpr uint32_t vxlan = 1u << 7;
inline constexpr uint32_t geneve = 1u << 8;
inline constexpr uint32_t ip_in_ip = 1u << 9;
inline constexpr uint32_t fabricpath = 1u << 10;  // Cisco FabricPath (ethertype 0x8903)
inline constexpr uint32_t wlan = 1u << 11;        // 802.11 data frame (Aruba GRE 0x8200..0x8370)
inline constexpr uint32_t teredo = 1u << 12;      // IPv6 in UDP: port 3544 or a 2001:0::/32 end
inline constexpr uint32_t ayiya = 1u << 13;       // IP in UDP 5072
inline constexpr uint32_t gtp = 1u << 14;         // GTP-U G-PDU (UDP 2152)
inline constexpr uint32_t other = 1u << 15;
}  // namespace encap
// Names of the encap bits by bit position, for logs and labels.
inline constexpr std::array<std::string_view, 16> encap_names = {
    "vlan",     "qinq",       "mpls", "pbb",    "pppoe", "gre", "erspan", "vxlan",
    "geneve",   "ip_in_ip",   "fabricpath", "wlan", "teredo", "ayiya", "gtp", "other"};

struct ParsedPacket {
    // Addresses of the innermost IP header, always 16 bytes: IPv4 as IPv4-mapped IPv6
    // (::ffff:a.b.c.d) so that one key type serves both families.
    std::array<uint8_t, 16> src;
    std::array<uint8_t, 16> dst;
    uint16_t sport;
    uint16_t dport;
    uint32_t seq;
    uint32_t ack;
    uint32_t payload_len;     // TCP payload length from the IP length fields
    uint16_t window;
    uint8_t flags;            // TCP flags byte (closetap::tcp_flag bits)
    uint8_t ip_version;       // 4 or 6 (innermost)
    uint8_t wscale;           // window-scale option value on SYNs, 0xff when absent
    uint8_t vlan_depth;       // 802.1Q/802.1ad tags seen (all layers)
    // Offset of the TCP payload from the start of the frame (the end of the TCP options). It can
    // lie beyond caplen when the snap length cut the options; payload_caplen is 0 then.
    uint16_t payload_offset;
    uint16_t payload_caplen;  // payload bytes actually captured (<= payload_len, saturates)
    uint32_t encap;           // encap:: bits
    bool checksum_bad;        // only set when ParseOptions::verify_checksums
};

struct ParseOptions {
    LinkType link = LinkType::ethernet;
    bool verify_checksums = false;  // IPv4 header + TCP checksum when the segment is complete
};

// Parses one frame, decapsulating down to the innermost IP header. On PacketClass::tcp `out` is
// filled; on PacketClass::error `err` names why (`err` is left alone otherwise). `encap` and
// `vlan_depth` are filled for every class; `src`/`dst`/`ip_version` once an IP header was read
// (so also for non_tcp and ip_fragment). Only the fixed 20-byte TCP header must be captured:
// options cut by the snap length leave `wscale` at 0xff. Never reads data[caplen] or beyond.
PacketClass parse_packet(const uint8_t* data, uint32_t caplen, const ParseOptions& opt,
                         ParsedPacket& out, ParseError& err) noexcept;

// The general walk alone, without parse_packet's fast path for plain Ethernet/IPv4/TCP frames:
// the reference the fast path is tested against (same contract as parse_packet).
PacketClass parse_packet_walk(const uint8_t* data, uint32_t caplen, const ParseOptions& opt,
                              ParsedPacket& out, ParseError& err) noexcept;

// Wire values the parser (parse.cc) and the fast paths below test for.
namespace ethertype {
inline constexpr uint16_t ipv4 = 0x0800;
inline constexpr uint16_t ipv6 = 0x86dd;
inline constexpr uint16_t vlan = 0x8100;       // 802.1Q C-tag
inline constexpr uint16_t qinq = 0x88a8;       // 802.1ad S-tag
inline constexpr uint16_t qinq_old = 0x9100;   // pre-standard S-tag still sent by some switches
inline constexpr uint16_t mpls = 0x8847;
inline constexpr uint16_t mpls_mc = 0x8848;
inline constexpr uint16_t pbb = 0x88e7;        // 802.1ah I-TAG
inline constexpr uint16_t pppoe_session = 0x8864;
inline constexpr uint16_t fabricpath = 0x8903;
inline constexpr uint16_t teb = 0x6558;        // transparent Ethernet bridging (GRE, Geneve)
inline constexpr uint16_t erspan_2 = 0x88be;   // ERSPAN type I (no GRE sequence) and II
inline constexpr uint16_t erspan_3 = 0x22eb;
inline constexpr uint16_t pptp_ppp = 0x880b;   // PPP in enhanced GRE (version 1)
}  // namespace ethertype

namespace ipproto {
inline constexpr uint8_t hopopt = 0;
inline constexpr uint8_t ipip = 4;
inline constexpr uint8_t tcp = 6;
inline constexpr uint8_t udp = 17;
inline constexpr uint8_t ipv6 = 41;
inline constexpr uint8_t routing = 43;
inline constexpr uint8_t fragment = 44;
inline constexpr uint8_t gre = 47;
inline constexpr uint8_t ah = 51;
inline constexpr uint8_t dstopts = 60;
inline constexpr uint8_t mobility = 135;
inline constexpr uint8_t hip = 139;
inline constexpr uint8_t shim6 = 140;
}  // namespace ipproto

// Byte loads: no alignment or aliasing assumptions about the frame (it can start anywhere in an
// mbuf or a pcap buffer). Compilers turn these into a single load + bswap.
inline uint16_t be16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t be32(const uint8_t* p) noexcept {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
           static_cast<uint32_t>(p[2]) << 8 | p[3];
}

// Window scale (RFC 7323 2.2) from a TCP header's options, the first `end` bytes of `tcp`
// (20 <= end: the header, or as much of it as was captured); 0xff when absent or when the option
// list is malformed before reaching it. The walk and both fast paths share it. Out of line: only
// SYNs call it, and inlined into the worker's parse stage it cost every packet 8 instructions
// (callgrind, closetap-bench --flows 10K).
[[gnu::noinline]] inline uint8_t tcp_window_scale(const uint8_t* tcp, uint32_t end) noexcept {
    // "MUST use 14 instead of the specified value" when larger (RFC 7323 2.3).
    auto scale = [](uint8_t v) -> uint8_t { return v > 14 ? 14 : v; };
    // First the layouts the common stacks send, where the walk below would reach the option
    // the same way: its branches on the option kinds mispredicted, about two a SYN (callgrind
    // --branch-sim, closetap-bench at the 1M-flow mix). MSS first, then Windows, macOS and the
    // BSDs put NOP and window scale; Linux SACK permitted, timestamps, NOP and window scale.
    if (end >= 28 && be16(tcp + 20) == 0x0204) {
        if ((be32(tcp + 24) >> 8) == 0x010303) return scale(tcp[27]);
        if (end >= 40 && be32(tcp + 24) == 0x0402080a && (be32(tcp + 36) >> 8) == 0x010303)
            return scale(tcp[39]);
    }
    uint32_t i = 20;
    while (i < end) {
        const uint8_t kind = tcp[i];
        if (kind == 0) break;  // end of option list
        if (kind == 1) {       // NOP
            ++i;
            continue;
        }
        if (i + 1 >= end) break;
        const uint8_t len = tcp[i + 1];
        if (len < 2 || i + len > end) break;
        if (kind == 3 && len == 3) return scale(tcp[i + 2]);
        i += len;
    }
    return 0xff;
}

// The shape most tap traffic has: Ethernet, at most one 802.1Q tag, an option-less IPv4 header
// of an unfragmented datagram that is all captured, and TCP (a SYN's options are all captured
// too, so its window scale is read from the whole header: tcp_window_scale). Both fast paths
// test it here (parse_packet's, and the worker's make_fast_segment), so they accept exactly the
// same frames.
struct PlainTcp4 {
    const uint8_t* ip;
    const uint8_t* tcp;
    uint32_t payload_offset;  // from the start of the frame
    uint32_t payload_len;
    uint32_t tcp_hdr_len;
    bool vlan;
};
inline bool plain_ipv4_tcp(const uint8_t* d, uint32_t caplen, PlainTcp4& v) noexcept {
    if (caplen < 54) return false;
    uint32_t off = 14;
    uint16_t type = be16(d + 12);
    if (type == ethertype::vlan) {
        if (caplen < 58) return false;
        type = be16(d + 16);
        off = 18;
    }
    const uint8_t* ip = d + off;
    if (type != ethertype::ipv4 || ip[0] != 0x45 || ip[9] != ipproto::tcp ||
        (be16(ip + 6) & 0x3fff) != 0)
        return false;
    const uint32_t total = be16(ip + 2);
    const uint8_t* tcp = ip + 20;
    const uint32_t hdr_len = (tcp[12] >> 4) * 4u;
    if (total < 40 || off + total > caplen || hdr_len < 20 || 20 + hdr_len > total) return false;
    v.ip = ip;
    v.tcp = tcp;
    v.payload_offset = off + 20 + hdr_len;
    v.payload_len = off + total - v.payload_offset;
    v.tcp_hdr_len = hdr_len;
    v.vlan = off == 18;
    return true;
}

}  // namespace closetap
