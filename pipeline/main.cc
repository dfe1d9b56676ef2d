// closetap: watches TCP connections end. The control thread (main lcore) sets up EAL, ports and
// workers, writes the conn log from the workers' record rings, serves metrics, and decides when
// an offline replay has seen its whole capture.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <thread>

#include <prometheus/exposer.h>

#include "exporters/conn_log.hh"
#include "exporters/metrics.hh"
#include "exporters/summary.hh"
#include "pipeline/config_file.hh"
#include "pipeline/eal.hh"
#include "pipeline/explain.hh"
#include "pipeline/options.hh"
#include "pipeline/pcap_probe.hh"
#include "pipeline/port.hh"
#include "pipeline/worker.hh"

using namespace closetap;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

[[noreturn]] void die(int code, const std::string& msg) {
    std::fprintf(stderr, "closetap: error: %s\n", msg.c_str());
    std::exit(code);
}

// A file named by configuration that closetap reads (--config, --signatures): it must be a
// readable regular file; a directory or a missing file is one line naming it.
void check_input_file(const char* what, const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw std::runtime_error(std::string("cannot read ") + what + " " + path + ": " +
                                 std::strerror(errno));
    if (S_ISDIR(st.st_mode))
        throw std::runtime_error(std::string(what) + " " + path + " is a directory, not a file");
    if (::access(path.c_str(), R_OK) != 0)
        throw std::runtime_error(std::string("cannot read ") + what + " " + path + ": " +
                                 std::strerror(errno));
}

uint64_t wall_us() {
    timeval tv;
    gettimeofday(&tv, nullptr);
    return uint64_t(tv.tv_sec) * 1000000u + uint64_t(tv.tv_usec);
}

// The control thread's writers: every record the workers conclude goes to the conn log, and
// the abnormal ones to the event log.
struct Writers {
    ConnLogWriter conn_log;
    EventWriter events;
    ControlStats stats;
    std::vector<std::string> apps;

    void publish() {
        stats.log_written.set(conn_log.written());
        stats.log_errors.set(conn_log.write_errors());
        stats.events_written.set(events.written());
        stats.events_suppressed.set(events.suppressed());
        stats.events_errors.set(events.write_errors());
    }
};

size_t drain(std::vector<std::unique_ptr<Worker>>& workers, Writers& out) {
    ConnRecord recs[64];
    size_t total = 0;
    for (auto& w : workers) {
        unsigned n;
        while ((n = rte_ring_sc_dequeue_burst_elem(w->records, recs, sizeof(ConnRecord), 64, nullptr)) > 0) {
            for (unsigned i = 0; i < n; i++) {
                out.conn_log.write(recs[i], out.apps);
                out.events.offer(recs[i], out.apps);
            }
            total += n;
        }
    }
    if (total) out.publish();
    return total;
}

}  // namespace

int main(int argc, char** argv) {
    // `closetap explain ...`: the teardown ladder (pipeline/explain.hh); it re-runs this binary.
    if (argc > 1 && std::strcmp(argv[1], "explain") == 0) return explain_main(argc - 1, argv + 1);
    SplitArgs split = split_args(argc, argv);
    Options opt;
    try {
        // --config FILE (YAML, deploy/closetap.yaml) becomes the equivalent arguments, checked
        // by the same CLI11 rules; the command line overrides what it names.
        std::string cfg_path = take_config_path(split.app);
        if (cfg_path.empty()) cfg_path = take_config_path(split.eal);
        if (!cfg_path.empty()) {
            check_input_file("configuration file", cfg_path);
            ConfigArgs cfg = config_to_args(cfg_path);
            try {
                (void)parse_options(cfg.app);
            } catch (const UsageError& e) {
                throw UsageError(cfg.explain(e.what()));
            }
            split.eal = merge_eal_args(cfg.eal, split.eal);
            split.app = merge_app_args(cfg.app, split.app);
        }
        opt = parse_options(split.app);
    } catch (const HelpRequested& h) {
        std::fputs(h.text.c_str(), stdout);
        return 0;
    } catch (const UsageError& e) {
        die(2, e.what());
    } catch (const std::runtime_error& e) {
        die(2, e.what());
    }
    const bool offline = !opt.pcaps.empty();
    if (!offline && split.eal.empty())
        die(2, "no input: give --pcap FILE, or DPDK ports as EAL arguments before -- "
               "(see closetap --help and README.md)");

    // Everything that can fail on bad input fails here, before EAL and before any packet.
    // The capture behind each net_pcapN port, by port name.
    std::map<std::string, LinkType> pcap_link;
    uint64_t pcap_packets = 0;
    for (size_t i = 0; i < opt.pcaps.size(); i++) {
        const std::string& f = opt.pcaps[i];
        PcapInfo info;
        try {
            info = probe_pcap(f);
        } catch (const std::exception& e) {
            die(1, e.what());
        }
        if (!is_supported_link(info.linktype))
            die(1, "capture " + f + " has link type " + std::to_string(info.linktype) +
                       ", which closetap does not read (Ethernet, raw IP, BSD loopback, Linux SLL/SLL2)");
        pcap_link["net_pcap" + std::to_string(i)] = static_cast<LinkType>(info.linktype);
        pcap_packets += info.packets;
    }
    Writers out;
    std::FILE* metrics_file = nullptr;
    try {
        if (!opt.conn_log.empty()) out.conn_log.open(opt.conn_log);
        if (!opt.events.empty()) out.events.open(opt.events, opt.events_rate, opt.events_burst);
    } catch (const std::exception& e) {
        die(1, e.what());
    }
    if (!opt.metrics_file.empty()) {
        try {
            const int fd = open_output_file(opt.metrics_file, "metrics file");
            metrics_file = fdopen(fd, "w");
            if (metrics_file == nullptr) {
                ::close(fd);
                die(1, "cannot open metrics file " + opt.metrics_file + ": " + std::strerror(errno));
            }
        } catch (const std::exception& e) {
            die(1, e.what());
        }
    }
    std::unique_ptr<AppClassifier> apps;
    if (opt.signatures != "none") {
        try {
            std::string path = opt.signatures.empty() ? find_signature_file() : opt.signatures;
            check_input_file("signature file", path);
            AppClassifierOptions ao;
            ao.max_scan_bytes = opt.app_scan_bytes;
            apps = std::make_unique<AppClassifier>(AppClassifier::from_file(path, ao));
        } catch (const std::exception& e) {
            die(1, e.what());
        }
    }
    static_assert(max_app_signatures + 1 <= max_apps, "every label id needs a metrics slot");
    std::unique_ptr<prometheus::Exposer> exposer;
    if (!opt.metrics_addr.empty()) {
        try {
            // civetweb serves each connection on one of its threads. A client that connects and
            // never finishes its request holds a thread until request_timeout_ms, so the timeout
            // is short (a scrape is one small GET) and there are a few threads; none of this
            // touches the workers, which never wait for the control thread or the exporter.
            exposer = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
                "listening_ports", opt.metrics_addr, "num_threads", "4", "request_timeout_ms",
                "2000", "linger_timeout_ms", "0", "enable_keep_alive", "no"});
        } catch (const std::exception& e) {
            die(1, "cannot serve metrics on " + opt.metrics_addr + ": " + e.what());
        }
    }

    std::vector<std::string> notes;
    HostFacts host = probe_host();
    std::vector<std::string> eal_args = build_eal_args(argv[0], split.eal, opt, host, notes);
    std::vector<PortInfo> ports;
    std::vector<std::unique_ptr<Worker>> workers;
    std::unique_ptr<Dispatcher> dispatcher;
    RxTimestamp ts;
    try {
        start_eal(eal_args);
        ts = register_rx_timestamp();
        const unsigned nw = opt.workers;
        // The pool must cover every place a packet can wait: the rx rings, each worker's burst
        // pipeline (burst_pipeline_depth bursts) and mempool cache, and the dispatch rings.
        const unsigned ring_size = 1024;
        const unsigned held = nw * opt.rx_desc + nw * (burst_pipeline_depth * opt.burst + 512) +
                              (nw > 1 ? nw * ring_size + 4096 : 0u);
        const unsigned mbufs = std::max(opt.mbufs, held);
        ports = setup_ports(opt, nw, mbufs, notes);
        const bool queue_mode = nw > 1 && ports[0].rx_queues == nw;
        const bool dispatch_mode = nw > 1 && !queue_mode;

        std::vector<unsigned> lcores;
        for (unsigned l = rte_get_next_lcore(-1, 1, 0); l < RTE_MAX_LCORE; l = rte_get_next_lcore(l, 1, 0))
            lcores.push_back(l);
        if (lcores.size() < nw + (dispatch_mode ? 1 : 0))
            throw std::runtime_error("--workers " + std::to_string(nw) + " needs " +
                                     std::to_string(nw + (dispatch_mode ? 1 : 0)) +
                                     " lcores besides the main one; EAL has " + std::to_string(lcores.size()));
        // With a dispatch stage it takes the first lcore after main, the workers the next ones.
        size_t next = dispatch_mode ? 1 : 0;
        if (dispatch_mode) {
            dispatcher = std::make_unique<Dispatcher>();
            dispatcher->lcore = lcores[0];
            dispatcher->burst = opt.burst;
            dispatcher->lossless = offline;
            dispatcher->ts = ts;
            dispatcher->nb_workers = nw;
        }
        for (unsigned k = 0; k < nw; k++) {
            auto w = std::make_unique<Worker>();
            w->id = k;
            w->lcore = lcores[next++];
            w->burst = opt.burst;
            w->lossless = offline;
            w->ts = ts;
            w->tsc_hz = rte_get_tsc_hz();
            w->tsc0 = rte_rdtsc();
            w->wall0_us = wall_us();
            for (size_t i = 0; i < ports.size(); i++) {
                WorkerQueue& q = w->queues[w->nb_queues++];
                q.port_id = ports[i].port_id;
                q.queue = static_cast<uint16_t>(queue_mode ? k : 0);
                q.slot = static_cast<uint8_t>(i);
                q.ts_from_mbuf = ports[i].ts_from_mbuf && ts.offset >= 0;
                auto lt = pcap_link.find(ports[i].name);
                q.parse.link = lt != pcap_link.end() ? lt->second : LinkType::ethernet;
                q.parse.verify_checksums = opt.verify_checksums;
                w->queue_of_port[ports[i].port_id & 0xff] = static_cast<uint8_t>(i);
            }
            w->table = std::make_unique<FlowTable>(opt.capacity, opt.timeouts);
            w->stats.flow_capacity.set(opt.capacity);
            const unsigned socket = rte_lcore_to_socket_id(w->lcore);
            w->records = create_record_ring(w->id, socket);
            if (apps) {
                w->apps = apps.get();
                w->app_scratch = apps->make_scratch();
            }
            if (dispatch_mode) {
                w->in_ring = create_packet_ring(k, socket, ring_size);
                w->nb_shards = nw;
                dispatcher->rings[k] = w->in_ring;
                if (k == 0) {
                    dispatcher->queues = w->queues;
                    dispatcher->nb_queues = w->nb_queues;
                    dispatcher->queue_of_port = w->queue_of_port;
                }
            }
            workers.push_back(std::move(w));
        }
    } catch (const std::bad_alloc&) {
        die(1, "not enough memory for a flow table of " + std::to_string(opt.capacity) +
                   " flows (lower --flows)");
    } catch (const std::exception& e) {
        die(1, e.what());
    }

    MetricsSources src;
    for (auto& w : workers) src.workers.push_back(&w->stats);
    for (auto& p : ports) src.port_names.push_back(p.name);
    src.port_drops = [&ports, &dispatcher](size_t i) {
        PortDrops d = read_port_drops(ports[i]);
        if (dispatcher) d.dispatch_full = dispatcher->ring_full[i].get();
        return d;
    };
    src.version = "0.1.0";
    if (apps) src.app_names = apps->names();
    out.apps = src.app_names;
    src.control = &out.stats;
    auto collector = std::make_shared<MetricsCollector>(src);
    if (exposer) exposer->RegisterCollectable(collector);

    if (!opt.quiet) {
        for (auto& n : notes) std::fprintf(stderr, "closetap: %s\n", n.c_str());
        for (auto& p : ports)
            std::fprintf(stderr, "closetap: port %s (%s): %u rx queue(s), packet time from %s\n",
                         p.name.c_str(), p.driver.c_str(), unsigned(p.rx_queues),
                         p.ts_from_mbuf && ts.offset >= 0 ? "the capture" : "the TSC");
        for (size_t i = 0; i < opt.pcaps.size(); i++)
            std::fprintf(stderr, "closetap: net_pcap%zu replays %s\n", i, opt.pcaps[i].c_str());
        if (offline)
            std::fprintf(stderr, "closetap: %llu packets to replay\n",
                         static_cast<unsigned long long>(pcap_packets));
    }

    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    auto t_start = std::chrono::steady_clock::now();
    for (auto& w : workers) rte_eal_remote_launch(worker_main, w.get(), w->lcore);
    if (dispatcher) rte_eal_remote_launch(dispatcher_main, dispatcher.get(), dispatcher->lcore);

    // Offline: stop once every packet of the file has been received or dropped by the port.
    // Live: on a signal or after --duration.
    uint64_t last_seen = UINT64_MAX;
    auto last_progress = std::chrono::steady_clock::now();
    const bool show_progress = offline && !opt.quiet && isatty(STDERR_FILENO);
    auto last_shown = last_progress;
    bool progress_shown = false;
    bool stalled = false;
    auto last_flush = last_progress, last_link = last_progress;
    bool log_error_reported = false, events_error_reported = false;
    std::vector<int> link_state(ports.size(), -1);  // -1 unknown, 0 down, 1 up
    auto poll_links = [&](bool report) {
        for (size_t i = 0; i < ports.size() && i < max_ports; i++) {
            const int up = port_link_up(ports[i]);
            if (up < 0) continue;
            if (link_state[i] >= 0 && up != link_state[i]) {
                out.stats.link_changes[i].add();
                if (report)
                    std::fprintf(stderr, "closetap: port %s: link %s\n", ports[i].name.c_str(),
                                 up ? "up" : "down");
            }
            link_state[i] = up;
            out.stats.link_up[i].set(static_cast<uint64_t>(up));
        }
    };
    poll_links(false);
    // A write error is reported once per log, when it first happens; every record it cost is
    // counted (closetap_conn_log_write_errors_total, closetap_events_total{result="error"}).
    auto report_write_errors = [&] {
        if (!log_error_reported && !out.conn_log.first_error().empty()) {
            std::fprintf(stderr, "closetap: error: %s; records that cannot be written are counted "
                                 "in closetap_conn_log_write_errors_total\n",
                         out.conn_log.first_error().c_str());
            log_error_reported = true;
        }
        if (!events_error_reported && !out.events.first_error().empty()) {
            std::fprintf(stderr, "closetap: error: %s; events that cannot be written are counted "
                                 "in closetap_events_total{result=\"error\"}\n",
                         out.events.first_error().c_str());
            events_error_reported = true;
        }
    };
    while (true) {
        size_t n = drain(workers, out);
        auto now = std::chrono::steady_clock::now();
        if (now - last_flush > std::chrono::milliseconds(250)) {
            // Live: records reach the files within a quarter second (the buffer fills first
            // under load).
            out.conn_log.flush();
            out.events.flush();
            out.publish();
            report_write_errors();
            last_flush = now;
        }
        if (!offline && now - last_link > std::chrono::milliseconds(500)) {
            poll_links(true);
            last_link = now;
        }
        if (g_stop.load()) break;
        if (opt.duration_s > 0 && std::chrono::duration<double>(now - t_start).count() >= opt.duration_s)
            break;
        if (offline) {
            uint64_t seen = 0;
            for (auto& w : workers)
                for (auto& c : w->stats.rx_packets) seen += c.get();
            for (size_t i = 0; i < ports.size(); i++) {
                PortDrops d = src.port_drops(i);
                seen += d.imissed + d.rx_nombuf + d.ierrors + d.dispatch_full;
            }
            if (show_progress && now - last_shown > std::chrono::milliseconds(500)) {
                // A long replay on a terminal shows where it is; piped or --quiet, nothing.
                double el = std::chrono::duration<double>(now - t_start).count();
                std::fprintf(stderr, "\rclosetap: %llu / %llu packets (%.0f%%), %.2f Mpps   ",
                             static_cast<unsigned long long>(seen),
                             static_cast<unsigned long long>(pcap_packets),
                             pcap_packets ? 100.0 * double(seen) / double(pcap_packets) : 100.0,
                             el > 0 ? double(seen) / el / 1e6 : 0.0);
                last_shown = now;
                progress_shown = true;
            }
            if (seen >= pcap_packets) break;
            if (seen != last_seen) {
                last_seen = seen;
                last_progress = now;
            } else if (now - last_progress > std::chrono::seconds(10)) {
                stalled = true;
                break;
            }
        }
        if (n == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (progress_shown) std::fputs("\r\033[K", stderr);
    if (dispatcher) {
        // The dispatcher first, so that the workers can empty its rings before they stop.
        dispatcher->stop.store(true, std::memory_order_release);
        while (!dispatcher->stopped.load(std::memory_order_acquire)) drain(workers, out);
    }
    for (auto& w : workers) w->stop_rx.store(true, std::memory_order_release);
    for (auto& w : workers)
        while (!w->rx_stopped.load(std::memory_order_acquire)) drain(workers, out);
    uint64_t flush_ts = 0;
    for (auto& w : workers) flush_ts = std::max(flush_ts, w->stats.max_ts_us.get());
    for (auto& w : workers) {
        w->flush_ts_us.store(flush_ts, std::memory_order_relaxed);
        w->flush_go.store(true, std::memory_order_release);
    }
    for (auto& w : workers)
        while (!w->done.load(std::memory_order_acquire)) drain(workers, out);
    rte_eal_mp_wait_lcore();
    drain(workers, out);
    out.conn_log.flush();
    out.events.flush();
    out.publish();
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

    int rc = 0;
    if (metrics_file != nullptr) {
        std::string text = serialize_metrics(*collector);
        if (std::fwrite(text.data(), 1, text.size(), metrics_file) != text.size() ||
            std::fclose(metrics_file) != 0) {
            std::fprintf(stderr, "closetap: error: cannot write metrics file %s: %s\n",
                         opt.metrics_file.c_str(), std::strerror(errno));
            rc = 1;
        }
    }
    if (!opt.quiet) std::fputs(format_summary(src, elapsed).c_str(), stdout);
    if (stalled)
        std::fprintf(stderr, "closetap: warning: the pcap ports stopped delivering packets before "
                             "the end of the captures\n");
    report_write_errors();
    if (out.conn_log.write_errors() > 0 || out.events.write_errors() > 0) {
        std::fprintf(stderr, "closetap: error: %llu conn log records and %llu events could not be written\n",
                     static_cast<unsigned long long>(out.conn_log.write_errors()),
                     static_cast<unsigned long long>(out.events.write_errors()));
        rc = 1;
    }
    if (!opt.quiet && out.events.suppressed() > 0)
        std::fprintf(stderr, "closetap: %llu abnormal-close events over the rate limit were not written\n",
                     static_cast<unsigned long long>(out.events.suppressed()));
    if (exposer) exposer.reset();
    stop_ports(ports);
    for (auto& w : workers) {
        rte_ring_free(w->records);
        rte_ring_free(w->in_ring);
    }
    workers.clear();
    stop_eal();
    return rc;
}
