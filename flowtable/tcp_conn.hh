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

#include <array>
#include <cstdint>

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

class TcpConn {
public:
    enum class Verdict : uint8_t {
        ok,     // segment belongs to this connection and was applied
        reuse,  // segment is a new SYN on a finished connection: the caller finishes this one
                // with EndCause::reused, then start()s a fresh TcpConn with the same segment
    };

    // Begin a connection with its first segment (decides which key side is the originator).
    void start(const TcpSegment& first) noexcept;
    Verdict update(const TcpSegment& seg) noexcept;

    TimeoutClass timeout_class() const noexcept;
    uint64_t last_ts_us() const noexcept;
    // Time of the connection's first segment (Zeek's attempt timer runs from it).
    uint64_t first_ts_us() const noexcept { return last_ts_ - first_back_; }
    // A FIN or RST was seen: the flow table protects such flows from eviction.
    bool closing() const noexcept;
    uint8_t orig_dir() const noexcept;

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
    // Per key direction (dir 0 / dir 1 of the flow key). 16 bytes.
    struct Side {
        uint32_t start;  // Zeek start_seq
        uint32_t last;   // Zeek last_seq (one past the highest sequence octet sent)
        uint64_t ack_off : 24;    // Zeek ack_seq - last, two's complement, saturating (this
                                  // side's data acked by the peer: the peer's highest ACK)
        uint64_t hist_fin : 8;    // low bits of Zeek hist_last_FIN (repeat-letter rule)
        uint64_t hist_rst : 8;    // low bits of Zeek hist_last_RST
        uint64_t rxmt : 7;        // retransmissions, for 'T' at 1, 10, 100
        uint64_t win0 : 4;        // zero windows, for 'W' at 1, 10
        uint64_t zstate : 3;      // ZeekState
        uint64_t zprev : 3;       // Zeek prev_state
        uint64_t fin : 1;         // sent a FIN (Zeek FIN_cnt > 0)
        uint64_t rst : 1;         // sent a RST (with fin: Zeek did_close)
        uint64_t half_close : 1;  // sent new payload after the peer's FIN
        uint64_t outcome : 2;     // FinTrack for this side's FIN
        uint64_t fin_acks_peer : 1;  // this side's first FIN acked the peer's FIN
        uint64_t pure_before : 1;    // this side's FIN was acked by a non-FIN segment sent
                                     // before the peer's own FIN (4-way)
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
    // word 1
    uint64_t first_back_ : 40;  // last_ts - first ts (saturating)
    uint64_t pkts0_ : 24;
    // word 2
    uint64_t close_back_ : 32;  // last_ts - first FIN/RST ts (saturating)
    uint64_t pkts1_ : 24;
    uint64_t wscale0_ : 4;      // window scale from the SYN; 15 = unknown
    uint64_t wscale1_ : 4;
    // word 3: Zeek history, 4-bit codes (docs/close-machine.md), 15 nibbles + length
    uint64_t hist_ : 60;
    uint64_t hist_len_ : 4;

    unsigned role_dir(bool orig) const noexcept { return orig ? orig_dir_ : 1u - orig_dir_; }
    bool is_orig_dir(unsigned dir) const noexcept { return dir == orig_dir_; }

    uint32_t ack_seq(const Side& s) const noexcept;
    void set_ack_seq(Side& s, uint32_t ack) noexcept;
    void set_last(Side& s, uint32_t last) noexcept;  // keeps ack_seq
    static void set_state(Side& s, ZeekState st) noexcept;
    static ZeekState st(const Side& s) noexcept { return static_cast<ZeekState>(s.zstate); }
    uint64_t size_of(unsigned dir) const noexcept;
    bool peer_acked_inactive(const Side& s) const noexcept;
    uint32_t peer_highest_ack(const Side& s) const noexcept;

    // History.
    void add_history(char code) noexcept;
    bool has_history(char code) const noexcept;
    bool check_history(bool orig, char upper_code, char alt_upper) noexcept;
    void scaled_history(bool orig, char upper_code, uint32_t count) noexcept;
    void expand_history(char* out, size_t cap) const noexcept;

    // Zeek emulation.
    bool is_reuse(const TcpSegment& seg) const noexcept;
    void flip_roles() noexcept;
    void zeek_process(const TcpSegment& seg, bool& new_data) noexcept;
    void update_inactive(unsigned d, const TcpSegment& seg, bool is_orig) noexcept;
    void update_syn_sent(unsigned d, const TcpSegment& seg) noexcept;
    void update_established(unsigned d, const TcpSegment& seg) noexcept;
    void update_closed(unsigned d, const TcpSegment& seg) noexcept;

    // Close machine.
    void apply(const TcpSegment& seg) noexcept;
    void track_fin_ack(const TcpSegment& seg, bool had_fin, uint32_t peer_ack_before,
                       bool new_data) noexcept;
    bool rst_out_of_window(const TcpSegment& seg) const noexcept;
    ConnState zeek_conn_state(const char* history) const noexcept;
};

static_assert(sizeof(TcpConn) <= 64, "TcpConn lives inside a flow-table entry: keep it small");

}  // namespace closetap
