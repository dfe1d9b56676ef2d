// PacketBuilder: builds frames layer by layer, outermost first, with every length, next-protocol
// field and checksum filled in at build() time (after Katran's lib/testing PacketBuilder). The
// same fixtures feed the parser's unit tests, its fuzzer corpus and the benchmarks.
//
//   auto frame = PacketBuilder().eth().vlan(10).ipv4(ip4(10, 0, 0, 1), ip4(10, 0, 0, 2))
//                    .tcp({.sport = 1234, .dport = 80, .flags = tcpf::syn}).build();
//
// Test-only code: it allocates freely. Next-protocol fields are derived from the layer that
// follows; `Layer::next` overrides that (to build non-IP payloads or deliberately wrong frames).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <vector>

namespace closetap::testing {

using Ip4 = std::array<uint8_t, 4>;
using Ip6 = std::array<uint8_t, 16>;
using Mac = std::array<uint8_t, 6>;

inline constexpr Ip4 ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return {a, b, c, d}; }
// ip6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1}) -> 2001:db8::1
inline constexpr Ip6 ip6(std::array<uint16_t, 8> groups) {
    Ip6 r{};
    for (size_t i = 0; i < 8; ++i) {
        r[2 * i] = static_cast<uint8_t>(groups[i] >> 8);
        r[2 * i + 1] = static_cast<uint8_t>(groups[i]);
    }
    return r;
}
// The IPv4-mapped IPv6 form the parser reports IPv4 addresses in.
inline constexpr Ip6 mapped(Ip4 a) {
    return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3]};
}

namespace tcpf {
inline constexpr uint8_t fin = 0x01;
inline constexpr uint8_t syn = 0x02;
inline constexpr uint8_t rst = 0x04;
inline constexpr uint8_t psh = 0x08;
inline constexpr uint8_t ack = 0x10;
}  // namespace tcpf

struct TcpSpec {
    uint16_t sport = 40000;
    uint16_t dport = 80;
    uint32_t seq = 1000;
    uint32_t ack = 0;
    uint8_t flags = tcpf::ack;
    uint16_t window = 29200;
    std::vector<uint8_t> options{};  // raw option bytes (a multiple of 4)
    uint32_t payload = 0;           // payload bytes (a counting pattern)
    std::optional<uint8_t> doff{};   // data offset override (words)
    bool bad_checksum = false;
};

// Option bytes: MSS 1460, SACK permitted, timestamps, NOP, window scale `ws` (20 bytes).
inline std::vector<uint8_t> syn_options(uint8_t ws) {
    return {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, ws};
}

struct Ipv4Spec {
    Ip4 src = ip4(10, 0, 0, 1);
    Ip4 dst = ip4(10, 0, 0, 2);
    std::vector<uint8_t> options{};     // raw, multiple of 4
    uint16_t frag = 0x4000;            // flags + offset field (DF by default)
    uint8_t ttl = 64;
    std::optional<uint16_t> total_len{};  // override
    std::optional<uint8_t> ihl{};         // override (words)
    bool bad_checksum = false;
};

struct Ipv6Spec {
    Ip6 src = ip6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1});
    Ip6 dst = ip6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 2});
    std::optional<uint16_t> payload_len{};  // override
};

class PacketBuilder {
public:
    enum class Kind : uint8_t {
        eth, vlan, mpls, pw_cw, pbb, fabricpath, pppoe, llc_snap,
        ipv4, ipv6, v6_opts, v6_routing, v6_frag, ah, esp,
        gre, erspan1, erspan2, erspan3, wlan,
        udp, vxlan, geneve, gtp, teredo_origin, ayiya, tcp, raw,
        null_link, loop_link, sll, sll2,
    };

    // --- link layers ----------------------------------------------------------------------
    PacketBuilder& eth(std::optional<uint16_t> type = {}) { return add(Kind::eth, type); }
    // BSD NULL with the AF value in host (little-endian) order, or swapped (a BE writer).
    PacketBuilder& null_link(uint32_t af, bool swapped = false) {
        Layer& l = push(Kind::null_link);
        l.a = af;
        l.flag = swapped;
        return *this;
    }
    PacketBuilder& loop_link(uint32_t af) { return push(Kind::loop_link).a = af, *this; }
    PacketBuilder& sll(std::optional<uint16_t> proto = {}) { return add(Kind::sll, proto); }
    PacketBuilder& sll2(std::optional<uint16_t> proto = {}) { return add(Kind::sll2, proto); }

    // --- L2 shims ---------------------------------------------------------------------------
    PacketBuilder& vlan(uint16_t vid, uint16_t tpid = 0x8100) {
        Layer& l = push(Kind::vlan);
        l.a = vid;
        l.b = tpid;
        return *this;
    }
    PacketBuilder& mpls(uint32_t label) { return push(Kind::mpls).a = label, *this; }
    PacketBuilder& pw_control_word() { return push(Kind::pw_cw), *this; }
    PacketBuilder& pbb(uint32_t isid) { return push(Kind::pbb).a = isid, *this; }
    PacketBuilder& fabricpath() { return push(Kind::fabricpath), *this; }
    PacketBuilder& pppoe(uint16_t session = 0x0f07, std::optional<uint16_t> ppp = {}) {
        Layer& l = push(Kind::pppoe);
        l.a = session;
        l.next = ppp;
        return *this;
    }
    PacketBuilder& llc_snap(std::optional<uint16_t> type = {}) {
        return add(Kind::llc_snap, type);
    }

    // --- IP ---------------------------------------------------------------------------------
    PacketBuilder& ipv4(Ipv4Spec s = {}, std::optional<uint8_t> proto = {}) {
        Layer& l = push(Kind::ipv4);
        l.v4 = std::move(s);
        l.next = proto;
        return *this;
    }
    PacketBuilder& ipv4(Ip4 src, Ip4 dst) { return ipv4(Ipv4Spec{.src = src, .dst = dst}); }
    PacketBuilder& ipv6(Ipv6Spec s = {}, std::optional<uint8_t> nh = {}) {
        Layer& l = push(Kind::ipv6);
        l.v6 = s;
        l.next = nh;
        return *this;
    }
    PacketBuilder& ipv6(Ip6 src, Ip6 dst) { return ipv6(Ipv6Spec{.src = src, .dst = dst}); }
    // Hop-by-hop (0) or destination options (60), `len` bytes (multiple of 8), PadN-filled.
    PacketBuilder& v6_opts(uint8_t type, uint32_t len = 8, std::optional<uint8_t> nh = {}) {
        Layer& l = push(Kind::v6_opts);
        l.a = type;
        l.b = len;
        l.next = nh;
        return *this;
    }
    PacketBuilder& v6_routing(uint8_t type, uint8_t segments_left, std::vector<Ip6> addrs) {
        Layer& l = push(Kind::v6_routing);
        l.a = type;
        l.b = segments_left;
        l.addrs = std::move(addrs);
        return *this;
    }
    PacketBuilder& v6_frag(uint16_t offset8, bool more, uint32_t id = 0x1234) {
        Layer& l = push(Kind::v6_frag);
        l.a = offset8;
        l.flag = more;
        l.b = id;
        return *this;
    }
    // Authentication header with `icv` bytes of ICV (multiple of 4; 12 for HMAC-SHA1-96).
    PacketBuilder& ah(uint32_t icv = 12) { return push(Kind::ah).a = icv, *this; }
    PacketBuilder& esp() { return push(Kind::esp), *this; }

    // --- tunnels ----------------------------------------------------------------------------
    // GRE version 0 with optional checksum, key and sequence number (RFC 2784/2890).
    PacketBuilder& gre(bool csum = false, std::optional<uint32_t> key = {},
                       std::optional<uint32_t> seq = {}, std::optional<uint16_t> proto = {}) {
        Layer& l = push(Kind::gre);
        l.flag = csum;
        l.key = key;
        l.seqno = seq;
        l.next = proto;
        return *this;
    }
    PacketBuilder& erspan1() { return push(Kind::erspan1), *this; }
    PacketBuilder& erspan2(uint16_t session = 1) { return push(Kind::erspan2).a = session, *this; }
    PacketBuilder& erspan3(bool platform = false, uint8_t ft = 0) {
        Layer& l = push(Kind::erspan3);
        l.flag = platform;
        l.a = ft;
        return *this;
    }
    // Aruba-style 802.11 QoS data frame (GRE protocol 0x8200 + 0x10 * n) with LLC/SNAP.
    PacketBuilder& wlan(bool amsdu = false, uint16_t gre_proto = 0x8240) {
        Layer& l = push(Kind::wlan);
        l.flag = amsdu;
        l.a = gre_proto;
        return *this;
    }
    PacketBuilder& udp(uint16_t sport, uint16_t dport) {
        Layer& l = push(Kind::udp);
        l.a = sport;
        l.b = dport;
        return *this;
    }
    PacketBuilder& vxlan(uint32_t vni = 42) {
        return udp(49152, 4789), push(Kind::vxlan).a = vni, *this;
    }
    // Geneve with `opt_words` 4-byte words of options; protocol from the next layer.
    PacketBuilder& geneve(uint32_t opt_words = 0, uint8_t version = 0) {
        udp(49152, 6081);
        Layer& l = push(Kind::geneve);
        l.a = opt_words;
        l.b = version;
        return *this;
    }
    // GTP-U G-PDU; with_ext adds sequence number and one PDU session container extension.
    PacketBuilder& gtp(bool with_ext = false) {
        udp(2152, 2152);
        return push(Kind::gtp).flag = with_ext, *this;
    }
    // Teredo: UDP 3544 and, optionally, the origin indication header.
    PacketBuilder& teredo(bool origin_indication = false, uint16_t port = 3544) {
        udp(port, 51000);
        if (origin_indication) {
            push(Kind::teredo_origin);
        }
        return *this;
    }
    PacketBuilder& ayiya() { return udp(5072, 5072), push(Kind::ayiya), *this; }

    PacketBuilder& tcp(TcpSpec s = {}) {
        Layer& l = push(Kind::tcp);
        l.tcp = std::move(s);
        return *this;
    }
    PacketBuilder& raw(std::vector<uint8_t> bytes) {
        Layer& l = push(Kind::raw);
        l.bytes = std::move(bytes);
        return *this;
    }
    // Zero-pads the finished frame to `n` bytes, as Ethernet does to 60 (without FCS).
    PacketBuilder& pad_to(uint32_t n) {
        pad_to_ = n;
        return *this;
    }

    std::vector<uint8_t> build() const {
        std::vector<uint8_t> out;
        Pending l4;
        const Layer* inner = nullptr;
        for (size_t i = layers_.size(); i-- > 0;) {
            const Layer& l = layers_[i];
            std::vector<uint8_t> h = header(l, inner, out, l4);
            out.insert(out.begin(), h.begin(), h.end());
            l4.at += h.size();
            if (l.kind == Kind::tcp || l.kind == Kind::udp) {
                l4 = Pending{0, &l};
            }
            inner = &l;
        }
        if (out.size() < pad_to_) {
            out.resize(pad_to_, 0);
        }
        return out;
    }

private:
    struct Layer {
        Kind kind;
        uint32_t a = 0;
        uint32_t b = 0;
        bool flag = false;
        std::optional<uint16_t> next{};
        std::optional<uint32_t> key{};
        std::optional<uint32_t> seqno{};
        Ipv4Spec v4{};
        Ipv6Spec v6{};
        TcpSpec tcp{};
        std::vector<uint8_t> bytes{};
        std::vector<Ip6> addrs{};
    };

    // A TCP/UDP header in the bytes built so far, waiting for the IP layer that gives its
    // pseudo-header.
    struct Pending {
        size_t at = 0;
        const Layer* layer = nullptr;
    };

    Layer& push(Kind k) {
        layers_.push_back(Layer{.kind = k});
        return layers_.back();
    }
    PacketBuilder& add(Kind k, std::optional<uint16_t> next) {
        push(k).next = next;
        return *this;
    }

    static void put16(std::vector<uint8_t>& v, uint32_t x) {
        v.push_back(static_cast<uint8_t>(x >> 8));
        v.push_back(static_cast<uint8_t>(x));
    }
    static void put32(std::vector<uint8_t>& v, uint32_t x) {
        put16(v, x >> 16);
        put16(v, x);
    }
    static void set16(std::vector<uint8_t>& v, size_t at, uint32_t x) {
        v[at] = static_cast<uint8_t>(x >> 8);
        v[at + 1] = static_cast<uint8_t>(x);
    }
    static void append(std::vector<uint8_t>& v, const uint8_t* p, size_t n) {
        v.insert(v.end(), p, p + n);
    }

    // Plain big-endian RFC 1071 sum, written independently of the parser's.
    static uint32_t sum(const uint8_t* p, size_t n, uint32_t acc = 0) {
        for (size_t i = 0; i + 1 < n; i += 2) {
            acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
        }
        if (n & 1) {
            acc += static_cast<uint32_t>(p[n - 1] << 8);
        }
        return acc;
    }
    static uint16_t fold(uint32_t acc) {
        while (acc >> 16) {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        return static_cast<uint16_t>(~acc & 0xffff);
    }

    // Ethertype announcing `l`.
    static uint16_t ethertype_of(const Layer* l) {
        if (l == nullptr) {
            return 0x88b5;  // local experimental: "something else"
        }
        switch (l->kind) {
            case Kind::ipv4: return 0x0800;
            case Kind::ipv6: return 0x86dd;
            case Kind::vlan: return static_cast<uint16_t>(l->b);
            case Kind::mpls: return 0x8847;
            case Kind::pbb: return 0x88e7;
            case Kind::fabricpath: return 0x8903;
            case Kind::pppoe: return 0x8864;
            case Kind::eth: return 0x6558;
            case Kind::erspan1:
            case Kind::erspan2: return 0x88be;
            case Kind::erspan3: return 0x22eb;
            case Kind::wlan: return static_cast<uint16_t>(l->a);
            default: return 0x88b5;
        }
    }
    // IP protocol number announcing `l`.
    static uint8_t ipproto_of(const Layer* l) {
        if (l == nullptr) {
            return 59;
        }
        switch (l->kind) {
            case Kind::tcp: return 6;
            case Kind::udp: return 17;
            case Kind::gre: return 47;
            case Kind::ipv4: return 4;
            case Kind::ipv6: return 41;
            case Kind::v6_opts: return static_cast<uint8_t>(l->a);
            case Kind::v6_routing: return 43;
            case Kind::v6_frag: return 44;
            case Kind::ah: return 51;
            case Kind::esp: return 50;
            default: return 253;  // experimentation
        }
    }

    std::vector<uint8_t> header(const Layer& l, const Layer* inner, std::vector<uint8_t>& out,
                                Pending& l4) const {
        std::vector<uint8_t> h;
        const auto ether_next = [&] { return l.next ? *l.next : ethertype_of(inner); };
        const auto ip_next = [&] {
            return l.next ? static_cast<uint8_t>(*l.next) : ipproto_of(inner);
        };
        switch (l.kind) {
            case Kind::null_link: {
                uint32_t af = l.a;
                if (l.flag) {
                    af = __builtin_bswap32(af);
                }
                for (int i = 0; i < 4; ++i) {
                    h.push_back(static_cast<uint8_t>(af >> (8 * i)));  // little-endian host
                }
                break;
            }
            case Kind::loop_link: put32(h, l.a); break;
            case Kind::sll:
                put16(h, 0);  // packet type: to us
                put16(h, 1);  // ARPHRD_ETHER
                put16(h, 6);
                append(h, src_mac.data(), 6);
                put16(h, 0);
                put16(h, ether_next());
                break;
            case Kind::sll2:
                put16(h, ether_next());
                put16(h, 0);
                put32(h, 3);  // ifindex
                put16(h, 1);  // ARPHRD_ETHER
                h.push_back(0);
                h.push_back(6);
                append(h, src_mac.data(), 6);
                put16(h, 0);
                break;
            case Kind::eth:
                append(h, dst_mac.data(), 6);
                append(h, src_mac.data(), 6);
                put16(h, ether_next());
                break;
            case Kind::fabricpath:
                // Outer switch-ID addresses, 0x8903, FTag/TTL; the inner Ethernet follows.
                append(h, dst_mac.data(), 6);
                append(h, src_mac.data(), 6);
                put16(h, 0x8903);
                put16(h, 0x003f);
                break;
            case Kind::vlan:
                put16(h, l.a & 0x0fff);
                put16(h, ether_next());
                break;
            case Kind::llc_snap:
                h = {0xaa, 0xaa, 0x03, 0, 0, 0};
                put16(h, ether_next());
                break;
            case Kind::mpls: {
                const bool bottom = inner == nullptr || inner->kind != Kind::mpls;
                put32(h, (l.a << 12) | (bottom ? 0x100u : 0u) | 64u);
                break;
            }
            case Kind::pw_cw: put32(h, 0); break;
            case Kind::pbb:
                put32(h, l.a & 0x00ffffff);
                append(h, dst_mac.data(), 6);  // customer addresses
                append(h, src_mac.data(), 6);
                put16(h, ethertype_of(inner));
                break;
            case Kind::pppoe: {
                uint16_t ppp = l.next ? *l.next
                               : inner && inner->kind == Kind::ipv6 ? 0x0057
                                                                    : 0x0021;
                h = {0x11, 0x00};
                put16(h, l.a);
                put16(h, static_cast<uint32_t>(out.size() + 2));
                put16(h, ppp);
                break;
            }
            case Kind::ipv4: {
                const Ipv4Spec& s = l.v4;
                const uint32_t hl = 20 + static_cast<uint32_t>(s.options.size());
                h.push_back(static_cast<uint8_t>(0x40 | (s.ihl ? *s.ihl : hl / 4)));
                h.push_back(0);
                put16(h, s.total_len ? *s.total_len : static_cast<uint32_t>(hl + out.size()));
                put16(h, 0x0101);
                put16(h, s.frag);
                h.push_back(s.ttl);
                h.push_back(ip_next());
                put16(h, 0);
                append(h, s.src.data(), 4);
                append(h, s.dst.data(), 4);
                h.insert(h.end(), s.options.begin(), s.options.end());
                uint16_t c = fold(sum(h.data(), h.size()));
                set16(h, 10, s.bad_checksum ? c ^ 0x5a5a : c);
                if (l4.layer) {
                    finish_l4(out, l4, s.src.data(), s.dst.data(), 4);
                    l4 = {};
                }
                break;
            }
            case Kind::ipv6: {
                const Ipv6Spec& s = l.v6;
                put32(h, 0x60000000);
                put16(h, s.payload_len ? *s.payload_len : static_cast<uint32_t>(out.size()));
                h.push_back(ip_next());
                h.push_back(64);
                append(h, s.src.data(), 16);
                append(h, s.dst.data(), 16);
                if (l4.layer) {
                    // RFC 8200 8.1: the final destination of a routing header, if any.
                    const uint8_t* dst = s.dst.data();
                    for (size_t i = index_of(l) + 1; i < layers_.size(); ++i) {
                        const Layer& e = layers_[i];
                        if (e.kind == Kind::v6_routing && e.b != 0 && !e.addrs.empty()) {
                            dst = e.a == 4 ? e.addrs.front().data() : e.addrs.back().data();
                        }
                        if (e.kind == Kind::tcp || e.kind == Kind::udp) {
                            break;
                        }
                    }
                    finish_l4(out, l4, s.src.data(), dst, 16);
                    l4 = {};
                }
                break;
            }
            case Kind::v6_opts: {
                h.push_back(ip_next());
                h.push_back(static_cast<uint8_t>(l.b / 8 - 1));
                h.push_back(1);  // PadN covering the rest
                h.push_back(static_cast<uint8_t>(l.b - 4));
                h.resize(l.b, 0);
                break;
            }
            case Kind::v6_routing:
                h.push_back(ip_next());
                h.push_back(static_cast<uint8_t>(l.addrs.size() * 2));
                h.push_back(static_cast<uint8_t>(l.a));
                h.push_back(static_cast<uint8_t>(l.b));
                put32(h, 0);
                for (const Ip6& a : l.addrs) {
                    append(h, a.data(), 16);
                }
                break;
            case Kind::v6_frag:
                h.push_back(ip_next());
                h.push_back(0);
                put16(h, (l.a << 3) | (l.flag ? 1u : 0u));
                put32(h, l.b);
                break;
            case Kind::ah:
                h.push_back(ip_next());
                h.push_back(static_cast<uint8_t>((12 + l.a) / 4 - 2));
                put16(h, 0);
                put32(h, 0x100);  // SPI
                put32(h, 1);      // sequence
                h.resize(12 + l.a, 0xab);
                break;
            case Kind::esp:
                put32(h, 0x200);
                put32(h, 1);
                break;
            case Kind::gre: {
                uint16_t flags = (l.flag ? 0x8000 : 0) | (l.key ? 0x2000 : 0) |
                                 (l.seqno ? 0x1000 : 0);
                put16(h, flags);
                put16(h, l.next ? *l.next : ethertype_of(inner));
                if (l.flag) {
                    put32(h, 0);
                }
                if (l.key) {
                    put32(h, *l.key);
                }
                if (l.seqno) {
                    put32(h, *l.seqno);
                }
                if (l.flag) {
                    uint32_t acc = sum(h.data(), h.size());
                    set16(h, 4, fold(sum(out.data(), out.size(), acc)));
                }
                break;
            }
            case Kind::erspan1: break;  // no header: GRE without sequence number
            case Kind::erspan2:
                put16(h, 0x1000);  // version 1, VLAN 0
                put16(h, l.a & 0x3ff);
                put32(h, 0);
                break;
            case Kind::erspan3:
                put16(h, 0x2000);  // version 2
                put16(h, l.a & 0x3ff);
                put32(h, 0x12345678);  // timestamp
                put16(h, 0);           // SGT
                h.push_back(static_cast<uint8_t>((l.a & 0x1f) << 2));
                h.push_back(l.flag ? 0x01 : 0x00);
                if (l.flag) {
                    put32(h, 0x3 << 26);  // platform ID 3
                    put32(h, 0);
                }
                break;
            case Kind::wlan: {
                h = {0x88, 0x02, 0, 0};  // QoS data, FromDS
                append(h, dst_mac.data(), 6);
                append(h, src_mac.data(), 6);
                append(h, src_mac.data(), 6);
                put16(h, 0);                             // sequence control
                h.push_back(l.flag ? 0x80 : 0x00);       // QoS control, A-MSDU present
                h.push_back(0);
                if (l.flag) {
                    append(h, dst_mac.data(), 6);
                    append(h, src_mac.data(), 6);
                    put16(h, static_cast<uint32_t>(out.size() + 8));
                }
                h.insert(h.end(), {0xaa, 0xaa, 0x03, 0, 0, 0});
                put16(h, ethertype_of(inner));
                break;
            }
            case Kind::udp:
                put16(h, l.a);
                put16(h, l.b);
                put16(h, static_cast<uint32_t>(8 + out.size()));
                put16(h, 0);
                break;
            case Kind::vxlan:
                put32(h, 0x08000000);
                put32(h, l.a << 8);
                break;
            case Kind::geneve:
                h.push_back(static_cast<uint8_t>((l.b << 6) | (l.a & 0x3f)));
                h.push_back(0);
                put16(h, ethertype_of(inner));
                put32(h, 0x00abcd00);
                for (uint32_t i = 0; i < l.a; ++i) {
                    put32(h, 0x01020300 | i);
                }
                break;
            case Kind::gtp: {
                h.push_back(l.flag ? 0x36 : 0x30);  // v1, PT, (E + S)
                h.push_back(0xff);                  // G-PDU
                const uint32_t extra = l.flag ? 8 : 0;
                put16(h, static_cast<uint32_t>(out.size() + extra));
                put32(h, 0xdeadbeef);
                if (l.flag) {
                    put16(h, 7);     // sequence
                    h.push_back(0);  // N-PDU
                    h.push_back(0x85);  // next: PDU session container
                    h.insert(h.end(), {1, 0x10, 0x05, 0x00});  // 4 bytes, next type 0
                }
                break;
            }
            case Kind::teredo_origin:
                h = {0, 0, 0x12, 0x34, 0x3f, 0x00, 0x00, 0x01};
                break;
            case Kind::ayiya:
                // id len 2^4 (16-byte identity), type 1; sig len 5 words, SHA1; opcode 1
                h = {0x41, 0x52, 0x11, static_cast<uint8_t>(ip_next())};
                put32(h, 0x5f000000);
                h.resize(8 + 16 + 20, 0xcd);
                break;
            case Kind::tcp: {
                const TcpSpec& s = l.tcp;
                const uint32_t hl = 20 + static_cast<uint32_t>(s.options.size());
                put16(h, s.sport);
                put16(h, s.dport);
                put32(h, s.seq);
                put32(h, s.ack);
                h.push_back(static_cast<uint8_t>((s.doff ? *s.doff : hl / 4) << 4));
                h.push_back(s.flags);
                put16(h, s.window);
                put16(h, 0);
                put16(h, 0);
                h.insert(h.end(), s.options.begin(), s.options.end());
                for (uint32_t i = 0; i < s.payload; ++i) {
                    h.push_back(static_cast<uint8_t>('a' + i % 26));
                }
                if (!out.empty()) {
                    throw std::logic_error("PacketBuilder: nothing may follow tcp()");
                }
                break;
            }
            case Kind::raw: h = l.bytes; break;
        }
        return h;
    }

    size_t index_of(const Layer& l) const { return static_cast<size_t>(&l - layers_.data()); }

    // Pseudo-header + segment checksum for the pending TCP or UDP header (the segment runs to
    // the end of `seg`: nothing follows L4 in these frames).
    static void finish_l4(std::vector<uint8_t>& seg, const Pending& l4, const uint8_t* src,
                          const uint8_t* dst, size_t alen) {
        const bool is_tcp = l4.layer->kind == Kind::tcp;
        const size_t csum_at = l4.at + (is_tcp ? 16 : 6);
        const uint32_t len = static_cast<uint32_t>(seg.size() - l4.at);
        set16(seg, csum_at, 0);
        uint32_t acc = sum(src, alen);
        acc = sum(dst, alen, acc);
        acc += is_tcp ? 6 : 17;
        acc += len >> 16;
        acc += len & 0xffff;
        acc = sum(seg.data() + l4.at, len, acc);
        uint16_t c = fold(acc);
        if (!is_tcp && c == 0) {
            c = 0xffff;  // UDP: 0 means "no checksum"
        }
        if (is_tcp && l4.layer->tcp.bad_checksum) {
            c ^= 0x00ff;
        }
        set16(seg, csum_at, c);
    }

    static constexpr Mac dst_mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
    static constexpr Mac src_mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

    std::vector<Layer> layers_;
    uint32_t pad_to_ = 0;
};

}  // namespace closetap::testing
