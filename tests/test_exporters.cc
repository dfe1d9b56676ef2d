// Exporters: the conn log's JSON and the Prometheus exposition built from per-worker counters.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "exporters/conn_log.hh"
#include "exporters/metrics.hh"
#include "exporters/summary.hh"

using namespace closetap;

namespace {

ConnResult sample_result() {
    ConnResult r{};
    r.ts_first_us = 1700000000123456;
    r.ts_last_us = 1700000001123456;
    r.teardown_us = 1500;
    r.orig_pkts = 6;
    r.resp_pkts = 4;
    r.close = Close::fin_3way;
    r.initiator = Initiator::resp;
    r.fin_ack_orig = FinAck::exact;
    r.fin_ack_resp = FinAck::cumulative;
    r.conn_state = ConnState::SF;
    r.reason = Reason::none;
    r.end_cause = EndCause::closed;
    r.orig_dir = 1;
    std::snprintf(r.history, sizeof(r.history), "ShADadfF");
    r.key.addr[0] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
    r.key.addr[1] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2};
    r.key.port[0] = 80;
    r.key.port[1] = 51000;
    return r;
}

FlowEntry sample_entry() { return FlowEntry{}; }

// Value of one sample line in the exposition text, or -1.
double sample(const std::string& text, const std::string& series) {
    auto pos = text.find("\n" + series + " ");
    if (pos == std::string::npos) return -1;
    return std::stod(text.substr(pos + series.size() + 2));
}

}  // namespace

TEST(ConnLog, RecordIsOrientedByOriginator) {
    ConnRecord rec = make_record(sample_entry(), sample_result(), 0);
    EXPECT_EQ(format_addr(rec.orig_h), "10.0.0.2");
    EXPECT_EQ(rec.orig_p, 51000);
    EXPECT_EQ(format_addr(rec.resp_h), "10.0.0.1");
    EXPECT_EQ(rec.resp_p, 80);
}

TEST(ConnLog, JsonHasSpecKeysAndValues) {
    ConnRecord rec = make_record(sample_entry(), sample_result(), 0);
    auto j = nlohmann::json::parse(to_json_line(rec, {"unknown"}));
    for (const char* k : {"ts", "orig_h", "orig_p", "resp_h", "resp_p", "close", "initiator",
                          "half_close", "conn_state", "history", "fin_ack", "teardown_s",
                          "orig_pkts", "resp_pkts", "app", "reason"})
        EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_DOUBLE_EQ(j["ts"].get<double>(), 1700000000.123456);
    EXPECT_EQ(j["close"], "fin_3way");
    EXPECT_EQ(j["initiator"], "resp");
    EXPECT_EQ(j["conn_state"], "SF");
    EXPECT_EQ(j["history"], "ShADadfF");
    EXPECT_EQ(j["fin_ack"]["orig"], "exact");
    EXPECT_EQ(j["fin_ack"]["resp"], "cumulative");
    EXPECT_DOUBLE_EQ(j["teardown_s"].get<double>(), 0.0015);
    EXPECT_TRUE(j["reason"].is_null());
    EXPECT_EQ(j["app"], "unknown");
}

TEST(ConnLog, AbnormalHasReasonAndNoTeardownIsNull) {
    ConnResult r = sample_result();
    r.close = Close::no_answer;
    r.initiator = Initiator::none;
    r.reason = Reason::no_answer;
    r.teardown_us = -1;
    auto j = nlohmann::json::parse(to_json_line(make_record(sample_entry(), r, 0), {"unknown"}));
    EXPECT_EQ(j["reason"], "no_answer");
    EXPECT_TRUE(j["teardown_s"].is_null());
}

TEST(ConnLog, Ipv6AddressesAreCompressed) {
    std::array<uint8_t, 16> a{0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    EXPECT_EQ(format_addr(a), "fd77::1");
}

TEST(Metrics, SumsWorkersAtCollectionTime) {
    WorkerStats a, b;
    ConnResult r = sample_result();
    a.count_conn(r, 0);
    b.count_conn(r, 0);
    r.close = Close::rst;
    r.initiator = Initiator::orig;
    r.reason = Reason::rst_orig;
    r.conn_state = ConnState::RSTO;
    r.fin_ack_orig = r.fin_ack_resp = FinAck::none;
    b.count_conn(r, 0);
    a.rx_packets[0].add(7);
    b.rx_packets[0].add(5);
    a.parse_errors[static_cast<size_t>(ParseError::truncated_tcp)].add(3);

    MetricsSources src;
    src.workers = {&a, &b};
    src.port_names = {"net_pcap0"};
    src.port_drops = [](size_t) {
        PortDrops d;
        d.imissed = 11;
        return d;
    };
    src.version = "test";
    MetricsCollector c(src);
    std::string text = serialize_metrics(c);

    EXPECT_EQ(sample(text, R"(closetap_tcp_closes_total{close="fin_3way",initiator="resp"})"), 2);
    EXPECT_EQ(sample(text, R"(closetap_tcp_closes_total{close="rst",initiator="orig"})"), 1);
    EXPECT_EQ(sample(text, R"(closetap_tcp_conn_state_total{conn_state="SF"})"), 2);
    EXPECT_EQ(sample(text, R"(closetap_tcp_abnormal_closes_total{reason="rst_orig",app="unknown"})"), 1);
    EXPECT_EQ(sample(text, R"(closetap_tcp_fin_ack_total{outcome="exact"})"), 2);
    EXPECT_EQ(sample(text, R"(closetap_tcp_fin_ack_total{outcome="cumulative"})"), 2);
    EXPECT_EQ(sample(text, R"(closetap_rx_packets_total{port="net_pcap0"})"), 12);
    EXPECT_EQ(sample(text, R"(closetap_rx_dropped_packets_total{port="net_pcap0",reason="imissed"})"), 11);
    EXPECT_EQ(sample(text, R"(closetap_parse_errors_total{reason="truncated_tcp"})"), 3);
    EXPECT_EQ(sample(text, R"(closetap_tcp_teardown_duration_seconds_count{close="fin_3way"})"), 2);
    // 1.5 ms falls in the 5 ms bucket, not the 1 ms one.
    EXPECT_EQ(sample(text, R"(closetap_tcp_teardown_duration_seconds_bucket{close="fin_3way",le="0.001"})"), 0);
    EXPECT_EQ(sample(text, R"(closetap_tcp_teardown_duration_seconds_bucket{close="fin_3way",le="0.005"})"), 2);
    EXPECT_EQ(sample(text, R"(closetap_tcp_teardown_duration_seconds_bucket{close="fin_3way",le="+Inf"})"), 2);
    EXPECT_NE(text.find("# TYPE closetap_flows_active gauge"), std::string::npos);
    EXPECT_NE(text.find("closetap_flowtable_evictions_total{reason=\"bucket_full\"}"), std::string::npos);
}

TEST(Metrics, LabelsNeverCarryAddresses) {
    WorkerStats w;
    w.count_conn(sample_result(), 0);
    MetricsSources src;
    src.workers = {&w};
    src.port_names = {"net_pcap0"};
    std::string text = serialize_metrics(MetricsCollector(src));
    EXPECT_EQ(text.find("10.0.0."), std::string::npos);
    EXPECT_EQ(text.find("51000"), std::string::npos);
}

TEST(Summary, ShowsClosesByPatternAndInitiator) {
    WorkerStats w;
    w.count_conn(sample_result(), 0);
    w.rx_packets[0].add(10);
    MetricsSources src;
    src.workers = {&w};
    src.port_names = {"p0"};
    std::string s = format_summary(src, 1.0);
    EXPECT_NE(s.find("fin_3way"), std::string::npos);
    EXPECT_NE(s.find("10 packets"), std::string::npos);
}

// A full disk: every line is counted once, as failed, and the first failure is kept for one
// report; nothing throws.
TEST(LineFile, FullDiskCountsEveryLineAsFailed) {
    LineFile f;
    f.open("/dev/full", "conn log");
    for (int i = 0; i < 3; i++) f.write("{\"x\":1}");
    EXPECT_EQ(f.written(), 0u);
    EXPECT_EQ(f.failed(), 0u);  // still buffered
    f.flush();
    EXPECT_EQ(f.written(), 0u);
    EXPECT_EQ(f.failed(), 3u);
    EXPECT_NE(f.first_error().find("conn log /dev/full: No space left on device"), std::string::npos)
        << f.first_error();
    // More than a buffer's worth: flushed on the way, all failed, the first error unchanged.
    std::string line(1000, 'a');
    for (int i = 0; i < 200; i++) f.write(line);
    f.flush();
    EXPECT_EQ(f.failed(), 203u);
}

TEST(LineFile, WritesEveryLineAndCountsIt) {
    char path[] = "/tmp/closetap-lines-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    {
        LineFile f;
        f.open(path, "conn log");
        std::string line(1000, 'b');
        for (int i = 0; i < 150; i++) f.write(line);  // more than one buffer
        f.flush();
        EXPECT_EQ(f.written(), 150u);
        EXPECT_EQ(f.failed(), 0u);
        EXPECT_TRUE(f.first_error().empty());
    }
    std::FILE* in = std::fopen(path, "r");
    ASSERT_NE(in, nullptr);
    int n = 0, c;
    while ((c = std::fgetc(in)) != EOF) n += c == '\n';
    std::fclose(in);
    std::remove(path);
    EXPECT_EQ(n, 150);
}

TEST(Events, OnlyAbnormalClosesAndRateLimitedByPacketTime) {
    char path[] = "/tmp/closetap-events-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    EventWriter ev;
    ev.open(path, /*rate_per_s=*/1.0, /*burst=*/2.0);
    ConnResult normal = sample_result();
    ConnResult bad = sample_result();
    bad.close = Close::rst;
    bad.reason = Reason::rst_resp;
    const FlowEntry e = sample_entry();
    ev.offer(make_record(e, normal, 0), {"unknown"});  // normal: never an event
    // A storm: 10 resets within one second of packet time; the bucket holds 2.
    for (int i = 0; i < 10; i++) {
        bad.ts_last_us = 1700000000000000 + uint64_t(i) * 100000;
        ev.offer(make_record(e, bad, 0), {"unknown"});
    }
    ev.flush();  // lines count as written once they reach the file
    EXPECT_EQ(ev.written(), 2u);
    EXPECT_EQ(ev.suppressed(), 8u);
    // Three seconds later the bucket has refilled to its burst size, not beyond.
    for (int i = 0; i < 5; i++) {
        bad.ts_last_us = 1700000004000000 + uint64_t(i);
        ev.offer(make_record(e, bad, 0), {"unknown"});
    }
    ev.flush();
    EXPECT_EQ(ev.written(), 4u);
    EXPECT_EQ(ev.suppressed(), 11u);
    std::FILE* f = std::fopen(path, "r");
    ASSERT_NE(f, nullptr);
    char line[4096];
    int n = 0;
    while (std::fgets(line, sizeof(line), f)) {
        auto j = nlohmann::json::parse(line);
        EXPECT_EQ(j["event"], "abnormal_close");
        EXPECT_EQ(j["reason"], "rst_resp");
        EXPECT_EQ(j["orig_p"], 51000);
        n++;
    }
    std::fclose(f);
    unlink(path);
    EXPECT_EQ(n, 4);
}

TEST(Metrics, ControlCountersAreExported) {
    WorkerStats w;
    ControlStats c;
    c.events_suppressed.set(5);
    c.log_written.set(9);
    MetricsSources src;
    src.workers = {&w};
    src.control = &c;
    std::string text = serialize_metrics(MetricsCollector(src));
    EXPECT_EQ(sample(text, R"(closetap_events_total{result="suppressed"})"), 5);
    EXPECT_EQ(sample(text, "closetap_conn_log_records_total"), 9);
}
