// The teardown ladder: waves recorded by the flow table (pool, cap, relative numbers), carried by
// the conn log record, and drawn by exporters/ladder.cc from hand-built records of every pattern.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "exporters/conn_log.hh"
#include "exporters/ladder.hh"
#include "flowtable/flow_key.hh"
#include "flowtable/flow_table.hh"

using namespace closetap;
using json = nlohmann::ordered_json;

namespace {

std::array<uint8_t, 16> v4(uint8_t d) { return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, d}; }

namespace f = tcp_flag;

struct Harness {
    explicit Harness(uint32_t pool = FlowTable::wave_pool_auto) : t(64, FlowTimeouts{}, pool) {}
    FlowTable t;
    std::vector<ConnRecord> recs;
    uint64_t now = 1'000'000;

    // A segment from the client (10.0.0.1:port) or the server (10.0.0.2:80).
    void pkt(uint16_t port, bool from_client, uint8_t flags, uint32_t seq, uint32_t ack,
             uint32_t len = 0) {
        FlowKey k;
        TcpSegment s{};
        const auto c = v4(1), sv = v4(2);
        s.dir = from_client ? make_flow_key(c, port, sv, 80, k) : make_flow_key(sv, 80, c, port, k);
        s.ts_us = now += 10;
        s.seq = seq;
        s.ack = ack;
        s.flags = flags;
        s.payload_len = len;
        s.window = 65535;
        s.src_port = from_client ? port : 80;
        s.dst_port = from_client ? 80 : port;
        s.wscale = 0xff;
        t.process(k, flow_hash(k), s, [this](const FlowEntry& e, const ConnResult& r) {
            recs.push_back(make_record(e, r, 0));
        });
    }
    // Handshake: client ISN 1000, server ISN 5000.
    void open(uint16_t port) {
        pkt(port, true, f::syn, 1000, 0);
        pkt(port, false, f::syn | f::ack, 5000, 1001);
        pkt(port, true, f::ack, 1001, 5001);
    }
    void flush() {
        t.flush(now, EndCause::end_of_input, [this](const FlowEntry& e, const ConnResult& r) {
            recs.push_back(make_record(e, r, 0));
        });
    }
};

std::string strip_ansi(const std::string& s) { return std::regex_replace(s, std::regex("\x1b\\[[0-9;]*m"), ""); }

json wave(const char* dir, const char* flags, uint32_t seq, uint32_t ack, uint32_t len, double t) {
    json w;
    w["dir"] = dir;
    w["flags"] = flags;
    w["seq"] = seq;
    if (std::string(flags).find("ACK") != std::string::npos)
        w["ack"] = ack;
    else
        w["ack"] = nullptr;
    w["len"] = len;
    w["t"] = t;
    return w;
}

json record(const char* close, const char* ini, const char* fa_o, const char* fa_r,
            std::vector<json> waves, const char* reason = nullptr, const char* end = "closed") {
    json r;
    r["orig_h"] = "10.0.0.1";
    r["orig_p"] = 51302;
    r["resp_h"] = "10.0.0.2";
    r["resp_p"] = 9000;
    r["close"] = close;
    r["initiator"] = ini;
    r["half_close"] = false;
    r["fin_ack"] = {{"orig", fa_o}, {"resp", fa_r}};
    r["teardown_s"] = waves.empty() ? json(nullptr) : waves.back()["t"];
    r["reason"] = reason ? json(reason) : json(nullptr);
    r["end"] = end;
    r["waves"] = waves;
    if (!waves.empty()) {
        r["waves_more"] = 0;
        r["waves_relative"] = {{"orig", true}, {"resp", true}};
    }
    return r;
}

}  // namespace

// ---- recording ----------------------------------------------------------------------------

TEST(Waves, EstablishedFlowsHoldNoPoolSlot) {
    Harness h;
    h.open(40000);
    h.pkt(40000, true, f::ack | f::psh, 1001, 5001, 100);
    h.pkt(40000, false, f::ack, 5001, 1101);
    EXPECT_EQ(h.t.wave_pool().in_use(), 0u);
    h.pkt(40000, true, f::fin | f::ack, 1101, 5001);
    EXPECT_EQ(h.t.wave_pool().in_use(), 1u);
    h.flush();
    EXPECT_EQ(h.t.wave_pool().in_use(), 0u);  // released when the record ends
}

TEST(Waves, RelativeToEachSidesIsnLikeWireshark) {
    Harness h;
    h.open(40001);
    h.pkt(40001, true, f::ack | f::psh, 1001, 5001, 4);  // 4 bytes: FIN at relative seq 5
    h.pkt(40001, true, f::fin | f::ack, 1005, 5001);
    h.pkt(40001, false, f::fin | f::ack, 5001, 1006);
    h.pkt(40001, true, f::ack, 1006, 5002);
    h.flush();
    ASSERT_EQ(h.recs.size(), 1u);
    const CloseWaves& w = h.recs[0].waves;
    ASSERT_EQ(w.n, 3u);
    EXPECT_EQ(w.relative, wave_rel::orig | wave_rel::resp);
    EXPECT_EQ(w.w[0].dir, 0);
    EXPECT_EQ(w.w[0].seq, 5u);  // 1005 - 1000
    EXPECT_EQ(w.w[0].ack, 1u);  // 5001 - 5000
    EXPECT_EQ(w.w[1].dir, 1);
    EXPECT_EQ(w.w[1].seq, 1u);
    EXPECT_EQ(w.w[1].ack, 6u);
    EXPECT_EQ(w.w[2].seq, 6u);
    EXPECT_EQ(w.w[2].ack, 2u);
    EXPECT_EQ(w.w[0].t_us, 0u);
    EXPECT_EQ(w.w[2].t_us, 20u);
    json j = to_json(h.recs[0], {});
    ASSERT_EQ(j["waves"].size(), 3u);
    EXPECT_EQ(j["waves"][0]["flags"], "FIN,ACK");
    EXPECT_EQ(j["waves"][1]["dir"], "resp");
    EXPECT_EQ(j["waves"][1]["ack"], 6);
    EXPECT_EQ(j["waves_relative"]["resp"], true);
}

TEST(Waves, AbsoluteWithoutTheSideSyn) {
    Harness h;  // picked up mid-stream: no SYN from either side
    h.pkt(40002, true, f::ack, 777, 888);
    h.pkt(40002, true, f::rst, 777, 0);
    h.flush();
    ASSERT_EQ(h.recs.size(), 1u);
    const CloseWaves& w = h.recs[0].waves;
    ASSERT_EQ(w.n, 1u);
    EXPECT_EQ(w.relative, 0);
    EXPECT_EQ(w.w[0].seq, 777u);
    json j = to_json(h.recs[0], {});
    EXPECT_TRUE(j["waves"][0]["ack"].is_null());  // no ACK flag
    EXPECT_EQ(j["waves"][0]["flags"], "RST");
}

TEST(Waves, CapOfEightKeepsTheFinsAndTheirAcks) {
    Harness h;
    h.open(40003);
    h.pkt(40003, true, f::fin | f::ack, 1001, 5001);
    h.pkt(40003, false, f::ack, 5001, 1002);
    uint32_t seq = 5001;
    for (int i = 0; i < 20; i++, seq += 100) h.pkt(40003, false, f::ack, seq, 1002, 100);  // half-close
    h.pkt(40003, false, f::fin | f::ack, seq, 1002);
    h.pkt(40003, true, f::ack, 1002, seq + 1);
    h.flush();
    ASSERT_EQ(h.recs.size(), 1u);
    const CloseWaves& w = h.recs[0].waves;
    EXPECT_EQ(w.n, max_waves);
    EXPECT_EQ(w.n + w.more, 24u);  // every segment from the first FIN on is shown or counted
    EXPECT_EQ(w.w[0].flags, f::fin | f::ack);
    EXPECT_EQ(w.w[1].ack, 2u);                                  // the pure ACK of orig's FIN
    EXPECT_EQ(w.w[max_waves - 2].flags, f::fin | f::ack);       // resp's FIN made room
    EXPECT_EQ(w.w[max_waves - 1].ack, seq + 1 - 5000);         // and its ACK
    for (unsigned i = 1; i < w.n; i++) EXPECT_GE(w.w[i].t_us, w.w[i - 1].t_us);  // time order
    json j = to_json(h.recs[0], {});
    EXPECT_EQ(j["waves"].size(), max_waves);
    EXPECT_EQ(j["waves_more"], 16);
    EXPECT_NE(render_ladder(j).find("16 more segments of the close left out (cap 8)"), std::string::npos);
}

TEST(Waves, PoolExhaustionIsCountedAndRecordsNothing) {
    Harness h(1);
    h.open(40004);
    h.open(40005);
    h.pkt(40004, true, f::fin | f::ack, 1001, 5001);
    h.pkt(40005, true, f::fin | f::ack, 1001, 5001);  // pool of one is taken
    h.pkt(40005, false, f::fin | f::ack, 5001, 1002);
    EXPECT_EQ(h.t.counters().waves_pool_empty, 1u);   // counted once per close, not per segment
    h.flush();
    ASSERT_EQ(h.recs.size(), 2u);
    for (const ConnRecord& r : h.recs) {
        if (r.orig_p == 40004) {
            EXPECT_EQ(r.waves.n, 1u);
        }
        if (r.orig_p == 40005) {
            EXPECT_EQ(r.waves.n, 0u);
            json j = to_json(r, {});
            EXPECT_TRUE(j["waves"].empty());
            EXPECT_NE(close_reason_line(j).find("no waves recorded"), std::string::npos);
        }
    }
    // Released at the end: the next close gets the slot again.
    h.open(40006);
    h.pkt(40006, true, f::rst, 1001, 0);
    EXPECT_EQ(h.t.counters().waves_pool_empty, 1u);
    EXPECT_EQ(h.t.wave_pool().in_use(), 1u);
}

TEST(Waves, ZeroPoolDisablesThem) {
    Harness h(0);
    h.open(40007);
    h.pkt(40007, true, f::rst, 1001, 0);
    h.flush();
    ASSERT_EQ(h.recs.size(), 1u);
    EXPECT_EQ(h.recs[0].waves.n, 0u);
}

// ---- rendering ----------------------------------------------------------------------------

TEST(Ladder, Endpoints) {
    EXPECT_EQ(endpoint_text("10.0.0.1", 51302), "10.0.0.1:51302");
    EXPECT_EQ(endpoint_text("fd77::1", 35513), "[fd77::1]:35513");
}

TEST(Ladder, ThreeWayLooksLikeTheIssue) {
    json r = record("fin_3way", "orig", "exact", "exact",
                    {wave("orig", "FIN,ACK", 5, 5, 0, 0), wave("resp", "FIN,ACK", 5, 6, 0, 0.00002),
                     wave("orig", "ACK", 6, 6, 0, 0.00003)});
    const std::string s = render_ladder(r);
    EXPECT_NE(s.find("10.0.0.1:51302"), std::string::npos);
    EXPECT_NE(s.find("FIN,ACK seq=5 ack=5   ------------->"), std::string::npos) << s;
    EXPECT_NE(s.find("<-------------  FIN,ACK seq=5 ack=6"), std::string::npos) << s;
    EXPECT_NE(s.find("piggybacked ACK of orig's FIN: 3-packet close"), std::string::npos) << s;
    EXPECT_NE(s.find("close=fin_3way initiator=orig fin_ack: orig=exact resp=exact  teardown 0.030 ms"),
              std::string::npos)
        << s;
    EXPECT_NE(close_reason_line(r).find("resp's FIN (wave 2, seq=5) carried the ACK of orig's FIN (wave 1, "
                                        "seq=5) (ack=6 = seq + len + 1)"),
              std::string::npos)
        << close_reason_line(r);
}

TEST(Ladder, FourWay) {
    json r = record("fin_4way", "resp", "exact", "exact",
                    {wave("resp", "FIN,ACK", 10, 3, 0, 0), wave("orig", "ACK", 3, 11, 0, 0.001),
                     wave("orig", "FIN,ACK", 3, 11, 0, 0.2), wave("resp", "ACK", 11, 4, 0, 0.2001)});
    const std::string s = render_ladder(r);
    EXPECT_NE(s.find("(ACK of resp's FIN, exact)"), std::string::npos) << s;
    EXPECT_NE(s.find("(orig's FIN; resp's FIN was already acked)"), std::string::npos) << s;
    EXPECT_EQ(close_reason_line(r),
              "resp's FIN (wave 1, seq=10) was acked by a pure ACK from orig (wave 2, ack=11) before "
              "orig's FIN (wave 3, seq=3): 4-way close; orig's FIN: resp's ACK (wave 4) acked it with "
              "ack = 4");
}

TEST(Ladder, Simultaneous) {
    json r = record("fin_simultaneous", "orig", "exact", "exact",
                    {wave("orig", "FIN,ACK", 5, 5, 0, 0), wave("resp", "FIN,ACK", 5, 5, 0, 0.00001),
                     wave("orig", "ACK", 6, 6, 0, 0.00002), wave("resp", "ACK", 6, 6, 0, 0.00002)});
    EXPECT_NE(render_ladder(r).find("does not ack orig's FIN: the FINs crossed"), std::string::npos);
    EXPECT_NE(close_reason_line(r).find("the FINs crossed: neither orig's FIN (wave 1, seq=5) nor resp's "
                                        "FIN (wave 2, seq=5) acked the other"),
              std::string::npos);
}

TEST(Ladder, OneSideAndHalfOpenTimeout) {
    json r = record("fin_one_side", "orig", "exact", "none",
                    {wave("orig", "FIN,ACK", 5, 5, 0, 0), wave("resp", "ACK", 5, 6, 0, 0.001),
                     wave("resp", "PSH,ACK", 5, 6, 100, 0.002)},
                    "half_open_timeout", "idle_timeout");
    EXPECT_NE(render_ladder(r).find("100 bytes after orig's FIN: half-close"), std::string::npos);
    const std::string why = close_reason_line(r);
    EXPECT_NE(why.find("only orig's FIN (wave 1, seq=5) was seen; resp sent no FIN before the record "
                       "ended (idle_timeout)"),
              std::string::npos)
        << why;
    EXPECT_NE(why.find("abnormal: the half-open connection timed out"), std::string::npos);
}

TEST(Ladder, FinUnackedSaysWhatWasMissing) {
    json r = record("fin_3way", "orig", "exact", "missing",
                    {wave("orig", "FIN,ACK", 5, 5, 0, 0), wave("resp", "FIN,ACK", 5, 6, 0, 0.001)},
                    "fin_unacked");
    const std::string why = close_reason_line(r);
    EXPECT_NE(why.find("resp's FIN: no ACK of it was seen (missing; expected ack = 6)"), std::string::npos)
        << why;
    EXPECT_NE(why.find("abnormal: resp's FIN was never acked"), std::string::npos);
    EXPECT_NE(render_ladder(r).find("reason=fin_unacked"), std::string::npos);
}

TEST(Ladder, FinThenRst) {
    json r = record("fin_rst", "orig", "exact", "none",
                    {wave("orig", "FIN,ACK", 5, 5, 0, 0), wave("resp", "ACK", 5, 6, 0, 0.001),
                     wave("orig", "RST", 6, 0, 0, 0.002)},
                    "rst_after_fin");
    EXPECT_NE(render_ladder(r).find("(RST after FIN: aborts the close)"), std::string::npos);
    EXPECT_NE(close_reason_line(r).find("orig's FIN (wave 1, seq=5), then a RST from orig (wave 3) before "
                                        "both FINs completed"),
              std::string::npos);
}

TEST(Ladder, RstAndOutOfWindow) {
    json r = record("rst", "resp", "none", "none", {wave("resp", "RST,ACK", 19, 47, 0, 0)}, "rst_resp");
    EXPECT_EQ(close_reason_line(r), "a RST from resp (wave 1, seq=19) ended the connection with no FIN before it");
    r["reason"] = "rst_out_of_window";
    EXPECT_NE(close_reason_line(r).find("outside orig's window: a candidate injected reset"), std::string::npos);
}

TEST(Ladder, RejectedNoAnswerNone) {
    json rej = record("rejected", "resp", "none", "none", {wave("resp", "RST,ACK", 0, 1, 0, 0)}, "rejected");
    rej["waves_relative"]["resp"] = false;
    const std::string s = render_ladder(rej);
    EXPECT_NE(s.find("(RST answers the SYN: refused)"), std::string::npos);
    EXPECT_NE(s.find("no SYN from resp was seen: its seq and the acks of it are absolute"), std::string::npos);
    EXPECT_EQ(close_reason_line(rej), "the SYN was answered by a RST from resp (wave 1): connection refused");

    json na = record("no_answer", "none", "none", "none", {}, "no_answer", "idle_timeout");
    EXPECT_NE(render_ladder(na).find("(no FIN or RST: no teardown to draw)"), std::string::npos);
    EXPECT_EQ(close_reason_line(na), "SYN(s) from orig with no reply at all");

    json none = record("none", "none", "none", "none", {}, nullptr, "end_of_input");
    EXPECT_EQ(close_reason_line(none),
              "no FIN or RST was seen: the connection was open when the record ended (end_of_input)");
}

TEST(Ladder, PlainVsColour) {
    json r = record("fin_3way", "orig", "exact", "missing",
                    {wave("orig", "FIN,ACK", 5, 5, 0, 0), wave("resp", "FIN,ACK", 5, 6, 0, 0.001),
                     wave("orig", "RST", 6, 0, 0, 0.002)},
                    "fin_unacked");
    const std::string plain = render_ladder(r, LadderStyle{false});
    const std::string colour = render_ladder(r, LadderStyle{true});
    EXPECT_EQ(plain.find('\x1b'), std::string::npos);
    EXPECT_NE(colour.find("\x1b[1;31m"), std::string::npos);  // the RST and the reason in red
    EXPECT_EQ(strip_ansi(colour), plain);                     // same columns, only painted
}

TEST(Ladder, FlagsText) {
    EXPECT_EQ(flags_text(f::fin | f::ack), "FIN,ACK");
    EXPECT_EQ(flags_text(f::fin | f::psh | f::ack), "FIN,PSH,ACK");
    EXPECT_EQ(flags_text(f::rst), "RST");
    EXPECT_EQ(flags_text(0), "none");
}
