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

namespace closetap {

struct FlowKey {
    std::array<uint8_t, 16> addr[2];  // IPv4 as IPv4-mapped IPv6
    uint16_t port[2];

    bool operator==(const FlowKey& o) const noexcept {
        return std::memcmp(this, &o, sizeof(*this)) == 0;
    }
};
static_assert(sizeof(FlowKey) == 36, "FlowKey must have no padding: it is compared with memcmp");

// Builds the canonical key from a packet's source and destination. Returns the direction:
// 0 when the source is endpoint 0 of the key, 1 otherwise.
inline uint8_t make_flow_key(const std::array<uint8_t, 16>& src, uint16_t sport,
                             const std::array<uint8_t, 16>& dst, uint16_t dport,
                             FlowKey& key) noexcept {
    int c = std::memcmp(src.data(), dst.data(), 16);
    bool swap = c > 0 || (c == 0 && sport > dport);
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

}  // namespace closetap
