// Application labels: which service a connection belongs to, from the first payload bytes of each
// direction, matched against the signatures of a YAML file (docs/signatures.md) with Hyperscan.
// Pure C++ apart from Hyperscan: no DPDK, so units and benchmarks run it without EAL.
//
// Life cycle (the model is Suricata's util-mpm-hs.c): the control thread builds one AppClassifier
// at start-up (the databases are compiled once and shared read-only by every worker), then clones
// one AppScratch per worker from the classifier's prototype scratch. On the hot path a worker
// calls classify() with its own scratch; nothing there allocates, throws, locks or logs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct hs_database;
struct hs_scratch;

namespace closetap {

// Label id 0 is "unknown"; signature i (0-based, file order) has id i + 1. The metrics keep a
// fixed [reason][app] array of 32 ids (exporters/stats.hh max_apps); 30 signatures leave id 31
// free so that a later fixed label (say, "no_payload") needs no re-numbering of the file.
inline constexpr uint16_t app_unknown = 0;
inline constexpr unsigned max_app_labels = 32;
inline constexpr unsigned max_app_signatures = 30;
inline constexpr unsigned max_app_ports = 16;  // entries in one signature's `ports` list
inline constexpr uint32_t default_max_scan_bytes = 256;

// Which side's first payload a signature describes. `orig` is the connection's originator
// (client -> server), `resp` the responder.
enum class AppDirection : uint8_t { orig, resp, any };

struct AppSignature {
    std::string name;     // snake_case, the `app` label value
    std::string pattern;  // Hyperscan (PCRE subset) regex over the first payload bytes
    AppDirection direction = AppDirection::any;
    bool caseless = false;
    bool dotall = false;
    int32_t priority = 100;       // lower wins; ties go to the earlier signature
    std::vector<uint16_t> ports;  // server (responder) ports it is limited to; empty = all
    unsigned line = 0;            // 1-based line in the file, for messages
};

// One worker's Hyperscan scratch. Move-only; a scratch must not be used by two threads at once,
// which one-per-worker guarantees without a lock.
class AppScratch {
public:
    AppScratch() = default;
    AppScratch(AppScratch&& o) noexcept;
    AppScratch& operator=(AppScratch&& o) noexcept;
    AppScratch(const AppScratch&) = delete;
    AppScratch& operator=(const AppScratch&) = delete;
    ~AppScratch();

    // hs_scan failures (never expected: a corrupt database or a scratch used from two threads).
    // Written by the owning worker only, readable by the exporter at any time.
    uint64_t scan_errors() const noexcept { return errors_.load(std::memory_order_relaxed); }
    uint64_t scans() const noexcept { return scans_.load(std::memory_order_relaxed); }

private:
    friend class AppClassifier;
    explicit AppScratch(hs_scratch* s) noexcept : s_(s) {}
    void bump(std::atomic<uint64_t>& c) noexcept {
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }

    hs_scratch* s_ = nullptr;
    std::atomic<uint64_t> scans_{0};
    std::atomic<uint64_t> errors_{0};
};

struct AppClassifierOptions {
    // Bytes of each first payload that are scanned. 0: the file's `max_scan_bytes`, else 256.
    uint32_t max_scan_bytes = 0;
};

class AppClassifier {
public:
    // Reads and compiles a signature file. Throws std::runtime_error with one line naming the
    // file (and the signature, its index, line and the YAML or Hyperscan message) on any problem.
    static AppClassifier from_file(const std::string& path, AppClassifierOptions opt = {});
    // The same from YAML text; `source` stands for the file name in messages.
    static AppClassifier from_yaml_string(std::string_view yaml,
                                          std::string_view source = "<string>",
                                          AppClassifierOptions opt = {});

    AppClassifier(AppClassifier&&) noexcept;
    AppClassifier& operator=(AppClassifier&&) noexcept;
    ~AppClassifier();

    // Label values by id: [0] = "unknown", [i + 1] = signature i's name.
    const std::vector<std::string>& names() const noexcept { return names_; }
    const std::vector<AppSignature>& signatures() const noexcept { return sigs_; }
    uint32_t max_scan_bytes() const noexcept { return max_scan_; }

    // A scratch for one worker, cloned from the prototype. Start-up only: it allocates.
    AppScratch make_scratch() const;

    // The hot path. Scans the first max_scan_bytes() bytes of one direction's first payload and
    // returns the id of the best signature that matched and fits the direction and server port
    // (lowest priority value, then file order), or app_unknown. `server_port` is the responder's
    // port whichever side sent the payload.
    uint16_t classify(AppScratch& scratch, bool from_orig, uint16_t server_port,
                      const uint8_t* payload, uint32_t len) const noexcept;

private:
    struct Rule;  // per-signature data the match callback reads
    struct Db;    // one compiled database and its id -> signature map
    AppClassifier();

    std::vector<AppSignature> sigs_;
    std::vector<std::string> names_;
    std::unique_ptr<Rule[]> rules_;
    // Two databases, one per direction (orig + any, resp + any), so that the direction filter
    // costs nothing at scan time and a payload only runs the automaton that can match it.
    std::unique_ptr<Db> db_[2];
    hs_scratch* proto_ = nullptr;  // prototype, sized for both databases; cloned per worker
    uint32_t max_scan_ = default_max_scan_bytes;
};

// Where the signature file is looked for, in order: $CLOSETAP_SIGNATURES alone when set (an
// explicit choice that does not exist is an error, not a reason to fall back), else
// `<exe dir>/../deploy/signatures.yaml` (a build tree or an unpacked release), else
// /etc/closetap/signatures.yaml. `exe_path` empty: /proc/self/exe.
std::vector<std::string> signature_search_paths(const std::string& exe_path = {});
// The first of those that exists; throws std::runtime_error naming every path tried.
std::string find_signature_file(const std::string& exe_path = {});

}  // namespace closetap
