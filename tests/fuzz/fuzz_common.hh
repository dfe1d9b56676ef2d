// What the fuzz targets share: the trap on a broken invariant, a sink that checks every record
// the flow table emits against the close machine's documented rules (docs/close-machine.md,
// "Results"), and the bookkeeping that proves every packet was counted exactly once.
//
// Test-only code: it allocates freely. The targets are built twice: with clang and libFuzzer
// (-Dfuzz=true, tests/fuzz/meson.build) and, with replay_main.cc, as plain executables that
// replay the seeds and tests/fuzz/regressions/ in the gcc builds.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "exporters/conn_log.hh"
#include "exporters/stats.hh"
#include "flowtable/conn_types.hh"
#include "flowtable/flow_table.hh"

namespace closetap::fuzz {

// The input as a file the code under test opens by path (a memfd: no disk, gone with the fd).
class MemFile {
public:
    MemFile(const char* name, const uint8_t* data, size_t size)
        : fd_(memfd_create(name, MFD_CLOEXEC)) {
        for (size_t off = 0; fd_ >= 0 && off < size;) {
            ssize_t n = write(fd_, data + off, size - off);
            if (n <= 0) {
                close(fd_);
                fd_ = -1;
                break;
            }
            off += static_cast<size_t>(n);
        }
    }
    ~MemFile() {
        if (fd_ >= 0) close(fd_);
    }
    MemFile(const MemFile&) = delete;
    MemFile& operator=(const MemFile&) = delete;
    bool ok() const { return fd_ >= 0; }
    std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

private:
    int fd_;
};

// A broken invariant: say which (libFuzzer keeps the input as crash-*), then trap.
[[noreturn]] inline void fail(const char* what, const char* file, int line) {
    std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", what, file, line);
    std::fflush(stderr);
    __builtin_trap();
}
#define FUZZ_CHECK(cond)                                                \
    do {                                                                \
        if (!(cond)) ::closetap::fuzz::fail(#cond, __FILE__, __LINE__); \
    } while (0)

// Zeek's history alphabet (docs/close-machine.md, "History"): the letters closetap can write.
inline bool zeek_history_letter(char c) {
    return std::string_view("SsHhAaDdFfRrTtWwGgIiQqCcXx^").find(c) != std::string_view::npos;
}

// FUZZ_TRACE=1 in the environment: the targets print every segment and record (for reading a
// crash input with the replay executable).
inline bool tracing() {
    static const bool on = std::getenv("FUZZ_TRACE") != nullptr;
    return on;
}

// Where a record came from: the table's calls each end flows for their own causes only.
enum class Phase : uint8_t { process, expire, flush };

// The flow table's sink for the fuzzers: does what the worker's RecordSink does (count the
// connection into WorkerStats, build the ConnRecord, and here also format the conn log line the
// control thread would write), and checks every record.
struct CheckingSink {
    WorkerStats stats;
    uint64_t records = 0;
    uint64_t pkts_in_records = 0;  // orig_pkts + resp_pkts over all records
    uint64_t fins = 0;             // directions with a FIN (fin_ack != none)
    uint64_t with_teardown = 0;
    uint64_t by_cause[count_of<EndCause>] = {};
    Phase phase = Phase::process;
    std::vector<std::string> apps = {"unknown"};
    // When set: the keys the input's packets can make; every record must carry one of them
    // (the table keeps IPv4 keys in 12 bytes and IPv6 addresses in a second entry).
    std::vector<FlowKey> keys;

    void operator()(const FlowEntry& e, const ConnResult& r) {
        if (tracing())
            std::fprintf(stderr,
                         "  record: close=%s initiator=%s state=%s history=%s reason=%s end=%s "
                         "fin_ack=%s/%s pkts=%u/%u teardown=%lld orig_dir=%u\n",
                         std::string(to_string(r.close)).c_str(),
                         std::string(to_string(r.initiator)).c_str(),
                         std::string(to_string(r.conn_state)).c_str(), r.history,
                         std::string(to_string(r.reason)).c_str(),
                         std::string(to_string(r.end_cause)).c_str(),
                         std::string(to_string(r.fin_ack_orig)).c_str(),
                         std::string(to_string(r.fin_ack_resp)).c_str(), r.orig_pkts, r.resp_pkts,
                         static_cast<long long>(r.teardown_us), unsigned(r.orig_dir));
        check_result(r);
        if (!keys.empty()) FUZZ_CHECK(std::find(keys.begin(), keys.end(), r.key) != keys.end());
        // No close, no FIN acknowledgement: a FIN bit on a SYN (SYN+FIN, Zeek's Q) begins no
        // close (regressions/fuzz_close_machine/syn_fin_*, once reported as fin_ack missing).
        if (r.close == Close::none || r.close == Close::no_answer)
            FUZZ_CHECK(r.fin_ack_orig == FinAck::none && r.fin_ack_resp == FinAck::none);
        // The cause must fit the call that ended the flow (flowtable/flow_table.hh).
        switch (phase) {
            case Phase::process:  // a timeout seen on the flow's own packet, reuse, or eviction
                FUZZ_CHECK(r.end_cause != EndCause::end_of_input);
                break;
            case Phase::expire:  // only timeouts
                FUZZ_CHECK(r.end_cause == EndCause::closed ||
                           r.end_cause == EndCause::idle_timeout);
                break;
            case Phase::flush:  // end of input, or a timeout that had already passed
                FUZZ_CHECK(r.end_cause == EndCause::end_of_input ||
                           r.end_cause == EndCause::closed ||
                           r.end_cause == EndCause::idle_timeout);
                break;
        }
        stats.count_conn(r, e.app);
        records++;
        pkts_in_records += uint64_t{r.orig_pkts} + r.resp_pkts;
        fins += (r.fin_ack_orig != FinAck::none) + (r.fin_ack_resp != FinAck::none);
        with_teardown += r.teardown_us >= 0;
        by_cause[static_cast<size_t>(r.end_cause)]++;
        // The record the worker hands over and the line the conn log writer makes of it: neither
        // may throw (the writer runs on the control thread, where an exception ends closetap).
        ConnRecord rec = make_record(e, r, 0);
        FUZZ_CHECK(rec.waves.n <= max_waves);
        std::string line = to_json_line(rec, apps);
        FUZZ_CHECK(!line.empty() && line.front() == '{' && line.back() == '}');
        FUZZ_CHECK(line.find('\n') == std::string::npos);
    }

    // The rules of TcpConn::finish (docs/close-machine.md, "Results") and SPEC's vocabulary.
    static void check_result(const ConnResult& r) {
        FUZZ_CHECK(r.close < Close::count_);
        FUZZ_CHECK(r.initiator < Initiator::count_);
        FUZZ_CHECK(r.fin_ack_orig < FinAck::count_ && r.fin_ack_resp < FinAck::count_);
        FUZZ_CHECK(r.conn_state < ConnState::count_);
        FUZZ_CHECK(r.reason < Reason::count_);
        FUZZ_CHECK(r.end_cause < EndCause::count_);
        FUZZ_CHECK(r.orig_dir <= 1);
        FUZZ_CHECK(r.ts_first_us <= r.ts_last_us);
        FUZZ_CHECK(r.orig_pkts + r.resp_pkts >= 1);  // a record starts with a packet

        // History: NUL-terminated, only Zeek's letters.
        size_t n = 0;
        while (n < sizeof(r.history) && r.history[n] != '\0') {
            FUZZ_CHECK(zeek_history_letter(r.history[n]));
            n++;
        }
        FUZZ_CHECK(n < sizeof(r.history));

        // Nobody closed exactly when the close is no_answer or none (metrics.cc exports only
        // these pairs); a teardown time exists exactly when a FIN or RST began a close.
        const bool nobody = r.close == Close::no_answer || r.close == Close::none;
        FUZZ_CHECK((r.initiator == Initiator::none) == nobody);
        FUZZ_CHECK((r.teardown_us < 0) == nobody);
        if (r.teardown_us >= 0) FUZZ_CHECK(uint64_t(r.teardown_us) <= r.ts_last_us - r.ts_first_us);

        const FinAck fin_init = r.initiator == Initiator::orig ? r.fin_ack_orig : r.fin_ack_resp;
        switch (r.close) {
            case Close::no_answer:
                // syn_sent: only the originator's SYNs; any responder segment leaves that state.
                FUZZ_CHECK(r.reason == Reason::no_answer);
                FUZZ_CHECK(r.resp_pkts == 0);
                break;
            case Close::none:
                FUZZ_CHECK(r.reason == Reason::none);
                break;
            case Close::fin_one_side:
                FUZZ_CHECK(r.reason == Reason::none || r.reason == Reason::half_open_timeout);
                if (r.reason == Reason::half_open_timeout)
                    FUZZ_CHECK(r.end_cause == EndCause::idle_timeout);
                FUZZ_CHECK(fin_init != FinAck::none);  // the closer sent a FIN
                break;
            case Close::fin_4way:
            case Close::fin_3way:
            case Close::fin_simultaneous: {
                FUZZ_CHECK(r.fin_ack_orig != FinAck::none && r.fin_ack_resp != FinAck::none);
                const bool missing =
                    r.fin_ack_orig == FinAck::missing || r.fin_ack_resp == FinAck::missing;
                FUZZ_CHECK((r.reason == Reason::fin_unacked) == missing);
                FUZZ_CHECK(r.reason == Reason::fin_unacked || r.reason == Reason::none);
                break;
            }
            case Close::fin_rst:
                FUZZ_CHECK(r.reason == Reason::rst_after_fin);
                FUZZ_CHECK(fin_init != FinAck::none);  // the first FIN's sender is the initiator
                break;
            case Close::rst:
                FUZZ_CHECK(r.reason == Reason::rst_out_of_window ||
                           r.reason == (r.initiator == Initiator::orig ? Reason::rst_orig
                                                                       : Reason::rst_resp));
                break;
            case Close::rejected:
                FUZZ_CHECK(r.initiator == Initiator::resp && r.reason == Reason::rejected);
                break;
            case Close::count_:
                FUZZ_CHECK(false);
        }
        // half_close needs a FIN to be after (docs/close-machine.md, "half_close").
        if (r.half_close)
            FUZZ_CHECK(r.fin_ack_orig != FinAck::none || r.fin_ack_resp != FinAck::none);
    }

    // Everything the table and the counters say must add up once the table is flushed.
    void check_totals(const FlowTable& t, uint64_t accepted) const {
        const FlowTableCounters& c = t.counters();
        FUZZ_CHECK(t.active() == 0);
        // One record per connection the table created: none lost, none twice.
        FUZZ_CHECK(c.created == records);
        uint64_t ended = 0, evicted = 0;
        for (size_t i = 0; i < count_of<EndCause>; i++) {
            FUZZ_CHECK(c.ended[i] == by_cause[i]);
            FUZZ_CHECK(stats.ended[i].get() == by_cause[i]);
            ended += c.ended[i];
        }
        FUZZ_CHECK(ended == records);
        for (uint64_t v : c.evictions) evicted += v;
        FUZZ_CHECK(evicted == by_cause[static_cast<size_t>(EndCause::evicted)]);
        // Every packet the table took is counted in exactly one record.
        FUZZ_CHECK(pkts_in_records == accepted);
        // The exporter's series sum to the records.
        uint64_t closes = 0, states = 0, fin_acks = 0, teardowns = 0, lifetimes = 0;
        for (auto& row : stats.closes)
            for (auto& v : row) closes += v.get();
        for (auto& v : stats.conn_state) states += v.get();
        for (auto& v : stats.fin_ack) fin_acks += v.get();
        for (auto& h : stats.teardown)
            for (auto& b : h.buckets) teardowns += b.get();
        for (auto& h : stats.lifetime)
            for (auto& b : h.buckets) lifetimes += b.get();
        FUZZ_CHECK(closes == records && states == records && lifetimes == records);
        FUZZ_CHECK(fin_acks == fins);
        FUZZ_CHECK(teardowns == with_teardown);
    }
};

}  // namespace closetap::fuzz
