// Prometheus exposition of closetap's counters. A prometheus::Collectable that sums the
// per-worker counters when it is collected: workers never touch prometheus-cpp objects, and a
// scrape costs the workers nothing. The same collector feeds the live /metrics endpoint and the
// final --metrics-file.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "exporters/stats.hh"

namespace closetap {

// Drop counters a port keeps itself (DPDK's rte_eth_stats), read at collection time.
struct PortDrops {
    uint64_t imissed = 0;    // the NIC had no room: packets lost before closetap saw them
    uint64_t rx_nombuf = 0;  // no mbuf to receive into
    uint64_t ierrors = 0;    // frames the port rejected (bad CRC, runts; net_pcap: read errors)
    uint64_t dispatch_full = 0;  // the dispatcher found the flow's worker ring full (live only)
};

struct MetricsSources {
    std::vector<const WorkerStats*> workers;
    std::vector<std::string> port_names;                 // index = port slot in WorkerStats
    std::function<PortDrops(size_t port)> port_drops;    // may be empty (tests)
    std::vector<std::string> app_names = {"unknown"};    // index = app id
    std::string version;
    const ControlStats* control = nullptr;               // may be null (tests)
};

class MetricsCollector : public prometheus::Collectable {
public:
    explicit MetricsCollector(MetricsSources src) : src_(std::move(src)) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    MetricsSources src_;
};

// Text exposition format of everything the collector returns.
std::string serialize_metrics(const prometheus::Collectable& c);

}  // namespace closetap
