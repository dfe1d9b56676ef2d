// The TCP close machine. See tcp_conn.hh for the layout and docs/close-machine.md for the rules.
//
// Per segment: (1) Zeek's endpoint machine, mirrored from TCPSessionAdapter.cc so conn_state
// and history come out as Zeek's; (2) one lookup in close_table; (3) FIN seq/ACK tracking that
// decides the FIN acknowledgement outcome and, by seq/ack causality, the close pattern.
#include "flowtable/tcp_conn.hh"

#include <algorithm>
#include <array>
#include <iterator>

namespace closetap {

namespace {

using tcp_detail::max_first_back;
using tcp_detail::max_pkts;
using tcp_detail::seq_delta;
using tcp_detail::too_large_seq_delta;

constexpr uint64_t max_close_back = (uint64_t{1} << 32) - 1;
constexpr unsigned wscale_unknown = 15;
constexpr unsigned hist_cap = 15;  // nibbles

// RST acceptance slack around the receiver's window (docs/close-machine.md, "out of window"):
// one unscaled maximum window each side absorbs capture reordering and stale-but-genuine RSTs
// while a blind injected RST (random seq) still lands outside with high probability.
constexpr uint32_t rst_slack = 65535;

// History letters as 4-bit codes; 15 escapes to a second nibble for the rare letters.
constexpr char hist_code1[15] = {'S', 's', 'H', 'h', 'A', 'a', 'D', 'd',
                                 'F', 'f', 'R', 'r', 'T', 't', '^'};
static_assert(hist_code1[tcp_detail::hist_A] == 'A' && hist_code1[tcp_detail::hist_D] == 'D' &&
              hist_code1[tcp_detail::hist_D + 1] == 'd', "tcp_conn.hh fast path codes");
constexpr char hist_code2[12] = {'W', 'w', 'G', 'g', 'I', 'i', 'Q', 'q', 'C', 'c', 'X', 'x'};
constexpr unsigned hist_esc = 15;

// A letter's code, one load instead of a search of both tables (the search's loop branches
// mispredicted on letters that vary by packet): 0 for no letter, 1 + its code in hist_code1, or
// 16 + its code in hist_code2.
constexpr unsigned hist_second = 16;
constexpr std::array<uint8_t, 128> hist_index = [] {
    std::array<uint8_t, 128> t{};
    for (unsigned i = 0; i < std::size(hist_code1); ++i) t[uint8_t(hist_code1[i])] = uint8_t(1 + i);
    for (unsigned i = 0; i < std::size(hist_code2); ++i)
        t[uint8_t(hist_code2[i])] = uint8_t(hist_second + i);
    return t;
}();
constexpr unsigned hist_index_of(char c) noexcept {
    return static_cast<unsigned char>(c) < 128 ? hist_index[static_cast<unsigned char>(c)] : 0;
}

// SWAR over the packed history (fast_mask, has_history): zero_nibbles(x) sets bit 3 of each
// nibble of x that is 0, exactly (no carry crosses a nibble).
constexpr uint64_t nib_ones = 0x0111111111111111ull, nib_low3 = nib_ones * 7,
                   nib_high = nib_ones * 8;
constexpr uint64_t zero_nibbles(uint64_t x) noexcept {
    return ~(((x & nib_low3) + nib_low3) | x) & nib_high;
}
// Bit 3 of each nibble of the packed history `hist` (`len` nibbles) that holds the letter with
// code `c` in the second table (`second`) or the first. A nibble right after an escape is a
// second-table code, any other a first-table one.
constexpr uint64_t history_hits_code(uint64_t hist, unsigned len, unsigned c,
                                     bool second) noexcept {
    const uint64_t in_len = (uint64_t{1} << (4 * len)) - 1;
    const uint64_t after_esc = zero_nibbles(hist ^ (nib_ones * hist_esc)) << 4;
    return zero_nibbles(hist ^ (nib_ones * c)) & in_len & (second ? after_esc : ~after_esc);
}
// The same for the letter with index k (hist_index); 0 for k = 0.
constexpr uint64_t history_hits(uint64_t hist, unsigned len, unsigned k) noexcept {
    if (k == 0) return 0;
    const bool second = k >= hist_second;
    return history_hits_code(hist, len, second ? k - hist_second : k - 1, second);
}

constexpr char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }

// The index (hist_index) of a letter as direction `orig` writes it (lower case: the responder),
// selected: the direction is a coin toss on a tap, and both indexes are constants.
inline unsigned dir_index(bool orig, char upper) noexcept {
    return select_if(orig, hist_index_of(upper), hist_index_of(lower(upper)));
}

// Zeek's likely_server_ports for TCP: the union of the ports that the default scripts
// (base/protocols/*/main.zeek `redef likely_server_ports += { ports }`) register, plus the
// data-center services the project cares about. Sorted; binary searched.
constexpr uint16_t likely_ports[] = {
    21,   22,   23,   25,   53,   79,   80,   81,   88,   110,  111,  135,  139,  143,
    389,  443,  445,  465,  502,  563,  585,  587,  614,  631,  636,  750,  989,  990,
    992,  993,  995,  1080, 1433, 1434, 1883, 2049, 2811, 3128, 3268, 3306, 3389, 5222,
    5223, 5269, 5432, 5672, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8443, 8888, 9092,
    20000, 27017};

constexpr bool is_closing(CloseState s) noexcept { return s >= CloseState::fin1_o; }

constexpr CloseState swap_roles(CloseState s) noexcept {
    switch (s) {
    case CloseState::fin1_o: return CloseState::fin1_r;
    case CloseState::fin1_r: return CloseState::fin1_o;
    case CloseState::fin2_o: return CloseState::fin2_r;
    case CloseState::fin2_r: return CloseState::fin2_o;
    case CloseState::finrst_o: return CloseState::finrst_r;
    case CloseState::finrst_r: return CloseState::finrst_o;
    case CloseState::rst_o: return CloseState::rst_r;
    case CloseState::rst_r: return CloseState::rst_o;
    default: return s;
    }
}

}  // namespace

bool likely_server_port(uint16_t port) noexcept {
    return std::binary_search(std::begin(likely_ports), std::end(likely_ports), port);
}

// The close machine as data: close_table[state][role][flag class] -> next state.
// Columns: syn (SYN without ACK), synack (SYN+ACK), fin (FIN, no RST), rst (RST, any other
// flags), other (ACK / data / no flags). Rows: orig-sent, then resp-sent. RFC 9293 section
// numbers refer to the connection state diagram (3.3.2), opening (3.5), closing (3.6) and
// reset processing (3.5.2, 3.10.7); "wire" refers to SPEC section 1 patterns.
using CS = CloseState;
const CloseTable close_table = {{
    // none: the first segment of the record (orientation already decided by start()).
    {{
        {{CS::syn_sent,     // o syn: active open, 3.5 (client sends SYN)
          CS::syn_rcvd,     // o synack: cannot follow orientation; treat as a handshake seen
          CS::fin1_o,       // o fin: picked up at the close; FIN is the first thing seen
          CS::rst_o,        // o rst: picked up at an abort (Zeek: spontaneous RST)
          CS::established}},  // o other: mid-stream pickup, 3.3.2 ESTABLISHED assumed
        {{CS::syn_rcvd,     // r syn: simultaneous open, 3.5 figure 7
          CS::syn_rcvd,     // r synack: SYN-ACK seen first (orig's SYN missed), Zeek flips
          CS::fin1_r,       // r fin: picked up at the responder's close
          CS::rst_r,        // r rst: picked up at the responder's abort
          CS::established}},  // r other: mid-stream pickup
    }},
    // syn_sent: orig sent SYN(s), nothing from resp yet.
    {{
        {{CS::syn_sent,     // o syn: SYN retransmission (same ISN; a new ISN is reuse)
          CS::syn_sent,     // o synack: nonsense from the opener; keep waiting
          CS::fin1_o,       // o fin: SYN then FIN with no answer (Zeek SH)
          CS::rst_o,        // o rst: opener aborts its attempt (Zeek RSTOS0), 3.10.7.3
          CS::established}},  // o other: opener ACKs/sends data: the reply went off-tap
        {{CS::syn_rcvd,     // r syn: simultaneous open, 3.5 figure 7
          CS::syn_rcvd,     // r synack: the handshake's 2nd segment, 3.5 figure 6
          CS::fin1_r,       // r fin: responder closes without handshake (odd; Zeek SHR-ish)
          CS::rejected,     // r rst: SYN answered by RST,ACK: port closed, 3.5.2 / 3.10.7.1
          CS::syn_rcvd}},   // r other: ACK of the SYN before the SYN-ACK (eccentric stacks)
    }},
    // syn_rcvd: the attempt was answered.
    {{
        {{CS::syn_rcvd,     // o syn: SYN retransmission while the SYN-ACK is in flight
          CS::syn_rcvd,     // o synack: simultaneous open's 2nd SYN-ACK
          CS::fin1_o,       // o fin: opener closes right after the handshake
          CS::rst_o,        // o rst: opener aborts the handshake (e.g. SYN-ACK unexpected)
          CS::established}},  // o other: 3rd segment of the handshake, 3.5 figure 6
        {{CS::syn_rcvd,     // r syn: simultaneous open continues
          CS::syn_rcvd,     // r synack: SYN-ACK retransmission
          CS::fin1_r,       // r fin: responder closes first (server-first close)
          CS::rst_r,        // r rst: responder aborts after its SYN-ACK (not a rejection)
          CS::established}},  // r other: server speaks first / the opener's ACK went missing
    }},
    // established
    {{
        {{CS::established,  // o syn: SYN inside the connection (reuse is decided before)
          CS::established,  // o synack: stray handshake retransmission
          CS::fin1_o,       // o fin: 1st wave by the client, wire pattern 1
          CS::rst_o,        // o rst: abort by the originator, 3.10.7.4
          CS::established}},  // o other: data transfer
        {{CS::established,  // r syn: stray SYN
          CS::established,  // r synack: SYN-ACK retransmission (our ACK was lost)
          CS::fin1_r,       // r fin: 1st wave by the server (server-first close)
          CS::rst_r,        // r rst: abort by the responder, 3.10.7.4
          CS::established}},  // r other: data transfer
    }},
    // fin1_o: orig's FIN seen (FIN-WAIT-1/2 on orig, CLOSE-WAIT on resp, 3.6 case 1).
    {{
        {{CS::fin1_o,       // o syn: stray SYN, ignored
          CS::fin1_o,       // o synack: stray
          CS::fin1_o,       // o fin: FIN retransmission: does not change the pattern
          CS::finrst_o,     // o rst: closer aborts before the peer's FIN (e.g. linger 0)
          CS::fin1_o}},     // o other: the closer's ACKs (it may still receive, half-close)
        {{CS::fin1_o,       // r syn: stray
          CS::fin1_o,       // r synack: stray
          CS::fin2_o,       // r fin: 3rd wave (or a crossing FIN): both FINs seen
          CS::finrst_o,     // r rst: peer aborts instead of closing (unread data, 3.6)
          CS::fin1_o}},     // r other: 2nd wave (pure ACK) or half-close data
    }},
    // fin1_r: resp's FIN seen first (server-first close).
    {{
        {{CS::fin1_r,       // o syn: stray
          CS::fin1_r,       // o synack: stray
          CS::fin2_r,       // o fin: client's FIN: both FINs seen
          CS::finrst_r,     // o rst: client aborts instead of closing
          CS::fin1_r}},     // o other: 2nd wave (pure ACK) or half-close data
        {{CS::fin1_r,       // r syn: stray
          CS::fin1_r,       // r synack: stray
          CS::fin1_r,       // r fin: FIN retransmission
          CS::finrst_r,     // r rst: closer aborts before the peer's FIN
          CS::fin1_r}},     // r other: the closer's ACKs
    }},
    // fin2_o: both FINs (TIME-WAIT / LAST-ACK); a RST now is noise, the close completed.
    {{
        {{CS::fin2_o, CS::fin2_o,    // o syn/synack: stray (a new ISN is reuse, decided before)
          CS::fin2_o,                // o fin: FIN retransmission
          CS::fin2_o,                // o rst: RST after both FINs: close already complete
          CS::fin2_o}},              // o other: 4th wave, last ACK
        {{CS::fin2_o, CS::fin2_o,    // r syn/synack: stray
          CS::fin2_o,                // r fin: FIN retransmission
          CS::fin2_o,                // r rst: RST in LAST-ACK: close already complete
          CS::fin2_o}},              // r other: last ACK
    }},
    // fin2_r: as fin2_o, resp's FIN arrived first.
    {{
        {{CS::fin2_r, CS::fin2_r,    // o syn/synack: stray
          CS::fin2_r,                // o fin: FIN retransmission
          CS::fin2_r,                // o rst: RST after both FINs
          CS::fin2_r}},              // o other: last ACK
        {{CS::fin2_r, CS::fin2_r,    // r syn/synack: stray
          CS::fin2_r,                // r fin: FIN retransmission
          CS::fin2_r,                // r rst: RST after both FINs
          CS::fin2_r}},              // r other: last ACK
    }},
    // finrst_o: absorbing: the RST ended a close orig had started (3.10.7.4: CLOSED).
    {{
        {{CS::finrst_o, CS::finrst_o,  // o syn/synack: stray after abort
          CS::finrst_o,                // o fin: FIN after RST: the connection is gone
          CS::finrst_o,                // o rst: RST repeated
          CS::finrst_o}},              // o other: late segments after the abort
        {{CS::finrst_o, CS::finrst_o,  // r syn/synack: stray
          CS::finrst_o,                // r fin: FIN after RST does not complete the close
          CS::finrst_o,                // r rst: RST repeated / answered
          CS::finrst_o}},              // r other: late segments
    }},
    // finrst_r: absorbing, resp started the close.
    {{
        {{CS::finrst_r, CS::finrst_r,  // o syn/synack: stray
          CS::finrst_r,                // o fin: FIN after RST
          CS::finrst_r,                // o rst: RST repeated
          CS::finrst_r}},              // o other: late segments
        {{CS::finrst_r, CS::finrst_r,  // r syn/synack: stray
          CS::finrst_r,                // r fin: FIN after RST
          CS::finrst_r,                // r rst: RST repeated
          CS::finrst_r}},              // r other: late segments
    }},
    // rst_o: absorbing: orig's RST ended it (3.10.7.4: any state -> CLOSED on a valid RST).
    {{
        {{CS::rst_o, CS::rst_o,  // o syn/synack: stray (a new ISN is reuse)
          CS::rst_o,             // o fin: FIN after the abort
          CS::rst_o,             // o rst: RST repeated (RST storms)
          CS::rst_o}},           // o other: late data after the abort
        {{CS::rst_o, CS::rst_o,  // r syn/synack: stray
          CS::rst_o,             // r fin: FIN after the peer's RST: no close
          CS::rst_o,             // r rst: RST answered with RST
          CS::rst_o}},           // r other: data in flight when the RST hit
    }},
    // rst_r: absorbing, resp's RST ended it.
    {{
        {{CS::rst_r, CS::rst_r,  // o syn/synack: stray
          CS::rst_r,             // o fin: FIN after the peer's RST
          CS::rst_r,             // o rst: RST answered with RST
          CS::rst_r}},           // o other: data in flight when the RST hit
        {{CS::rst_r, CS::rst_r,  // r syn/synack: stray
          CS::rst_r,             // r fin: FIN after the abort
          CS::rst_r,             // r rst: RST repeated
          CS::rst_r}},           // r other: late data
    }},
    // rejected: absorbing (a retransmitted SYN after the RST is reuse: Zeek IsReuse).
    {{
        {{CS::rejected, CS::rejected,  // o syn/synack: handled as reuse before the table
          CS::rejected,                // o fin: stray
          CS::rejected,                // o rst: opener's RST after the rejection
          CS::rejected}},              // o other: stray ACK
        {{CS::rejected, CS::rejected,  // r syn/synack: stray
          CS::rejected,                // r fin: stray
          CS::rejected,                // r rst: RST repeated for each SYN retransmission
          CS::rejected}},              // r other: stray
    }},
}};

// ---------------------------------------------------------------------------------------------
// Sequence bookkeeping (Zeek's start_seq / last_seq / ack_seq per endpoint).

void TcpConn::set_state(Side& s, ZeekState new_state) noexcept {
    if (static_cast<unsigned>(new_state) != s.zstate) {
        s.zprev = s.zstate;
        s.zstate = static_cast<unsigned>(new_state);
    }
}

bool TcpConn::peer_acked_inactive(const Side& s) const noexcept {
    // While s is INACTIVE only the peer's ACKs touch its numbers: Zeek's init_peer sets
    // start == last == ack_seq == ack - 1 on each of them. A side nothing has touched is all
    // zero (an ACK of exactly 1 looks the same and is treated as none: no skew memory). A side
    // that sent an ACK of the SYN before the SYN-ACK (still INACTIVE) has last == start + 1.
    return st(s) == ZeekState::inactive && s.start == s.last && s.last != 0;
}

uint32_t TcpConn::peer_highest_ack(const Side& s) const noexcept {
    // The highest ACK the peer sent for s's sequence space, as far as the tap knows.
    if (st(s) == ZeekState::inactive) return peer_acked_inactive(s) ? s.last + 1 : ack_seq(s);
    return ack_seq(s);
}

uint64_t TcpConn::size_of(unsigned dir) const noexcept {
    const Side& s = side_[dir];
    const Side& peer = side_[1 - dir];
    uint32_t ack = ack_seq(s);
    bool no_data_acked = ack == s.start || ack == s.start + 1;
    if (static_cast<ZeekState>(s.zprev) == ZeekState::syn_sent && st(s) == ZeekState::reset &&
        st(peer) == ZeekState::inactive && !no_data_acked)
        return 0;  // Zeek: a half-open connection discovered and aborted
    uint64_t size = seq_delta(s.last, ack) > 0 ? uint32_t(s.last - s.start)
                                               : uint32_t(ack - s.start);
    if (size != 0) --size;               // the SYN octet
    if (s.fin && size != 0) --size;      // the FIN octet
    return size;
}

uint64_t TcpConn::zeek_size(bool orig) const noexcept { return size_of(role_dir(orig)); }

// ---------------------------------------------------------------------------------------------
// History (Zeek Session::CheckHistory / AddHistory / ScaledHistoryEntry).

void TcpConn::add_history(char code) noexcept {
    const unsigned k = hist_index_of(code);
    if (k != 0) add_index(k, k >= hist_second);
}

[[gnu::always_inline]] inline void TcpConn::add_index(unsigned k, bool second) noexcept {
    const unsigned len = hist_len_;
    if (!second) {
        if (len >= hist_cap) return;
        hist_ |= uint64_t(k - 1) << (4 * len);
        hist_len_ = len + 1;
        return;
    }
    if (len + 2 > hist_cap) return;
    hist_ |= uint64_t(hist_esc) << (4 * len);
    hist_ |= uint64_t(k - hist_second) << (4 * (len + 1));
    hist_len_ = len + 2;
}

uint8_t TcpConn::fast_mask() const noexcept {
    if (!both_established()) return 0;
    // All four letters at once (SWAR; the escape mask is computed once).
    auto has = [&](unsigned code) { return history_hits(hist_, hist_len_, code + 1) != 0; };
    unsigned m = 0;
    for (unsigned d = 0; d < 2; ++d) {
        const unsigned lower_case = d == orig_dir_ ? 0 : 1;  // the responder's letters
        if (has(tcp_detail::hist_A + lower_case)) m |= 1u << (2 * d);
        if (has(tcp_detail::hist_D + lower_case)) m |= 2u << (2 * d);
    }
    return static_cast<uint8_t>(m);
}

bool TcpConn::has_history(char code) const noexcept {
    // Zeek keeps a `hist_seen` mask; here the letters themselves are the mask: a letter type
    // is "seen" exactly when it is in the (never truncated below capacity) history. Once the
    // history is full nothing can be appended anyway, so the two agree.
    return history_hits(hist_, hist_len_, hist_index_of(code)) != 0;
}

// Inlined into zeek_process, whose letters are constants: their indexes fold. All nibbles at
// once (SWAR) and both letters in one test: a loop over the nibbles mispredicted on its exit,
// about two a segment on the slow path (callgrind --branch-sim).
[[gnu::always_inline]] inline bool TcpConn::check_history(bool orig, char upper_code,
                                                          char alt_upper) noexcept {
    // Zeek's TCP_Endpoint::CheckHistory: mask per (type, direction), lowercase for resp. S and
    // H share HIST_SYN_PKT, hence the alternate letter.
    // The letters are constants; the direction is selected (dir_index).
    const bool second = hist_index_of(upper_code) >= hist_second;
    if (alt_upper == 0) return check_history_at(dir_index(orig, upper_code), second, 0, false);
    return check_history_at(dir_index(orig, upper_code), second, dir_index(orig, alt_upper),
                            hist_index_of(alt_upper) >= hist_second);
}

// The same by the letters' indexes (hist_index, for this direction): `k` in the second table
// when `second`; an alternate letter `ka` (0: none) in the second table when `alt_second`.
[[gnu::always_inline]] inline bool TcpConn::check_history_at(unsigned k, bool second, unsigned ka,
                                                             bool alt_second) noexcept {
    auto code = [](unsigned i, bool in_second) { return in_second ? i - hist_second : i - 1; };
    uint64_t hits = history_hits_code(hist_, hist_len_, code(k, second), second);
    if (ka != 0) hits |= history_hits_code(hist_, hist_len_, code(ka, alt_second), alt_second);
    if (hits != 0) return true;
    add_index(k, second);
    return false;
}

void TcpConn::scaled_history(bool orig, char upper_code, uint32_t count) noexcept {
    // Zeek's ScaledHistoryEntry: the letter at the 1st, 10th, 100th ... occurrence.
    if (count == 1 || count == 10 || count == 100)
        add_history(orig ? upper_code : lower(upper_code));
}

void TcpConn::expand_history(char* out, size_t cap) const noexcept {
    size_t n = 0;
    for (unsigned i = 0; i < hist_len_ && n + 1 < cap; ++i) {
        unsigned c = (hist_ >> (4 * i)) & 0xf;
        if (c == hist_esc) {
            ++i;
            out[n++] = hist_code2[(hist_ >> (4 * i)) & 0xf];
        } else {
            out[n++] = hist_code1[c];
        }
    }
    out[n] = '\0';
}

// ---------------------------------------------------------------------------------------------
// Zeek's endpoint machine (TCPSessionAdapter.cc: Process, UpdateStateMachine, IsReuse).

void TcpConn::flip_roles() noexcept {
    // Zeek Connection::FlipRoles: swap roles, keep the letters recorded so far, append '^'.
    orig_dir_ = 1u - orig_dir_;
    add_history('^');
    close_state_ = static_cast<unsigned>(swap_roles(close_state()));
}

bool TcpConn::is_reuse(const TcpSegment& seg) const noexcept {
    if (!(seg.flags & tcp_flag::syn)) return false;  // reuse only starts with a SYN
    const Side& orig = side_[orig_dir_];
    const Side& resp = side_[1 - orig_dir_];
    const Side* conn_orig = &orig;
    if (seg.flags & tcp_flag::ack) {
        if (st(orig) != ZeekState::inactive) return false;  // not a half connection
        conn_orig = &resp;
    }
    bool closed = orig.fin || orig.rst || resp.fin || resp.rst;  // Zeek IsClosed()
    if (!closed) {
        if (seg.seq == conn_orig->start) return false;
        if (!(seg.flags & tcp_flag::ack) && st(*conn_orig) == ZeekState::syn_ack_sent &&
            st(resp) == ZeekState::inactive && seg.seq == resp.start)
            return false;  // SYN and SYN-ACK swapped by the capture: NextPacket flips instead
        return true;       // new ISN on an active connection (Zeek: active_connection_reuse)
    }
    return true;  // any SYN once a side closed or reset
}

[[gnu::always_inline]] inline void TcpConn::update_inactive(unsigned d, const TcpSegment& seg,
                                                            unsigned f, bool is_orig) noexcept {
    Side& ep = side_[d];
    Side& peer = side_[1 - d];
    const bool syn = f & tcp_flag::syn, ack = f & tcp_flag::ack;
    if (syn) {
        if (is_orig) {
            set_state(ep, ack ? ZeekState::syn_ack_sent : ZeekState::syn_sent);
        } else {
            if (!ack && st(peer) == ZeekState::syn_ack_sent && seg.seq == ep.start) {
                // SYN/SYN-ACK reversal: flip the endpoints and establish.
                flip_roles();
                set_state(peer, ZeekState::established);
            }
            if (st(peer) == ZeekState::syn_sent) set_state(peer, ZeekState::established);
            set_state(ep, ZeekState::established);
        }
    }
    if (f & tcp_flag::fin) set_state(ep, ZeekState::closed);
    if (f & tcp_flag::rst) set_state(ep, ZeekState::reset);
    if (st(ep) == ZeekState::inactive) {  // no control flags changed the state
        if (!is_orig && seg.payload_len == 0 && st(side_[orig_dir_]) == ZeekState::syn_sent) {
            // An ACK of the SYN before the SYN-ACK: not a partial connection.
        } else if (ack && st(peer) == ZeekState::established) {
            set_state(ep, ZeekState::established);  // SYN missed, SYN-ACK seen, now an ACK
        } else {
            set_state(ep, ZeekState::partial);
        }
    }
}

[[gnu::always_inline]] inline void TcpConn::update_syn_sent(unsigned d, unsigned f) noexcept {
    Side& ep = side_[d];
    if (f & tcp_flag::fin) set_state(ep, ZeekState::closed);
    if (f & tcp_flag::rst) set_state(ep, ZeekState::reset);
}

[[gnu::always_inline]] inline void TcpConn::update_established(unsigned d, unsigned f) noexcept {
    Side& ep = side_[d];
    Side& peer = side_[1 - d];
    if ((f & tcp_flag::syn) && st(ep) == ZeekState::partial &&
        st(peer) == ZeekState::inactive && !(f & tcp_flag::ack))
        set_state(ep, ZeekState::syn_sent);  // SYN_after_partial
    if ((f & tcp_flag::fin) && !(f & tcp_flag::rst)) {
        set_state(ep, ZeekState::closed);
        // The peer sent a FIN followed by a RST: that was a normal termination after all.
        if (st(peer) == ZeekState::reset && static_cast<ZeekState>(peer.zprev) == ZeekState::closed)
            set_state(peer, ZeekState::closed);
    }
    if (f & tcp_flag::rst) set_state(ep, ZeekState::reset);
}

[[gnu::always_inline]] inline void TcpConn::update_closed(unsigned d, unsigned f) noexcept {
    // A RST after our FIN changes our state unless the peer closed too (FIN exchange done).
    if ((f & tcp_flag::rst) && st(side_[1 - d]) != ZeekState::closed)
        set_state(side_[d], ZeekState::reset);
}

[[gnu::always_inline]] inline void TcpConn::zeek_process(const TcpSegment& seg, unsigned f,
                                                         bool& new_data) noexcept {
    const unsigned d = seg.dir & 1u;
    Side& ep = side_[d];
    Side& peer = side_[1 - d];
    const bool is_orig = is_orig_dir(d);
    const bool syn = f & tcp_flag::syn, fin = f & tcp_flag::fin;
    const bool rst = f & tcp_flag::rst, ack = f & tcp_flag::ack;
    const uint32_t len = seg.payload_len;

    uint32_t seg_len = len + (syn ? 1 : 0) + (fin ? 1 : 0) - (rst ? len : 0);
    const uint32_t seq_one_past = seg.seq + seg_len;

    // init_endpoint
    auto init_seqs = [this](Side& s, uint32_t start, uint32_t last) {
        s.start = start;
        s.last = last;
        set_ack_seq(s, start);
    };
    switch (st(ep)) {
    case ZeekState::inactive: {
        // Tap skew: the peer may already have acknowledged this side's sequence space (its ACKs
        // reached the tap first, e.g. the SYN-ACK arrives after the originator's ACKs). Zeek
        // re-bases ack_seq here and forgets them; the close machine needs the peer's highest
        // ACK to resolve a FIN whose ACK arrived first, so keep it when it lies ahead of the new
        // numbering by at most TOO_LARGE_SEQ_DELTA (docs/close-machine.md, "tap skew").
        const bool peer_acked = peer_acked_inactive(ep);
        const uint32_t prior_ack = ep.last + 1;
        if (syn)
            init_seqs(ep, seg.seq, seq_one_past);
        else  // partial: number as though a SYN had been seen; first packet is no duplicate
            init_seqs(ep, seg.seq - 1, seg.seq);
        if (peer_acked) {
            int32_t ahead = seq_delta(prior_ack, ack_seq(ep));
            if (ahead > 0 && ahead <= too_large_seq_delta) set_ack_seq(ep, prior_ack);
        }
        break;
    }
    case ZeekState::syn_sent:
    case ZeekState::syn_ack_sent:
        if (syn && seg.seq != ep.start) init_seqs(ep, seg.seq, seq_one_past);  // SYN_seq_jump
        break;
    case ZeekState::established:
    case ZeekState::partial:
        if (syn) init_seqs(ep, seg.seq, seq_one_past);  // guess this SYN sets it up
        break;
    case ZeekState::reset:
        if (syn && static_cast<ZeekState>(ep.zprev) == ZeekState::inactive)
            init_seqs(ep, seg.seq, seq_one_past);  // earlier RST may have been injected
        break;
    default: break;
    }

    const uint32_t rel_seq = seg.seq - ep.start;

    // update_history
    int bits_set = (syn ? 1 : 0) + (fin ? 1 : 0) + (rst ? 1 : 0);
    if (bits_set > 1) {
        check_history(is_orig, (fin && rst) ? 'I' : 'Q', 0);
    } else if (bits_set == 1) {
        if (syn) {
            char code = ack ? 'H' : 'S';
            // Zeek re-adds S/H when the SYN's relative seq differs from the last SYN's; every
            // state but CLOSED re-bases start_seq on a SYN, so that is "rel_seq != 0".
            if (check_history(is_orig, code, ack ? 'S' : 'H') && rel_seq != 0)
                add_history(is_orig ? code : lower(code));
        }
        if (fin) {
            uint32_t h = (rel_seq + len) & 0xffu;
            if (check_history(is_orig, 'F', 0) && h != ep.hist_fin())
                add_history(is_orig ? 'F' : 'f');
            ep.set_hist_fin(h);
        }
        if (rst) {
            uint32_t h = rel_seq & 0xffu;
            if (check_history(is_orig, 'R', 0) && h != ep.hist_rst)
                add_history(is_orig ? 'R' : 'r');
            ep.hist_rst = h;
        }
    } else if (ack || len) {
        // D with payload, else A: selected, since payload or none is a coin toss.
        check_history_at(select_if(len != 0, dir_index(is_orig, 'D'), dir_index(is_orig, 'A')),
                         false, 0, false);
    }

    // update_window: only the zero-window history letter matters here.
    if (seg.window == 0 && !rst && st(peer) != ZeekState::closed && st(ep) != ZeekState::reset) {
        if (ep.win0 < 15) {
            ep.win0 = ep.win0 + 1;
            scaled_history(is_orig, 'W', ep.win0);
        }
    }

    if (syn) {  // init_window: remember the scale (used by the RST window check)
        unsigned sc = seg.wscale == 0xff ? 0u : std::min<unsigned>(seg.wscale, 14);
        if (d == 0) wscale0_ = sc; else wscale1_ = sc;
        if (seg.wscale == 0xff && ack) {  // window scaling not negotiated
            wscale0_ = 0;
            wscale1_ = 0;
        }
    }
    if (fin) ep.fin = 1;
    if (rst) ep.rst = 1;

    if (ack) {
        if (st(peer) == ZeekState::inactive) {
            // init_peer: number the silent side as though its SYN had been seen.
            init_seqs(peer, seg.ack - 1, seg.ack - 1);
        } else if (!rst) {  // RST acks not trusted
            advance_ack(peer, seg.ack);
        }
    }

    // update_last_seq
    int32_t delta_last = seq_delta(seq_one_past, ep.last);
    if ((syn || rst) && (delta_last > too_large_seq_delta || delta_last < -too_large_seq_delta)) {
        // untrusted jump
    } else if (fin && ep.last == ep.start + 1) {
        set_last(ep, seq_one_past);  // > 2 GB connections with only SYN and FIN seen
    } else if (st(ep) == ZeekState::reset) {
        // don't trust any subsequent sequence numbers
    } else {
        // New sequence space or not: a coin toss between a lifecycle's data and its ACKs, so a
        // selection (set_last with the value it holds changes nothing); a retransmission is rare.
        set_last(ep, select_if(delta_last > 0, seq_one_past, ep.last));
        if (__builtin_expect(both(delta_last <= 0, len > 0), 0) && ep.rxmt < 127) {
            ep.rxmt = ep.rxmt + 1;
            scaled_history(is_orig, 'T', ep.rxmt);
        }
    }
    new_data = delta_last > 0;

    switch (st(ep)) {
    case ZeekState::inactive: update_inactive(d, seg, f, is_orig); break;
    case ZeekState::syn_sent:
    case ZeekState::syn_ack_sent: update_syn_sent(d, f); break;
    case ZeekState::established:
    case ZeekState::partial: update_established(d, f); break;
    case ZeekState::closed: update_closed(d, f); break;
    case ZeekState::reset: break;
    }
}

// ---------------------------------------------------------------------------------------------
// FIN seq/ACK tracking.

[[gnu::always_inline]] inline void TcpConn::track_fin_ack(const TcpSegment& seg, unsigned f,
                                                          bool had_fin, uint32_t peer_ack_before,
                                                          bool new_data) noexcept {
    const unsigned d = seg.dir & 1u;
    const unsigned p = 1u - d;
    Side& s = side_[d];
    Side& peer = side_[p];
    const bool fin = f & tcp_flag::fin, rst = f & tcp_flag::rst;
    const bool ack = f & tcp_flag::ack;
    const bool first_fin = fin && !had_fin;
    // Sent before this side's own FIN? A pre-FIN segment ends at or before the FIN octet, so
    // its seq is below the FIN's end; after the FIN, seq == FIN end.
    const bool pre_own_fin = !had_fin || seq_delta(seg.seq, s.last) < 0;
    auto raise = [](Side& x, unsigned v) { x.outcome = std::max<unsigned>(x.outcome, v); };

    // (a) this segment's ACK about the peer's FIN. The peer's FIN end (seq+len+1) is its
    // last_seq, unless its sequence space moved on after the FIN (adv: then only "covered").
    if (ack && peer.fin) {
        int32_t dd = seq_delta(seg.ack, peer.last);
        bool adv = (adv_ >> p) & 1u;
        if (dd == 0) raise(peer, adv ? ft_cumulative : ft_exact);
        else if (dd > 0) raise(peer, ft_beyond);
        if (dd >= 0) {
            if (!fin && !rst && pre_own_fin) peer.pure_before = 1;  // 2nd wave of a 4-way
            if (first_fin) s.fin_acks_peer = 1;                     // 3-way (or 4-way's 3rd)
        }
    }

    // (b) tap skew: the peer's FIN not seen yet, but this ACK may already acknowledge it.
    // Remember how this side's highest ACK was carried, and resolve when the FIN shows up.
    if (ack && !rst && !peer.fin) {
        uint32_t max_now = peer_highest_ack(peer);
        if (seg.ack == max_now) {
            // The bits as this ACK left them; a new highest ACK replaces them (selected: which
            // ACK is new is a coin toss).
            const unsigned bit = 1u << d;
            const unsigned keep = select_if(max_now != peer_ack_before, ~bit, ~0u);
            m_fin_ = (m_fin_ & keep) | (first_fin ? bit : 0u);
            m_pre_ = (m_pre_ & keep) | ((!fin && pre_own_fin) ? bit : 0u);
        }
    }

    // (c) this side's first FIN: did the peer already acknowledge it (ACK arrived first)?
    if (first_fin) {
        int32_t dd = seq_delta(ack_seq(s), s.last);
        unsigned pbit = 1u << p;
        if (dd >= 0) {
            raise(s, dd == 0 ? ft_exact : ft_beyond);
            if (m_fin_ & pbit) peer.fin_acks_peer = 1;
            if (m_pre_ & pbit) s.pure_before = 1;
        }
        m_fin_ &= ~pbit;
        m_pre_ &= ~pbit;
    }

    // (d) half-close: new payload from the side that had not closed, sent after (it acks) the
    // peer's FIN.
    // (The peer's FIN first: rare, so the test predicts; payload or none is a coin toss.)
    if (peer.fin && ack && !had_fin && seg.payload_len > 0 && new_data &&
        seq_delta(seg.ack, peer.last) >= 0)
        s.half_close = 1;

    // (e) sequence space advanced past this side's own FIN: its FIN end is no longer last_seq.
    if (had_fin && new_data) adv_ = adv_ | (1u << d);
}

bool TcpConn::rst_out_of_window(const TcpSegment& seg) const noexcept {
    const unsigned d = seg.dir & 1u;
    const Side& s = side_[d];
    const Side& rcv = side_[1 - d];
    // The receiver must have shown us its ACK point: it sent something past its SYN.
    ZeekState rs = st(rcv);
    if (rs == ZeekState::inactive || rs == ZeekState::syn_sent) return false;
    uint32_t rcv_nxt = ack_seq(s);  // highest ACK the receiver sent
    unsigned sc = d == 0 ? wscale1_ : wscale0_;
    if (sc == wscale_unknown) sc = 14;  // no SYN seen: assume the largest window
    uint32_t wnd = uint32_t{65535} << sc;
    uint32_t lo = rcv_nxt - rst_slack;
    uint32_t hi = rcv_nxt + wnd + rst_slack;
    return seq_delta(seg.seq, lo) < 0 || seq_delta(seg.seq, hi) > 0;
}

// ---------------------------------------------------------------------------------------------

// apply() for a segment whose SYN, FIN, RST and ACK bits are `f` (no other bit is read).
[[gnu::always_inline]] inline void TcpConn::apply_as(const TcpSegment& seg, unsigned f) noexcept {
    const unsigned d = seg.dir & 1u;
    if (seg.ts_us > last_ts_) {
        uint64_t delta = seg.ts_us - last_ts_;
        last_ts_ = seg.ts_us;
        first_back_ = std::min<uint64_t>(first_back_ + delta, max_first_back);
        // The teardown clock runs once closing: selected (a lifecycle packet's state is random).
        const uint64_t cb = close_back_;
        close_back_ = select_if(is_closing(close_state()),
                                std::min<uint64_t>(cb + delta, max_close_back), cb);
    }
    count_packet(d);

    const bool had_fin = side_[d].fin;
    const uint32_t peer_ack_before = peer_highest_ack(side_[1 - d]);
    bool new_data = false;
    zeek_process(seg, f, new_data);

    const CloseState old_state = close_state();
    const unsigned role = is_orig_dir(d) ? role_orig : role_resp;
    const auto column = static_cast<unsigned>(classify_flags(static_cast<uint8_t>(f)));
    const CloseState next = close_table[static_cast<unsigned>(old_state)][role][column];
    // Whether this segment moves the machine on is a coin toss on a tap's lifecycle packets, so
    // the new state is stored either way; a RST ending it is rare. (The teardown clock needs no
    // start: it stays 0 until the machine is closing, and no closing state leads out of closing.)
    if (__builtin_expect(both(next != old_state, next == CloseState::rst_o ||
                                                     next == CloseState::rst_r), 0))
        rst_oow_ = rst_out_of_window(seg);
    close_state_ = static_cast<unsigned>(next);
    track_fin_ack(seg, f, had_fin, peer_ack_before, new_data);
}

// One jump on the segment's control flags into a copy of the machine where they are constants.
// Their tests, spread over the Zeek machine, the close table's column and the FIN tracking,
// mispredicted on a tap's mix of lifecycle packets (callgrind --branch-sim).
void TcpConn::apply(const TcpSegment& seg) noexcept {
    using namespace tcp_flag;
    switch (seg.flags & (syn | fin | rst | ack)) {
    case ack: apply_as(seg, ack); break;
    case syn: apply_as(seg, syn); break;
    case syn | ack: apply_as(seg, syn | ack); break;
    case fin | ack: apply_as(seg, fin | ack); break;
    case rst: apply_as(seg, rst); break;
    case rst | ack: apply_as(seg, rst | ack); break;
    default: apply_as(seg, seg.flags & (syn | fin | rst | ack)); break;
    }
}

void TcpConn::start(const TcpSegment& first) noexcept {
    *this = TcpConn{};
    wscale0_ = wscale_unknown;
    wscale1_ = wscale_unknown;
    last_ts_ = first.ts_us;
    const unsigned d = first.dir & 1u;
    const bool syn = first.flags & tcp_flag::syn, ack = first.flags & tcp_flag::ack;
    bool flip;
    if (syn && !ack) {
        flip = false;  // the SYN's sender opens the connection
    } else if (syn && ack) {
        flip = true;  // a SYN-ACK first: its sender is the responder
    } else {
        // Zeek TCPAnalyzer::WantConnection: guess the true responder by the port numbers.
        bool src_l = likely_server_port(first.src_port), dst_l = likely_server_port(first.dst_port);
        flip = src_l && (dst_l ? first.src_port < first.dst_port : true);
    }
    orig_dir_ = flip ? 1u - d : d;
    if (flip) add_history('^');
    apply(first);
}

TcpConn::Verdict TcpConn::update_slow(const TcpSegment& seg) noexcept {
    if (is_reuse(seg)) return Verdict::reuse;
    apply(seg);
    return Verdict::ok;
}

ConnState TcpConn::zeek_conn_state(const char* history) const noexcept {
    // scripts/base/protocols/conn/main.zeek, function conn_state.
    const ZeekState os = st(side_[orig_dir_]);
    const ZeekState rs = st(side_[1 - orig_dir_]);
    const bool o_inactive = os == ZeekState::inactive || os == ZeekState::partial;
    const bool r_inactive = rs == ZeekState::inactive || rs == ZeekState::partial;
    if (rs == ZeekState::reset) {
        if (os == ZeekState::syn_sent || os == ZeekState::syn_ack_sent ||
            (os == ZeekState::reset && zeek_size(true) == 0 && zeek_size(false) == 0))
            return ConnState::REJ;
        return o_inactive ? ConnState::RSTRH : ConnState::RSTR;
    }
    if (os == ZeekState::reset) {
        if (r_inactive) {
            // /\^?S[^HAFGIQ]*R.*/ == history
            const char* h = history;
            if (*h == '^') ++h;
            if (*h == 'S') {
                for (++h; *h && *h != 'R'; ++h)
                    if (*h == 'H' || *h == 'A' || *h == 'F' || *h == 'G' || *h == 'I' || *h == 'Q')
                        break;
                if (*h == 'R') return ConnState::RSTOS0;
            }
            return ConnState::OTH;
        }
        return ConnState::RSTO;
    }
    if (rs == ZeekState::closed && os == ZeekState::closed) return ConnState::SF;
    if (os == ZeekState::closed) return r_inactive ? ConnState::SH : ConnState::S2;
    if (rs == ZeekState::closed) return o_inactive ? ConnState::SHR : ConnState::S3;
    if (os == ZeekState::syn_sent && rs == ZeekState::inactive) return ConnState::S0;
    if (os == ZeekState::established && rs == ZeekState::established) return ConnState::S1;
    return ConnState::OTH;
}

void TcpConn::finish(EndCause cause, ConnResult& out) const noexcept {
    const Side& o = side_[orig_dir_];
    const Side& r = side_[1 - orig_dir_];
    out.ts_last_us = last_ts_;
    out.ts_first_us = last_ts_ - first_back_;
    out.orig_pkts = orig_dir_ == 0 ? pkts0_ : pkts1_;
    out.resp_pkts = orig_dir_ == 0 ? pkts1_ : pkts0_;
    out.orig_bytes = zeek_size(true);
    out.resp_bytes = zeek_size(false);
    out.orig_dir = static_cast<uint8_t>(orig_dir_);
    out.end_cause = cause;
    expand_history(out.history, sizeof(out.history));
    out.conn_state = zeek_conn_state(out.history);
    out.half_close = o.half_close || r.half_close;

    auto fin_ack = [](const Side& s) {
        if (!s.fin) return FinAck::none;
        switch (s.outcome) {
        case ft_exact: return FinAck::exact;
        case ft_cumulative: return FinAck::cumulative;
        case ft_beyond: return FinAck::beyond;
        default: return FinAck::missing;
        }
    };
    out.fin_ack_orig = fin_ack(o);
    out.fin_ack_resp = fin_ack(r);

    const CloseState cs = close_state();
    out.teardown_us = is_closing(cs) ? static_cast<int64_t>(close_back_) : -1;
    switch (cs) {
    case CloseState::syn_sent:
        out.close = Close::no_answer;
        out.initiator = Initiator::none;
        out.reason = Reason::no_answer;
        break;
    case CloseState::fin1_o:
    case CloseState::fin1_r: {
        out.close = Close::fin_one_side;
        out.initiator = cs == CloseState::fin1_o ? Initiator::orig : Initiator::resp;
        // Loss at the capture point: the side without a FIN may have sent one the tap missed.
        // If its peer acknowledged sequence space beyond anything the tap saw from it, that FIN
        // (or data with it) existed: the outcome is `beyond`, and the connection is not half
        // open, so a timeout is not an abnormal close.
        const Side& silent = cs == CloseState::fin1_o ? r : o;
        const bool lost_fin = seq_delta(peer_highest_ack(silent), silent.last) > 0;
        if (lost_fin) {
            (cs == CloseState::fin1_o ? out.fin_ack_resp : out.fin_ack_orig) = FinAck::beyond;
            out.reason = Reason::none;
        } else {
            out.reason = cause == EndCause::idle_timeout ? Reason::half_open_timeout : Reason::none;
        }
        break;
    }
    case CloseState::fin2_o:
    case CloseState::fin2_r: {
        // Causality, not arrival: a FIN that was acknowledged by the peer (by its FIN, or by a
        // segment sent before the peer's FIN) was sent first.
        const bool o_first = r.fin_acks_peer || o.pure_before;
        const bool r_first = o.fin_acks_peer || r.pure_before;
        bool orig_first;
        if (o_first != r_first)
            orig_first = o_first;
        else
            orig_first = cs == CloseState::fin2_o;  // crossed (or contradictory): arrival order
        const Side& first = orig_first ? o : r;
        if (!o_first && !r_first)
            out.close = Close::fin_simultaneous;
        else
            out.close = first.pure_before ? Close::fin_4way : Close::fin_3way;
        out.initiator = orig_first ? Initiator::orig : Initiator::resp;
        out.reason = (out.fin_ack_orig == FinAck::missing || out.fin_ack_resp == FinAck::missing)
                         ? Reason::fin_unacked
                         : Reason::none;
        break;
    }
    case CloseState::finrst_o:
    case CloseState::finrst_r:
        out.close = Close::fin_rst;
        out.initiator = cs == CloseState::finrst_o ? Initiator::orig : Initiator::resp;
        out.reason = Reason::rst_after_fin;
        break;
    case CloseState::rst_o:
    case CloseState::rst_r:
        out.close = Close::rst;
        out.initiator = cs == CloseState::rst_o ? Initiator::orig : Initiator::resp;
        out.reason = rst_oow_ ? Reason::rst_out_of_window
                              : (cs == CloseState::rst_o ? Reason::rst_orig : Reason::rst_resp);
        break;
    case CloseState::rejected:
        out.close = Close::rejected;
        out.initiator = Initiator::resp;
        out.reason = Reason::rejected;
        break;
    default:
        out.close = Close::none;
        out.initiator = Initiator::none;
        out.reason = Reason::none;
        break;
    }
    // No close began (the machine is before fin1 or still in the attempt): a FIN bit seen so
    // far rode on a SYN (SYN+FIN, Zeek's 'Q'; the close machine treats it as a SYN), so there
    // is no FIN acknowledgement, and no half-close after it, to report (found by
    // tests/fuzz/fuzz_close_machine).
    if (out.close == Close::none || out.close == Close::no_answer) {
        out.fin_ack_orig = FinAck::none;
        out.fin_ack_resp = FinAck::none;
        out.half_close = false;
    }
}

}  // namespace closetap
