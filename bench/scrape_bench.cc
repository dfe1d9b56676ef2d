// Scrape cost: what one Prometheus scrape costs the control thread (never the workers) at the
// series count of a large deployment: N workers, P ports, every app label populated.
// closetap-scrape-bench [workers=16] [ports=4] [apps=31] [iterations=200]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "exporters/metrics.hh"

using namespace closetap;

int main(int argc, char** argv) {
    unsigned workers = argc > 1 ? std::atoi(argv[1]) : 16;
    unsigned ports = argc > 2 ? std::atoi(argv[2]) : 4;
    unsigned apps = argc > 3 ? std::atoi(argv[3]) : 31;
    unsigned iters = argc > 4 ? std::atoi(argv[4]) : 200;
    std::vector<WorkerStats> ws(workers);
    MetricsSources src;
    for (auto& w : ws) {
        // Every (reason, app) series non-zero so that none is elided: the worst case.
        for (size_t r = 0; r < count_of<Reason>; r++)
            for (unsigned a = 0; a < apps && a < max_apps; a++) w.abnormal[r][a].add(1);
        for (size_t c = 0; c < count_of<Close>; c++)
            for (size_t i = 0; i < count_of<Initiator>; i++) w.closes[c][i].add(1);
        src.workers.push_back(&w);
    }
    for (unsigned p = 0; p < ports; p++) src.port_names.push_back("0000:3b:00." + std::to_string(p));
    src.app_names.push_back("unknown");
    for (unsigned a = 1; a < apps; a++) src.app_names.push_back("app_" + std::to_string(a));
    src.port_drops = [](size_t) { return PortDrops{}; };
    src.version = "bench";
    MetricsCollector c(src);

    std::vector<double> us;
    size_t bytes = 0, series = 0;
    for (unsigned i = 0; i < iters; i++) {
        auto t0 = std::chrono::steady_clock::now();
        std::string text = serialize_metrics(c);
        auto t1 = std::chrono::steady_clock::now();
        us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        bytes = text.size();
        series = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) -
                 2 * c.Collect().size();  // minus the HELP and TYPE lines
    }
    std::sort(us.begin(), us.end());
    std::printf("RESULT scrape workers=%u ports=%u apps=%u series=%zu bytes=%zu "
                "median_us=%.0f p10_us=%.0f p90_us=%.0f\n",
                workers, ports, apps, series, bytes, us[us.size() / 2], us[us.size() / 10],
                us[us.size() * 9 / 10]);
    return 0;
}
