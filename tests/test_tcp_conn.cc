// Tests of the TCP close machine (flowtable/tcp_conn.hh): close patterns both ways, tap skew,
// duplicates and retransmissions, FIN acknowledgement outcomes, resets, orientation, reuse,
// Zeek conn_state / history, and the transition table cell by cell.
#include "flowtable/tcp_conn.hh"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

namespace closetap {
namespace {

using tcp_flag::ack;
using tcp_flag::fin;
using tcp_flag::psh;
using tcp_flag::rst;
using tcp_flag::syn;

constexpr uint8_t C = 0;  // client: key direction 0, ephemeral port
constexpr uint8_t S = 1;  // server: key direction 1, port 80

// Builds segments of one connection. make() numbers them like a real stack: seq is the sender's
// next sequence number, ack what it has received from the peer, SYN and FIN take one octet.
class Wire {
public:
    uint64_t ts = 1'700'000'000'000'000ull;
    uint32_t nxt[2] = {1000, 900000};
    uint16_t port[2] = {40000, 80};
    uint8_t wscale[2] = {7, 7};

    TcpSegment raw(uint8_t dir, uint8_t flags, uint32_t seq, uint32_t ackno, uint32_t len = 0,
                   uint16_t window = 1000) {
        TcpSegment s{};
        ts += 10;
        s.ts_us = ts;
        s.seq = seq;
        s.ack = (flags & tcp_flag::ack) ? ackno : 0;
        s.payload_len = len;
        s.window = window;
        s.flags = flags;
        s.dir = dir;
        s.src_port = port[dir];
        s.dst_port = port[1 - dir];
        s.wscale = (flags & tcp_flag::syn) ? wscale[dir] : 0xff;
        return s;
    }
    TcpSegment make(uint8_t dir, uint8_t flags, uint32_t len = 0) {
        TcpSegment s = raw(dir, flags, nxt[dir], nxt[1 - dir], len);
        if (flags & tcp_flag::rst) return s;  // RST consumes no sequence space
        nxt[dir] += len + ((flags & tcp_flag::syn) ? 1 : 0) + ((flags & tcp_flag::fin) ? 1 : 0);
        return s;
    }
    // The usual opening: SYN, SYN-ACK, ACK, a request and a response.
    std::vector<TcpSegment> open() {
        return {make(C, syn), make(S, syn | ack), make(C, ack), make(C, psh | ack, 100),
                make(S, ack), make(S, psh | ack, 200)};
    }
};

struct Run {
    TcpConn conn;
    ConnResult res{};
    int reuses = 0;
};

Run feed(const std::vector<TcpSegment>& segs, EndCause cause = EndCause::end_of_input) {
    Run r;
    r.conn.start(segs.at(0));
    for (size_t i = 1; i < segs.size(); ++i)
        if (r.conn.update(segs[i]) == TcpConn::Verdict::reuse) ++r.reuses;
    r.conn.finish(cause, r.res);
    return r;
}

std::vector<TcpSegment> cat(std::vector<TcpSegment> a, std::initializer_list<TcpSegment> b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// One piece of a segment list: braced lists are evaluated left to right, so
// join({Part(w.open()), w.make(...)}) numbers the close after the opening.
struct Part {
    std::vector<TcpSegment> v;
    Part(std::vector<TcpSegment> x) : v(std::move(x)) {}
    Part(const TcpSegment& s) : v{s} {}
};

std::vector<TcpSegment> join(std::initializer_list<Part> parts) {
    std::vector<TcpSegment> out;
    for (const Part& p : parts) out.insert(out.end(), p.v.begin(), p.v.end());
    return out;
}

std::string hist(const ConnResult& r) { return r.history; }

// ----------------------------------------------------------------------------------------------
// Close patterns

TEST(ClosePattern, ClientFirstFourWay) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(C, fin | ack), w.make(S, ack), w.make(S, fin | ack),
                                 w.make(C, ack)}));
    EXPECT_EQ(r.res.close, Close::fin_4way);
    EXPECT_EQ(r.res.initiator, Initiator::orig);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::exact);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::exact);
    EXPECT_EQ(r.res.reason, Reason::none);
    EXPECT_EQ(r.res.conn_state, ConnState::SF);
    EXPECT_EQ(hist(r.res), "ShADadFf");
    EXPECT_FALSE(r.res.half_close);
    EXPECT_EQ(r.res.orig_pkts, 5u);
    EXPECT_EQ(r.res.resp_pkts, 5u);
    EXPECT_EQ(r.res.orig_bytes, 100u);
    EXPECT_EQ(r.res.resp_bytes, 200u);
    EXPECT_EQ(r.res.orig_dir, 0);
}

TEST(ClosePattern, ClientFirstThreeWay) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(C, fin | ack), w.make(S, fin | ack), w.make(C, ack)}));
    EXPECT_EQ(r.res.close, Close::fin_3way);
    EXPECT_EQ(r.res.initiator, Initiator::orig);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::exact);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::exact);
    EXPECT_EQ(r.res.conn_state, ConnState::SF);
}

TEST(ClosePattern, ServerFirstFourWay) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(S, fin | ack), w.make(C, ack), w.make(C, fin | ack),
                                 w.make(S, ack)}));
    EXPECT_EQ(r.res.close, Close::fin_4way);
    EXPECT_EQ(r.res.initiator, Initiator::resp);
    EXPECT_EQ(hist(r.res), "ShADadfF");
}

TEST(ClosePattern, ServerFirstThreeWay) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(S, fin | ack), w.make(C, fin | ack), w.make(S, ack)}));
    EXPECT_EQ(r.res.close, Close::fin_3way);
    EXPECT_EQ(r.res.initiator, Initiator::resp);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::exact);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::exact);
}

TEST(ClosePattern, SimultaneousCrossingFins) {
    Wire w;
    auto segs = w.open();
    uint32_t c = w.nxt[C], s = w.nxt[S];
    // Both FINs leave before either side saw the other's: each acks only the data.
    segs.push_back(w.raw(C, fin | ack, c, s));
    segs.push_back(w.raw(S, fin | ack, s, c));
    segs.push_back(w.raw(C, ack, c + 1, s + 1));
    segs.push_back(w.raw(S, ack, s + 1, c + 1));
    auto r = feed(segs);
    EXPECT_EQ(r.res.close, Close::fin_simultaneous);
    EXPECT_EQ(r.res.initiator, Initiator::orig);  // arrival order breaks the tie
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::exact);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::exact);
    EXPECT_EQ(r.res.conn_state, ConnState::SF);
}

TEST(ClosePattern, TapSkewAckBeforeFinIsStillFourWay) {
    Wire w;
    auto segs = w.open();
    uint32_t c = w.nxt[C], s = w.nxt[S];
    // The server's ACK of the client's FIN reaches the tap before the FIN itself.
    segs.push_back(w.raw(S, ack, s, c + 1));
    segs.push_back(w.raw(C, fin | ack, c, s));
    segs.push_back(w.raw(S, fin | ack, s, c + 1));
    segs.push_back(w.raw(C, ack, c + 1, s + 1));
    auto r = feed(segs);
    EXPECT_EQ(r.res.close, Close::fin_4way);
    EXPECT_EQ(r.res.initiator, Initiator::orig);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::exact);
}

TEST(ClosePattern, TapSkewPeerFinFirstIsThreeWayByCausality) {
    Wire w;
    auto segs = w.open();
    uint32_t c = w.nxt[C], s = w.nxt[S];
    // Arrival says the server closed first; its FIN acks c+1, so the client's FIN came first.
    segs.push_back(w.raw(S, fin | ack, s, c + 1));
    segs.push_back(w.raw(C, fin | ack, c, s));
    segs.push_back(w.raw(C, ack, c + 1, s + 1));
    auto r = feed(segs);
    EXPECT_EQ(r.res.close, Close::fin_3way);
    EXPECT_EQ(r.res.initiator, Initiator::orig);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::exact);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::exact);
}

// Tap skew across the whole connection (tests/taps, server port late by 50 ms): every client
// segment, including its ACK of the server's FIN, reaches the tap before the server's SYN-ACK.
// Zeek re-bases the server's ack_seq on that SYN-ACK; the close machine keeps the client's ACKs.
TEST(ClosePattern, TapSkewHandshakeLateStillFourWay) {
    Wire w;
    const uint32_t c = w.nxt[C], s = w.nxt[S];
    std::vector<TcpSegment> segs = {
        w.raw(C, syn, c, 0),
        w.raw(C, ack, c + 1, s + 1),
        w.raw(C, psh | ack, c + 1, s + 1, 100),
        w.raw(C, ack, c + 101, s + 201),      // acks the server's data
        w.raw(C, ack, c + 101, s + 202),      // acks the server's FIN (2nd wave), before own FIN
        w.raw(S, syn | ack, s, c + 1),
        w.raw(S, ack, s + 1, c + 101),
        w.raw(S, psh | ack, s + 1, c + 101, 200),
        w.raw(S, fin | ack, s + 201, c + 101),
        w.raw(C, fin | ack, c + 101, s + 202),
        w.raw(S, ack, s + 202, c + 102),
    };
    auto r = feed(segs);
    EXPECT_EQ(r.res.close, Close::fin_4way);
    EXPECT_EQ(r.res.initiator, Initiator::resp);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::exact);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::exact);
    EXPECT_EQ(r.res.reason, Reason::none);
    EXPECT_EQ(r.res.conn_state, ConnState::SF);
    EXPECT_EQ(r.reuses, 0);
}

TEST(ClosePattern, TapSkewHandshakeLateThreeWayFinAckExact) {
    Wire w;
    const uint32_t c = w.nxt[C], s = w.nxt[S];
    std::vector<TcpSegment> segs = {
        w.raw(C, syn, c, 0),
        w.raw(C, ack, c + 1, s + 1),
        w.raw(C, psh | ack, c + 1, s + 1, 100),
        w.raw(C, fin | ack, c + 101, s + 201),  // client closes first
        w.raw(C, ack, c + 102, s + 202),        // its ACK of the server's FIN (after own FIN)
        w.raw(S, syn | ack, s, c + 1),
        w.raw(S, ack, s + 1, c + 101),
        w.raw(S, psh | ack, s + 1, c + 101, 200),
        w.raw(S, fin | ack, s + 201, c + 102),  // piggybacks the ACK of the client's FIN
    };
    auto r = feed(segs);
    EXPECT_EQ(r.res.close, Close::fin_3way);
    EXPECT_EQ(r.res.initiator, Initiator::orig);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::exact);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::exact);  // was missing -> reason fin_unacked
    EXPECT_EQ(r.res.reason, Reason::none);
    EXPECT_EQ(r.res.conn_state, ConnState::SF);
}

TEST(ClosePattern, PureAckArrivingAfterPeerFinStillCountsAsSecondWave) {
    Wire w;
    auto segs = w.open();
    uint32_t c = w.nxt[C], s = w.nxt[S];
    segs.push_back(w.raw(C, fin | ack, c, s));
    segs.push_back(w.raw(S, fin | ack, s, c + 1));
    // Sent before the server's FIN (seq == FIN's seq), delivered after it.
    segs.push_back(w.raw(S, ack, s, c + 1));
    segs.push_back(w.raw(C, ack, c + 1, s + 1));
    auto r = feed(segs);
    EXPECT_EQ(r.res.close, Close::fin_4way);
}

TEST(ClosePattern, DuplicatesDoNotChangeThePattern) {
    Wire w;
    auto segs = w.open();
    TcpSegment f1 = w.make(C, fin | ack), f2 = w.make(S, fin | ack), a = w.make(C, ack);
    for (const TcpSegment& s : {f1, f1, f2, f2, a, a}) segs.push_back(s);
    auto r = feed(segs);
    EXPECT_EQ(r.res.close, Close::fin_3way);
    EXPECT_EQ(r.res.initiator, Initiator::orig);
    EXPECT_EQ(hist(r.res), "ShADadFf");
    EXPECT_EQ(r.res.orig_pkts, 3u + 4u);  // duplicates are packets all the same
}

TEST(ClosePattern, RetransmittedFinKeepsFourWay) {
    Wire w;
    auto segs = w.open();
    TcpSegment f = w.make(C, fin | ack);
    segs.push_back(f);
    f.ts_us += 200000;
    segs.push_back(f);  // RTO retransmission, same seq
    segs.push_back(w.make(S, ack));
    segs.push_back(w.make(S, fin | ack));
    segs.push_back(w.make(C, ack));
    auto r = feed(segs);
    EXPECT_EQ(r.res.close, Close::fin_4way);
    EXPECT_EQ(hist(r.res), "ShADadFf");  // the same FIN is not a new 'F'
}

TEST(ClosePattern, FinWithPayloadNeedsSeqPlusLenPlusOne) {
    Wire w;
    auto segs = w.open();
    uint32_t c = w.nxt[C];
    segs.push_back(w.make(C, fin | psh | ack, 50));
    segs.push_back(w.raw(S, ack, w.nxt[S], c + 50 + 1));
    auto r = feed(segs);
    EXPECT_EQ(r.res.close, Close::fin_one_side);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::exact);

    Wire w2;
    auto segs2 = w2.open();
    uint32_t c2 = w2.nxt[C];
    segs2.push_back(w2.make(C, fin | psh | ack, 50));
    segs2.push_back(w2.raw(S, ack, w2.nxt[S], c2 + 1));  // acks the FIN's seq, not its end
    auto r2 = feed(segs2);
    EXPECT_EQ(r2.res.fin_ack_orig, FinAck::missing);
}

TEST(ClosePattern, HalfCloseWithData) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(C, fin | ack), w.make(S, ack), w.make(S, psh | ack, 300),
                                 w.make(C, ack), w.make(S, fin | ack), w.make(C, ack)}));
    EXPECT_TRUE(r.res.half_close);
    EXPECT_EQ(r.res.close, Close::fin_4way);
    EXPECT_EQ(r.res.initiator, Initiator::orig);
    EXPECT_EQ(r.res.resp_bytes, 500u);
}

TEST(ClosePattern, NoHalfCloseWithoutDataAfterTheFin) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(C, fin | ack), w.make(S, ack), w.make(S, fin | ack)}));
    EXPECT_FALSE(r.res.half_close);
}

TEST(ClosePattern, RstAfterFin) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(C, fin | ack), w.make(S, rst | ack)}));
    EXPECT_EQ(r.res.close, Close::fin_rst);
    EXPECT_EQ(r.res.initiator, Initiator::orig);
    EXPECT_EQ(r.res.reason, Reason::rst_after_fin);
    EXPECT_EQ(r.res.conn_state, ConnState::RSTR);
    EXPECT_EQ(hist(r.res), "ShADadFr");
}

TEST(ClosePattern, RstAfterBothFinsKeepsThePattern) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(C, fin | ack), w.make(S, fin | ack), w.make(C, rst | ack)}));
    EXPECT_EQ(r.res.close, Close::fin_3way);
    EXPECT_EQ(r.res.reason, Reason::none);
}

TEST(ClosePattern, Rejected) {
    Wire w;
    TcpSegment s1 = w.make(C, syn);
    auto r = feed({s1, w.raw(S, rst | ack, 0, s1.seq + 1)});
    EXPECT_EQ(r.res.close, Close::rejected);
    EXPECT_EQ(r.res.initiator, Initiator::resp);
    EXPECT_EQ(r.res.reason, Reason::rejected);
    EXPECT_EQ(r.res.conn_state, ConnState::REJ);
    EXPECT_EQ(hist(r.res), "Sr");
    EXPECT_EQ(r.conn.timeout_class(), TimeoutClass::closed);
}

TEST(ClosePattern, NoAnswer) {
    Wire w;
    TcpSegment s1 = w.make(C, syn);
    TcpSegment s2 = s1;
    s2.ts_us += 1000000;
    auto r = feed({s1, s2}, EndCause::idle_timeout);
    EXPECT_EQ(r.res.close, Close::no_answer);
    EXPECT_EQ(r.res.initiator, Initiator::none);
    EXPECT_EQ(r.res.reason, Reason::no_answer);
    EXPECT_EQ(r.res.conn_state, ConnState::S0);
    EXPECT_EQ(hist(r.res), "S");
    EXPECT_EQ(r.res.orig_pkts, 2u);
    EXPECT_EQ(r.res.teardown_us, -1);
    EXPECT_EQ(r.conn.timeout_class(), TimeoutClass::syn_sent);
}

TEST(ClosePattern, OpenConnectionIsNone) {
    Wire w;
    auto r = feed(w.open());
    EXPECT_EQ(r.res.close, Close::none);
    EXPECT_EQ(r.res.initiator, Initiator::none);
    EXPECT_EQ(r.res.conn_state, ConnState::S1);
    EXPECT_EQ(r.conn.timeout_class(), TimeoutClass::established);
    EXPECT_FALSE(r.conn.closing());
}

TEST(ClosePattern, HalfOpenTimeout) {
    Wire w;
    auto segs = join({Part(w.open()), w.make(C, fin | ack), w.make(S, ack)});
    auto r = feed(segs, EndCause::idle_timeout);
    EXPECT_EQ(r.res.close, Close::fin_one_side);
    EXPECT_EQ(r.res.reason, Reason::half_open_timeout);
    EXPECT_EQ(r.res.conn_state, ConnState::S2);
    EXPECT_EQ(r.conn.timeout_class(), TimeoutClass::half_closed);
    auto r2 = feed(segs, EndCause::end_of_input);
    EXPECT_EQ(r2.res.reason, Reason::none);
}

TEST(ClosePattern, FinUnacked) {
    Wire w;
    auto segs = w.open();
    uint32_t c = w.nxt[C], s = w.nxt[S];
    segs.push_back(w.raw(C, fin | ack, c, s));
    segs.push_back(w.raw(S, fin | ack, s, c));  // the server never got the client's FIN
    segs.push_back(w.raw(C, ack, c + 1, s + 1));
    auto r = feed(segs);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::missing);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::exact);
    EXPECT_EQ(r.res.reason, Reason::fin_unacked);
}

TEST(ClosePattern, TeardownDuration) {
    Wire w;
    auto segs = w.open();
    TcpSegment f = w.make(C, fin | ack);
    segs.push_back(f);
    TcpSegment a = w.make(S, fin | ack);
    a.ts_us = f.ts_us + 1500;
    segs.push_back(a);
    TcpSegment l = w.make(C, ack);
    l.ts_us = f.ts_us + 2500;
    segs.push_back(l);
    auto r = feed(segs);
    EXPECT_EQ(r.res.teardown_us, 2500);
    EXPECT_EQ(r.res.ts_first_us, segs[0].ts_us);
    EXPECT_EQ(r.res.ts_last_us, l.ts_us);
}

// ----------------------------------------------------------------------------------------------
// Resets

TEST(Reset, RstFromOriginatorAndResponder) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(C, rst | ack)}));
    EXPECT_EQ(r.res.close, Close::rst);
    EXPECT_EQ(r.res.initiator, Initiator::orig);
    EXPECT_EQ(r.res.reason, Reason::rst_orig);
    EXPECT_EQ(r.res.conn_state, ConnState::RSTO);
    EXPECT_TRUE(r.conn.closing());

    Wire w2;
    auto r2 = feed(join({Part(w2.open()), w2.make(S, rst | ack)}));
    EXPECT_EQ(r2.res.initiator, Initiator::resp);
    EXPECT_EQ(r2.res.reason, Reason::rst_resp);
    EXPECT_EQ(r2.res.conn_state, ConnState::RSTR);
}

TEST(Reset, OutOfWindowRstIsFlagged) {
    Wire w;
    w.wscale[C] = 0;
    w.wscale[S] = 0;
    auto segs = w.open();
    segs.push_back(w.raw(S, rst, w.nxt[S] + 50'000'000, 0));
    auto r = feed(segs);
    EXPECT_EQ(r.res.close, Close::rst);
    EXPECT_EQ(r.res.reason, Reason::rst_out_of_window);
}

TEST(Reset, InWindowRstIsNotFlagged) {
    Wire w;
    w.wscale[C] = 0;
    w.wscale[S] = 0;
    auto segs = w.open();
    segs.push_back(w.raw(S, rst, w.nxt[S] + 3000, 0));  // ahead of the ACK, inside the window
    auto r = feed(segs);
    EXPECT_EQ(r.res.reason, Reason::rst_resp);
}

TEST(Reset, RstBehindTheAckPointIsFlagged) {
    Wire w;
    auto segs = w.open();
    segs.push_back(w.raw(C, rst, w.nxt[C] - 10'000'000, 0));
    auto r = feed(segs);
    EXPECT_EQ(r.res.reason, Reason::rst_out_of_window);
    EXPECT_EQ(r.res.initiator, Initiator::orig);
}

TEST(Reset, SynThenOriginatorRst) {
    Wire w;
    TcpSegment s1 = w.make(C, syn);
    auto r = feed({s1, w.raw(C, rst, s1.seq + 1, 0)});
    EXPECT_EQ(r.res.close, Close::rst);
    EXPECT_EQ(r.res.conn_state, ConnState::RSTOS0);
    EXPECT_EQ(hist(r.res), "SR");
}

// ----------------------------------------------------------------------------------------------
// Orientation

TEST(Orientation, MidStreamPickupFlipsOnServerPort) {
    Wire w;
    w.nxt[C] = 7000;
    // The first segment seen is the server's data: 80 is a likely server port, 40000 is not.
    auto r = feed({w.make(S, psh | ack, 100), w.make(C, ack)});
    EXPECT_EQ(r.res.orig_dir, C);
    EXPECT_EQ(hist(r.res), "^dA");
    EXPECT_EQ(r.res.conn_state, ConnState::OTH);
    EXPECT_EQ(r.res.close, Close::none);
}

TEST(Orientation, MidStreamPickupWithoutServerPortKeepsFirstSender) {
    Wire w;
    w.port[C] = 50001;
    w.port[S] = 50002;
    auto r = feed({w.make(S, psh | ack, 100)});
    EXPECT_EQ(r.res.orig_dir, S);
    EXPECT_EQ(hist(r.res), "D");
}

TEST(Orientation, BothLikelyServerPortsFlipOnlyTowardsTheLowerPort) {
    Wire w;
    w.port[C] = 8080;
    w.port[S] = 443;
    auto r = feed({w.make(S, psh | ack, 10)});  // 443 -> 8080: lower source port: flip
    EXPECT_EQ(r.res.orig_dir, C);
    Wire w2;
    w2.port[C] = 443;
    w2.port[S] = 8080;
    auto r2 = feed({w2.make(S, psh | ack, 10)});  // 8080 -> 443: no flip
    EXPECT_EQ(r2.res.orig_dir, S);
}

TEST(Orientation, SynAckFirstFlips) {
    Wire w;
    TcpSegment sa = w.raw(S, syn | ack, 900000, 1001);
    auto r = feed({sa, w.raw(C, ack, 1001, 900001), w.raw(C, psh | ack, 1001, 900001, 20)});
    EXPECT_EQ(r.res.orig_dir, C);
    EXPECT_EQ(hist(r.res), "^hAD");
    EXPECT_EQ(r.res.conn_state, ConnState::S1);
}

TEST(Orientation, SynFirstNeverFlipsEvenFromServerPort) {
    Wire w;
    w.port[C] = 80;
    w.port[S] = 40000;
    auto r = feed({w.make(C, syn)});
    EXPECT_EQ(r.res.orig_dir, C);
    EXPECT_EQ(hist(r.res), "S");
}

TEST(Orientation, LikelyServerPortTable) {
    for (uint16_t p : {21, 22, 23, 25, 53, 80, 110, 111, 139, 143, 389, 443, 445, 465, 502, 587,
                       636, 993, 995, 1080, 1433, 1883, 2049, 3128, 3306, 3389, 5432, 5672,
                       6379, 6666, 6667, 6668, 6669, 8000, 8080, 8443, 8888, 9092, 27017})
        EXPECT_TRUE(likely_server_port(p)) << p;
    for (uint16_t p : {0, 1, 1024, 40000, 50000, 65535}) EXPECT_FALSE(likely_server_port(p)) << p;
}

// ----------------------------------------------------------------------------------------------
// Reuse (Zeek IsReuse)

TEST(Reuse, SynAfterCloseIsReuse) {
    Wire w;
    auto segs = join({Part(w.open()), w.make(C, fin | ack), w.make(S, fin | ack), w.make(C, ack)});
    TcpConn c;
    c.start(segs[0]);
    for (size_t i = 1; i < segs.size(); ++i) ASSERT_EQ(c.update(segs[i]), TcpConn::Verdict::ok);
    EXPECT_EQ(c.timeout_class(), TimeoutClass::closed);
    TcpSegment again = w.raw(C, syn, 777777, 0);
    EXPECT_EQ(c.update(again), TcpConn::Verdict::reuse);
    // The caller starts a fresh connection with it.
    c.start(again);
    ConnResult r{};
    c.finish(EndCause::end_of_input, r);
    EXPECT_EQ(hist(r), "S");
    EXPECT_EQ(r.orig_pkts, 1u);
}

TEST(Reuse, SynRetransmissionAfterRejectionIsReuse) {
    Wire w;
    TcpSegment s1 = w.make(C, syn);
    TcpConn c;
    c.start(s1);
    EXPECT_EQ(c.update(w.raw(S, rst | ack, 0, s1.seq + 1)), TcpConn::Verdict::ok);
    EXPECT_EQ(c.update(s1), TcpConn::Verdict::reuse);  // Zeek: every SYN once a side reset
}

TEST(Reuse, SameIsnOnActiveConnectionIsNotReuse) {
    Wire w;
    auto segs = w.open();
    TcpConn c;
    c.start(segs[0]);
    for (size_t i = 1; i < segs.size(); ++i) c.update(segs[i]);
    EXPECT_EQ(c.update(segs[0]), TcpConn::Verdict::ok);  // SYN retransmission
    EXPECT_EQ(c.update(segs[1]), TcpConn::Verdict::ok);  // SYN-ACK retransmission
    TcpSegment jump = segs[0];
    jump.seq += 123456;
    EXPECT_EQ(c.update(jump), TcpConn::Verdict::reuse);  // new ISN: Zeek reuses the 4-tuple
}

// ----------------------------------------------------------------------------------------------
// FIN acknowledgement outcomes

TEST(FinAckOutcome, Exact) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(C, fin | ack), w.make(S, ack)}));
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::exact);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::none);
}

TEST(FinAckOutcome, Missing) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(C, fin | ack)}));
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::missing);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::none);
}

TEST(FinAckOutcome, Beyond) {
    Wire w;
    auto segs = w.open();
    uint32_t c = w.nxt[C];
    segs.push_back(w.make(C, fin | ack));
    segs.push_back(w.raw(S, ack, w.nxt[S], c + 1 + 1000));  // acks what the tap never saw
    auto r = feed(segs);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::beyond);
}

TEST(FinAckOutcome, Cumulative) {
    Wire w;
    auto segs = w.open();
    uint32_t c = w.nxt[C];
    segs.push_back(w.raw(C, fin | ack, c, w.nxt[S]));
    // The closer's sequence space moves on past its FIN (a broken or reused stack), and only
    // an ACK covering that later space is seen.
    segs.push_back(w.raw(C, psh | ack, c + 1, w.nxt[S], 40));
    segs.push_back(w.raw(S, ack, w.nxt[S], c + 1 + 40));
    auto r = feed(segs);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::cumulative);
}

TEST(FinAckOutcome, NoneWithoutFin) {
    Wire w;
    auto r = feed(w.open());
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::none);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::none);
}

// ----------------------------------------------------------------------------------------------
// Zeek conn_state for every state constructible here

TEST(ZeekConnState, EveryState) {
    {
        Wire w;
        EXPECT_EQ(feed({w.make(C, syn)}).res.conn_state, ConnState::S0);
    }
    {
        Wire w;
        EXPECT_EQ(feed(w.open()).res.conn_state, ConnState::S1);
    }
    {
        Wire w;
        auto r = feed(join({Part(w.open()),
                       w.make(C, fin | ack), w.make(S, fin | ack)}));
        EXPECT_EQ(r.res.conn_state, ConnState::SF);
    }
    {
        Wire w;
        TcpSegment s1 = w.make(C, syn);
        EXPECT_EQ(feed({s1, w.raw(S, rst | ack, 0, s1.seq + 1)}).res.conn_state, ConnState::REJ);
    }
    {
        Wire w;
        EXPECT_EQ(feed(join({Part(w.open()),
                       w.make(C, fin | ack)})).res.conn_state, ConnState::S2);
    }
    {
        Wire w;
        EXPECT_EQ(feed(join({Part(w.open()),
                       w.make(S, fin | ack)})).res.conn_state, ConnState::S3);
    }
    {
        Wire w;
        EXPECT_EQ(feed(join({Part(w.open()),
                       w.make(C, rst)})).res.conn_state, ConnState::RSTO);
    }
    {
        Wire w;
        EXPECT_EQ(feed(join({Part(w.open()),
                       w.make(S, rst)})).res.conn_state, ConnState::RSTR);
    }
    {
        Wire w;
        TcpSegment s1 = w.make(C, syn);
        EXPECT_EQ(feed({s1, w.raw(C, rst, s1.seq + 1, 0)}).res.conn_state, ConnState::RSTOS0);
    }
    {
        Wire w;  // SYN-ACK seen (orig's SYN missed), then the responder resets
        auto r = feed({w.raw(S, syn | ack, 900000, 1001), w.raw(S, rst, 900001, 0)});
        EXPECT_EQ(r.res.conn_state, ConnState::RSTRH);
        EXPECT_EQ(hist(r.res), "^hr");
    }
    {
        Wire w;  // SYN then FIN, nothing back
        auto r = feed({w.make(C, syn), w.make(C, fin | ack)});
        EXPECT_EQ(r.res.conn_state, ConnState::SH);
        EXPECT_EQ(hist(r.res), "SF");
    }
    {
        Wire w;  // SYN-ACK then FIN from the responder, nothing from the originator
        auto r = feed({w.raw(S, syn | ack, 900000, 1001), w.raw(S, fin | ack, 900001, 1001)});
        EXPECT_EQ(r.res.conn_state, ConnState::SHR);
        EXPECT_EQ(r.res.close, Close::fin_one_side);
        EXPECT_EQ(r.res.initiator, Initiator::resp);
    }
    {
        Wire w;  // a lone mid-stream ACK
        EXPECT_EQ(feed({w.make(C, ack)}).res.conn_state, ConnState::OTH);
    }
    {
        Wire w;  // a lone RST
        auto r = feed({w.make(C, rst)});
        EXPECT_EQ(r.res.conn_state, ConnState::OTH);
        EXPECT_EQ(hist(r.res), "R");
        EXPECT_EQ(r.res.close, Close::rst);
    }
}

TEST(ZeekConnState, RejectionBothResetWithNoDataIsRej) {
    Wire w;
    TcpSegment s1 = w.make(C, syn);
    auto r = feed({s1, w.raw(S, rst | ack, 0, s1.seq + 1), w.raw(C, rst, s1.seq + 1, 0)});
    EXPECT_EQ(r.res.conn_state, ConnState::REJ);
}

// ----------------------------------------------------------------------------------------------
// History letters

TEST(ZeekHistory, RetransmissionIsLoggedAtOneTenHundred) {
    Wire w;
    auto segs = w.open();
    TcpSegment data = w.make(C, psh | ack, 100);
    segs.push_back(data);
    auto r1 = feed(cat(segs, {data}));
    EXPECT_EQ(hist(r1.res), "ShADadT");
    std::vector<TcpSegment> many = segs;
    for (int i = 0; i < 10; ++i) many.push_back(data);
    EXPECT_EQ(hist(feed(many).res), "ShADadTT");
}

TEST(ZeekHistory, ZeroWindow) {
    Wire w;
    auto segs = w.open();
    segs.push_back(w.raw(S, ack, w.nxt[S], w.nxt[C], 0, 0));
    EXPECT_EQ(hist(feed(segs).res), "ShADadw");
}

TEST(ZeekHistory, FinRstAndSynFinLetters) {
    Wire w;
    auto r = feed(join({Part(w.open()),
                       w.make(C, fin | rst | ack)}));
    EXPECT_EQ(hist(r.res), "ShADadI");
    EXPECT_EQ(r.res.close, Close::rst);
    Wire w2;
    EXPECT_EQ(hist(feed({w2.make(C, syn | fin)}).res), "Q");
}

TEST(ZeekHistory, FinAtNewSeqIsRepeated) {
    Wire w;
    auto segs = w.open();
    uint32_t c = w.nxt[C], s = w.nxt[S];
    segs.push_back(w.raw(C, fin | ack, c, s));
    segs.push_back(w.raw(C, fin | ack, c, s));        // same FIN: no letter
    segs.push_back(w.raw(C, fin | ack, c + 5, s));    // a FIN at another seq: 'F' again
    EXPECT_EQ(hist(feed(segs).res), "ShADadFF");
}

TEST(ZeekHistory, RepeatedRstAtNewSeq) {
    Wire w;
    auto segs = w.open();
    segs.push_back(w.raw(S, rst, w.nxt[S], 0));
    segs.push_back(w.raw(S, rst, w.nxt[S] + 100, 0));
    EXPECT_EQ(hist(feed(segs).res), "ShADadrr");
}

TEST(ZeekHistory, HistoryIsBoundedAndTerminated) {
    Wire w;
    auto segs = w.open();
    for (int i = 0; i < 40; ++i) segs.push_back(w.raw(S, rst, w.nxt[S] + 100 * i, 0));
    auto r = feed(segs);
    EXPECT_LT(hist(r.res).size(), sizeof(r.res.history));
    EXPECT_EQ(hist(r.res).substr(0, 7), "ShADadr");
}

// ----------------------------------------------------------------------------------------------
// Timeout classes across a life

TEST(TimeoutClassTest, Progression) {
    Wire w;
    TcpConn c;
    c.start(w.make(C, syn));
    EXPECT_EQ(c.timeout_class(), TimeoutClass::syn_sent);
    c.update(w.make(S, syn | ack));
    EXPECT_EQ(c.timeout_class(), TimeoutClass::established);
    c.update(w.make(C, ack));
    EXPECT_EQ(c.timeout_class(), TimeoutClass::established);
    c.update(w.make(S, fin | ack));
    EXPECT_EQ(c.timeout_class(), TimeoutClass::half_closed);
    EXPECT_TRUE(c.closing());
    c.update(w.make(C, fin | ack));
    EXPECT_EQ(c.timeout_class(), TimeoutClass::closed);
    EXPECT_EQ(c.last_ts_us(), w.ts);
}

TEST(Layout, FitsInACacheLine) { EXPECT_LE(sizeof(TcpConn), 64u); }

// ----------------------------------------------------------------------------------------------
// The transition table, cell by cell, against the rules written out independently here.

CloseState expected_next(CloseState s, unsigned role, FlagClass f) {
    using CS = CloseState;
    const bool o = role == role_orig;
    auto mine = [o](CS if_o, CS if_r) { return o ? if_o : if_r; };
    switch (s) {
    case CS::none:
        switch (f) {
        case FlagClass::syn: return mine(CS::syn_sent, CS::syn_rcvd);
        case FlagClass::synack: return CS::syn_rcvd;
        case FlagClass::fin: return mine(CS::fin1_o, CS::fin1_r);
        case FlagClass::rst: return mine(CS::rst_o, CS::rst_r);
        default: return CS::established;
        }
    case CS::syn_sent:
        switch (f) {
        case FlagClass::syn:
        case FlagClass::synack: return mine(CS::syn_sent, CS::syn_rcvd);
        case FlagClass::fin: return mine(CS::fin1_o, CS::fin1_r);
        case FlagClass::rst: return mine(CS::rst_o, CS::rejected);
        default: return mine(CS::established, CS::syn_rcvd);
        }
    case CS::syn_rcvd:
    case CS::established:
        switch (f) {
        case FlagClass::syn:
        case FlagClass::synack: return s;
        case FlagClass::fin: return mine(CS::fin1_o, CS::fin1_r);
        case FlagClass::rst: return mine(CS::rst_o, CS::rst_r);
        default: return CS::established;
        }
    case CS::fin1_o:
        if (f == FlagClass::rst) return CS::finrst_o;
        if (f == FlagClass::fin && !o) return CS::fin2_o;
        return s;
    case CS::fin1_r:
        if (f == FlagClass::rst) return CS::finrst_r;
        if (f == FlagClass::fin && o) return CS::fin2_r;
        return s;
    default: return s;  // fin2_*, finrst_*, rst_*, rejected absorb everything
    }
}

TEST(CloseTableCells, EveryCellFollowsTheRules) {
    for (unsigned s = 0; s < count_of<CloseState>; ++s)
        for (unsigned role = 0; role < 2; ++role)
            for (unsigned f = 0; f < count_of<FlagClass>; ++f) {
                auto want = expected_next(CloseState(s), role, FlagClass(f));
                EXPECT_EQ(close_table[s][role][f], want)
                    << "state " << close_state_names[s] << " role " << role << " class " << f;
            }
}

// The teardown clock (close_back_) has no start of its own: it only runs while the machine is
// closing and is 0 before, which holds because no closing state leads out of closing.
TEST(CloseTableCells, ClosingIsAbsorbing) {
    for (unsigned s = static_cast<unsigned>(CloseState::fin1_o); s < count_of<CloseState>; ++s)
        for (unsigned role = 0; role < 2; ++role)
            for (unsigned f = 0; f < count_of<FlagClass>; ++f)
                EXPECT_GE(static_cast<unsigned>(close_table[s][role][f]),
                          static_cast<unsigned>(CloseState::fin1_o))
                    << "state " << close_state_names[s] << " role " << role << " class " << f;
}

TEST(CloseTableCells, FlagClassification) {
    EXPECT_EQ(classify_flags(syn), FlagClass::syn);
    EXPECT_EQ(classify_flags(syn | ack), FlagClass::synack);
    EXPECT_EQ(classify_flags(fin | ack), FlagClass::fin);
    EXPECT_EQ(classify_flags(fin | rst | ack), FlagClass::rst);
    EXPECT_EQ(classify_flags(syn | rst), FlagClass::rst);
    EXPECT_EQ(classify_flags(ack | psh), FlagClass::other);
    EXPECT_EQ(classify_flags(0), FlagClass::other);
}

// Drive the machine through real segments into each reachable state and check the table's
// verdict is what the machine does, for every role and flag class.
TEST(CloseTableCells, MachineFollowsTheTable) {
    struct Prefix {
        CloseState state;
        std::vector<TcpSegment> segs;
        Wire w;
    };
    auto build = [](CloseState want) {
        Prefix p{want, {}, Wire{}};
        Wire& w = p.w;
        auto est = [&] {
            auto o = w.open();
            p.segs.insert(p.segs.end(), o.begin(), o.end());
        };
        switch (want) {
        case CloseState::syn_sent: p.segs = {w.make(C, syn)}; break;
        case CloseState::syn_rcvd: p.segs = {w.make(C, syn), w.make(S, syn | ack)}; break;
        case CloseState::established: est(); break;
        case CloseState::fin1_o: est(); p.segs.push_back(w.make(C, fin | ack)); break;
        case CloseState::fin1_r: est(); p.segs.push_back(w.make(S, fin | ack)); break;
        case CloseState::fin2_o:
            est();
            p.segs.push_back(w.make(C, fin | ack));
            p.segs.push_back(w.make(S, fin | ack));
            break;
        case CloseState::fin2_r:
            est();
            p.segs.push_back(w.make(S, fin | ack));
            p.segs.push_back(w.make(C, fin | ack));
            break;
        case CloseState::finrst_o:
            est();
            p.segs.push_back(w.make(C, fin | ack));
            p.segs.push_back(w.make(S, rst));
            break;
        case CloseState::finrst_r:
            est();
            p.segs.push_back(w.make(S, fin | ack));
            p.segs.push_back(w.make(C, rst));
            break;
        case CloseState::rst_o: est(); p.segs.push_back(w.make(C, rst)); break;
        case CloseState::rst_r: est(); p.segs.push_back(w.make(S, rst)); break;
        case CloseState::rejected: {
            TcpSegment s1 = w.make(C, syn);
            p.segs = {s1, w.raw(S, rst | ack, 0, s1.seq + 1)};
            break;
        }
        default: break;
        }
        return p;
    };
    const uint8_t class_flags[] = {syn, syn | ack, fin | ack, rst, ack};
    for (unsigned s = 1; s < count_of<CloseState>; ++s) {
        for (unsigned role = 0; role < 2; ++role) {
            for (unsigned f = 0; f < count_of<FlagClass>; ++f) {
                Prefix p = build(CloseState(s));
                TcpConn c;
                c.start(p.segs[0]);
                for (size_t i = 1; i < p.segs.size(); ++i) c.update(p.segs[i]);
                ASSERT_EQ(c.close_state(), CloseState(s)) << close_state_names[s];
                uint8_t dir = role == role_orig ? C : S;
                // A SYN carrying the ISN already seen is not reuse: the cell is exercised.
                uint32_t seq = (f <= 1) ? (dir == C ? 1000u : 900000u) : p.w.nxt[dir];
                TcpSegment seg = p.w.raw(dir, class_flags[f], seq, p.w.nxt[1 - dir]);
                if (c.update(seg) == TcpConn::Verdict::reuse) continue;  // decided before
                EXPECT_EQ(c.close_state(), close_table[s][role][f])
                    << "state " << close_state_names[s] << " role " << role << " class " << f;
            }
        }
    }
}

// Capture loss: the server closes first, the client's FIN is lost at the tap, the server's ACK
// of it (one past anything the tap saw from the client) is the only trace. The client's FIN is
// `beyond`, and the close is not half open: no half_open_timeout when the record times out.
TEST(TapLoss, LostFinOfSilentSideIsBeyond) {
    Wire w;
    auto segs = join({Part(w.open()), w.make(S, fin | ack), w.make(C, ack)});
    w.make(C, fin | ack);  // sent by the client, never seen by the tap
    segs.push_back(w.make(S, ack));
    auto r = feed(segs, EndCause::idle_timeout);
    EXPECT_EQ(r.res.close, Close::fin_one_side);
    EXPECT_EQ(r.res.initiator, Initiator::resp);
    EXPECT_EQ(r.res.fin_ack_resp, FinAck::exact);
    EXPECT_EQ(r.res.fin_ack_orig, FinAck::beyond);
    EXPECT_EQ(r.res.reason, Reason::none);
    // Without that ACK it is a genuinely half-open connection.
    segs.pop_back();
    auto r2 = feed(segs, EndCause::idle_timeout);
    EXPECT_EQ(r2.res.fin_ack_orig, FinAck::none);
    EXPECT_EQ(r2.res.reason, Reason::half_open_timeout);
}

}  // namespace
}  // namespace closetap

// The inline fast path (TcpConn::fast_update) must leave exactly the state the full machine
// would: random connections (handshakes, pickups, data with loss, retransmissions, reordering,
// zero windows, wrapping sequence numbers, closes and resets) are fed segment by segment to one
// TcpConn through update() and to a copy through update_slow() only; the two must stay equal
// byte for byte, and the records they conclude equal.
namespace closetap {
struct TcpConnTestAccess {
    static bool fast(TcpConn& c, const TcpSegment& s) { return c.fast_update(s); }
    // The history as Zeek writes it (the letters decoded one by one).
    static std::string letters(const TcpConn& c) {
        char out[32];
        c.expand_history(out, sizeof out);
        return out;
    }
    static bool has(const TcpConn& c, char letter) { return c.has_history(letter); }
    static void add(TcpConn& c, char letter) { c.add_history(letter); }
    // fast_mask() spelled out with a search of the decoded history.
    static uint8_t mask_by_letters(const TcpConn& c) {
        if (!c.both_established()) return 0;
        const std::string h = letters(c);
        unsigned m = 0;
        for (unsigned d = 0; d < 2; ++d) {
            const bool orig = d == c.orig_dir_;
            if (h.find(orig ? 'A' : 'a') != std::string::npos) m |= 1u << (2 * d);
            if (h.find(orig ? 'D' : 'd') != std::string::npos) m |= 2u << (2 * d);
        }
        return static_cast<uint8_t>(m);
    }
    static void set_history(TcpConn& c, uint64_t nibbles, unsigned len) {
        c.hist_ = nibbles;
        c.hist_len_ = len;
    }
    static void set_pkts(TcpConn& c, uint32_t p0, uint32_t p1) {
        c.pkts0_ = p0;
        c.pkts1_ = p1;
    }
    static uint32_t pkts(const TcpConn& c, unsigned d) { return d == 0 ? c.pkts0_ : c.pkts1_; }
    // Zeek's endpoint states by key direction, the originator's direction, the close state.
    static void set_states(TcpConn& c, ZeekState z0, ZeekState z1, unsigned orig_dir,
                           CloseState cs) {
        c.side_[0].zstate = static_cast<unsigned>(z0);
        c.side_[1].zstate = static_cast<unsigned>(z1);
        c.orig_dir_ = orig_dir;
        c.close_state_ = static_cast<unsigned>(cs);
    }
    static bool both_established(const TcpConn& c) { return c.both_established(); }
    // What shares the packet counters' words (count_packet writes them whole).
    static std::array<uint64_t, 4> neighbours(const TcpConn& c) {
        return {c.first_back_, c.close_back_, c.wscale0_, c.wscale1_};
    }
    static void set_first_back(TcpConn& c, uint64_t v) { c.first_back_ = v; }
    static uint64_t first_back(const TcpConn& c) { return c.first_back_; }
    // What shares the packet time's words (last_ts_, first_back_), but m_pre_, which the FIN
    // tracking sets on an ACK.
    static std::array<uint64_t, 6> time_neighbours(const TcpConn& c) {
        return {c.close_state_, c.orig_dir_, c.rst_oow_, c.m_fin_, c.adv_, c.pkts0_};
    }
};
}  // namespace closetap

namespace closetap {
namespace {

struct Rng {
    uint64_t s;
    uint32_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return static_cast<uint32_t>(s >> 16);
    }
    uint32_t below(uint32_t n) { return next() % n; }
    bool chance(uint32_t pct) { return below(100) < pct; }
};

// fast_mask() reads all four letters at once from the packed history: on random histories,
// with escaped letters whose second nibble equals the codes of A, a, D and d, it must agree with
// the letter-by-letter search.
TEST(FastPath, MaskAgreesWithTheHistoryOnEscapedLetters) {
    Wire w;
    const closetap::Run r = feed(w.open());
    ASSERT_NE(r.conn.fast_mask(), 0);  // established both ways, A and D on both sides
    Rng rng{12345};
    uint32_t masks_seen = 0;
    for (int n = 0; n < 200000; ++n) {
        uint64_t h = 0;
        unsigned len = 0;
        const unsigned want = rng.below(16);
        while (len < want) {
            if (len + 1 < want && rng.chance(30)) {
                h |= uint64_t{15} << (4 * len++);          // an escape ...
                h |= uint64_t{rng.below(12)} << (4 * len++);  // ... and a second-table letter
            } else {
                h |= uint64_t{rng.below(15)} << (4 * len++);
            }
        }
        TcpConn c = r.conn;
        TcpConnTestAccess::set_history(c, h, len);
        ASSERT_EQ(c.fast_mask(), TcpConnTestAccess::mask_by_letters(c)) << std::hex << h << " " << len;
        masks_seen |= 1u << c.fast_mask();
    }
    EXPECT_EQ(masks_seen, 0xffffu);
}

// timeout_class() and fast_mask() read tcp_detail::timeout_table at the connection's
// state_index(): in every combination of the two endpoints' Zeek states, the originator's
// direction and the close state they must give what the rule and both_established() give.
TEST(TimeoutClass, TableAgreesWithTheRuleInEveryState) {
    Wire w;
    const closetap::Run r = feed(w.open());
    ASSERT_EQ(r.conn.fast_mask(), 0xf);  // A and D of both sides in the history
    constexpr unsigned nz = static_cast<unsigned>(ZeekState::reset) + 1;
    unsigned classes_seen = 0, established_seen = 0;
    for (unsigned z0 = 0; z0 < nz; ++z0)
        for (unsigned z1 = 0; z1 < nz; ++z1)
            for (unsigned od = 0; od < 2; ++od)
                for (unsigned cs = 0; cs < count_of<CloseState>; ++cs) {
                    TcpConn c = r.conn;
                    TcpConnTestAccess::set_states(c, static_cast<ZeekState>(z0),
                                                  static_cast<ZeekState>(z1), od,
                                                  static_cast<CloseState>(cs));
                    ASSERT_EQ(c.zeek_state(true), static_cast<ZeekState>(od == 0 ? z0 : z1));
                    ASSERT_EQ(c.close_state(), static_cast<CloseState>(cs));
                    const TimeoutClass want = tcp_detail::timeout_class_of(
                        c.zeek_state(true), c.zeek_state(false), c.close_state());
                    const std::string at = "z0 " + std::to_string(z0) + " z1 " +
                                           std::to_string(z1) + " orig_dir " +
                                           std::to_string(od) + " close " + std::to_string(cs);
                    ASSERT_EQ(c.timeout_class(), want) << at;
                    const bool est = TcpConnTestAccess::both_established(c);
                    ASSERT_EQ(c.fast_mask(), est ? 0xf : 0) << at;
                    classes_seen |= 1u << static_cast<unsigned>(want);
                    established_seen += est;
                }
    EXPECT_EQ(classes_seen, (1u << count_of<TimeoutClass>) - 1);
    EXPECT_EQ(established_seen, 2u);  // both endpoints and the close machine, either orig_dir
}

// has_history() reads the packed history all at once (SWAR): for random letter sequences added
// with add_history (one- and two-nibble letters, up to and past capacity), it must say of every
// letter, and of a non-letter, what a search of the decoded history says; add_history must keep
// the letters in order until the next one no longer fits.
TEST(ZeekHistory, HasHistoryAgreesWithTheDecodedHistory) {
    const std::string alphabet = "SsHhAaDdFfRrTt^WwGgIiQqCcXx";
    Rng rng{4242};
    for (int n = 0; n < 50000; ++n) {
        TcpConn c;
        TcpConnTestAccess::set_history(c, 0, 0);
        std::string want;
        unsigned nibbles = 0;
        const unsigned count = rng.below(20);
        for (unsigned i = 0; i < count; ++i) {
            const char l = alphabet[rng.below(static_cast<uint32_t>(alphabet.size()))];
            TcpConnTestAccess::add(c, l);
            const unsigned need = alphabet.find(l) < 15 ? 1 : 2;
            if (nibbles + need <= 15) {
                want += l;
                nibbles += need;
            }
        }
        const std::string h = TcpConnTestAccess::letters(c);
        ASSERT_EQ(h, want);
        for (const char l : alphabet + "?z")
            ASSERT_EQ(TcpConnTestAccess::has(c, l), h.find(l) != std::string::npos)
                << "letter " << l << " in " << h;
    }
}

// count_packet() adds to the direction's counter as one 64-bit word, picked by the direction
// (flowtable/tcp_conn.hh): it must add to that counter only, leave the fields sharing its word
// alone, and saturate at 2^24 - 1, on the fast path and on the full machine alike.
TEST(FastPath, PacketCountsSaturateAndLeaveTheirWordsAlone) {
    constexpr uint32_t max = (1u << 24) - 1;
    for (const bool slow : {false, true}) {
        Wire w;
        TcpConn c = feed(w.open()).conn;
        ASSERT_NE(c.fast_mask(), 0);
        TcpConnTestAccess::set_pkts(c, max - 2, max - 1);
        const auto before = TcpConnTestAccess::neighbours(c);
        auto send = [&](uint8_t dir, uint32_t len) {
            const TcpSegment s = w.make(dir, ack, len);
            if (slow)
                c.update_slow(s);
            else
                ASSERT_TRUE(TcpConnTestAccess::fast(c, s));
        };
        send(C, 0);
        EXPECT_EQ(TcpConnTestAccess::pkts(c, C), max - 1);
        EXPECT_EQ(TcpConnTestAccess::pkts(c, S), max - 1);
        send(S, 10);
        EXPECT_EQ(TcpConnTestAccess::pkts(c, C), max - 1);
        EXPECT_EQ(TcpConnTestAccess::pkts(c, S), max);
        for (int i = 0; i < 3; i++) {
            send(S, 0);
            send(C, 5);
        }
        EXPECT_EQ(TcpConnTestAccess::pkts(c, C), max);
        EXPECT_EQ(TcpConnTestAccess::pkts(c, S), max);
        auto after = TcpConnTestAccess::neighbours(c);
        EXPECT_GT(after[0], before[0]);  // first_back_ grew with packet time, nothing else
        after[0] = before[0];
        EXPECT_EQ(after, before) << (slow ? "update_slow" : "fast path");
        ConnResult res{};
        c.finish(EndCause::end_of_input, res);
        EXPECT_EQ(res.orig_pkts, max);
        EXPECT_EQ(res.resp_pkts, max);
    }
}

TEST(Branchless, SelectIfPicksLikeTheConditional) {
    static_assert(select_if(true, 7u, 9u) == 7u && select_if(false, 7u, 9u) == 9u);
    Rng rng{77};
    for (int i = 0; i < 10000; i++) {
        const bool c = rng.chance(50);
        const uint32_t a = rng.next(), b = rng.next();
        const uint64_t a64 = uint64_t{a} << 32 | b, b64 = uint64_t{b} << 32 | a;
        const auto a16 = static_cast<uint16_t>(a), b16 = static_cast<uint16_t>(b);
        const auto a8 = static_cast<uint8_t>(a), b8 = static_cast<uint8_t>(b);
        ASSERT_EQ(select_if(c, a, b), c ? a : b);
        ASSERT_EQ(select_if(c, a64, b64), c ? a64 : b64);
        ASSERT_EQ(select_if(c, a16, b16), c ? a16 : b16);
        ASSERT_EQ(select_if(c, a8, b8), c ? a8 : b8);
    }
}

TEST(Branchless, BothIsTheConjunction) {
    static_assert(both(true, true) && !both(true, false) && !both(false, true) && !both(false, false));
    volatile bool in[2] = {false, true};  // runtime values: the asm path, not constant folding
    for (unsigned a = 0; a < 2; a++)
        for (unsigned b = 0; b < 2; b++) EXPECT_EQ(both(in[a], in[b]), a == 1 && b == 1) << a << b;
}

// On both paths packet time moves last_ts_ on (never back) and first_back_ with it, which
// saturates, and leaves the rest of their words as they were.
TEST(FastPath, PacketTimeSaturatesAndLeavesItsWordsAlone) {
    constexpr uint64_t back_max = (uint64_t{1} << 40) - 1;
    constexpr uint32_t pkts_max = (1u << 24) - 1;
    for (const bool slow : {false, true}) {
        Wire w;
        TcpConn c = feed(w.open()).conn;
        ASSERT_NE(c.fast_mask(), 0);
        TcpConnTestAccess::set_pkts(c, pkts_max, pkts_max);  // saturated: they stay
        TcpConnTestAccess::set_first_back(c, back_max - 5);
        const auto before = TcpConnTestAccess::time_neighbours(c);
        const uint64_t t0 = c.last_ts_us();
        auto send = [&](uint64_t ts) {
            TcpSegment s = w.make(C, ack, 0);
            s.ts_us = ts;
            if (slow)
                c.update_slow(s);
            else
                ASSERT_TRUE(TcpConnTestAccess::fast(c, s));
        };
        send(t0 + 3);
        EXPECT_EQ(c.last_ts_us(), t0 + 3);
        EXPECT_EQ(TcpConnTestAccess::first_back(c), back_max - 2);
        send(t0 + 10);
        EXPECT_EQ(c.last_ts_us(), t0 + 10);
        EXPECT_EQ(TcpConnTestAccess::first_back(c), back_max);
        send(t0 + 5);  // earlier (tap skew): neither moves
        EXPECT_EQ(c.last_ts_us(), t0 + 10);
        EXPECT_EQ(TcpConnTestAccess::first_back(c), back_max);
        EXPECT_EQ(TcpConnTestAccess::time_neighbours(c), before)
            << (slow ? "update_slow" : "fast path");
    }
}

TEST(FastPath, EqualsTheFullMachineOnRandomConnections) {
    Rng rng{0x9e3779b97f4a7c15ull};
    uint64_t fast_taken = 0, segments = 0;
    uint32_t masks_seen = 0;  // bit m: some connection had fast_mask() == m
    for (int conn_no = 0; conn_no < 4000; ++conn_no) {
        uint32_t nxt[2] = {rng.next(), rng.next()};  // next seq per direction
        if (rng.chance(10)) nxt[0] = 0xffffff00u + rng.below(200);  // wraps soon
        uint64_t ts = 1'700'000'000'000'000ull + rng.below(1000000);
        std::vector<TcpSegment> segs;
        auto push = [&](unsigned dir, uint8_t flags, uint32_t len, bool advance = true) {
            TcpSegment s{};
            s.ts_us = ts += rng.below(3000);
            s.dir = static_cast<uint8_t>(dir);
            s.flags = flags;
            s.seq = nxt[dir];
            s.ack = nxt[1 - dir] - (rng.chance(15) ? rng.below(3000) : 0);  // acks lag at times
            if (!(flags & tcp_flag::ack)) s.ack = 0;
            s.payload_len = len;
            s.window = rng.chance(3) ? 0 : static_cast<uint16_t>(1 + rng.below(65535));
            s.src_port = dir == 0 ? 40000 : 443;
            s.dst_port = dir == 0 ? 443 : 40000;
            s.wscale = (flags & tcp_flag::syn) ? static_cast<uint8_t>(rng.below(15)) : 0xff;
            if (advance) nxt[dir] += len + ((flags & (tcp_flag::syn | tcp_flag::fin)) ? 1 : 0);
            segs.push_back(s);
        };
        const bool pickup = rng.chance(20);
        if (!pickup) {
            push(0, syn, 0);
            if (rng.chance(95)) push(1, syn | ack, 0);
            if (rng.chance(90)) push(0, ack, 0);
        }
        const int data = static_cast<int>(rng.below(60));
        for (int i = 0; i < data; ++i) {
            unsigned dir = rng.below(2);
            uint32_t len = rng.chance(40) ? 0 : 1 + rng.below(1460);
            if (rng.chance(5)) {  // a retransmission of earlier bytes
                push(dir, ack | psh, len, false);
                segs.back().seq -= rng.below(4000);
                continue;
            }
            if (rng.chance(3)) nxt[dir] += 1 + rng.below(5000);  // a segment the tap lost
            push(dir, ack | (len ? psh : 0), len);
            if (rng.chance(2)) push(dir, ack | tcp_flag::urg, 0);
        }
        switch (rng.below(5)) {
        case 0: push(0, fin | ack, 0); push(1, ack, 0); push(1, fin | ack, 0); push(0, ack, 0); break;
        case 1: push(1, fin | ack, 0); push(0, fin | ack, 0); push(1, ack, 0); break;
        case 2: push(rng.below(2), rst | ack, 0); break;
        case 3: push(0, fin | ack, rng.below(100)); push(1, ack, 10); push(1, ack, 0); break;
        default: break;  // left open
        }
        if (segs.empty()) continue;
        if (rng.chance(10)) {
            const auto n = static_cast<uint32_t>(segs.size());
            std::swap(segs[rng.below(n)], segs[rng.below(n)]);
        }

        TcpConn a, b;
        a.start(segs[0]);
        b.start(segs[0]);
        for (size_t i = 1; i < segs.size(); ++i) {
            TcpConn probe = a;
            fast_taken += TcpConnTestAccess::fast(probe, segs[i]) ? 1 : 0;
            segments++;
            TcpConn::Verdict va = a.update(segs[i]);
            TcpConn::Verdict vb = b.update_slow(segs[i]);
            ASSERT_EQ(va, vb) << "connection " << conn_no << " segment " << i;
            if (va == TcpConn::Verdict::reuse) {
                a.start(segs[i]);
                b.start(segs[i]);
            }
            ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0) << "connection " << conn_no << " segment " << i;
            ASSERT_EQ(a.timeout_class(), b.timeout_class());
            ASSERT_EQ(a.fast_mask(), TcpConnTestAccess::mask_by_letters(a))
                << "connection " << conn_no << " segment " << i;
            masks_seen |= 1u << a.fast_mask();
        }
        ConnResult ra{}, rb{};
        a.finish(EndCause::idle_timeout, ra);
        b.finish(EndCause::idle_timeout, rb);
        ASSERT_STREQ(ra.history, rb.history);
        ASSERT_EQ(ra.close, rb.close);
    }
    // The sequences exercise both paths substantially.
    EXPECT_GT(fast_taken, segments / 4);
    EXPECT_LT(fast_taken, segments * 9 / 10);
    // Every combination of the four letters (A, D per direction) came up.
    EXPECT_EQ(masks_seen, 0xffffu);
}

}  // namespace
}  // namespace closetap

namespace closetap {
namespace {

// A SYN+FIN (a scanner's Xmas-style probe) begins no close: the record has no FIN outcome to
// report (tests/fuzz/regressions/fuzz_close_machine/syn_fin_*).
TEST(SynFin, NoCloseNoFinAck) {
    TcpConn c;
    TcpSegment s{};
    s.ts_us = 1'000'000;
    s.flags = tcp_flag::syn | tcp_flag::fin;
    s.seq = 100;
    s.window = 1024;
    s.src_port = 40000;
    s.dst_port = 80;
    s.wscale = 0xff;
    c.start(s);
    ConnResult r{};
    c.finish(EndCause::idle_timeout, r);
    EXPECT_EQ(r.close, Close::no_answer);
    EXPECT_EQ(r.fin_ack_orig, FinAck::none);
    EXPECT_EQ(r.fin_ack_resp, FinAck::none);
    EXPECT_NE(std::string(r.history).find('Q'), std::string::npos) << r.history;
}

}  // namespace
}  // namespace closetap
