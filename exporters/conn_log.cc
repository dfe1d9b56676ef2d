#include "exporters/conn_log.hh"

#include <arpa/inet.h>
#include <cerrno>
#include <algorithm>
#include <cstring>
#include <stdexcept>


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
    if (ending_waves.entry == &e && ending_waves.waves != nullptr) {
        // Orient by the originator and number like Wireshark: seq relative to the sender's ISN,
        // ack to the receiver's, for each side whose SYN was seen (absolute otherwise).
        CloseWaves& cw = rec.waves;
        cw = *ending_waves.waves;
        const bool rel[2] = {e.conn.saw_syn(true), e.conn.saw_syn(false)};
        const uint32_t isn[2] = {e.conn.isn(true), e.conn.isn(false)};
        cw.relative = static_cast<uint8_t>((rel[0] ? wave_rel::orig : 0) | (rel[1] ? wave_rel::resp : 0));
        for (unsigned i = 0; i < cw.n; i++) {
            Wave& w = cw.w[i];
            const unsigned from = (w.dir & 1u) == o ? 0 : 1;  // 0 = orig
            w.dir = static_cast<uint8_t>(from);
            if (rel[from]) w.seq -= isn[from];
            if (rel[from ^ 1]) w.ack -= isn[from ^ 1];
        }
    }
    return rec;
}

std::string flags_text(uint8_t flags) {
    static constexpr const char* names[8] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
    std::string out;
    for (unsigned b = 0; b < 8; b++) {
        if (!(flags & (1u << b))) continue;
        if (!out.empty()) out += ',';
        out += names[b];
    }
    return out.empty() ? "none" : out;
}

nlohmann::ordered_json waves_json(const CloseWaves& cw) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (unsigned i = 0; i < cw.n && i < max_waves; i++) {
        const Wave& w = cw.w[i];
        nlohmann::ordered_json x;
        x["dir"] = w.dir == 0 ? "orig" : "resp";
        x["flags"] = flags_text(w.flags);
        x["seq"] = w.seq;
        // Wireshark shows no acknowledgment number without the ACK flag.
        if (w.flags & tcp_flag::ack)
            x["ack"] = w.ack;
        else
            x["ack"] = nullptr;
        x["len"] = w.len;
        x["t"] = static_cast<double>(w.t_us) / 1e6;
        a.push_back(std::move(x));
    }
    return a;
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

nlohmann::ordered_json to_json(const ConnRecord& rec, const std::vector<std::string>& app_names) {
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
    j["waves"] = waves_json(rec.waves);
    if (rec.waves.n > 0) {
        j["waves_more"] = rec.waves.more;
        j["waves_relative"] = {{"orig", (rec.waves.relative & wave_rel::orig) != 0},
                               {"resp", (rec.waves.relative & wave_rel::resp) != 0}};
    }
    return j;
}

std::string to_json_line(const ConnRecord& rec, const std::vector<std::string>& app_names) {
    return to_json(rec, app_names).dump();
}

void LineFile::open(const std::string& path, const char* what) {
    f_ = path == "-" ? stdout : std::fopen(path.c_str(), "w");
    if (f_ == nullptr)
        throw std::runtime_error(std::string("cannot open ") + what + " " + path + ": " +
                                 std::strerror(errno));
}

LineFile::~LineFile() {
    if (f_ != nullptr && f_ != stdout) std::fclose(f_);
}

bool LineFile::write(std::string line) {
    if (f_ == nullptr) return true;
    line.push_back('\n');
    return std::fwrite(line.data(), 1, line.size(), f_) == line.size();
}

bool LineFile::flush() { return f_ == nullptr || std::fflush(f_) == 0; }

void ConnLogWriter::write(const ConnRecord& rec, const std::vector<std::string>& app_names) {
    if (!file_.is_open()) return;
    if (file_.write(to_json_line(rec, app_names)))
        written_++;
    else
        errors_++;
}

void ConnLogWriter::flush() {
    if (!file_.flush()) errors_++;
}

void EventWriter::open(const std::string& path, double rate_per_s, double burst) {
    file_.open(path, "event log");
    rate_ = rate_per_s;
    burst_ = burst;
    tokens_ = burst;
}

void EventWriter::offer(const ConnRecord& rec, const std::vector<std::string>& app_names) {
    if (!file_.is_open() || rec.r.reason == Reason::none) return;
    // Refill by the connection's end time; records of different workers arrive slightly out of
    // order, and an older one never takes tokens back.
    const uint64_t t = rec.r.ts_last_us;
    if (t > last_us_) {
        if (last_us_ != 0) tokens_ = std::min(burst_, tokens_ + double(t - last_us_) / 1e6 * rate_);
        last_us_ = t;
    }
    if (tokens_ < 1.0) {
        suppressed_++;
        return;
    }
    tokens_ -= 1.0;
    nlohmann::ordered_json j;
    j["event"] = "abnormal_close";
    j["event_ts"] = double(rec.r.ts_last_us) / 1e6;
    const nlohmann::ordered_json body = to_json(rec, app_names);
    for (auto it = body.begin(); it != body.end(); ++it) j[it.key()] = *it;
    if (file_.write(j.dump()))
        written_++;
    else
        errors_++;
}

void EventWriter::flush() {
    if (!file_.flush()) errors_++;
}

}  // namespace closetap
