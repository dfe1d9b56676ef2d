// Per-connection records: the fixed-size record a worker hands over (no allocation on the data
// path) and the JSON-lines conn log written from it off the data path (SPEC section 3).
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "flowtable/conn_types.hh"
#include "flowtable/flow_table.hh"

namespace closetap {

struct ConnRecord {
    std::array<uint8_t, 16> orig_h;
    std::array<uint8_t, 16> resp_h;
    uint16_t orig_p;
    uint16_t resp_p;
    uint16_t app;
    uint8_t worker;
    uint8_t pad_;
    ConnResult r;
    CloseWaves waves;  // the teardown, oriented and relative (flowtable/waves.hh); n = 0: none
};
static_assert(sizeof(ConnRecord) % 4 == 0, "rte_ring element sizes are multiples of 4 bytes");

// Orients the flow's key by the close machine's originator, and takes the teardown waves of
// the flow the table is ending (ending_waves) when there are any.
ConnRecord make_record(const FlowEntry& e, const ConnResult& r, uint8_t worker) noexcept;

// "10.0.0.1" for IPv4-mapped addresses, RFC 5952 text for IPv6.
std::string format_addr(const std::array<uint8_t, 16>& a);

// The record as JSON (SPEC section 3 keys) and as one conn log line (no trailing newline).
nlohmann::ordered_json to_json(const ConnRecord& rec, const std::vector<std::string>& app_names);
std::string to_json_line(const ConnRecord& rec, const std::vector<std::string>& app_names);

// TCP flags the way Wireshark's Info column lists them, comma separated: "FIN,PSH,ACK".
std::string flags_text(uint8_t flags);
// The "waves" list of a record: [{"dir","flags","seq","ack","len","t"}, ...] (docs/explain.md).
nlohmann::ordered_json waves_json(const CloseWaves& w);

// Opens an output file named by configuration for writing (created 0644, truncated): refuses a
// directory, and in a world-writable directory (/tmp) does not follow a symbolic link, so a
// local user cannot point a root-owned closetap at another file. Throws std::runtime_error with
// one line naming `what`, the path and the reason.
int open_output_file(const std::string& path, const char* what);

// A file of lines, written from the control thread through its own buffer with write(2), so
// every line is counted exactly once as written or failed: a failed write (full disk, I/O error)
// counts the lines it held as failed, never throws and never retries them, so a bad disk never
// stops the pipeline and a disk that frees up again gets the lines that follow. The first
// failure's text is kept for one report (first_error). Opening fails loudly at start-up.
class LineFile {
public:
    static constexpr size_t buffer_bytes = 64 * 1024;

    LineFile() = default;
    ~LineFile();
    LineFile(const LineFile&) = delete;
    LineFile& operator=(const LineFile&) = delete;

    void open(const std::string& path, const char* what);  // throws std::runtime_error; "-" = stdout
    bool is_open() const { return fd_ >= 0; }
    void write(std::string_view line);  // appends '\n'; written out when the buffer is full
    void flush();                        // writes out what the buffer holds
    uint64_t written() const { return written_; }
    uint64_t failed() const { return failed_; }
    // "conn log PATH: No space left on device" after the first failed write, else empty.
    const std::string& first_error() const { return first_error_; }

private:
    int fd_ = -1;
    bool own_fd_ = false;
    std::string path_, what_;
    std::string buf_;
    uint64_t buffered_ = 0;  // lines in buf_
    uint64_t written_ = 0, failed_ = 0;
    std::string first_error_;
};

// The conn log: one JSON object per ended connection.
class ConnLogWriter {
public:
    void open(const std::string& path) { file_.open(path, "conn log"); }
    void write(const ConnRecord& rec, const std::vector<std::string>& app_names);
    void flush() { file_.flush(); }
    uint64_t written() const { return file_.written(); }
    uint64_t write_errors() const { return file_.failed(); }
    const std::string& first_error() const { return file_.first_error(); }

private:
    LineFile file_;
};

// Abnormal closes as events (--events): one JSON line per connection whose close has a
// reason, rate-limited by a token bucket on the connections' own end times (packet time), so a
// reset storm cannot fill a disk and a replay writes the same events on every run. What the
// bucket refuses is counted as suppressed.
class EventWriter {
public:
    void open(const std::string& path, double rate_per_s, double burst);
    bool is_open() const { return file_.is_open(); }
    void offer(const ConnRecord& rec, const std::vector<std::string>& app_names);
    void flush() { file_.flush(); }
    uint64_t written() const { return file_.written(); }
    uint64_t suppressed() const { return suppressed_; }
    uint64_t write_errors() const { return file_.failed(); }
    const std::string& first_error() const { return file_.first_error(); }

private:
    LineFile file_;
    double rate_ = 0, burst_ = 0, tokens_ = 0;
    uint64_t last_us_ = 0;
    uint64_t suppressed_ = 0;
};

}  // namespace closetap
