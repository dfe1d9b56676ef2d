#include "exporters/conn_log.hh"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>


namespace closetap {

ConnRecord make_record(const FlowEntry& e, const ConnResult& r, uint8_t worker) noexcept {
    ConnRecord rec{};
    const uint8_t o = r.orig_dir & 1;
    rec.orig_h = r.key.addr[o];
    rec.orig_p = r.key.port[o];
    rec.resp_h = r.key.addr[o ^ 1];
    rec.resp_p = r.key.port[o ^ 1];
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

int open_output_file(const std::string& path, const char* what) {
    auto fail = [&](const std::string& why) -> int {
        throw std::runtime_error(std::string("cannot open ") + what + " " + path + ": " + why);
    };
    if (path.empty()) fail("empty path");
    std::error_code ec;
    const std::filesystem::path p(path);
    std::filesystem::path dir = p.parent_path();
    if (dir.empty()) dir = ".";
    const auto dst = std::filesystem::status(dir, ec);
    if (ec || !std::filesystem::is_directory(dst))
        fail("directory " + dir.string() + " does not exist");
    if (std::filesystem::is_directory(std::filesystem::status(p, ec))) fail("is a directory");
    int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    const bool world_writable =
        (dst.permissions() & std::filesystem::perms::others_write) != std::filesystem::perms::none;
    if (world_writable) flags |= O_NOFOLLOW;
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) {
        if (errno == ELOOP && world_writable)
            fail("a symbolic link in the world-writable directory " + dir.string() +
                 " (refused: give a path in a directory only closetap's user can write)");
        fail(std::strerror(errno));
    }
    return fd;
}

void LineFile::open(const std::string& path, const char* what) {
    path_ = path;
    what_ = what;
    if (path == "-") {
        fd_ = STDOUT_FILENO;
    } else {
        fd_ = open_output_file(path, what);
        own_fd_ = true;
    }
    buf_.reserve(buffer_bytes + 4096);
}

LineFile::~LineFile() {
    flush();
    if (own_fd_) ::close(fd_);
}

void LineFile::write(std::string_view line) {
    if (fd_ < 0) return;
    buf_.append(line);
    buf_.push_back('\n');
    buffered_++;
    if (buf_.size() >= buffer_bytes) flush();
}

void LineFile::flush() {
    if (fd_ < 0 || buf_.empty()) return;
    size_t done = 0;
    int err = 0;
    while (done < buf_.size()) {
        ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            err = n < 0 ? errno : ENOSPC;
            break;
        }
        done += static_cast<size_t>(n);
    }
    if (err == 0) {
        written_ += buffered_;
    } else {
        // Lines wholly on disk count as written; the rest (a partial last line included: a
        // reader sees one torn line where the disk filled) as failed.
        const uint64_t whole = static_cast<uint64_t>(
            std::count(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(done), '\n'));
        written_ += whole;
        failed_ += buffered_ - whole;
        if (first_error_.empty()) first_error_ = what_ + " " + path_ + ": " + std::strerror(err);
    }
    buf_.clear();
    buffered_ = 0;
}

void ConnLogWriter::write(const ConnRecord& rec, const std::vector<std::string>& app_names) {
    if (!file_.is_open()) return;
    file_.write(to_json_line(rec, app_names));
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
    file_.write(j.dump());
}

}  // namespace closetap
