#include "exporters/stats.hh"

namespace closetap {

void WorkerStats::count_conn(const ConnResult& r, uint16_t app) noexcept {
    closes[static_cast<size_t>(r.close)][static_cast<size_t>(r.initiator)].add();
    conn_state[static_cast<size_t>(r.conn_state)].add();
    if (r.reason != Reason::none)
        abnormal[static_cast<size_t>(r.reason)][app < max_apps ? app : 0].add();
    // One observation per FIN sent: outcomes of directions that sent no FIN are not counted.
    if (r.fin_ack_orig != FinAck::none) fin_ack[static_cast<size_t>(r.fin_ack_orig)].add();
    if (r.fin_ack_resp != FinAck::none) fin_ack[static_cast<size_t>(r.fin_ack_resp)].add();
    if (r.teardown_us >= 0)
        teardown[static_cast<size_t>(r.close)].observe_us(static_cast<uint64_t>(r.teardown_us));
    lifetime[static_cast<size_t>(r.close)].observe_us(r.ts_last_us - r.ts_first_us);
    ended[static_cast<size_t>(r.end_cause)].add();
}

}  // namespace closetap
