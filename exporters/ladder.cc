#include "exporters/ladder.hh"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace closetap {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* side_name[2] = {"orig", "resp"};
constexpr unsigned min_label = 20;
const std::string arrow_right = "------------->";
const std::string arrow_left = "<-------------";

namespace ansi {
const char* const reset = "\x1b[0m";
const char* const bold = "\x1b[1m";
const char* const dim = "\x1b[2m";
const char* const red = "\x1b[1;31m";
const char* const green = "\x1b[32m";
const char* const yellow = "\x1b[33m";
const char* const side[2] = {"\x1b[36m", "\x1b[35m"};  // orig cyan, resp magenta
}  // namespace ansi

struct Seg {
    unsigned from = 0;  // 0 orig, 1 resp
    std::string flags;
    bool fin = false, rst = false, ack_flag = false;
    uint32_t seq = 0;
    std::optional<uint32_t> ack;
    uint32_t len = 0;
    double t = 0;
};

// a >= b in sequence space (RFC 9293 modular comparison).
bool seq_ge(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) >= 0; }

std::string str_or(const json& j, const char* key, const char* dflt) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : dflt;
}

// The waves of a record, and where the FINs, their ACKs and the first RST are.
struct Analysis {
    std::vector<Seg> w;
    int fin[2] = {-1, -1};        // first FIN wave of each side
    uint32_t fin_end[2] = {0, 0};  // that FIN's seq + len + 1: the exact ACK it expects
    int acked[2] = {-1, -1};      // first wave of the peer whose ack == fin_end (any arrival order)
    int beyond[2] = {-1, -1};     // first wave of the peer whose ack is past fin_end
    int rst = -1;
    unsigned more = 0;
};

Analysis analyse(const json& rec) {
    Analysis a;
    auto it = rec.find("waves");
    if (it != rec.end() && it->is_array()) {
        for (const json& x : *it) {
            Seg s;
            s.from = str_or(x, "dir", "orig") == "resp" ? 1 : 0;
            s.flags = str_or(x, "flags", "");
            std::string f = "," + s.flags + ",";
            s.fin = f.find(",FIN,") != std::string::npos;
            s.rst = f.find(",RST,") != std::string::npos;
            s.ack_flag = f.find(",ACK,") != std::string::npos;
            s.seq = x.value("seq", 0u);
            if (x.contains("ack") && x["ack"].is_number()) s.ack = x["ack"].get<uint32_t>();
            s.len = x.value("len", 0u);
            s.t = x.value("t", 0.0);
            a.w.push_back(std::move(s));
        }
    }
    if (auto m = rec.find("waves_more"); m != rec.end() && m->is_number()) a.more = m->get<unsigned>();
    for (size_t i = 0; i < a.w.size(); i++) {
        const Seg& s = a.w[i];
        if (s.fin && !s.rst && a.fin[s.from] < 0) {
            a.fin[s.from] = static_cast<int>(i);
            a.fin_end[s.from] = s.seq + s.len + 1;
        }
        if (s.rst && a.rst < 0) a.rst = static_cast<int>(i);
    }
    for (unsigned side = 0; side < 2; side++) {
        if (a.fin[side] < 0) continue;
        for (size_t i = 0; i < a.w.size(); i++) {
            const Seg& s = a.w[i];
            if (s.from == side || !s.ack || s.rst) continue;
            if (*s.ack == a.fin_end[side] && a.acked[side] < 0) a.acked[side] = static_cast<int>(i);
            if (*s.ack != a.fin_end[side] && seq_ge(*s.ack, a.fin_end[side]) && a.beyond[side] < 0)
                a.beyond[side] = static_cast<int>(i);
        }
    }
    return a;
}

std::string wave_ref(int i) { return "wave " + std::to_string(i + 1); }

std::string label_of(const Seg& s) {
    std::string l = s.flags + " seq=" + std::to_string(s.seq);
    if (s.ack) l += " ack=" + std::to_string(*s.ack);
    if (s.len > 0) l += " len=" + std::to_string(s.len);
    return l;
}

// What wave i does in the close, as a note beside it.
std::string note_of(const Analysis& a, size_t i, const std::string& close) {
    const Seg& s = a.w[i];
    const unsigned x = s.from, y = 1 - x;
    const std::string me = side_name[x], peer = side_name[y];
    const int ii = static_cast<int>(i);
    std::string n;
    if (s.rst) {
        if (close == "rejected") return "RST answers the SYN: refused";
        if (ii != a.rst) return "RST again";
        bool fin_before = (a.fin[0] >= 0 && a.fin[0] < ii) || (a.fin[1] >= 0 && a.fin[1] < ii);
        return fin_before ? "RST after FIN: aborts the close" : "RST with no FIN before it";
    }
    if (s.fin) {
        if (a.fin[x] != ii) return s.seq == a.w[a.fin[x]].seq ? "FIN retransmission" : "FIN again";
        const bool peer_first = a.fin[y] >= 0 && a.fin[y] < ii;
        if (!peer_first) {
            n = me + "'s FIN: " + me + " closes first";
            if (a.fin[y] >= 0 && s.ack && *s.ack == a.fin_end[y])
                n = me + "'s FIN, acks " + peer + "'s FIN that reaches the tap later (skew)";
        } else if (a.acked[y] >= 0 && a.acked[y] < ii) {
            n = me + "'s FIN; " + peer + "'s FIN was already acked";
        } else if (s.ack && *s.ack == a.fin_end[y]) {
            n = me + "'s FIN, piggybacked ACK of " + peer + "'s FIN: 3-packet close";
        } else if (s.ack && seq_ge(*s.ack, a.fin_end[y])) {
            n = me + "'s FIN, acks past " + peer + "'s FIN: beyond";
        } else {
            n = me + "'s FIN, does not ack " + peer + "'s FIN: the FINs crossed";
        }
        if (s.len > 0) n += ", with " + std::to_string(s.len) + " bytes";
        return n;
    }
    if (a.acked[y] == ii)
        n = a.fin[y] > ii ? "ACK of " + peer + "'s FIN, which reaches the tap later (skew)"
                          : "ACK of " + peer + "'s FIN, exact";
    else if (a.beyond[y] == ii && a.acked[y] < 0)
        n = "ACK past " + peer + "'s FIN: beyond";
    // Half-close payload: new data from a side that has not closed, sent after it saw the peer's
    // FIN (its ACK covers the FIN), as the close machine's half_close rule counts it.
    if (s.len > 0 && a.fin[y] >= 0 && s.ack && seq_ge(*s.ack, a.fin_end[y]) &&
        (a.fin[x] < 0 || a.fin[x] > ii)) {
        if (!n.empty()) n += "; ";
        n += std::to_string(s.len) + " bytes after " + peer + "'s FIN: half-close";
    } else if (s.len > 0 && n.empty()) {
        n = std::to_string(s.len) + " bytes";
    }
    return n;
}

std::string seq_text(uint32_t v) { return std::to_string(v); }

// "orig's FIN (wave 1, seq=5)"
std::string fin_ref(const Analysis& a, unsigned side) {
    std::string r = std::string(side_name[side]) + "'s FIN";
    if (a.fin[side] >= 0)
        r += " (" + wave_ref(a.fin[side]) + ", seq=" + seq_text(a.w[a.fin[side]].seq) + ")";
    return r;
}

// How `side`'s FIN was acknowledged, from the record's fin_ack and the waves.
std::string fin_ack_text(const Analysis& a, unsigned side, const std::string& outcome) {
    const unsigned peer = 1 - side;
    const std::string p = side_name[peer];
    const std::string end = a.fin[side] >= 0 ? " = " + seq_text(a.fin_end[side]) : "";
    if (outcome == "exact") {
        if (a.acked[side] >= 0) {
            const Seg& s = a.w[a.acked[side]];
            std::string how = s.fin ? p + "'s FIN" : p + "'s ACK";
            return how + " (" + wave_ref(a.acked[side]) + ") acked it with ack" + end;
        }
        return p + " acked it exactly (that ACK is past the recorded waves)";
    }
    if (outcome == "cumulative") return "only a later, larger ACK from " + p + " covered it (cumulative)";
    if (outcome == "beyond")
        return p + " acked past it" +
               (a.beyond[side] >= 0 ? " (" + wave_ref(a.beyond[side]) + ")" : std::string()) +
               ": the capture lost something (beyond)";
    if (outcome == "missing") return "no ACK of it was seen (missing; expected ack" + end + ")";
    return "";
}

std::string fmt_ms(double s) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.3f ms", s * 1e3);
    return buf;
}

std::string paint(const std::string& s, const char* code, bool color) {
    if (!color || s.empty()) return s;
    return std::string(code) + s + ansi::reset;
}

std::string pad(const std::string& s, size_t w) {
    return s.size() >= w ? s : s + std::string(w - s.size(), ' ');
}

}  // namespace

std::string endpoint_text(const std::string& addr, unsigned port) {
    if (addr.find(':') != std::string::npos) return "[" + addr + "]:" + std::to_string(port);
    return addr + ":" + std::to_string(port);
}

std::string close_reason_line(const json& rec) {
    const Analysis a = analyse(rec);
    const std::string close = str_or(rec, "close", "none");
    const std::string ini = str_or(rec, "initiator", "none");
    const unsigned i = ini == "resp" ? 1 : 0, p = 1 - i;
    const std::string I = side_name[i], P = side_name[p];
    std::string fa[2] = {"none", "none"};
    if (auto f = rec.find("fin_ack"); f != rec.end() && f->is_object()) {
        fa[0] = str_or(*f, "orig", "none");
        fa[1] = str_or(*f, "resp", "none");
    }
    const std::string reason = str_or(rec, "reason", "");
    const std::string end = str_or(rec, "end", "");
    std::string out;
    if (close == "fin_4way") {
        out = fin_ref(a, i) + " was acked by a pure ACK from " + P;
        if (a.acked[i] >= 0 && !a.w[a.acked[i]].fin)
            out += " (" + wave_ref(a.acked[i]) + ", ack=" + seq_text(a.fin_end[i]) + ")";
        out += " before " + fin_ref(a, p) + ": 4-way close";
        if (fa[p] != "none") out += "; " + P + "'s FIN: " + fin_ack_text(a, p, fa[p]);
    } else if (close == "fin_3way") {
        out = fin_ref(a, p) + " carried the ACK of " + fin_ref(a, i);
        if (a.fin[i] >= 0) out += " (ack=" + seq_text(a.fin_end[i]) + " = seq + len + 1)";
        out += ": the ACK piggybacked on the FIN, 3-packet close";
        if (fa[p] != "none") out += "; " + P + "'s FIN: " + fin_ack_text(a, p, fa[p]);
    } else if (close == "fin_simultaneous") {
        out = "the FINs crossed: neither " + fin_ref(a, 0) + " nor " + fin_ref(a, 1) +
              " acked the other; " + I + "'s arrived first";
        for (unsigned s = 0; s < 2; s++)
            if (fa[s] != "none") out += "; " + std::string(side_name[s]) + "'s FIN: " + fin_ack_text(a, s, fa[s]);
    } else if (close == "fin_one_side") {
        out = "only " + fin_ref(a, i) + " was seen; " + P + " sent no FIN before the record ended (" +
              end + ")";
        if (fa[i] != "none") out += "; " + I + "'s FIN: " + fin_ack_text(a, i, fa[i]);
    } else if (close == "fin_rst") {
        out = fin_ref(a, i) + ", then a RST";
        if (a.rst >= 0)
            out += " from " + std::string(side_name[a.w[a.rst].from]) + " (" + wave_ref(a.rst) + ")";
        out += " before both FINs completed";
        if (fa[i] != "none") out += "; " + I + "'s FIN: " + fin_ack_text(a, i, fa[i]);
    } else if (close == "rst") {
        out = "a RST from " + I;
        if (a.rst >= 0) out += " (" + wave_ref(a.rst) + ", seq=" + seq_text(a.w[a.rst].seq) + ")";
        out += " ended the connection with no FIN before it";
        if (reason == "rst_out_of_window")
            out += "; its seq is outside " + P + "'s window: a candidate injected reset";
    } else if (close == "rejected") {
        out = "the SYN was answered by a RST from resp";
        if (a.rst >= 0) out += " (" + wave_ref(a.rst) + ")";
        out += ": connection refused";
    } else if (close == "no_answer") {
        out = "SYN(s) from orig with no reply at all";
    } else {
        out = "no FIN or RST was seen: the connection was open when the record ended (" + end + ")";
    }
    if (reason == "fin_unacked") {
        for (unsigned s = 0; s < 2; s++)
            if (fa[s] == "missing") out += "; abnormal: " + std::string(side_name[s]) + "'s FIN was never acked";
    } else if (reason == "half_open_timeout") {
        out += "; abnormal: the half-open connection timed out";
    }
    const bool closing = close != "none" && close != "no_answer";
    if (closing && a.w.empty()) out += " (no waves recorded: the wave pool was full)";
    return out;
}

std::string render_ladder(const json& rec, const LadderStyle& st) {
    const bool c = st.color;
    const Analysis a = analyse(rec);
    const std::string close = str_or(rec, "close", "none");
    const std::string left = endpoint_text(str_or(rec, "orig_h", "?"), rec.value("orig_p", 0u));
    const std::string right = endpoint_text(str_or(rec, "resp_h", "?"), rec.value("resp_p", 0u));

    std::vector<std::string> labels, notes;
    size_t lw = std::max<size_t>(min_label, left.size()), rw = min_label;
    for (size_t i = 0; i < a.w.size(); i++) {
        labels.push_back(label_of(a.w[i]));
        notes.push_back(note_of(a, i, close));
        (a.w[i].from == 0 ? lw : rw) = std::max(a.w[i].from == 0 ? lw : rw, labels.back().size());
    }
    const std::string tcol(11, ' ');  // "   0.000 ms"
    std::string out;
    // Header: the endpoints over their sides.
    out += tcol + "  " + paint(pad(left, lw), ansi::bold, c) + "  " + std::string(arrow_right.size(), ' ') +
           "  " + paint(right, ansi::bold, c) + "\n";
    for (size_t i = 0; i < a.w.size(); i++) {
        const Seg& s = a.w[i];
        char tb[32];
        std::snprintf(tb, sizeof(tb), "%8.3f ms", s.t * 1e3);
        const char* col = s.rst ? ansi::red : s.fin ? ansi::yellow : ansi::side[s.from];
        std::string line = tb;
        line += "  ";
        if (s.from == 0) {
            line += paint(labels[i], col, c) + std::string(lw - labels[i].size(), ' ') + "  ";
            line += paint(arrow_right, ansi::side[0], c) + "  " + std::string(rw, ' ');
        } else {
            line += std::string(lw, ' ') + "  " + paint(arrow_left, ansi::side[1], c) + "  ";
            line += paint(labels[i], col, c) + std::string(rw - labels[i].size(), ' ');
        }
        if (!notes[i].empty()) line += "  " + paint("(" + notes[i] + ")", ansi::dim, c);
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    if (a.more > 0)
        out += tcol + "  " + paint("... " + std::to_string(a.more) + " more segment" +
                                       (a.more == 1 ? "" : "s") + " of the close left out (cap " +
                                       std::to_string(a.w.size()) + ")",
                                   ansi::dim, c) +
               "\n";
    for (unsigned side = 0; side < 2; side++) {
        const char* key = side == 0 ? "orig" : "resp";
        auto rel = rec.find("waves_relative");
        if (a.w.empty() || rel == rec.end() || !rel->is_object() || rel->value(key, true)) continue;
        out += tcol + "  " +
               paint(std::string("(no SYN from ") + key + " was seen: its seq and the acks of it are absolute)",
                     ansi::dim, c) +
               "\n";
    }
    if (a.w.empty()) {
        const bool closing = close != "none" && close != "no_answer";
        out += tcol + "  " +
               paint(closing ? "(no waves recorded: the wave pool was full)" : "(no FIN or RST: no teardown to draw)",
                     ansi::dim, c) +
               "\n";
    }

    // Summary: the classification as the conn log has it.
    const std::string reason = str_or(rec, "reason", "");
    std::string sum = "close=" + paint(close, reason.empty() ? ansi::green : ansi::red, c);
    sum += " initiator=" + str_or(rec, "initiator", "none");
    if (auto f = rec.find("fin_ack"); f != rec.end() && f->is_object())
        sum += " fin_ack: orig=" + str_or(*f, "orig", "none") + " resp=" + str_or(*f, "resp", "none");
    if (auto t = rec.find("teardown_s"); t != rec.end() && t->is_number())
        sum += "  teardown " + fmt_ms(t->get<double>());
    if (rec.value("half_close", false)) sum += "  half_close";
    if (!reason.empty()) sum += "  reason=" + paint(reason, ansi::red, c);
    sum += "  end=" + str_or(rec, "end", "?");
    out += sum + "\n";
    out += "why: " + close_reason_line(rec) + "\n";
    return out;
}

}  // namespace closetap
