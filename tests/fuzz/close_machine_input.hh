// The input format of fuzz_close_machine: a compact encoding of TCP segments on a few flows that
// share one small flow table. Shared by the target (which decodes) and by fuzz_seeds (which
// encodes the project's captures into it), so both agree on every bit.
//
// Header, 4 bytes (missing bytes read as 0):
//   h0  bits 0-3  table capacity - 1 (1..16 flows: eviction runs from the 2nd concurrent flow)
//       bits 4-5  timeouts: 0 Zeek's defaults, 1 all / 1000, 2 from h2 (tiny), 3 all 1 us
//       bit  6    no teardown-wave pool (FlowTable wave_pool 0)
//       bit  7    start time 0 (epoch) instead of 2024
//   h1  seed of the initial sequence numbers (an LCG: values near 0 and 2^32 included)
//   h2  tiny timeouts, 2 bits per class: 1 << (2 * v) ms
//   h3  port set (which flows use likely server ports, src == dst ports, ...)
//
// Then 8-byte records, one segment each:
//   r0  bits 0-2 flow (0..7), bit 3 direction (0: the flow's client sends), bit 4 end of burst
//       (the worker's expire() call follows), bits 5-6 seq mode, bit 7 ack mode
//   r1  TCP flags byte
//   r2  seq delta, int8: mode 0 snd_nxt + d, 1 ISN + d, 2 snd_nxt + d * 65536, 3 snd_nxt + d << 24
//   r3  ack delta, int8: mode 0 peer snd_nxt + d, 1 peer ISN + d * 256
//   r4  payload length: v < 192: v, else (v - 191) * 1024
//   r5  time step: (v & 31) << (3 * (v >> 5)) microseconds (0 .. about 65 s)
//   r6  window: v * 256 (0: a zero window); on a SYN, v & 15 is the window scale (15: none)
//   r7  bit 0: the packet's timestamp goes back by the step instead of forward (tap skew)
#pragma once

#include <cstdint>

namespace closetap::fuzz::cm {

inline constexpr unsigned header_bytes = 4;
inline constexpr unsigned record_bytes = 8;
inline constexpr unsigned max_flows = 8;

inline constexpr uint8_t r0_dir = 1u << 3;
inline constexpr uint8_t r0_burst_end = 1u << 4;
inline constexpr unsigned r0_seq_mode_shift = 5;
inline constexpr uint8_t r0_ack_mode = 1u << 7;

inline uint32_t payload_len(uint8_t v) {
    return v < 192 ? v : (v - 191u) * 1024u;
}
inline uint64_t time_step_us(uint8_t v) {
    return uint64_t(v & 31u) << (3u * (v >> 5));
}

// The inverses fuzz_seeds uses: the encoding closest to (at most) the real value.
inline uint8_t encode_payload_len(uint32_t len) {
    if (len < 192) return static_cast<uint8_t>(len);
    uint32_t k = len / 1024u;
    if (k < 1) k = 1;
    if (k > 64) k = 64;
    return static_cast<uint8_t>(191u + k);
}
inline uint8_t encode_time_step(uint64_t us) {
    for (unsigned e = 0; e < 8; e++) {
        uint64_t m = us >> (3u * e);
        if (m < 32) return static_cast<uint8_t>((e << 5) | m);
    }
    return 0xff;
}

}  // namespace closetap::fuzz::cm
