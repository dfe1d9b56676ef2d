#include "exporters/conn_log.hh"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace closetap {

ConnRecord make_record(const FlowEntry& e, const ConnResult& r, uint8_t worker) noexcept {
    ConnRecord rec{};
    const uint8_t o = r.orig_dir & 1;
    rec.orig_h = e.key.addr[o];
    rec.orig_p = e.key.port[o];
    rec.resp_h = e.key.addr[o ^ 1];
    rec.resp_p = e.key.port[o ^ 1];
    rec.app = e.app;
    rec.worker = worker;
    rec.r = r;
    return rec;
}

std::string format_addr(const std::array<uint8_t, 16>& a) {
    static constexpr uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char buf[INET6_ADDRSTRLEN];
    if (std::memcmp(a.data(), v4_prefix, 12) == 0)
        inet_ntop(AF_INET, a.data() + 12, buf, sizeof(buf));
    else
        inet_ntop(AF_INET6, a.data(), buf, sizeof(buf));
    return buf;
}

std::string to_json_line(const ConnRecord& rec, const std::vector<std::string>& app_names) {
    const ConnResult& r = rec.r;
    auto secs = [](uint64_t us) { return static_cast<double>(us) / 1e6; };
    nlohmann::ordered_json j;
    j["ts"] = secs(r.ts_first_us);
    j["orig_h"] = format_addr(rec.orig_h);
    j["orig_p"] = rec.orig_p;
    j["resp_h"] = format_addr(rec.resp_h);
    j["resp_p"] = rec.resp_p;
    j["proto"] = "tcp";
    j["close"] = to_string(r.close);
    j["initiator"] = to_string(r.initiator);
    j["half_close"] = r.half_close;
    j["conn_state"] = to_string(r.conn_state);
    j["history"] = std::string(r.history);
    j["fin_ack"] = {{"orig", to_string(r.fin_ack_orig)}, {"resp", to_string(r.fin_ack_resp)}};
    if (r.teardown_us >= 0)
        j["teardown_s"] = secs(static_cast<uint64_t>(r.teardown_us));
    else
        j["teardown_s"] = nullptr;
    j["duration"] = secs(r.ts_last_us - r.ts_first_us);
    j["orig_pkts"] = r.orig_pkts;
    j["resp_pkts"] = r.resp_pkts;
    j["orig_bytes"] = r.orig_bytes;
    j["resp_bytes"] = r.resp_bytes;
    j["app"] = rec.app < app_names.size() ? app_names[rec.app] : "unknown";
    if (r.reason == Reason::none)
        j["reason"] = nullptr;
    else
        j["reason"] = to_string(r.reason);
    j["end"] = to_string(r.end_cause);
    return j.dump();
}

void ConnLogWriter::open(const std::string& path) {
    f_ = path == "-" ? stdout : std::fopen(path.c_str(), "w");
    if (f_ == nullptr)
        throw std::runtime_error("cannot open conn log " + path + ": " + std::strerror(errno));
}

ConnLogWriter::~ConnLogWriter() {
    if (f_ != nullptr && f_ != stdout) std::fclose(f_);
}

void ConnLogWriter::write(const ConnRecord& rec, const std::vector<std::string>& app_names) {
    if (f_ == nullptr) return;
    std::string line = to_json_line(rec, app_names);
    line.push_back('\n');
    if (std::fwrite(line.data(), 1, line.size(), f_) != line.size())
        errors_++;
    else
        written_++;
}

void ConnLogWriter::flush() {
    if (f_ != nullptr && std::fflush(f_) != 0) errors_++;
}

}  // namespace closetap
