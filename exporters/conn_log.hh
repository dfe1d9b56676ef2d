// Per-connection records: the fixed-size record a worker hands over (no allocation on the data
// path) and the JSON-lines conn log written from it off the data path (SPEC section 3).
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

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
};
static_assert(sizeof(ConnRecord) % 4 == 0, "rte_ring element sizes are multiples of 4 bytes");

// Orients the flow's key by the close machine's originator.
ConnRecord make_record(const FlowEntry& e, const ConnResult& r, uint8_t worker) noexcept;

// "10.0.0.1" for IPv4-mapped addresses, RFC 5952 text for IPv6.
std::string format_addr(const std::array<uint8_t, 16>& a);

// One conn log line (no trailing newline).
std::string to_json_line(const ConnRecord& rec, const std::vector<std::string>& app_names);

// Appends JSON lines to a file. Write failures (full disk) are counted, not thrown, so a bad
// disk never stops the pipeline; opening fails loudly at start-up.
class ConnLogWriter {
public:
    ConnLogWriter() = default;
    explicit ConnLogWriter(const std::string& path) { open(path); }
    void open(const std::string& path);  // throws std::runtime_error
    ~ConnLogWriter();
    ConnLogWriter(const ConnLogWriter&) = delete;
    ConnLogWriter& operator=(const ConnLogWriter&) = delete;

    bool is_open() const { return f_ != nullptr; }
    void write(const ConnRecord& rec, const std::vector<std::string>& app_names);
    void flush();
    uint64_t written() const { return written_; }
    uint64_t write_errors() const { return errors_; }

private:
    std::FILE* f_ = nullptr;
    uint64_t written_ = 0;
    uint64_t errors_ = 0;
};

}  // namespace closetap
