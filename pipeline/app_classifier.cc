#include "pipeline/app_classifier.hh"

#include <hs/hs.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

namespace closetap {

struct AppClassifier::Rule {
    int32_t priority;
    uint16_t nports;
    uint16_t ports[max_app_ports];
};

struct AppClassifier::Db {
    hs_database_t* db = nullptr;
    // The (priority, index) of the best signature in this database: once it has matched (and
    // passed its port check) nothing later in the buffer can beat it, so the scan stops early.
    uint64_t best_key = std::numeric_limits<uint64_t>::max();
    ~Db() { hs_free_database(db); }
};

namespace {

// Orders matches: lower priority value first, then file order. Priority is biased into the
// unsigned range so that negative priorities sort before positive ones.
inline uint64_t rank(int32_t priority, uint32_t index) noexcept {
    return (uint64_t(uint32_t(priority) ^ 0x80000000u) << 32) | index;
}

// Messages end start-up as one line: YAML and Hyperscan texts may carry newlines.
std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

class FileError {
public:
    explicit FileError(std::string_view source) : source_(source) {}

    [[noreturn]] void fail(const YAML::Node& at, const std::string& what) const {
        fail_line(at.Mark().line >= 0 ? unsigned(at.Mark().line) + 1 : 0, what);
    }
    [[noreturn]] void fail_line(unsigned line, const std::string& what) const {
        std::string msg = source_;
        if (line != 0) msg += ":" + std::to_string(line);
        throw std::runtime_error(one_line(msg + ": " + what));
    }
    [[noreturn]] void fail_sig(const YAML::Node& at, size_t index, const std::string& name,
                               const std::string& what) const {
        fail(at, sig_label(index, name) + ": " + what);
    }
    static std::string sig_label(size_t index, const std::string& name) {
        std::string s = "signature " + std::to_string(index);
        if (!name.empty()) s += " '" + name + "'";
        return s;
    }

private:
    std::string source_;
};

bool is_snake_case(const std::string& s) {
    if (s.empty() || s.size() > 48 || !(s[0] >= 'a' && s[0] <= 'z')) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return s.back() != '_' && s.find("__") == std::string::npos;
}

template <typename T>
T scalar(const FileError& err, const YAML::Node& n, size_t index, const std::string& name,
         const char* key, const char* expect) {
    if (!n.IsScalar()) err.fail_sig(n, index, name, std::string(key) + " must be " + expect);
    try {
        return n.as<T>();
    } catch (const YAML::Exception&) {
        err.fail_sig(n, index, name,
                     std::string(key) + " must be " + expect + ", not '" + n.Scalar() + "'");
    }
}

AppSignature parse_signature(const FileError& err, const YAML::Node& n, size_t index) {
    if (!n.IsMap()) err.fail_sig(n, index, "", "a signature is a map (name, pattern, ...)");
    AppSignature s;
    s.line = n.Mark().line >= 0 ? unsigned(n.Mark().line) + 1 : 0;
    // The name first, so that every later message can name the signature.
    if (const YAML::Node v = n["name"])
        s.name = scalar<std::string>(err, v, index, "", "name", "a string");
    if (s.name.empty()) err.fail_sig(n, index, "", "missing name");
    if (!is_snake_case(s.name))
        err.fail_sig(n, index, s.name, "name must be snake_case ([a-z][a-z0-9_]*, at most 48)");
    if (s.name == "unknown") err.fail_sig(n, index, s.name, "'unknown' is reserved for id 0");

    for (const auto& kv : n) {
        const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
        const YAML::Node& v = kv.second;
        if (key == "name") {
            continue;
        } else if (key == "pattern") {
            s.pattern = scalar<std::string>(err, v, index, s.name, "pattern", "a string");
        } else if (key == "direction") {
            const std::string d =
                scalar<std::string>(err, v, index, s.name, "direction", "a string");
            if (d == "orig")
                s.direction = AppDirection::orig;
            else if (d == "resp")
                s.direction = AppDirection::resp;
            else if (d == "any")
                s.direction = AppDirection::any;
            else
                err.fail_sig(v, index, s.name,
                             "direction must be orig, resp or any, not '" + d + "'");
        } else if (key == "flags") {
            if (!v.IsSequence())
                err.fail_sig(v, index, s.name, "flags must be a list (caseless, dotall)");
            for (const auto& f : v) {
                const std::string fl =
                    scalar<std::string>(err, f, index, s.name, "a flag", "a string");
                if (fl == "caseless")
                    s.caseless = true;
                else if (fl == "dotall")
                    s.dotall = true;
                else
                    err.fail_sig(f, index, s.name, "unknown flag '" + fl + "' (caseless, dotall)");
            }
        } else if (key == "priority") {
            s.priority = scalar<int32_t>(err, v, index, s.name, "priority", "an integer");
        } else if (key == "ports") {
            if (!v.IsSequence() || v.size() == 0 || v.size() > max_app_ports)
                err.fail_sig(
                    v, index, s.name,
                    "ports must be a list of 1 to " + std::to_string(max_app_ports) + " ports");
            for (const auto& p : v) {
                const int port = scalar<int>(err, p, index, s.name, "a port", "an integer 1-65535");
                if (port < 1 || port > 65535)
                    err.fail_sig(p, index, s.name,
                                 "port " + std::to_string(port) + " is not 1-65535");
                s.ports.push_back(uint16_t(port));
            }
        } else if (key == "description") {
            // Documentation for people reading the file; not used.
        } else {
            err.fail_sig(kv.first, index, s.name,
                         "unknown key '" + key +
                             "' (name, pattern, direction, flags, priority, ports, description)");
        }
    }
    if (s.pattern.empty()) err.fail_sig(n, index, s.name, "missing pattern");
    return s;
}

}  // namespace

AppScratch::AppScratch(AppScratch&& o) noexcept : s_(o.s_) {
    o.s_ = nullptr;
    scans_.store(o.scans_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    errors_.store(o.errors_.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

AppScratch& AppScratch::operator=(AppScratch&& o) noexcept {
    if (this != &o) {
        hs_free_scratch(s_);
        s_ = o.s_;
        o.s_ = nullptr;
        scans_.store(o.scans_.load(std::memory_order_relaxed), std::memory_order_relaxed);
        errors_.store(o.errors_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    return *this;
}

AppScratch::~AppScratch() {
    hs_free_scratch(s_);
}

AppClassifier::AppClassifier() = default;
AppClassifier::AppClassifier(AppClassifier&& o) noexcept
    : sigs_(std::move(o.sigs_)),
      names_(std::move(o.names_)),
      rules_(std::move(o.rules_)),
      db_{std::move(o.db_[0]), std::move(o.db_[1])},
      proto_(o.proto_),
      max_scan_(o.max_scan_) {
    o.proto_ = nullptr;
}

AppClassifier& AppClassifier::operator=(AppClassifier&& o) noexcept {
    if (this != &o) {
        hs_free_scratch(proto_);
        sigs_ = std::move(o.sigs_);
        names_ = std::move(o.names_);
        rules_ = std::move(o.rules_);
        db_[0] = std::move(o.db_[0]);
        db_[1] = std::move(o.db_[1]);
        proto_ = o.proto_;
        o.proto_ = nullptr;
        max_scan_ = o.max_scan_;
    }
    return *this;
}

AppClassifier::~AppClassifier() {
    hs_free_scratch(proto_);
}

AppClassifier AppClassifier::from_file(const std::string& path, AppClassifierOptions opt) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open the signature file");
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw std::runtime_error(path + ": cannot read the signature file");
    return from_yaml_string(ss.str(), path, opt);
}

AppClassifier AppClassifier::from_yaml_string(std::string_view yaml, std::string_view source,
                                              AppClassifierOptions opt) {
    const FileError err(source);
    YAML::Node root;
    try {
        root.reset(YAML::Load(std::string(yaml)));
    } catch (const YAML::ParserException& e) {
        err.fail_line(e.mark.line >= 0 ? unsigned(e.mark.line) + 1 : 0, "YAML: " + e.msg);
    }

    // Either a plain list of signatures, or a map with `signatures` and `max_scan_bytes`.
    AppClassifier c;
    // yaml-cpp's Node::operator= writes through to the node referred to; reset() rebinds.
    YAML::Node list;
    list.reset(root);
    uint32_t file_scan = 0;
    if (root.IsMap()) {
        list.reset(YAML::Node());
        for (const auto& kv : root) {
            const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
            if (key == "signatures") {
                list.reset(kv.second);
            } else if (key == "max_scan_bytes") {
                int64_t v = -1;
                try {
                    v = kv.second.as<int64_t>();
                } catch (const YAML::Exception&) {
                }
                if (v < 1 || v > 65535) err.fail(kv.second, "max_scan_bytes must be 1-65535");
                file_scan = uint32_t(v);
            } else {
                err.fail(kv.first,
                         "unknown top-level key '" + key + "' (signatures, max_scan_bytes)");
            }
        }
        if (!list) err.fail(root, "no 'signatures' list");
    }
    if (!list.IsSequence()) err.fail(list, "expected a list of signatures");
    if (list.size() == 0) err.fail(list, "the signature list is empty");
    if (list.size() > max_app_signatures)
        err.fail(list, std::to_string(list.size()) + " signatures, at most " +
                           std::to_string(max_app_signatures) + " (label ids are 0-" +
                           std::to_string(max_app_labels - 1) + ", 0 = unknown)");

    c.max_scan_ = opt.max_scan_bytes != 0 ? opt.max_scan_bytes
                  : file_scan != 0        ? file_scan
                                          : default_max_scan_bytes;
    std::set<std::string> seen;
    for (size_t i = 0; i < list.size(); i++) {
        AppSignature s = parse_signature(err, list[i], i);
        if (!seen.insert(s.name).second)
            err.fail_sig(list[i], i, s.name, "duplicate name (names are label values: one each)");
        c.sigs_.push_back(std::move(s));
    }

    c.names_.push_back("unknown");
    c.rules_ = std::make_unique<Rule[]>(c.sigs_.size());
    for (size_t i = 0; i < c.sigs_.size(); i++) {
        const AppSignature& s = c.sigs_[i];
        c.names_.push_back(s.name);
        Rule& r = c.rules_[i];
        r.priority = s.priority;
        r.nports = uint16_t(s.ports.size());
        std::copy(s.ports.begin(), s.ports.end(), r.ports);
    }

    // Compile each direction's database. Hyperscan ids are signature indexes, so a match maps
    // straight onto rules_ and names_ without a table per database.
    for (int d = 0; d < 2; d++) {
        const AppDirection want = d == 0 ? AppDirection::orig : AppDirection::resp;
        std::vector<const char*> exprs;
        std::vector<unsigned> flags, ids;
        auto db = std::make_unique<Db>();
        for (size_t i = 0; i < c.sigs_.size(); i++) {
            const AppSignature& s = c.sigs_[i];
            if (s.direction != want && s.direction != AppDirection::any) continue;
            exprs.push_back(s.pattern.c_str());
            // SINGLEMATCH: the first match of a signature is all the label needs, and it lets
            // Hyperscan stop tracking that expression.
            flags.push_back(HS_FLAG_SINGLEMATCH | (s.caseless ? HS_FLAG_CASELESS : 0u) |
                            (s.dotall ? HS_FLAG_DOTALL : 0u));
            ids.push_back(unsigned(i));
            db->best_key = std::min(db->best_key, rank(s.priority, uint32_t(i)));
        }
        if (exprs.empty()) continue;  // no signature for this direction: classify returns 0
        hs_compile_error_t* ce = nullptr;
        hs_error_t rc =
            hs_compile_multi(exprs.data(), flags.data(), ids.data(), unsigned(exprs.size()),
                             HS_MODE_BLOCK, nullptr, &db->db, &ce);
        if (rc != HS_SUCCESS) {
            std::string msg =
                ce != nullptr && ce->message != nullptr ? ce->message : "unknown error";
            int expr = ce != nullptr ? ce->expression : -1;
            hs_free_compile_error(ce);
            if (expr >= 0 && size_t(expr) < ids.size()) {
                const AppSignature& s = c.sigs_[ids[size_t(expr)]];
                err.fail_line(s.line, FileError::sig_label(ids[size_t(expr)], s.name) +
                                          ": pattern does not compile: Hyperscan: " + msg);
            }
            err.fail_line(0, "signatures do not compile: Hyperscan: " + msg);
        }
        rc = hs_alloc_scratch(db->db, &c.proto_);
        if (rc != HS_SUCCESS)
            err.fail_line(0,
                          "cannot allocate Hyperscan scratch (error " + std::to_string(rc) + ")");
        c.db_[d] = std::move(db);
    }
    return c;
}

AppScratch AppClassifier::make_scratch() const {
    hs_scratch_t* s = nullptr;
    if (proto_ != nullptr && hs_clone_scratch(proto_, &s) != HS_SUCCESS)
        throw std::runtime_error("cannot clone the Hyperscan scratch for a worker");
    return AppScratch(s);
}

uint16_t AppClassifier::classify(AppScratch& scratch, bool from_orig, uint16_t server_port,
                                 const uint8_t* payload, uint32_t len) const noexcept {
    const Db* d = db_[from_orig ? 0 : 1].get();
    if (d == nullptr || len == 0 || payload == nullptr || scratch.s_ == nullptr) return app_unknown;
    struct MatchCtx {
        const Rule* rules;
        uint64_t best;
        uint64_t stop_at;
        uint16_t port;
    } ctx{rules_.get(), std::numeric_limits<uint64_t>::max(), d->best_key, server_port};
    // Hyperscan reports matches by end offset, not by priority: keep the best so far.
    auto on_match = [](unsigned id, unsigned long long, unsigned long long, unsigned,
                       void* p) -> int {
        MatchCtx& m = *static_cast<MatchCtx*>(p);
        const Rule& r = m.rules[id];
        if (r.nports != 0) {
            bool ok = false;
            for (unsigned k = 0; k < r.nports; k++) ok |= r.ports[k] == m.port;
            if (!ok) return 0;
        }
        const uint64_t key = rank(r.priority, id);
        if (key < m.best) m.best = key;
        return m.best == m.stop_at ? 1 : 0;  // non-zero: nothing can beat it, stop the scan
    };
    const uint32_t n = len < max_scan_ ? len : max_scan_;
    scratch.bump(scratch.scans_);
    const hs_error_t rc =
        hs_scan(d->db, reinterpret_cast<const char*>(payload), n, 0, scratch.s_, on_match, &ctx);
    if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) {
        scratch.bump(scratch.errors_);
        return app_unknown;
    }
    if (ctx.best == std::numeric_limits<uint64_t>::max()) return app_unknown;
    return uint16_t((ctx.best & 0xffffffffu) + 1);
}

std::vector<std::string> signature_search_paths(const std::string& exe_path) {
    if (const char* env = std::getenv("CLOSETAP_SIGNATURES"); env != nullptr && *env != '\0')
        return {env};
    std::vector<std::string> out;
    std::error_code ec;
    std::filesystem::path exe = exe_path.empty()
                                    ? std::filesystem::read_symlink("/proc/self/exe", ec)
                                    : std::filesystem::path(exe_path);
    if (!ec && !exe.empty())
        out.push_back((exe.parent_path() / ".." / "deploy" / "signatures.yaml").lexically_normal());
    out.push_back("/etc/closetap/signatures.yaml");
    return out;
}

std::string find_signature_file(const std::string& exe_path) {
    const std::vector<std::string> paths = signature_search_paths(exe_path);
    std::string tried;
    for (const std::string& p : paths) {
        std::error_code ec;
        if (std::filesystem::is_regular_file(p, ec)) return p;
        tried += (tried.empty() ? "" : ", ") + p;
    }
    throw std::runtime_error("no signature file (tried " + tried + ")");
}

}  // namespace closetap
