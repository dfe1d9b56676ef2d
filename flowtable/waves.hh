// The teardown waves of a closing connection: every segment from the first FIN or RST to the end
// of the record, up to max_waves, the way an engineer reads a close in Wireshark (SPEC section 1:
// "1st wave: the closer sends FIN ..."). exporters/ladder.cc draws them; docs/explain.md.
//
// Memory is paid only while a flow is closing: each FlowTable owns a fixed pool of CloseWaves
// allocated at start-up (anonymous memory, touched on first use) with a free list, and a
// FlowEntry holds a 32-bit handle into it (FlowEntry::waves). Established flows hold handle 0 and
// pay one predictable branch per segment. When the pool is empty at a flow's first FIN/RST the
// flow records nothing (handle wave_none) and FlowTableCounters::waves_pool_empty counts it.
//
// The pool stores what was on the wire (absolute seq/ack, key direction); make_record
// (exporters/conn_log.cc) orients the waves by the close machine's originator and makes the
// numbers relative to each side's ISN when its SYN was seen, as Wireshark does.
#pragma once

#include <cstdint>

#include "flowtable/conn_types.hh"
#include "flowtable/zeroed_array.hh"

namespace closetap {

inline constexpr unsigned max_waves = 8;

// One segment of a close. 16 bytes.
struct Wave {
    uint32_t seq;   // pool: absolute; ConnRecord: relative to the sender's ISN when its SYN was seen
    uint32_t ack;   // pool: absolute; ConnRecord: relative to the receiver's ISN likewise
    uint32_t t_us;  // since the first FIN or RST of the connection (saturating)
    uint16_t len;   // TCP payload bytes (an IP packet carries at most 65535)
    uint8_t flags;  // tcp_flag bits
    uint8_t dir;    // pool: key direction (bit 0) and wave_key_bit; ConnRecord: 0 = orig, 1 = resp
};
static_assert(sizeof(Wave) == 16);

// The waves of one connection. In the pool and, oriented, in ConnRecord.
struct CloseWaves {
    Wave w[max_waves];
    uint64_t t0_us;   // time of the first FIN or RST
    uint16_t n;       // waves recorded (<= max_waves)
    uint16_t more;    // segments of the close left out by the cap (saturating)
    uint8_t relative; // ConnRecord: bit 0 orig's numbers relative (its SYN seen), bit 1 resp's
    uint8_t pad_[3];
};
static_assert(sizeof(CloseWaves) == 144);

namespace wave_rel {
inline constexpr uint8_t orig = 1;
inline constexpr uint8_t resp = 2;
}  // namespace wave_rel

// Handles in FlowEntry::waves: 0 = not closing yet; wave_none = closing, but the pool was empty
// at its first FIN/RST (records nothing until the flow ends); otherwise pool slot + 1.
inline constexpr uint32_t wave_none = UINT32_MAX;

namespace wave_detail {
inline bool seq_ge(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b) >= 0; }
}  // namespace wave_detail

// Wave::dir bit 1 in the pool: a key wave, one that shapes the close (a FIN, a RST, or the first
// ACK of a recorded FIN). When the cap is reached a key wave still gets in: the latest non-key
// wave (payload or a repeated ACK) makes room, so a long half-close still shows both FINs and
// their ACKs; what is left out is counted in `more`.
inline constexpr uint8_t wave_key_bit = 2;

// Appends one segment (the caller checked the handle is a real slot). Closing flows only.
inline void record_wave(CloseWaves& cw, const TcpSegment& seg) noexcept {
    const unsigned d = seg.dir & 1u;
    bool key = (seg.flags & (tcp_flag::fin | tcp_flag::rst)) != 0;
    if (!key && (seg.flags & tcp_flag::ack)) {
        // The first ACK that covers a FIN of the peer among the recorded waves.
        for (unsigned i = 0; i < cw.n && !key; i++) {
            const Wave& f = cw.w[i];
            if ((f.dir & 1u) == d || !(f.flags & tcp_flag::fin) || (f.flags & tcp_flag::rst)) continue;
            const uint32_t end = f.seq + f.len + 1;
            if (!wave_detail::seq_ge(seg.ack, end)) continue;
            bool covered = false;
            for (unsigned j = 0; j < cw.n && !covered; j++)
                covered = (cw.w[j].dir & 1u) == d && (cw.w[j].flags & tcp_flag::ack) &&
                          !(cw.w[j].flags & tcp_flag::rst) && wave_detail::seq_ge(cw.w[j].ack, end);
            key = !covered;
        }
    }
    if (cw.n >= max_waves) {
        int drop = -1;
        if (key)
            for (int i = static_cast<int>(cw.n) - 1; i > 0 && drop < 0; i--)
                if (!(cw.w[i].dir & wave_key_bit)) drop = i;
        if (cw.more != UINT16_MAX) cw.more++;
        if (drop < 0) return;
        for (unsigned i = static_cast<unsigned>(drop); i + 1 < cw.n; i++) cw.w[i] = cw.w[i + 1];
        cw.n--;
    }
    Wave& w = cw.w[cw.n++];
    w.seq = seg.seq;
    w.ack = seg.ack;
    const uint64_t dt = seg.ts_us > cw.t0_us ? seg.ts_us - cw.t0_us : 0;
    w.t_us = dt > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(dt);
    w.len = seg.payload_len > UINT16_MAX ? UINT16_MAX : static_cast<uint16_t>(seg.payload_len);
    w.flags = seg.flags;
    w.dir = static_cast<uint8_t>(d | (key ? wave_key_bit : 0));
}

// A fixed pool of CloseWaves with a free list, the flow table's own pattern: released slots are
// reused first, fresh ones handed out in order. Start-up allocation only; never resized.
class WavePool {
public:
    WavePool() = default;
    explicit WavePool(uint32_t size) : size_(size), slots_(size), free_(size) {}

    uint32_t size() const noexcept { return size_; }
    uint32_t in_use() const noexcept { return in_use_; }
    uint64_t bytes() const noexcept { return uint64_t{size_} * (sizeof(CloseWaves) + sizeof(uint32_t)); }

    // A fresh, empty slot's handle (slot + 1), or wave_none when the pool is empty.
    uint32_t alloc(uint64_t t0_us) noexcept {
        uint32_t slot;
        if (free_top_ > 0)
            slot = free_[--free_top_];
        else if (fresh_ < size_)
            slot = fresh_++;
        else
            return wave_none;
        CloseWaves& cw = slots_[slot];
        cw.n = 0;
        cw.more = 0;
        cw.relative = 0;
        cw.t0_us = t0_us;
        in_use_++;
        return slot + 1;
    }
    void release(uint32_t handle) noexcept {
        free_[free_top_++] = handle - 1;
        in_use_--;
    }
    CloseWaves& at(uint32_t handle) noexcept { return slots_[handle - 1]; }
    const CloseWaves& at(uint32_t handle) const noexcept { return slots_[handle - 1]; }

private:
    uint32_t size_ = 0;
    uint32_t in_use_ = 0;
    uint32_t free_top_ = 0;
    uint32_t fresh_ = 0;
    ZeroedArray<CloseWaves> slots_;
    ZeroedArray<uint32_t> free_;
};

struct FlowEntry;

// While FlowTable::end() hands a connection to its sink, the waves of that entry (nullptr when
// it has none); make_record() picks them up from here, so the sink interface stays
// sink(const FlowEntry&, const ConnResult&). One per thread: a table belongs to one worker.
struct EndingWaves {
    const FlowEntry* entry = nullptr;
    const CloseWaves* waves = nullptr;
};
inline thread_local EndingWaves ending_waves{};

}  // namespace closetap
