// The TCP close machine: one connection's state, updated segment by segment, concluding a
// ConnResult (close pattern, initiator, FIN acknowledgement, Zeek conn_state and history).
// Pure code: no DPDK, no allocation, no exceptions; it lives inside a flow-table entry.
//
// Two machines share one 64-byte record (docs/close-machine.md explains both):
//  - the close machine proper: a const table [state][role][flag class] (close_table below) plus
//    per-direction FIN seq/ACK tracking that decides 3-way vs 4-way vs simultaneous by seq/ack
//    causality, not by arrival order;
//  - an emulation of Zeek's TCP endpoint machine (TCPSessionAdapter.cc), kept close to Zeek's
//    own code structure so that conn_state and history can be audited against it line by line.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "flowtable/branchless.hh"
#include "flowtable/conn_types.hh"

namespace closetap {

// States of the close machine. `_o` / `_r`: which role (orig / resp) the state refers to: the
// first FIN sender for fin1/fin2/finrst (fin2 records the *arrival* order; causality may
// reverse it at finish), the RST sender for rst.
enum class CloseState : uint8_t {
    none,         // before the first segment
    syn_sent,     // only the originator's SYN(s): an attempt, no answer yet
    syn_rcvd,     // the attempt was answered (SYN-ACK, or an ACK of the SYN)
    established,  // handshake done, or picked up mid-stream
    fin1_o,       // one FIN seen, from orig
    fin1_r,       // one FIN seen, from resp
    fin2_o,       // both FINs, orig's arrived first
    fin2_r,       // both FINs, resp's arrived first
    finrst_o,     // FIN from orig (first), then a RST before both FINs completed
    finrst_r,     // FIN from resp (first), then a RST before both FINs completed
    rst_o,        // RST from orig ended it, no FIN before
    rst_r,        // RST from resp ended it, no FIN before
    rejected,     // SYN answered by RST
    count_
};

// What a segment does as far as the close machine is concerned. RST dominates (a FIN+RST
// segment aborts), then SYN, then FIN.
enum class FlagClass : uint8_t { syn, synack, fin, rst, other, count_ };

inline constexpr std::array<const char*, count_of<CloseState>> close_state_names = {
    "none",   "syn_sent", "syn_rcvd", "established", "fin1_o", "fin1_r",  "fin2_o",
    "fin2_r", "finrst_o", "finrst_r", "rst_o",       "rst_r",  "rejected"};

constexpr FlagClass classify_flags(uint8_t flags) noexcept {
    if (flags & tcp_flag::rst) return FlagClass::rst;
    if (flags & tcp_flag::syn) return (flags & tcp_flag::ack) ? FlagClass::synack : FlagClass::syn;
    if (flags & tcp_flag::fin) return FlagClass::fin;
    return FlagClass::other;
}

// Role index in close_table: 0 = segment sent by the originator, 1 = by the responder.
inline constexpr unsigned role_orig = 0;
inline constexpr unsigned role_resp = 1;

using CloseTable = std::array<std::array<std::array<CloseState, count_of<FlagClass>>, 2>,
                              count_of<CloseState>>;
extern const CloseTable close_table;

// Zeek's endpoint states (zeek/analyzer/protocol/tcp/TCP_Endpoint.h, same order).
enum class ZeekState : uint8_t { inactive, syn_sent, syn_ack_sent, partial, established, closed,
                                 reset };

// Zeek's likely_server_ports orientation rule for a first segment without SYN (TCP.cc
// WantConnection). Exposed for tests.
bool likely_server_port(uint16_t port) noexcept;

// Packed to 4-byte alignment (its 64-bit words need no more on the targets DPDK supports),
// so that a flow-table entry holding it is 84 bytes, not 88 (flowtable/flow_table.hh).
#pragma pack(push, 4)
class TcpConn {
public:
    enum class Verdict : uint8_t {
        ok,     // segment belongs to this connection and was applied
        reuse,  // segment is a new SYN on a finished connection: the caller finishes this one
                // with EndCause::reused, then start()s a fresh TcpConn with the same segment
    };

    // Begin a connection with its first segment (decides which key side is the originator).
    void start(const TcpSegment& first) noexcept;
    // Most segments of a busy tap are ACKs and data of connections both of whose ends are
    // established: update() applies those inline (fast_update, below the class), with exactly
    // the effect the full machine would have, and hands everything else to update_slow().
    Verdict update(const TcpSegment& seg) noexcept {
        if (fast_update(seg)) return Verdict::ok;
        return update_slow(seg);
    }
    Verdict update_slow(const TcpSegment& seg) noexcept;
    // The inline part alone: true when it applied the segment (the connection is then still
    // established on both sides, TimeoutClass::established); false, having changed nothing,
    // when the segment needs update_slow().
    bool fast_update(const TcpSegment& seg) noexcept;
    // fast_update in two halves, for a caller that keeps fast_mask() beside the connection
    // (the flow table does, so the hot path reads one byte instead of the states and the
    // history): bit 2 * dir + (payload != 0) is set when a pure ACK (bit 0) or a data segment
    // (bit 1) of key direction `dir` can take the fast path, that is when the close machine and
    // both Zeek endpoints are ESTABLISHED and the history already holds that direction's A or
    // D. Computed from the state (not cheap); it changes only in start() and update_slow(),
    // never in fast_apply().
    uint8_t fast_mask() const noexcept;
    static bool fast_eligible(const TcpSegment& seg, unsigned mask) noexcept;
    // Precondition: fast_eligible(seg, fast_mask()).
    void fast_apply(const TcpSegment& seg) noexcept;

    // One load from tcp_detail::timeout_table. The rule's branches, taken after every slow-path
    // segment, mispredicted: a tap's lifecycle packets leave their flows in random states
    // (callgrind --branch-sim at the bench's 1M-flow mix: 0.42M of 4.07M mispredicts).
    TimeoutClass timeout_class() const noexcept;
    // An attempt (timeout_class() == syn_sent): the originator is in SYN_SENT / SYN_ACK_SENT
    // and the responder has said nothing. Two bytes read, for the eviction policy's scans.
    bool attempt() const noexcept {
        const ZeekState o = zeek_state(true);
        return (o == ZeekState::syn_sent || o == ZeekState::syn_ack_sent) &&
               zeek_state(false) == ZeekState::inactive;
    }
    uint64_t last_ts_us() const noexcept { return last_ts_; }
    // Time of the connection's first segment (Zeek's attempt timer runs from it).
    uint64_t first_ts_us() const noexcept { return last_ts_ - first_back_; }
    // A FIN or RST was seen: the flow table protects such flows from eviction.
    bool closing() const noexcept {
        return close_state_ >= static_cast<unsigned>(CloseState::fin1_o);
    }
    uint8_t orig_dir() const noexcept { return static_cast<uint8_t>(orig_dir_); }

    // Conclude the record; `cause` says why it ends (timeouts turn a half-open flow into
    // reason half_open_timeout, for example).
    void finish(EndCause cause, ConnResult& out) const noexcept;

    // Read-only views for tests and debugging.
    CloseState close_state() const noexcept { return static_cast<CloseState>(close_state_); }
    ZeekState zeek_state(bool orig) const noexcept {
        return static_cast<ZeekState>(side_[role_dir(orig)].zstate);
    }
    // Zeek's TCP_Endpoint::Size() (orig_bytes / resp_bytes).
    uint64_t zeek_size(bool orig) const noexcept;
    // Zeek's start_seq of a side: its ISN when its SYN was seen (saw_syn: an S/H letter in the
    // history); the base of Wireshark-style relative numbers in the teardown ladder.
    uint32_t isn(bool orig) const noexcept { return side_[role_dir(orig)].start; }
    bool saw_syn(bool orig) const noexcept {
        return has_history(orig ? 'S' : 's') || has_history(orig ? 'H' : 'h');
    }

private:
    friend struct TcpConnTestAccess;  // tests/test_tcp_conn.cc: the fast path against the slow

    // Per key direction (dir 0 / dir 1 of the flow key). 16 bytes.
    struct Side {
        uint32_t start;  // Zeek start_seq
        uint32_t last;   // Zeek last_seq (one past the highest sequence octet sent)
        // Zeek ack_seq - last (this side's data acked by the peer: the peer's highest ACK), a
        // saturating 24-bit two's complement offset in the top 24 bits, so that one arithmetic
        // shift reads it (ack_seq, set_ack_seq); the low 8 bits of Zeek hist_last_FIN (the
        // repeat-letter rule) below it (hist_fin, set_hist_fin).
        uint32_t ack_fin;
        uint32_t hist_rst : 8;    // low bits of Zeek hist_last_RST
        uint32_t rxmt : 7;        // retransmissions, for 'T' at 1, 10, 100
        uint32_t win0 : 4;        // zero windows, for 'W' at 1, 10
        uint32_t zstate : 3;      // ZeekState
        uint32_t zprev : 3;       // Zeek prev_state
        uint32_t fin : 1;         // sent a FIN (Zeek FIN_cnt > 0)
        uint32_t rst : 1;         // sent a RST (with fin: Zeek did_close)
        uint32_t half_close : 1;  // sent new payload after the peer's FIN
        uint32_t outcome : 2;     // FinTrack for this side's FIN
        uint32_t fin_acks_peer : 1;  // this side's first FIN acked the peer's FIN
        uint32_t pure_before : 1;    // this side's FIN was acked by a non-FIN segment sent
                                     // before the peer's own FIN (4-way)
        uint32_t hist_fin() const noexcept { return ack_fin & 0xffu; }
        void set_hist_fin(uint32_t h) noexcept { ack_fin = (ack_fin & ~0xffu) | (h & 0xffu); }
    };
    static_assert(sizeof(Side) == 16);

    // How well this side's FIN was acknowledged, best so far (ordered: larger is better).
    enum FinTrack : uint8_t { ft_missing = 0, ft_beyond = 1, ft_cumulative = 2, ft_exact = 3 };

    Side side_[2];
    // word 0
    uint64_t last_ts_ : 52;
    uint64_t close_state_ : 4;
    uint64_t orig_dir_ : 1;
    uint64_t rst_oow_ : 1;     // the RST that ended the connection was out of window
    uint64_t m_fin_ : 2;       // per acker dir: its highest ACK so far came on its first FIN
    uint64_t m_pre_ : 2;       // per acker dir: ... came on a non-FIN sent before its FIN
    uint64_t adv_ : 2;         // per dir: sequence space advanced past its own FIN
    // words 1 and 2: each ends with a direction's packet count, at the same bit (40), so that
    // count_packet() picks the word by the direction instead of branching on it
    // (pkts_layout_ok checks the layout).
    // word 1
    uint64_t first_back_ : 40;  // last_ts - first ts (saturating)
    uint64_t pkts0_ : 24;
    // word 2
    uint64_t close_back_ : 32;  // last_ts - first FIN/RST ts (saturating)
    uint64_t wscale0_ : 4;      // window scale from the SYN; 15 = unknown
    uint64_t wscale1_ : 4;
    uint64_t pkts1_ : 24;
    // word 3: Zeek history, 4-bit codes (docs/close-machine.md), 15 nibbles + length
    uint64_t hist_ : 60;
    uint64_t hist_len_ : 4;

    unsigned role_dir(bool orig) const noexcept { return orig ? orig_dir_ : 1u - orig_dir_; }
    // pkts0_ / pkts1_ as the top 24 bits of the 64-bit words at these byte offsets.
    static constexpr size_t pkts_word0 = sizeof(Side) * 2 + 8, pkts_shift = 40;
#if !defined(__clang__)  // clang 14 cannot bit_cast bit-fields in constant evaluation
    static constexpr bool pkts_layout_ok() noexcept;
#endif
    void count_packet(unsigned d) noexcept;  // saturating +1 on pkts0_ (d 0) or pkts1_ (d 1)

    // The fast path's precondition on the connection: the close machine and both of Zeek's
    // endpoints are ESTABLISHED (so no FIN or RST was seen and no timer but inactivity runs).
    bool both_established() const noexcept {
        constexpr auto est = static_cast<unsigned>(ZeekState::established);
        return close_state_ == static_cast<unsigned>(CloseState::established) &&
               side_[0].zstate == est && side_[1].zstate == est;
    }
    // The index of tcp_detail::timeout_table for this connection's states.
    unsigned state_index() const noexcept {
        return side_[0].zstate | (side_[1].zstate << 3) | (static_cast<unsigned>(orig_dir_) << 6) |
               (static_cast<unsigned>(close_state_) << 7);
    }
    bool is_orig_dir(unsigned dir) const noexcept { return dir == orig_dir_; }

    uint32_t ack_seq(const Side& s) const noexcept;
    uint32_t set_ack_seq(Side& s, uint32_t ack) noexcept;  // returns the new ack_seq(s)
    void set_last(Side& s, uint32_t last) noexcept;  // keeps ack_seq
    // Zeek's ack_seq update for an ACK of s's sequence space: it moves on when `ack` lies ahead
    // of it and not before s.start (and is not a zero ACK far ahead). Selected, not branched
    // on: whether an ACK advances is a coin toss on a tap. Returns the new ack_seq(s).
    uint32_t advance_ack(Side& s, uint32_t ack) noexcept;
    static void set_state(Side& s, ZeekState st) noexcept;
    static ZeekState st(const Side& s) noexcept { return static_cast<ZeekState>(s.zstate); }
    uint64_t size_of(unsigned dir) const noexcept;
    bool peer_acked_inactive(const Side& s) const noexcept;
    uint32_t peer_highest_ack(const Side& s) const noexcept;

    // History.
    void add_history(char code) noexcept;
    bool has_history(char code) const noexcept;
    void add_index(unsigned k, bool second) noexcept;  // by hist_index, its table known
    bool check_history(bool orig, char upper_code, char alt_upper) noexcept;
    bool check_history_at(unsigned k, bool second, unsigned ka, bool alt_second) noexcept;
    void scaled_history(bool orig, char upper_code, uint32_t count) noexcept;
    void expand_history(char* out, size_t cap) const noexcept;

    // Zeek emulation.
    bool is_reuse(const TcpSegment& seg) const noexcept;
    void flip_roles() noexcept;
    // `f`: the segment's SYN, FIN, RST and ACK bits (a constant in each copy apply() makes).
    void zeek_process(const TcpSegment& seg, unsigned f, bool& new_data) noexcept;
    void update_inactive(unsigned d, const TcpSegment& seg, unsigned f, bool is_orig) noexcept;
    void update_syn_sent(unsigned d, unsigned f) noexcept;
    void update_established(unsigned d, unsigned f) noexcept;
    void update_closed(unsigned d, unsigned f) noexcept;

    // Close machine.
    void apply(const TcpSegment& seg) noexcept;
    void apply_as(const TcpSegment& seg, unsigned f) noexcept;
    void track_fin_ack(const TcpSegment& seg, unsigned f, bool had_fin, uint32_t peer_ack_before,
                       bool new_data) noexcept;
    bool rst_out_of_window(const TcpSegment& seg) const noexcept;
    ConnState zeek_conn_state(const char* history) const noexcept;
};
#pragma pack(pop)

static_assert(sizeof(TcpConn) <= 64, "TcpConn lives inside a flow-table entry: keep it small");
static_assert(alignof(TcpConn) == 4, "TcpConn follows a 20-byte header in a flow-table entry");

namespace tcp_detail {
constexpr int32_t seq_delta(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b); }
// Zeek's TOO_LARGE_SEQ_DELTA: SYN/RST sequence jumps beyond this are not trusted.
inline constexpr int32_t too_large_seq_delta = 1048576;
inline constexpr int32_t ack_off_max = (1 << 23) - 1;
inline constexpr int32_t ack_off_min = -(1 << 23);
inline constexpr uint32_t max_pkts = (1u << 24) - 1;
inline constexpr uint64_t max_first_back = (uint64_t{1} << 40) - 1;
// History codes of the letters the fast path needs (tcp_conn.cc, hist_code1).
inline constexpr unsigned hist_A = 4, hist_D = 6;  // +1: the responder's lowercase letter

// Which of Zeek's timers would end a connection, from Zeek's endpoint states (so that records
// split where Zeek's do) and the close machine's:
//  - the attempt timer (TCPSessionAdapter::AttemptTimer): the originator is still in SYN_SENT /
//    SYN_ACK_SENT and the responder has said nothing; this holds even when the originator went
//    on to send an ACK and data into the void (a half-duplex capture);
//  - the close/reset delay (ConnectionClosed, ConnectionReset): a RST from either side, both
//    sides closed, or one side closed while the other never spoke;
//  - otherwise inactivity, split into established and half-closed for configuration.
constexpr TimeoutClass timeout_class_of(ZeekState o, ZeekState r, CloseState cs) noexcept {
    if ((o == ZeekState::syn_sent || o == ZeekState::syn_ack_sent) && r == ZeekState::inactive)
        return TimeoutClass::syn_sent;
    const bool o_done = o == ZeekState::closed || o == ZeekState::reset;
    const bool r_done = r == ZeekState::closed || r == ZeekState::reset;
    // Zeek's PartialCloseTimer also ends a connection whose peer is only PARTIAL (picked up
    // mid-stream, never synchronised) once the other side has closed.
    const bool o_quiet = o == ZeekState::inactive || o == ZeekState::partial;
    const bool r_quiet = r == ZeekState::inactive || r == ZeekState::partial;
    if (o == ZeekState::reset || r == ZeekState::reset || (o_done && r_done) ||
        (o_done && r_quiet) || (r_done && o_quiet))
        return TimeoutClass::closed;
    switch (cs) {
    case CloseState::fin1_o:
    case CloseState::fin1_r: return TimeoutClass::half_closed;
    case CloseState::none:
    case CloseState::syn_sent:
    case CloseState::syn_rcvd:
    case CloseState::established: return TimeoutClass::established;
    default: return TimeoutClass::closed;
    }
}

// timeout_class_of for every TcpConn::state_index(): key direction 0's Zeek state (3 bits),
// direction 1's (3 bits), orig_dir (1 bit), the close state (4 bits). Indexes naming no state
// (ZeekState 7, CloseState 13-15) hold syn_sent (0).
inline constexpr auto timeout_table = [] {
    std::array<TimeoutClass, 2048> t{};
    constexpr unsigned nz = 7, ncs = static_cast<unsigned>(CloseState::count_);
    static_assert(static_cast<unsigned>(ZeekState::reset) + 1 == nz && ncs <= 16);
    for (unsigned i = 0; i < t.size(); i++) {
        const unsigned z0 = i & 7, z1 = (i >> 3) & 7, od = (i >> 6) & 1, cs = i >> 7;
        if (z0 >= nz || z1 >= nz || cs >= ncs) continue;
        const auto o = static_cast<ZeekState>(od == 0 ? z0 : z1);
        const auto r = static_cast<ZeekState>(od == 0 ? z1 : z0);
        t[i] = timeout_class_of(o, r, static_cast<CloseState>(cs));
    }
    return t;
}();
}  // namespace tcp_detail

inline TimeoutClass TcpConn::timeout_class() const noexcept {
    return tcp_detail::timeout_table[state_index()];
}

// The GCC builds check the layout at compile time (and FastPath.PacketCountsSaturateAndLeave-
// TheirWordsAlone at run time).
#if !defined(__clang__)
constexpr bool TcpConn::pkts_layout_ok() noexcept {
    TcpConn c{};
    c.pkts0_ = 0xabcdef;
    c.pkts1_ = 0x123456;
    const auto bytes = std::bit_cast<std::array<uint8_t, sizeof(TcpConn)>>(c);
    auto word = [&](size_t at) {
        uint64_t w = 0;
        for (size_t i = 0; i < 8; i++) w |= uint64_t{bytes[at + i]} << (8 * i);
        return w;
    };
    return word(pkts_word0) == uint64_t{0xabcdef} << pkts_shift &&
           word(pkts_word0 + 8) == uint64_t{0x123456} << pkts_shift;
}
#endif

inline void TcpConn::count_packet(unsigned d) noexcept {
#if !defined(__clang__)
    static_assert(pkts_layout_ok(), "count_packet's words: see TcpConn's words 1 and 2");
#endif
    auto* at = reinterpret_cast<unsigned char*>(this) + pkts_word0 + 8 * (d & 1u);
    uint64_t w;
    std::memcpy(&w, at, sizeof w);
    w += uint64_t{w < (uint64_t{tcp_detail::max_pkts} << pkts_shift)} << pkts_shift;
    std::memcpy(at, &w, sizeof w);
}

inline uint32_t TcpConn::ack_seq(const Side& s) const noexcept {
    return s.last + static_cast<uint32_t>(static_cast<int32_t>(s.ack_fin) >> 8);
}

inline uint32_t TcpConn::set_ack_seq(Side& s, uint32_t ack) noexcept {
    // Saturating: an ACK more than 8 MiB behind last (a huge in-flight window) or ahead of it
    // (capture lost > 8 MiB) is clamped; Size() and the RST window check degrade gracefully.
    int32_t off = std::clamp(tcp_detail::seq_delta(ack, s.last), tcp_detail::ack_off_min,
                             tcp_detail::ack_off_max);
    s.ack_fin = (static_cast<uint32_t>(off) << 8) | (s.ack_fin & 0xffu);
    return s.last + static_cast<uint32_t>(off);
}

inline void TcpConn::set_last(Side& s, uint32_t last) noexcept {
    uint32_t ack = ack_seq(s);
    s.last = last;
    set_ack_seq(s, ack);
}

inline uint32_t TcpConn::advance_ack(Side& s, uint32_t ack) noexcept {
    using tcp_detail::seq_delta;
    // set_ack_seq with the value it holds changes nothing, so it runs on the selected value.
    const uint32_t before = ack_seq(s);
    const int32_t delta = seq_delta(ack, before);
    const bool advances = (seq_delta(ack, s.start) >= 0) & (delta > 0) &
                          !((ack == 0) & (delta > tcp_detail::too_large_seq_delta));
    return set_ack_seq(s, select_if(advances, ack, before));
}

inline bool TcpConn::fast_eligible(const TcpSegment& seg, unsigned mask) noexcept {
    constexpr uint8_t ctl = tcp_flag::syn | tcp_flag::fin | tcp_flag::rst;
    const unsigned bit = 2 * (seg.dir & 1u) + (seg.payload_len != 0 ? 1u : 0u);
    return (seg.flags & (ctl | tcp_flag::ack)) == tcp_flag::ack && seg.window != 0 &&
           ((mask >> bit) & 1u) != 0;
}

inline bool TcpConn::fast_update(const TcpSegment& seg) noexcept {
    if (!fast_eligible(seg, fast_mask())) return false;
    fast_apply(seg);
    return true;
}

// An ACK (with or without payload, no SYN/FIN/RST, non-zero window) on a connection whose close
// machine and both Zeek endpoints are ESTABLISHED, whose history already holds this direction's
// A (or D, with payload): fast_eligible(). Every step of zeek_process / apply / track_fin_ack
// then reduces to what is written here; tests/test_tcp_conn.cc checks byte for byte against
// update_slow() on random segment sequences. Leaves fast_mask() as it was: the states stay
// ESTABLISHED and the history only gains a 'T'.
inline void TcpConn::fast_apply(const TcpSegment& seg) noexcept {
    using namespace tcp_detail;
    const unsigned d = seg.dir & 1u;
    Side& ep = side_[d];
    Side& peer = side_[1 - d];
    const uint32_t len = seg.payload_len;

    // apply(): packet time and counts (not closing: no teardown clock).
    if (seg.ts_us > last_ts_) {
        uint64_t delta = seg.ts_us - last_ts_;
        last_ts_ = seg.ts_us;
        first_back_ = std::min<uint64_t>(first_back_ + delta, max_first_back);
    }
    // Branch-free where a tap makes the outcome a coin toss (the direction; whether the ACK or
    // the sequence advances): each of those branches mispredicted on about half the packets
    // (callgrind --branch-sim).
    count_packet(d);
    // zeek_process(): the ACK advances the peer's ack_seq; the segment advances last_seq or is
    // a retransmission. set_ack_seq / set_last with the value they hold change nothing, so
    // they run unconditionally on the selected value.
    const uint32_t max_now = advance_ack(peer, seg.ack);
    const uint32_t seq_one_past = seg.seq + len;
    const bool seq_advances = seq_delta(seq_one_past, ep.last) > 0;
    set_last(ep, select_if(seq_advances, seq_one_past, ep.last));
    if (__builtin_expect(both(!seq_advances, len > 0), 0) && ep.rxmt < 127) {
        ep.rxmt = ep.rxmt + 1;
        scaled_history(d == orig_dir_, 'T', ep.rxmt);
    }
    // track_fin_ack() (b): no FIN yet on either side; remember that this side's highest ACK
    // came on a segment sent before its own FIN. m_fin_ is clear: only a FIN sets it, and after
    // a FIN its sender is CLOSED (or RESET) for good, so the connection never takes this path
    // again. (Stored whether or not it changes: one store, where the test of the bits and of
    // the ACK's advance cost 14 instructions a packet, callgrind.)
    if (seg.ack == max_now) m_pre_ = m_pre_ | (1u << d);
}

}  // namespace closetap
