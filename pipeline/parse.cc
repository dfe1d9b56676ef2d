// The packet parser: a small loop over "what comes next" steps, each of which checks that the
// bytes it reads are there before reading them (Katran's rule), so that every tunnel can hand
// over to the generic Ethernet / ethertype / IP steps without recursion. The loop is bounded: a
// step that can lead back to an earlier one (VLAN tags, MPLS stacks, tunnels, IPv6 extension
// headers) consumes one of a fixed budget (parse.hh: max_*), so work per packet stays constant
// whatever the bytes claim.
//
// Two ends matter for every read:
//   cap_  what was captured: reading beyond it is a truncation (truncated_* errors);
//   end_  where the innermost IP datagram ends on the wire (its total/payload length). Bytes
//         after it are Ethernet padding or trailers, never headers or payload.
// Reads are bounded by min(cap_, end_); length fields are checked against end_ (bad header).
#include "pipeline/parse.hh"

#include <bit>
#include <cstring>

namespace closetap {
namespace {

inline uint32_t le32(const uint8_t* p) {
    return static_cast<uint32_t>(p[3]) << 24 | static_cast<uint32_t>(p[2]) << 16 |
           static_cast<uint32_t>(p[1]) << 8 | p[0];
}

// The fixed TCP header fields the close machine needs (the walk and the fast path share it).
inline void read_tcp_fixed(const uint8_t* tcp, ParsedPacket& out) {
    out.sport = be16(tcp);
    out.dport = be16(tcp + 2);
    out.seq = be32(tcp + 4);
    out.ack = be32(tcp + 8);
    out.flags = tcp[13];
    out.window = be16(tcp + 14);
}

// Internet checksum (RFC 1071) accumulated in host order: the one's complement sum does not care
// about byte order as long as every part starts on an even offset, and the final test (== 0xffff)
// is symmetric. memcpy loads keep it free of alignment and aliasing UB.
inline uint64_t csum_add(const uint8_t* p, uint32_t n, uint64_t acc) {
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        acc += (v & 0xffffffffu) + (v >> 32);
        p += 8;
        n -= 8;
    }
    if (n >= 4) {
        uint32_t v;
        std::memcpy(&v, p, 4);
        acc += v;
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        uint16_t v;
        std::memcpy(&v, p, 2);
        acc += v;
        p += 2;
        n -= 2;
    }
    if (n != 0) {
        // A lone last byte is the high byte of a big-endian word padded with zero.
        if constexpr (std::endian::native == std::endian::little) {
            acc += p[0];
        } else {
            acc += static_cast<uint64_t>(p[0]) << 8;
        }
    }
    return acc;
}

inline bool csum_ok(uint64_t acc) {
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffu) + (acc >> 16);
    acc = (acc & 0xffffu) + (acc >> 16);
    return acc == 0xffffu;
}


namespace udp_port {
inline constexpr uint16_t vxlan = 4789;
inline constexpr uint16_t geneve = 6081;
inline constexpr uint16_t gtp_u = 2152;
inline constexpr uint16_t teredo = 3544;
inline constexpr uint16_t ayiya = 5072;
}  // namespace udp_port

// GTP-U extension headers are a chain like IPv6's; same kind of bound.
inline constexpr int max_gtp_ext_headers = 8;

enum class Step : uint8_t { ethernet, ethertype, ip_guess, ipv4, ipv6, ip_proto, tcp, done };

class Walker {
public:
    Walker(const uint8_t* d, uint32_t cap, bool verify, ParsedPacket& out) noexcept
        : d_(d), cap_(cap), verify_(verify), out_(out) {}

    PacketClass run(LinkType link, ParseError& err) noexcept {
        Step s = start(link);
        // Every transition back to an earlier step spends a bounded budget (see the file
        // comment), so this terminates; the counter is a second, cheap line of defence.
        for (int guard = 0; s != Step::done && guard < 256; ++guard) {
            switch (s) {
                case Step::ethernet: s = ethernet(); break;
                case Step::ethertype: s = ether_type(); break;
                case Step::ip_guess: s = ip_guess(); break;
                case Step::ipv4: s = ipv4(); break;
                case Step::ipv6: s = ipv6(); break;
                case Step::ip_proto: s = ip_proto(); break;
                case Step::tcp: s = tcp(); break;
                case Step::done: break;
            }
        }
        if (s != Step::done) {
            fail(ParseError::too_many_layers);
        }
        if (cls_ == PacketClass::error) {
            err = err_;
        }
        return cls_;
    }

private:
    // --- bounds -------------------------------------------------------------------------------
    uint32_t limit() const noexcept { return cap_ < end_ ? cap_ : end_; }
    // True when n bytes from off_ + at may be read. 64-bit so that no offset arithmetic wraps.
    bool have(uint64_t n, uint64_t at = 0) const noexcept {
        return static_cast<uint64_t>(off_) + at + n <= limit();
    }
    const uint8_t* at(uint32_t rel = 0) const noexcept { return d_ + off_ + rel; }

    Step fail(ParseError e) noexcept {
        err_ = e;
        cls_ = PacketClass::error;
        return Step::done;
    }
    Step finish(PacketClass c) noexcept {
        cls_ = c;
        return Step::done;
    }
    // Enters one more encapsulation; false when the budget is spent.
    bool push(uint32_t bit) noexcept {
        out_.encap |= bit;
        return ++layers_ <= max_encap_layers;
    }
    // Inner Ethernet headers are truncations of the tunnel that carries them.
    ParseError trunc_link() const noexcept {
        return layers_ == 0 ? ParseError::truncated_link : ParseError::truncated_tunnel;
    }

    // --- link layers --------------------------------------------------------------------------
    Step start(LinkType link) noexcept {
        switch (link) {
            case LinkType::ethernet: return Step::ethernet;
            case LinkType::raw: return Step::ip_guess;
            case LinkType::ipv4: return Step::ipv4;
            case LinkType::ipv6: return Step::ipv6;
            case LinkType::null_bsd:
            case LinkType::loop: {
                if (!have(4)) {
                    return fail(ParseError::truncated_link);
                }
                uint32_t af = link == LinkType::loop ? be32(at()) : le32(at());
                // NULL is the writer's host order. A capture from a big-endian host read here
                // has the value in the top half (AF values are small), so swap it back, as
                // libpcap and Wireshark do.
                if (link == LinkType::null_bsd && (af & 0xffff0000u) != 0) {
                    af = __builtin_bswap32(af);
                }
                off_ = 4;
                if (af == 2) {
                    return Step::ipv4;
                }
                // AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD) or 30 (Darwin).
                if (af == 24 || af == 28 || af == 30) {
                    return Step::ipv6;
                }
                return finish(PacketClass::non_ip);
            }
            case LinkType::linux_sll: {
                // type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)
                if (!have(16)) {
                    return fail(ParseError::truncated_link);
                }
                return sll(be16(at(2)), be16(at(14)), 16);
            }
            case LinkType::linux_sll2: {
                // protocol(2) reserved(2) ifindex(4) ARPHRD(2) type(1) addr len(1) addr(8)
                if (!have(20)) {
                    return fail(ParseError::truncated_link);
                }
                return sll(be16(at(8)), be16(at(0)), 20);
            }
        }
        return fail(ParseError::unsupported_link);
    }

    Step sll(uint16_t arphrd, uint16_t proto, uint32_t hdr_len) noexcept {
        off_ = hdr_len;
        // ARPHRD_NETLINK carries netlink messages, not frames; protocol values below 0x0600 are
        // Linux's pseudo-protocols (802.2 LLC, 802.3 raw, CAN...), none of them IP.
        if (arphrd == 824 || proto < 0x0600) {
            return finish(PacketClass::non_ip);
        }
        type_ = proto;
        return Step::ethertype;
    }

    Step ethernet() noexcept {
        if (!have(14)) {
            return fail(trunc_link());
        }
        type_ = be16(at(12));
        off_ += 14;
        return Step::ethertype;
    }

    Step ether_type() noexcept {
        bool tagged = false;
        for (;;) {
            switch (type_) {
                case ethertype::ipv4: return Step::ipv4;
                case ethertype::ipv6: return Step::ipv6;
                case ethertype::vlan:
                case ethertype::qinq:
                case ethertype::qinq_old:
                    if (out_.vlan_depth >= max_vlan_tags) {
                        return fail(ParseError::too_many_vlans);
                    }
                    if (!have(4)) {
                        return fail(ParseError::truncated_vlan);
                    }
                    ++out_.vlan_depth;
                    // qinq means stacked tags, whatever TPIDs the switches chose.
                    out_.encap |= tagged ? (encap::vlan | encap::qinq) : encap::vlan;
                    tagged = true;
                    type_ = be16(at(2));
                    off_ += 4;
                    continue;
                case ethertype::mpls:
                case ethertype::mpls_mc: return mpls();
                case ethertype::pbb:
                    // I-TAG (flags + 24-bit I-SID), then the customer's Ethernet header.
                    if (!push(encap::pbb)) {
                        return fail(ParseError::too_many_layers);
                    }
                    if (!have(4)) {
                        return fail(ParseError::truncated_tunnel);
                    }
                    off_ += 4;
                    return Step::ethernet;
                case ethertype::fabricpath:
                    // The outer "Ethernet" header holds the switch IDs; after the ethertype
                    // come FTag/TTL (2 bytes) and the original frame (as in Zeek and Wireshark).
                    if (!push(encap::fabricpath)) {
                        return fail(ParseError::too_many_layers);
                    }
                    if (!have(2)) {
                        return fail(ParseError::truncated_tunnel);
                    }
                    off_ += 2;
                    return Step::ethernet;
                case ethertype::pppoe_session: return pppoe();
                default:
                    if (type_ < 0x0600) {
                        return llc();
                    }
                    // ARP, LLDP, LACP, PPPoE discovery, MACsec...
                    return finish(PacketClass::non_ip);
            }
        }
    }

    // 802.3 length field: IP only appears behind LLC/SNAP with the zero OUI (RFC 1042).
    Step llc() noexcept {
        if (!have(8)) {
            return fail(trunc_link());  // 802.3 frames are >= 60 bytes: this is a snap length
        }
        const uint8_t* p = at();
        if (p[0] != 0xaa || p[1] != 0xaa || p[2] != 0x03 || p[3] != 0 || p[4] != 0 || p[5] != 0) {
            return finish(PacketClass::non_ip);
        }
        type_ = be16(p + 6);
        off_ += 8;
        // A SNAP-wrapped length field would loop; nothing real does that.
        return type_ < 0x0600 ? finish(PacketClass::non_ip) : Step::ethertype;
    }

    Step mpls() noexcept {
        if (!push(encap::mpls)) {
            return fail(ParseError::too_many_layers);
        }
        bool bottom = false;
        for (int i = 0; i < max_mpls_labels && !bottom; ++i) {
            if (!have(4)) {
                return fail(ParseError::truncated_mpls);
            }
            bottom = (at()[2] & 0x01) != 0;
            off_ += 4;
        }
        if (!bottom) {
            return fail(ParseError::too_many_mpls_labels);
        }
        if (!have(1)) {
            return fail(ParseError::truncated_mpls);
        }
        // MPLS does not say what it carries: guess from the first nibble, as routers do for
        // ECMP. 0 is the pseudowire control word (RFC 4385) in front of an Ethernet frame.
        switch (at()[0] >> 4) {
            case 4: return Step::ipv4;
            case 6: return Step::ipv6;
            case 0:
                if (!have(4)) {
                    return fail(ParseError::truncated_mpls);
                }
                off_ += 4;
                return Step::ethernet;
            default: return finish(PacketClass::non_ip);
        }
    }

    Step pppoe() noexcept {
        if (!push(encap::pppoe)) {
            return fail(ParseError::too_many_layers);
        }
        // ver/type(1) code(1) session(2) length(2), then PPP.
        if (!have(6)) {
            return fail(ParseError::truncated_pppoe);
        }
        if (at()[0] != 0x11) {
            return fail(ParseError::tunnel_bad_header);
        }
        off_ += 6;
        return ppp(ParseError::truncated_pppoe);
    }

    // PPP protocol field, possibly compressed to one byte (RFC 1661 PFC: odd first byte), and
    // optionally preceded by address/control 0xff 0x03 (PPTP GRE keeps them unless ACFC).
    Step ppp(ParseError trunc) noexcept {
        if (!have(2)) {
            return fail(trunc);
        }
        if (at()[0] == 0xff && at()[1] == 0x03) {
            off_ += 2;
            if (!have(1)) {
                return fail(trunc);
            }
        }
        uint16_t proto;
        if (at()[0] & 0x01) {
            proto = at()[0];
            off_ += 1;
        } else {
            if (!have(2)) {
                return fail(trunc);
            }
            proto = be16(at());
            off_ += 2;
        }
        if (proto == 0x0021) {
            return Step::ipv4;
        }
        if (proto == 0x0057) {
            return Step::ipv6;
        }
        return finish(PacketClass::non_ip);  // LCP, IPCP, CCP...
    }

    // --- IP -----------------------------------------------------------------------------------
    Step ip_guess() noexcept {
        if (!have(1)) {
            return fail(trunc_link());
        }
        switch (at()[0] >> 4) {
            case 4: return Step::ipv4;
            case 6: return Step::ipv6;
            default: return finish(PacketClass::non_ip);
        }
    }

    Step ipv4() noexcept {
        if (!have(20)) {
            return fail(ParseError::truncated_ipv4);
        }
        const uint8_t* p = at();
        uint32_t ihl = (p[0] & 0x0fu) * 4;
        if ((p[0] >> 4) != 4 || ihl < 20) {
            return fail(ParseError::ipv4_bad_header);
        }
        if (!have(ihl)) {
            return fail(ParseError::truncated_ipv4);
        }
        uint32_t total = be16(p + 2);
        if (total == 0) {
            // TSO/LSO on the capturing host leaves total length 0 on the super-segment (Zeek
            // accepts it too): the capture is all there is.
            total = limit() - off_;
        }
        if (total < ihl || static_cast<uint64_t>(off_) + total > end_) {
            return fail(ParseError::ipv4_bad_header);
        }
        if (verify_ && !csum_ok(csum_add(p, ihl, 0))) {
            out_.checksum_bad = true;
        }
        out_.ip_version = 4;
        std::memset(out_.src.data(), 0, 10);
        out_.src[10] = 0xff;
        out_.src[11] = 0xff;
        std::memcpy(out_.src.data() + 12, p + 12, 4);
        std::memset(out_.dst.data(), 0, 10);
        out_.dst[10] = 0xff;
        out_.dst[11] = 0xff;
        std::memcpy(out_.dst.data() + 12, p + 16, 4);
        end_ = off_ + total;
        // MF or a non-zero offset: a piece of a datagram; counted, not reassembled.
        if ((be16(p + 6) & 0x3fff) != 0) {
            return finish(PacketClass::ip_fragment);
        }
        proto_ = p[9];
        v6_ = false;
        final_dst_ = 0;
        off_ += ihl;
        return Step::ip_proto;
    }

    Step ipv6() noexcept {
        if (!have(40)) {
            return fail(ParseError::truncated_ipv6);
        }
        const uint8_t* p = at();
        if ((p[0] >> 4) != 6) {
            return fail(ParseError::ipv6_bad_header);
        }
        uint32_t plen = be16(p + 4);
        if (plen == 0 && p[6] != 59) {
            // Jumbogram or TSO super-segment: the length is not in this field.
            plen = limit() - off_ - 40;
        }
        if (static_cast<uint64_t>(off_) + 40 + plen > end_) {
            return fail(ParseError::ipv6_bad_header);
        }
        out_.ip_version = 6;
        std::memcpy(out_.src.data(), p + 8, 16);
        std::memcpy(out_.dst.data(), p + 24, 16);
        end_ = off_ + 40 + plen;
        proto_ = p[6];
        v6_ = true;
        final_dst_ = 0;
        off_ += 40;
        return Step::ip_proto;
    }

    // Extension headers (IPv6; AH in both families), then the transport or tunnel protocol.
    Step ip_proto() noexcept {
        const ParseError trunc = v6_ ? ParseError::truncated_ipv6 : ParseError::truncated_ipv4;
        const ParseError bad = v6_ ? ParseError::ipv6_bad_header : ParseError::ipv4_bad_header;
        for (int n = 0;; ++n) {
            uint8_t nh = proto_;
            bool ext = nh == ipproto::ah;
            if (v6_) {
                ext = ext || nh == ipproto::hopopt || nh == ipproto::routing ||
                      nh == ipproto::fragment || nh == ipproto::dstopts ||
                      nh == ipproto::mobility || nh == ipproto::hip || nh == ipproto::shim6;
            }
            if (!ext) {
                break;
            }
            if (n == max_ipv6_ext_headers) {
                return fail(ParseError::ipv6_too_many_ext);
            }
            // Every extension header is at least 8 bytes: next header, length, 6 more.
            if (!have(8)) {
                return fail(trunc);
            }
            const uint8_t* p = at();
            uint32_t len;
            if (nh == ipproto::fragment) {
                // Offset (13 bits) and M (bit 0); an atomic fragment (RFC 6946) is whole.
                if ((be16(p + 2) & 0xfff9) != 0) {
                    return finish(PacketClass::ip_fragment);
                }
                len = 8;
            } else if (nh == ipproto::ah) {
                len = (p[1] + 2u) * 4;  // RFC 4302: in 32-bit words, minus 2
            } else {
                len = (p[1] + 1u) * 8;  // RFC 8200: in 8-octet units, not counting the first 8
            }
            if (static_cast<uint64_t>(off_) + len > end_) {
                return fail(bad);
            }
            if (nh == ipproto::routing && p[3] != 0) {
                note_final_destination(p);
            }
            proto_ = p[0];
            off_ += len;
        }
        switch (proto_) {
            case ipproto::tcp: return Step::tcp;
            case ipproto::ipip:
                if (!push(encap::ip_in_ip)) {
                    return fail(ParseError::too_many_layers);
                }
                return Step::ipv4;
            case ipproto::ipv6:
                if (!push(encap::ip_in_ip)) {
                    return fail(ParseError::too_many_layers);
                }
                return Step::ipv6;
            case ipproto::gre: return gre();
            case ipproto::udp: return udp();
            default: return finish(PacketClass::non_tcp);  // ICMP, ESP, no next header...
        }
    }

    // RFC 8200 8.1: with segments left, the TCP pseudo-header uses the final destination.
    // Only needed for the checksum, which is only checked on complete segments, so the offset
    // is noted here and read there. The key keeps the wire destination: it is what the other
    // direction's source will be matched against at this tap.
    void note_final_destination(const uint8_t* p) noexcept {
        uint32_t len = (p[1] + 1u) * 8;
        uint32_t type = p[2];
        if (len < 24) {
            return;
        }
        if (type == 4) {
            final_dst_ = off_ + 8;  // SRH: segment list[0] is the last segment
        } else if (type == 0 || type == 2) {
            final_dst_ = off_ + 8 + ((len - 8) / 16 - 1) * 16;  // the last address listed
        }
    }

    // --- tunnels ------------------------------------------------------------------------------
    Step gre() noexcept {
        if (!push(encap::gre)) {
            return fail(ParseError::too_many_layers);
        }
        if (!have(4)) {
            return fail(ParseError::truncated_gre);
        }
        const uint16_t flags = be16(at());
        const uint16_t proto = be16(at(2));
        const bool seq = (flags & 0x1000) != 0;
        switch (flags & 0x0007) {
            case 0: {
                // RFC 2784 + 2890: C, K, S each add 4 bytes. Routing (RFC 1701) is obsolete and
                // of unknown length: RFC 2784 says to drop such packets.
                if (flags & 0x4000) {
                    return fail(ParseError::tunnel_bad_header);
                }
                uint32_t len = 4 + ((flags & 0x8000) ? 4 : 0) + ((flags & 0x2000) ? 4 : 0) +
                               (seq ? 4 : 0);
                if (!have(len)) {
                    return fail(ParseError::truncated_gre);
                }
                off_ += len;
                return gre_payload(proto, seq);
            }
            case 1: {
                // Enhanced GRE (PPTP, RFC 2637): key present (payload length + call ID),
                // optional sequence and acknowledgement numbers, PPP inside.
                if ((flags & 0x2000) == 0 || proto != ethertype::pptp_ppp) {
                    return fail(ParseError::tunnel_bad_header);
                }
                uint32_t len = 8 + (seq ? 4 : 0) + ((flags & 0x0080) ? 4 : 0);
                if (!have(len)) {
                    return fail(ParseError::truncated_gre);
                }
                const bool empty = be16(at(4)) == 0;  // acknowledgement-only packet
                off_ += len;
                if (empty) {
                    return finish(PacketClass::non_ip);
                }
                return ppp(ParseError::truncated_gre);
            }
            default: return fail(ParseError::tunnel_bad_header);
        }
    }

    Step gre_payload(uint16_t proto, bool seq) noexcept {
        switch (proto) {
            case ethertype::teb: return Step::ethernet;
            case ethertype::erspan_2:
                if (!push(encap::erspan)) {
                    return fail(ParseError::too_many_layers);
                }
                // Type I has no ERSPAN header and no GRE sequence number; type II has both.
                if (!seq) {
                    return Step::ethernet;
                }
                if (!have(8)) {
                    return fail(ParseError::truncated_tunnel);
                }
                if ((at()[0] >> 4) != 1) {
                    return fail(ParseError::tunnel_bad_header);
                }
                off_ += 8;
                return Step::ethernet;
            case ethertype::erspan_3: {
                if (!push(encap::erspan)) {
                    return fail(ParseError::too_many_layers);
                }
                // ver(4) vlan(12) | cos bso t session(10) | timestamp(32) |
                // sgt(16) p(1) ft(5) hw id(6) d(1) gra(2) o(1), then an 8-byte platform
                // sub-header when o is set.
                if (!have(12)) {
                    return fail(ParseError::truncated_tunnel);
                }
                const uint8_t* p = at();
                if ((p[0] >> 4) != 2) {
                    return fail(ParseError::tunnel_bad_header);
                }
                const uint32_t ft = (p[10] >> 2) & 0x1f;
                const uint32_t len = 12 + ((p[11] & 0x01) ? 8 : 0);
                if (!have(len)) {
                    return fail(ParseError::truncated_tunnel);
                }
                off_ += len;
                if (ft == 0) {
                    return Step::ethernet;
                }
                return ft == 2 ? Step::ip_guess : finish(PacketClass::non_ip);
            }
            default:
                // Aruba access points tunnel 802.11 frames with these protocol values.
                if (proto >= 0x8200 && proto <= 0x8370 && (proto & 0x000f) == 0) {
                    if (!push(encap::wlan)) {
                        return fail(ParseError::too_many_layers);
                    }
                    return wlan();
                }
                // IPv4, IPv6, MPLS... or something we do not parse. Values below 0x0600 are
                // not 802.3 lengths here (keepalives use 0).
                type_ = proto;
                return proto < 0x0600 ? finish(PacketClass::non_ip) : Step::ethertype;
        }
    }

    // 802.11 data frame -> LLC/SNAP -> ethertype (as Zeek's IEEE802_11 analyzer).
    Step wlan() noexcept {
        if (!have(24)) {
            return fail(ParseError::truncated_tunnel);
        }
        const uint8_t fc0 = at()[0];
        const uint8_t fc1 = at()[1];
        const uint8_t subtype = fc0 >> 4;
        // Management/control frames, null-data subtypes and protected frames carry no IP we
        // can read.
        if (((fc0 >> 2) & 0x03) != 2 || (subtype & 0x04) || (fc1 & 0x40)) {
            return finish(PacketClass::non_ip);
        }
        uint32_t len = 24 + ((fc1 & 0x03) == 0x03 ? 6 : 0);  // 4th address in WDS frames
        bool amsdu = false;
        if (subtype & 0x08) {  // QoS data: 2-byte QoS control, + HT control when Order is set
            if (!have(len + 2)) {
                return fail(ParseError::truncated_tunnel);
            }
            amsdu = (at(len)[0] & 0x80) != 0;
            len += 2 + ((fc1 & 0x80) ? 4 : 0);
        }
        // An A-MSDU holds several packets; the first one stands for the frame, since the rest
        // of the pipeline sees one packet per frame (Zeek walks them all).
        if (amsdu) {
            len += 14;
        }
        if (!have(len + 8)) {
            return fail(ParseError::truncated_tunnel);
        }
        off_ += len;
        const uint8_t* p = at();
        if (p[0] != 0xaa || p[1] != 0xaa || p[2] != 0x03 || p[3] != 0 || p[4] != 0 || p[5] != 0) {
            return finish(PacketClass::non_ip);
        }
        type_ = be16(p + 6);
        off_ += 8;
        return Step::ethertype;
    }

    Step udp() noexcept {
        if (!have(8)) {
            return fail(ParseError::truncated_udp);
        }
        const uint16_t sport = be16(at());
        const uint16_t dport = be16(at(2));
        off_ += 8;
        // Standard tunnels are identified by their IANA destination port alone: the source port
        // is flow entropy.
        if (dport == udp_port::vxlan) {
            if (!push(encap::vxlan)) {
                return fail(ParseError::too_many_layers);
            }
            // flags(1) reserved(3) VNI(3) reserved(1). The I flag is not insisted on: a mirror
            // that clears it still sends Ethernet.
            if (!have(8)) {
                return fail(ParseError::truncated_tunnel);
            }
            off_ += 8;
            return Step::ethernet;
        }
        if (dport == udp_port::geneve) {
            if (!push(encap::geneve)) {
                return fail(ParseError::too_many_layers);
            }
            // ver(2) opt len(6, 4-byte words) | O C rsvd | protocol(16) | VNI(24) rsvd(8)
            if (!have(8)) {
                return fail(ParseError::truncated_tunnel);
            }
            if ((at()[0] >> 6) != 0) {
                return fail(ParseError::tunnel_bad_header);
            }
            const uint32_t len = 8 + (at()[0] & 0x3fu) * 4;
            type_ = be16(at(2));
            if (!have(len)) {
                return fail(ParseError::truncated_tunnel);
            }
            off_ += len;
            if (type_ == ethertype::teb) {
                return Step::ethernet;
            }
            return type_ < 0x0600 ? finish(PacketClass::non_ip) : Step::ethertype;
        }
        if (sport == udp_port::gtp_u || dport == udp_port::gtp_u) {
            return gtp();
        }
        if (sport == udp_port::ayiya || dport == udp_port::ayiya) {
            return ayiya();
        }
        // Teredo data goes to relays on any port (only server exchanges use 3544); the
        // heuristic in teredo() is strict enough to try on every other UDP datagram.
        return teredo(sport != udp_port::teredo && dport != udp_port::teredo);
    }

    // GTPv1-U (3GPP TS 29.281). Only G-PDUs carry user IP; echo and error messages are
    // counted as plain UDP.
    Step gtp() noexcept {
        if (!have(8)) {
            return finish(PacketClass::non_tcp);
        }
        const uint8_t flags = at()[0];
        if ((flags >> 5) != 1 || (flags & 0x10) == 0 || at()[1] != 0xff) {
            return finish(PacketClass::non_tcp);
        }
        if (!push(encap::gtp)) {
            return fail(ParseError::too_many_layers);
        }
        uint32_t len = 8;
        if (flags & 0x07) {  // E, S or PN: sequence, N-PDU and next-extension type follow
            len = 12;
            if (!have(len)) {
                return fail(ParseError::truncated_tunnel);
            }
            uint8_t next = (flags & 0x04) ? at(11)[0] : 0;
            for (int n = 0; next != 0; ++n) {
                if (n == max_gtp_ext_headers) {
                    return fail(ParseError::tunnel_bad_header);
                }
                if (!have(1, len)) {
                    return fail(ParseError::truncated_tunnel);
                }
                // Length in 4-byte units, the last byte being the next extension's type.
                const uint32_t ext = at(len)[0] * 4u;
                if (ext == 0) {
                    return fail(ParseError::tunnel_bad_header);
                }
                if (!have(ext, len)) {
                    return fail(ParseError::truncated_tunnel);
                }
                next = at(len + ext - 1)[0];
                len += ext;
            }
        }
        if (!have(len)) {
            return fail(ParseError::truncated_tunnel);
        }
        off_ += len;
        return Step::ip_guess;
    }

    // Teredo (RFC 4380): IPv6 in UDP, optionally behind authentication and origin indication
    // headers. Anything that does not hold a self-consistent IPv6 header (version 6, payload
    // length filling the datagram exactly) stays non_tcp. Away from port 3544 one end must also
    // be a Teredo address (2001:0::/32), which makes false positives on random UDP negligible.
    Step teredo(bool any_port) noexcept {
        uint64_t rel = 0;
        if (have(4) && at()[0] == 0 && at()[1] == 1) {
            // indicator(2) id len(1) auth len(1) id auth nonce(8) confirmation(1)
            rel = 13u + at()[2] + at()[3];
        }
        if (have(8, rel) && at(static_cast<uint32_t>(rel))[0] == 0 &&
            at(static_cast<uint32_t>(rel))[1] == 0) {
            rel += 8;  // origin indication: indicator(2) port(2) address(4)
        }
        if (!have(any_port ? 40 : 6, rel)) {
            return finish(PacketClass::non_tcp);
        }
        const uint8_t* p = at(static_cast<uint32_t>(rel));
        if ((p[0] >> 4) != 6 || static_cast<uint64_t>(off_) + rel + 40 + be16(p + 4) != end_) {
            return finish(PacketClass::non_tcp);
        }
        if (any_port) {
            static constexpr uint8_t prefix[4] = {0x20, 0x01, 0x00, 0x00};
            if (std::memcmp(p + 8, prefix, 4) != 0 && std::memcmp(p + 24, prefix, 4) != 0) {
                return finish(PacketClass::non_tcp);
            }
        }
        if (!push(encap::teredo)) {
            return fail(ParseError::too_many_layers);
        }
        off_ += static_cast<uint32_t>(rel);
        return Step::ipv6;
    }

    // AYIYA (Anything In Anything): id len/type, sig len/hash, auth/opcode, next header,
    // epoch(4), identity (2^id len bytes), signature (4 * sig len bytes).
    Step ayiya() noexcept {
        if (!have(8)) {
            return finish(PacketClass::non_tcp);
        }
        const uint8_t* p = at();
        const uint8_t opcode = p[2] & 0x0f;
        const uint8_t nh = p[3];
        if (opcode != 1 || (nh != ipproto::ipv6 && nh != ipproto::ipip)) {
            return finish(PacketClass::non_tcp);  // not a forwarded packet
        }
        if (!push(encap::ayiya)) {
            return fail(ParseError::too_many_layers);
        }
        const uint32_t len = 8 + (1u << (p[0] >> 4)) + (p[1] >> 4) * 4u;
        if (!have(len)) {
            return fail(ParseError::truncated_tunnel);
        }
        off_ += len;
        return nh == ipproto::ipv6 ? Step::ipv6 : Step::ipv4;
    }

    // --- TCP ----------------------------------------------------------------------------------
    Step tcp() noexcept {
        // The IP length says the segment cannot even hold a TCP header: a length lie, not a
        // short capture.
        if (static_cast<uint64_t>(off_) + 20 > end_) {
            return fail(ParseError::tcp_bad_offset);
        }
        if (!have(20)) {
            return fail(ParseError::truncated_tcp);
        }
        const uint8_t* p = at();
        const uint32_t hdr_len = (p[12] >> 4) * 4u;
        if (hdr_len < 20 || static_cast<uint64_t>(off_) + hdr_len > end_) {
            return fail(ParseError::tcp_bad_offset);
        }
        const uint32_t payload_off = off_ + hdr_len;
        if (payload_off > 0xffff) {
            return fail(ParseError::headers_too_long);
        }
        read_tcp_fixed(p, out_);
        if (p[13] & 0x02) {
            const uint32_t avail = limit() - off_;  // have(20) held, so >= 20
            out_.wscale = tcp_window_scale(p, hdr_len < avail ? hdr_len : avail);
        }
        out_.payload_len = end_ - payload_off;
        out_.payload_offset = static_cast<uint16_t>(payload_off);
        // Options cut by the snap length do not make the segment useless to the close machine
        // (it needs flags and numbers); they leave payload_caplen at 0.
        const uint32_t lim = limit();
        const uint32_t pcap = lim > payload_off ? lim - payload_off : 0;
        out_.payload_caplen = static_cast<uint16_t>(pcap < 0xffff ? pcap : 0xffff);
        if (verify_ && cap_ >= end_ && !tcp_checksum_ok()) {
            out_.checksum_bad = true;
        }
        return finish(PacketClass::tcp);
    }

    bool tcp_checksum_ok() const noexcept {
        const uint32_t seg_len = end_ - off_;
        uint8_t pseudo[40];
        uint32_t plen;
        if (out_.ip_version == 4) {
            std::memcpy(pseudo, out_.src.data() + 12, 4);
            std::memcpy(pseudo + 4, out_.dst.data() + 12, 4);
            pseudo[8] = 0;
            pseudo[9] = ipproto::tcp;
            pseudo[10] = static_cast<uint8_t>(seg_len >> 8);
            pseudo[11] = static_cast<uint8_t>(seg_len);
            plen = 12;
        } else {
            std::memcpy(pseudo, out_.src.data(), 16);
            std::memcpy(pseudo + 16, final_dst_ != 0 ? d_ + final_dst_ : out_.dst.data(), 16);
            pseudo[32] = static_cast<uint8_t>(seg_len >> 24);
            pseudo[33] = static_cast<uint8_t>(seg_len >> 16);
            pseudo[34] = static_cast<uint8_t>(seg_len >> 8);
            pseudo[35] = static_cast<uint8_t>(seg_len);
            pseudo[36] = 0;
            pseudo[37] = 0;
            pseudo[38] = 0;
            pseudo[39] = ipproto::tcp;
            plen = 40;
        }
        return csum_ok(csum_add(d_ + off_, seg_len, csum_add(pseudo, plen, 0)));
    }

    const uint8_t* d_;
    uint32_t cap_;
    uint32_t end_ = UINT32_MAX;  // no IP header yet: only the capture bounds reads
    uint32_t off_ = 0;
    uint32_t final_dst_ = 0;     // IPv6 routing header's final destination (offset), 0 if none
    uint16_t type_ = 0;          // ethertype for Step::ethertype
    uint8_t proto_ = 0;          // IP protocol / next header for Step::ip_proto
    uint8_t layers_ = 0;
    bool v6_ = false;
    bool verify_;
    PacketClass cls_ = PacketClass::error;
    ParseError err_ = ParseError::truncated_link;
    ParsedPacket& out_;
};

}  // namespace

namespace {

// parse_packet's fast path for plain_ipv4_tcp frames (parse.hh). Fills `out` exactly as the
// Walker would (tests/test_parse.cc compares the two on mutated frames) and returns false,
// having written nothing, for anything else.
inline bool parse_plain_ipv4_tcp(const uint8_t* d, uint32_t caplen, ParsedPacket& out) noexcept {
    PlainTcp4 v;
    if (!plain_ipv4_tcp(d, caplen, v)) return false;
    if (v.vlan) {
        out.vlan_depth = 1;
        out.encap = encap::vlan;
    }
    out.ip_version = 4;
    out.src[10] = 0xff;
    out.src[11] = 0xff;
    std::memcpy(out.src.data() + 12, v.ip + 12, 4);
    out.dst[10] = 0xff;
    out.dst[11] = 0xff;
    std::memcpy(out.dst.data() + 12, v.ip + 16, 4);
    read_tcp_fixed(v.tcp, out);
    if (out.flags & 0x02) out.wscale = tcp_window_scale(v.tcp, v.tcp_hdr_len);  // SYN
    out.payload_len = v.payload_len;
    out.payload_offset = static_cast<uint16_t>(v.payload_offset);
    out.payload_caplen = static_cast<uint16_t>(v.payload_len);  // <= 65535 - 40
    return true;
}

}  // namespace

PacketClass parse_packet_walk(const uint8_t* data, uint32_t caplen, const ParseOptions& opt,
                              ParsedPacket& out, ParseError& err) noexcept {
    out = ParsedPacket{};
    out.wscale = 0xff;
    if (data == nullptr) {
        caplen = 0;
    }
    return Walker(data, caplen, opt.verify_checksums, out).run(opt.link, err);
}

PacketClass parse_packet(const uint8_t* data, uint32_t caplen, const ParseOptions& opt,
                         ParsedPacket& out, ParseError& err) noexcept {
    if (opt.link == LinkType::ethernet && !opt.verify_checksums && data != nullptr) {
        out = ParsedPacket{};
        out.wscale = 0xff;
        if (parse_plain_ipv4_tcp(data, caplen, out)) {
            return PacketClass::tcp;
        }
    }
    return parse_packet_walk(data, caplen, opt, out, err);
}

}  // namespace closetap
