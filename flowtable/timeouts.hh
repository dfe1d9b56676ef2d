// Per-state timeouts, by packet time. The defaults are Zeek's, so that records split where
// Zeek's do (the conformance test depends on it) and operators who know Zeek's conn.log get the
// same rows:
//   syn_sent      5 s  Zeek's tcp_attempt_delay: an attempt with no answer 5 s after its FIRST
//                      SYN is over (no_answer). Kernel SYN retransmissions later than that
//                      (Linux: 1, 3, 7, 15, 31 s) start a new attempt record, as in Zeek.
//   established 300 s  Zeek's tcp_inactivity_timeout, since the last packet
//   half_closed 300 s  the same inactivity rule (one FIN, the peer silent): ends fin_one_side
//                      with reason half_open_timeout
//   closed        5 s  Zeek's tcp_close_delay / tcp_reset_delay: absorbs the last ACK and
//                      retransmitted FINs/RSTs before the record is written
// conntrack's are longer (SYN_SENT 120 s, FIN_WAIT 120 s, TIME_WAIT 120 s); all four are
// configurable (--timeout-syn, --timeout-established, --timeout-half-closed, --timeout-closed).
#pragma once

#include <array>
#include <cstdint>

#include "flowtable/conn_types.hh"

namespace closetap {

struct FlowTimeouts {
    std::array<uint64_t, count_of<TimeoutClass>> us = {5'000'000, 300'000'000, 300'000'000,
                                                       5'000'000};
    uint64_t of(TimeoutClass c) const noexcept { return us[static_cast<size_t>(c)]; }
};

}  // namespace closetap
