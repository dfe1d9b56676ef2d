#include "exporters/metrics.hh"

#include <limits>
#include <sstream>

#include <prometheus/text_serializer.h>

namespace closetap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
    MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = type;
    return f;
}

void add_value(MetricFamily& f, std::vector<ClientMetric::Label> labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter)
        m.counter.value = v;
    else
        m.gauge.value = v;
    f.metric.push_back(std::move(m));
}

template <typename F> uint64_t sum(const std::vector<const WorkerStats*>& ws, F&& get) {
    uint64_t s = 0;
    for (const WorkerStats* w : ws) s += get(*w).get();
    return s;
}

// One histogram series per close pattern, summed over workers.
template <typename Get>
MetricFamily histogram_family(std::string name, std::string help,
                              const std::vector<const WorkerStats*>& ws, Get&& get) {
    auto f = family(std::move(name), std::move(help), MetricType::Histogram);
    for (size_t c = 0; c < count_of<Close>; c++) {
        ClientMetric m;
        m.label = {{"close", std::string(close_names[c])}};
        uint64_t cum = 0, sum_us = 0;
        const auto& bounds = std::remove_reference_t<decltype(get(*ws[0], c))>::bounds;
        for (size_t b = 0; b <= bounds.size(); b++) {
            for (const WorkerStats* w : ws) cum += get(*w, c).buckets[b].get();
            ClientMetric::Bucket bk;
            bk.cumulative_count = cum;
            bk.upper_bound = b < bounds.size() ? bounds[b] : std::numeric_limits<double>::infinity();
            m.histogram.bucket.push_back(bk);
        }
        for (const WorkerStats* w : ws) sum_us += get(*w, c).sum_us.get();
        m.histogram.sample_count = cum;
        m.histogram.sample_sum = double(sum_us) / 1e6;
        f.metric.push_back(std::move(m));
    }
    return f;
}

}  // namespace

std::vector<MetricFamily> MetricsCollector::Collect() const {
    const auto& ws = src_.workers;
    std::vector<MetricFamily> out;

    {
        auto f = family("closetap_build_info", "closetap version", MetricType::Gauge);
        add_value(f, {{"version", src_.version}}, 1);
        out.push_back(std::move(f));
    }
    {
        auto rx = family("closetap_rx_packets_total", "Packets received from each port",
                         MetricType::Counter);
        auto rxb = family("closetap_rx_bytes_total", "Bytes received from each port",
                          MetricType::Counter);
        auto drop = family("closetap_rx_dropped_packets_total",
                           "Packets the port dropped before closetap could process them, by reason",
                           MetricType::Counter);
        for (size_t p = 0; p < src_.port_names.size() && p < max_ports; p++) {
            const std::string& name = src_.port_names[p];
            add_value(rx, {{"port", name}}, double(sum(ws, [p](auto& w) -> auto& { return w.rx_packets[p]; })));
            add_value(rxb, {{"port", name}}, double(sum(ws, [p](auto& w) -> auto& { return w.rx_bytes[p]; })));
            PortDrops d = src_.port_drops ? src_.port_drops(p) : PortDrops{};
            add_value(drop, {{"port", name}, {"reason", "imissed"}}, double(d.imissed));
            add_value(drop, {{"port", name}, {"reason", "rx_nombuf"}}, double(d.rx_nombuf));
            add_value(drop, {{"port", name}, {"reason", "ierrors"}}, double(d.ierrors));
            add_value(drop, {{"port", name}, {"reason", "dispatch_ring_full"}}, double(d.dispatch_full));
        }
        out.push_back(std::move(rx));
        out.push_back(std::move(rxb));
        out.push_back(std::move(drop));
    }
    {
        auto f = family("closetap_packets_total",
                        "Packets processed, by what the parser made of them", MetricType::Counter);
        for (size_t c = 0; c < count_of<PacketClass>; c++)
            add_value(f, {{"class", std::string(packet_class_names[c])}},
                      double(sum(ws, [c](auto& w) -> auto& { return w.packet_class[c]; })));
        out.push_back(std::move(f));
    }
    {
        auto f = family("closetap_parse_errors_total", "Packets that could not be parsed, by reason",
                        MetricType::Counter);
        for (size_t e = 0; e < count_of<ParseError>; e++)
            add_value(f, {{"reason", std::string(parse_error_names[e])}},
                      double(sum(ws, [e](auto& w) -> auto& { return w.parse_errors[e]; })));
        out.push_back(std::move(f));
    }
    {
        auto f = family("closetap_tcp_checksum_errors_total",
                        "TCP packets ignored for a bad IPv4 or TCP checksum (--verify-checksums)",
                        MetricType::Counter);
        add_value(f, {}, double(sum(ws, [](auto& w) -> auto& { return w.checksum_bad; })));
        out.push_back(std::move(f));
    }
    {
        auto f = family("closetap_tcp_closes_total",
                        "TCP connections ended, by close pattern and the side that closed first",
                        MetricType::Counter);
        for (size_t c = 0; c < count_of<Close>; c++)
            for (size_t i = 0; i < count_of<Initiator>; i++) {
                uint64_t v = sum(ws, [c, i](auto& w) -> auto& { return w.closes[c][i]; });
                // Only combinations that can occur: the initiator of no_answer/none is none, of
                // everything else a side. Keeps the series count fixed and meaningful.
                bool nobody = c == size_t(Close::no_answer) || c == size_t(Close::none);
                if ((i == size_t(Initiator::none)) != nobody && v == 0) continue;
                add_value(f, {{"close", std::string(close_names[c])},
                              {"initiator", std::string(initiator_names[i])}}, double(v));
            }
        out.push_back(std::move(f));
    }
    {
        auto f = family("closetap_tcp_conn_state_total", "TCP connections ended, by Zeek conn_state",
                        MetricType::Counter);
        for (size_t s = 0; s < count_of<ConnState>; s++)
            add_value(f, {{"conn_state", std::string(conn_state_names[s])}},
                      double(sum(ws, [s](auto& w) -> auto& { return w.conn_state[s]; })));
        out.push_back(std::move(f));
    }
    {
        auto f = family("closetap_tcp_abnormal_closes_total",
                        "Abnormal TCP closes, by reason and application", MetricType::Counter);
        for (size_t r = 1; r < count_of<Reason>; r++)
            for (size_t a = 0; a < src_.app_names.size() && a < max_apps; a++) {
                uint64_t v = sum(ws, [r, a](auto& w) -> auto& { return w.abnormal[r][a]; });
                // Every reason appears for the unknown app, so dashboards see zeros rather than
                // gaps; other apps appear once they have a count.
                if (a != 0 && v == 0) continue;
                add_value(f, {{"reason", std::string(reason_names[r])}, {"app", src_.app_names[a]}},
                          double(v));
            }
        out.push_back(std::move(f));
    }
    {
        auto f = family("closetap_tcp_fin_ack_total",
                        "FINs seen, by how the peer acknowledged them", MetricType::Counter);
        for (size_t o = 0; o < count_of<FinAck>; o++) {
            if (o == size_t(FinAck::none)) continue;  // a direction without a FIN is not a FIN
            add_value(f, {{"outcome", std::string(fin_ack_names[o])}},
                      double(sum(ws, [o](auto& w) -> auto& { return w.fin_ack[o]; })));
        }
        out.push_back(std::move(f));
    }
    out.push_back(histogram_family("closetap_tcp_teardown_duration_seconds",
                                   "Time from the first FIN or RST to the last packet of the close",
                                   ws, [](const WorkerStats& w, size_t c) -> auto& { return w.teardown[c]; }));
    out.push_back(histogram_family("closetap_tcp_connection_duration_seconds",
                                   "Connection lifetime, first to last packet, by close pattern",
                                   ws, [](const WorkerStats& w, size_t c) -> auto& { return w.lifetime[c]; }));
    {
        auto f = family("closetap_conn_ended_total", "Connection records concluded, by what ended them",
                        MetricType::Counter);
        for (size_t e = 0; e < count_of<EndCause>; e++)
            add_value(f, {{"cause", std::string(end_cause_names[e])}},
                      double(sum(ws, [e](auto& w) -> auto& { return w.ended[e]; })));
        out.push_back(std::move(f));
    }
    {
        auto active = family("closetap_flows_active", "Connections tracked now", MetricType::Gauge);
        add_value(active, {}, double(sum(ws, [](auto& w) -> auto& { return w.flows_active; })));
        out.push_back(std::move(active));
        auto cap = family("closetap_flowtable_capacity",
                          "Entries of the flow tables: an IPv4 connection takes one, an IPv6 one two",
                          MetricType::Gauge);
        add_value(cap, {}, double(sum(ws, [](auto& w) -> auto& { return w.flow_capacity; })));
        out.push_back(std::move(cap));
        auto used = family("closetap_flowtable_entries_used",
                           "Flow-table entries in use (of closetap_flowtable_capacity)",
                           MetricType::Gauge);
        add_value(used, {}, double(sum(ws, [](auto& w) -> auto& { return w.flow_entries_used; })));
        out.push_back(std::move(used));
        auto created = family("closetap_flows_created_total", "Connections started",
                              MetricType::Counter);
        add_value(created, {}, double(sum(ws, [](auto& w) -> auto& { return w.flows_created; })));
        out.push_back(std::move(created));
        auto ev = family("closetap_flowtable_evictions_total",
                         "Connections ended early because the flow table needed room, by reason",
                         MetricType::Counter);
        for (size_t r = 0; r < count_of<EvictReason>; r++)
            add_value(ev, {{"reason", std::string(evict_reason_names[r])}},
                      double(sum(ws, [r](auto& w) -> auto& { return w.evictions[r]; })));
        out.push_back(std::move(ev));
        auto evv = family("closetap_flowtable_evicted_flows_total",
                          "The flow-table evictions by the class of the flow ended (attempts go "
                          "first, flows in a close last)",
                          MetricType::Counter);
        for (size_t v = 0; v < count_of<EvictVictim>; v++)
            add_value(evv, {{"state", std::string(evict_victim_names[v])}},
                      double(sum(ws, [v](auto& w) -> auto& { return w.evicted[v]; })));
        out.push_back(std::move(evv));
        auto wp = family("closetap_flowtable_wave_pool_exhausted_total",
                         "Closes whose teardown waves were not kept: the closing-flow pool was full",
                         MetricType::Counter);
        add_value(wp, {}, double(sum(ws, [](auto& w) -> auto& { return w.waves_pool_empty; })));
        out.push_back(std::move(wp));
        auto nf = family("closetap_flow_alloc_failed_total",
                         "TCP packets that found no flow entry even after eviction",
                         MetricType::Counter);
        add_value(nf, {}, double(sum(ws, [](auto& w) -> auto& { return w.flow_alloc_failed; })));
        out.push_back(std::move(nf));
        auto rd = family("closetap_conn_records_dropped_total",
                         "Connection records lost because the log writer fell behind",
                         MetricType::Counter);
        add_value(rd, {}, double(sum(ws, [](auto& w) -> auto& { return w.records_dropped; })));
        out.push_back(std::move(rd));
    }
    if (src_.control != nullptr) {
        const ControlStats& c = *src_.control;
        auto lw = family("closetap_conn_log_records_total", "Records written to the conn log",
                         MetricType::Counter);
        add_value(lw, {}, double(c.log_written.get()));
        out.push_back(std::move(lw));
        auto le = family("closetap_conn_log_write_errors_total",
                         "Conn log records that could not be written (disk full, I/O error)",
                         MetricType::Counter);
        add_value(le, {}, double(c.log_errors.get()));
        out.push_back(std::move(le));
        auto ev = family("closetap_events_total", "Abnormal-close events, by what became of them",
                         MetricType::Counter);
        add_value(ev, {{"result", "written"}}, double(c.events_written.get()));
        add_value(ev, {{"result", "suppressed"}}, double(c.events_suppressed.get()));
        add_value(ev, {{"result", "error"}}, double(c.events_errors.get()));
        out.push_back(std::move(ev));
        auto up = family("closetap_port_link_up", "1 while the port reports its link up",
                         MetricType::Gauge);
        auto lc = family("closetap_port_link_changes_total",
                         "Link up/down transitions of each port seen since start",
                         MetricType::Counter);
        for (size_t p = 0; p < src_.port_names.size() && p < max_ports; p++) {
            add_value(up, {{"port", src_.port_names[p]}}, double(c.link_up[p].get()));
            add_value(lc, {{"port", src_.port_names[p]}}, double(c.link_changes[p].get()));
        }
        out.push_back(std::move(up));
        out.push_back(std::move(lc));
    }
    {
        auto pk = family("closetap_worker_packets_total", "Packets processed by each worker",
                         MetricType::Counter);
        auto ws_wrong = family("closetap_worker_wrong_shard_packets_total",
                               "Packets a worker received whose flow belongs to another worker's "
                               "shard (asymmetric distribution; must stay 0)", MetricType::Counter);
        auto busy = family("closetap_worker_busy_cycles_total",
                           "TSC cycles each worker spent on bursts that carried packets",
                           MetricType::Counter);
        auto loops = family("closetap_worker_loops_total", "Poll loops of each worker",
                            MetricType::Counter);
        // What each worker took from each port (from its queue, or from the dispatcher's ring):
        // with closetap_worker_packets_total it makes received = processed checkable per worker.
        auto wrx = family("closetap_worker_rx_packets_total",
                          "Packets each worker received, by port", MetricType::Counter);
        for (size_t i = 0; i < ws.size(); i++) {
            for (size_t p = 0; p < src_.port_names.size() && p < max_ports; p++)
                add_value(wrx, {{"worker", std::to_string(i)}, {"port", src_.port_names[p]}},
                          double(ws[i]->rx_packets[p].get()));
            uint64_t n = 0;
            for (auto& c : ws[i]->packet_class) n += c.get();
            std::string id = std::to_string(i);
            add_value(pk, {{"worker", id}}, double(n));
            add_value(busy, {{"worker", id}}, double(ws[i]->busy_cycles.get()));
            add_value(ws_wrong, {{"worker", id}}, double(ws[i]->wrong_shard.get()));
            add_value(loops, {{"worker", id}}, double(ws[i]->loops.get()));
        }
        out.push_back(std::move(pk));
        out.push_back(std::move(busy));
        out.push_back(std::move(ws_wrong));
        out.push_back(std::move(loops));
        out.push_back(std::move(wrx));
    }
    return out;
}

std::string serialize_metrics(const prometheus::Collectable& c) {
    return prometheus::TextSerializer().Serialize(c.Collect());
}

}  // namespace closetap
