#include "exporters/summary.hh"

#include <fmt/format.h>

namespace closetap {
namespace {

template <typename F> uint64_t total(const MetricsSources& s, F&& get) {
    uint64_t n = 0;
    for (const WorkerStats* w : s.workers) n += get(*w).get();
    return n;
}

}  // namespace

std::string format_summary(const MetricsSources& src, double elapsed_s) {
    std::string out;
    auto line = [&out](std::string s) {
        out += s;
        out += '\n';
    };

    uint64_t rx = 0;
    for (size_t p = 0; p < src.port_names.size() && p < max_ports; p++)
        rx += total(src, [p](auto& w) -> auto& { return w.rx_packets[p]; });
    std::string classes;
    for (size_t c = 0; c < count_of<PacketClass>; c++) {
        uint64_t n = total(src, [c](auto& w) -> auto& { return w.packet_class[c]; });
        if (n) classes += fmt::format("{}{} {}", classes.empty() ? "" : ", ", n, packet_class_names[c]);
    }
    uint64_t conns = 0;
    for (size_t c = 0; c < count_of<Close>; c++)
        for (size_t i = 0; i < count_of<Initiator>; i++)
            conns += total(src, [c, i](auto& w) -> auto& { return w.closes[c][i]; });
    line(fmt::format("closetap: {} packets ({}) in {:.2f} s, {} TCP connections", rx,
                     classes.empty() ? "none" : classes, elapsed_s, conns));

    if (conns) {
        line(fmt::format("  {:<18}{:>8}{:>8}{:>8}", "close", "orig", "resp", "none"));
        for (size_t c = 0; c < count_of<Close>; c++) {
            uint64_t v[3];
            for (size_t i = 0; i < 3; i++)
                v[i] = total(src, [c, i](auto& w) -> auto& { return w.closes[c][i]; });
            if (v[0] + v[1] + v[2] == 0) continue;
            line(fmt::format("  {:<18}{:>8}{:>8}{:>8}", close_names[c], v[0], v[1], v[2]));
        }
        std::string states;
        for (size_t s = 0; s < count_of<ConnState>; s++) {
            uint64_t n = total(src, [s](auto& w) -> auto& { return w.conn_state[s]; });
            if (n) states += fmt::format(" {}={}", conn_state_names[s], n);
        }
        line("  conn_state:" + states);
        std::string abnormal;
        for (size_t r = 1; r < count_of<Reason>; r++) {
            uint64_t n = 0;
            for (size_t a = 0; a < max_apps; a++)
                n += total(src, [r, a](auto& w) -> auto& { return w.abnormal[r][a]; });
            if (n) abnormal += fmt::format(" {}={}", reason_names[r], n);
        }
        line("  abnormal:" + (abnormal.empty() ? std::string(" none") : abnormal));
    }
    std::string errors;
    for (size_t e = 0; e < count_of<ParseError>; e++) {
        uint64_t n = total(src, [e](auto& w) -> auto& { return w.parse_errors[e]; });
        if (n) errors += fmt::format(" {}={}", parse_error_names[e], n);
    }
    if (!errors.empty()) line("  parse errors:" + errors);
    uint64_t ev = 0;
    for (size_t r = 0; r < count_of<EvictReason>; r++)
        ev += total(src, [r](auto& w) -> auto& { return w.evictions[r]; });
    uint64_t lost = total(src, [](auto& w) -> auto& { return w.records_dropped; });
    if (ev || lost) line(fmt::format("  evictions: {}, records dropped: {}", ev, lost));
    return out;
}

}  // namespace closetap
