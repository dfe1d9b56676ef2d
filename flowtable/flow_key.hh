// Symmetric flow key: both directions of a connection map to the same key, so both meet in one
// entry of one shard. The endpoints are stored in a canonical order (lower address/port first)
// and `dir` tells the caller which of the two sent a given packet.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace closetap {

// ::ffff:0:0/96, the form an IPv4 address takes in a FlowKey (its 4 bytes at 12..15).
inline constexpr std::array<uint8_t, 16> ipv4_mapped = {0, 0, 0, 0, 0, 0, 0, 0,
                                                        0, 0, 0xff, 0xff, 0, 0, 0, 0};

struct FlowKey {
    std::array<uint8_t, 16> addr[2];  // IPv4 as IPv4-mapped IPv6
    uint16_t port[2];

    bool operator==(const FlowKey& o) const noexcept {
#if defined(__SSE2__)
        // Inline: two 16-byte compares and the ports (libc's memcmp is a call per lookup).
        const auto* a = reinterpret_cast<const unsigned char*>(this);
        const auto* b = reinterpret_cast<const unsigned char*>(&o);
        const __m128i e0 = _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a)),
                                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
        const __m128i e1 = _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 16)),
                                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16)));
        uint32_t pa, pb;
        std::memcpy(&pa, a + 32, 4);
        std::memcpy(&pb, b + 32, 4);
        return _mm_movemask_epi8(_mm_and_si128(e0, e1)) == 0xffff && pa == pb;
#else
        return std::memcmp(this, &o, sizeof(*this)) == 0;
#endif
    }
};
static_assert(sizeof(FlowKey) == 36, "FlowKey must have no padding: it is compared with memcmp");

// An IPv4 connection's canonical key in the 12 bytes that matter: the last 4 bytes of each
// IPv4-mapped address of the FlowKey (as the frame holds them: network order) and the ports, in
// the FlowKey's endpoint order. What the parser's fast path gives and the flow table's entries
// hold; expand() gives the FlowKey, flow_hash4() its flow_hash().
struct FlowKey4 {
    uint32_t a[2];
    uint16_t port[2];

    FlowKey expand() const noexcept {
        FlowKey k;
        for (unsigned i = 0; i < 2; i++) {
            k.addr[i] = ipv4_mapped;
            std::memcpy(k.addr[i].data() + 12, &a[i], 4);
        }
        std::memcpy(k.port, port, sizeof k.port);
        return k;
    }
};
static_assert(sizeof(FlowKey4) == 12);

// Builds the canonical key from a packet's source and destination. Returns the direction:
// 0 when the source is endpoint 0 of the key, 1 otherwise.
inline uint8_t make_flow_key(const std::array<uint8_t, 16>& src, uint16_t sport,
                             const std::array<uint8_t, 16>& dst, uint16_t dport,
                             FlowKey& key) noexcept {
    // Lexicographic order of the 16-byte addresses, as memcmp would give it, from two
    // big-endian 64-bit words each (no libc call on the hot path).
    uint64_t s[2], d[2];
    std::memcpy(s, src.data(), 16);
    std::memcpy(d, dst.data(), 16);
    const uint64_t s0 = __builtin_bswap64(s[0]), d0 = __builtin_bswap64(d[0]);
    const uint64_t s1 = __builtin_bswap64(s[1]), d1 = __builtin_bswap64(d[1]);
    const bool swap = s0 != d0 ? s0 > d0 : s1 != d1 ? s1 > d1 : sport > dport;
    if (!swap) {
        key.addr[0] = src;
        key.addr[1] = dst;
        key.port[0] = sport;
        key.port[1] = dport;
        return 0;
    }
    key.addr[0] = dst;
    key.addr[1] = src;
    key.port[0] = dport;
    key.port[1] = sport;
    return 1;
}

// 32-bit hash of the canonical key. CRC32-C where the CPU has it (one instruction per 8 bytes,
// as rte_hash_crc does), a multiply-xorshift mix elsewhere. Symmetric because the key is.
inline uint32_t flow_hash(const FlowKey& k) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(&k);
    uint64_t w[4];
    uint32_t tail;
    std::memcpy(w, p, 32);
    std::memcpy(&tail, p + 32, 4);
#if defined(__SSE4_2__)
    uint64_t h = 0x9e3779b9u;
    h = _mm_crc32_u64(h, w[0]);
    h = _mm_crc32_u64(h, w[1]);
    h = _mm_crc32_u64(h, w[2]);
    h = _mm_crc32_u64(h, w[3]);
    h = _mm_crc32_u32(static_cast<uint32_t>(h), tail);
    return static_cast<uint32_t>(h);
#else
    uint64_t h = 0x9e3779b97f4a7c15ull ^ tail;
    for (uint64_t x : w) {
        h ^= x;
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    return static_cast<uint32_t>(h ^ (h >> 32));
#endif
}

#if defined(__SSE4_2__)
namespace detail {
// _mm_crc32_u64(crc, 0) at compile time: CRC-32C (reflected polynomial 0x82F63B78) of eight zero
// bytes, without the inversions, as the instruction computes it.
constexpr uint32_t crc32c_zero_word(uint32_t crc) noexcept {
    for (int bit = 0; bit < 64; bit++) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    return crc;
}
}  // namespace detail
#endif

// flow_hash(k.expand()) without the 36 bytes: the IPv4-mapped words are constants, and the
// first (eight zero bytes from the seed) is folded at compile time
// (FlowKey.Hash4IsTheHashOfTheExpandedKey, tests/test_flow_table.cc).
inline uint32_t flow_hash4(const FlowKey4& k) noexcept {
#if defined(__SSE4_2__)
    constexpr uint32_t after_w0 = detail::crc32c_zero_word(0x9e3779b9u);
    // Bytes 8..15 of an IPv4-mapped address as a little-endian word: 00 00 ff ff, then the
    // address.
    uint32_t ports;
    std::memcpy(&ports, k.port, 4);
    uint64_t h = after_w0;
    h = _mm_crc32_u64(h, 0xffff0000u | (uint64_t{k.a[0]} << 32));
    h = _mm_crc32_u64(h, 0);
    h = _mm_crc32_u64(h, 0xffff0000u | (uint64_t{k.a[1]} << 32));
    h = _mm_crc32_u32(static_cast<uint32_t>(h), ports);
    return static_cast<uint32_t>(h);
#else
    return flow_hash(k.expand());
#endif
}

}  // namespace closetap
