// libFuzzer target for parse_packet: every input is tried as a frame of every link type, with
// and without checksum verification. libFuzzer hands over a heap buffer of exactly `size` bytes,
// so ASan reports any read past caplen; the invariants below catch wrong-but-in-bounds results.
#include <cstddef>
#include <cstdint>

#include "pipeline/parse.hh"

namespace {

constexpr closetap::LinkType links[] = {
    closetap::LinkType::ethernet,  closetap::LinkType::null_bsd, closetap::LinkType::loop,
    closetap::LinkType::raw,       closetap::LinkType::ipv4,     closetap::LinkType::ipv6,
    closetap::LinkType::linux_sll, closetap::LinkType::linux_sll2,
};

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace closetap;
    if (size > UINT32_MAX) {
        return 0;
    }
    const auto caplen = static_cast<uint32_t>(size);
    for (LinkType link : links) {
        for (bool verify : {false, true}) {
            ParsedPacket p;
            ParseError err = ParseError::count_;
            const PacketClass c =
                parse_packet(data, caplen, ParseOptions{.link = link, .verify_checksums = verify},
                             p, err);
            check(c < PacketClass::count_);
            check((c == PacketClass::error) == (err != ParseError::count_));
            check(p.vlan_depth <= max_vlan_tags);
            if (c == PacketClass::tcp) {
                check(p.ip_version == 4 || p.ip_version == 6);
                check(p.payload_caplen <= p.payload_len);
                check(p.payload_caplen == 0 || p.payload_offset + size_t{p.payload_caplen} <= size);
                check(p.checksum_bad ? verify : true);
            }
        }
    }
    return 0;
}
