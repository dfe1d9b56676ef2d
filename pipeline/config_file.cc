#include "pipeline/config_file.hh"

#include <yaml-cpp/yaml.h>

#include "pipeline/one_line.hh"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <stdexcept>

namespace closetap {

namespace {

// One line: "FILE:LINE: key.path: problem" (LINE 1-based; left out when yaml-cpp has no mark).
struct Reader {
    std::string file;
    ConfigArgs out;

    [[noreturn]] void fail(const YAML::Node& at, const std::string& key, const std::string& msg) const {
        std::string s = file;
        if (at.IsDefined() && at.Mark().line >= 0) s += ":" + std::to_string(at.Mark().line + 1);
        s += ": ";
        if (!key.empty()) s += key + ": ";
        throw std::runtime_error(one_line(s + msg));  // values and keys are quoted as written
    }
    std::string where(const YAML::Node& at, const std::string& key) const {
        std::string s = file;
        if (at.IsDefined() && at.Mark().line >= 0) s += ":" + std::to_string(at.Mark().line + 1);
        return s + ": " + key;
    }
    void app(const std::string& flag, const YAML::Node& at, const std::string& key) {
        out.app.push_back(flag);
        out.origins.push_back({flag, "", where(at, key)});
    }
    void app(const std::string& flag, const std::string& value, const YAML::Node& at, const std::string& key) {
        out.app.push_back(flag);
        out.app.push_back(value);
        out.origins.push_back({flag, value, where(at, key)});
    }

    // Every key of MAP must be one of KNOWN; FN gets each (name, value, key path) whose value is
    // not null (`key:` or `key: ~` is the same as leaving the key out).
    void each(const YAML::Node& map, const std::string& path, std::initializer_list<const char*> known,
              const std::function<void(const std::string&, const YAML::Node&, const std::string&)>& fn) {
        if (!map.IsMap()) fail(map, path.empty() ? "top level" : path, "expected a mapping of keys (key: value)" + got(map));
        std::set<std::string> seen;
        for (auto it = map.begin(); it != map.end(); ++it) {
            // Copies: yaml-cpp's iterator yields a temporary pair, references into it dangle.
            const YAML::Node k = it->first;
            const YAML::Node v = it->second;
            if (!k.IsScalar()) fail(k, path.empty() ? "top level" : path, "keys must be plain names");
            const std::string name = k.Scalar();
            const std::string kp = path.empty() ? name : path + "." + name;
            bool ok = std::any_of(known.begin(), known.end(), [&](const char* n) { return name == n; });
            if (!ok) {
                std::string list;
                for (const char* n : known) list += (list.empty() ? "" : ", ") + std::string(n);
                fail(k, kp, "unknown key (known here: " + list + ")");
            }
            if (!seen.insert(name).second) fail(k, kp, "given twice");
            if (v.IsNull()) continue;
            fn(name, v, kp);
        }
    }

    static bool plain(const YAML::Node& n) { return n.IsScalar() && n.Tag() == "?"; }

    std::string text(const YAML::Node& n, const std::string& key, const std::string& what) const {
        if (!n.IsScalar()) fail(n, key, "expected " + what + got(n));
        const std::string s = n.Scalar();
        if (s.empty()) fail(n, key, "expected " + what + ", got an empty string");
        return s;
    }

    bool boolean(const YAML::Node& n, const std::string& key) const {
        bool b = false;
        if (!plain(n) || !YAML::convert<bool>::decode(n, b))
            fail(n, key, "expected true or false" + got(n));
        return b;
    }

    // A whole number >= MIN (plain scalar, decimal digits).
    uint64_t whole(const YAML::Node& n, const std::string& key, const std::string& what, uint64_t min) const {
        std::string want = "expected " + what + " (a whole number >= " + std::to_string(min) + ")";
        if (!plain(n)) fail(n, key, want + got(n));
        const std::string& s = n.Scalar();
        uint64_t v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < min || v > UINT32_MAX)
            fail(n, key, want + got(n));
        return v;
    }

    // A number > 0 (>= 0 with ZERO_OK), plain scalar.
    double number(const YAML::Node& n, const std::string& key, const std::string& what, bool zero_ok) const {
        std::string want = "expected " + what;
        if (!plain(n)) fail(n, key, want + got(n));
        double v = 0;
        if (!parse_double(n.Scalar(), v) || v < 0 || (!zero_ok && v == 0)) fail(n, key, want + got(n));
        return v;
    }

    // Seconds: a plain number, or a number with a unit (ms, s, m, h, d) as in "30s" or "5m".
    double seconds(const YAML::Node& n, const std::string& key, bool zero_ok) const {
        const std::string want = std::string("expected a number of seconds") + (zero_ok ? " (0 or more)" : " (above 0)") +
                                 " or a duration like 30s, 5m, 1h";
        if (!n.IsScalar()) fail(n, key, want + got(n));
        std::string s = n.Scalar();
        double mult = 1;
        static const std::pair<const char*, double> units[] = {{"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
        bool unit = false;
        for (auto& [u, m] : units) {
            size_t l = std::strlen(u);
            if (s.size() > l && s.compare(s.size() - l, l, u) == 0 && std::isdigit(static_cast<unsigned char>(s[s.size() - l - 1]))) {
                s.resize(s.size() - l);
                mult = m;
                unit = true;
                break;
            }
        }
        double v = 0;
        if ((!unit && !plain(n)) || !parse_double(s, v) || v < 0 || (!zero_ok && v == 0)) fail(n, key, want + got(n));
        return v * mult;
    }

    static bool parse_double(const std::string& s, double& v) {
        if (s.empty()) return false;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        return ec == std::errc() && p == s.data() + s.size() && std::isfinite(v);
    }

    static std::string got(const YAML::Node& n) {
        if (n.IsScalar()) return ", got '" + n.Scalar() + "'";
        if (n.IsSequence()) return ", got a list";
        if (n.IsMap()) return ", got a mapping";
        return "";
    }

    static std::string num(double v) {
        char buf[64];
        auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
        return std::string(buf, ec == std::errc() ? p : buf);
    }

    // --- sections ---

    void ports(const YAML::Node& seq, const std::string& key) {
        if (!seq.IsSequence())
            fail(seq, key, "expected a list of ports, e.g. [{pci: \"0000:3b:00.0\"}, {af_packet: eth1}]");
        const std::string one = "expected one of {pci: ADDRESS}, {vdev: DEVARGS}, {af_packet: IFACE}, {pcap: FILE}";
        unsigned n_af = 0;
        bool live = false, offline = false;
        for (size_t i = 0; i < seq.size(); i++) {
            const YAML::Node p = seq[i];
            const std::string kp = key + "[" + std::to_string(i) + "]";
            if (!p.IsMap() || p.size() != 1) fail(p, kp, one + got(p));
            each(p, kp, {"pci", "vdev", "af_packet", "pcap"}, [&](const std::string& kind, const YAML::Node& v,
                                                                 const std::string& kp2) {
                if (kind == "pci") {
                    std::string a = text(v, kp2, "a PCI address like 0000:3b:00.0");
                    std::string addr = a.substr(0, a.find(','));
                    if (addr.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos ||
                        std::count(addr.begin(), addr.end(), ':') < 1 || addr.find('.') == std::string::npos)
                        fail(v, kp2, "expected a PCI address like 0000:3b:00.0" + got(v));
                    out.eal.push_back("-a");
                    out.eal.push_back(a);
                    live = true;
                } else if (kind == "vdev") {
                    std::string d = text(v, kp2, "DPDK virtual device arguments like net_af_packet0,iface=eth1");
                    if (d.find_first_of(" \t") != std::string::npos) fail(v, kp2, "device arguments have no spaces" + got(v));
                    out.eal.push_back("--vdev");
                    out.eal.push_back(d);
                    live = true;
                } else if (kind == "af_packet") {
                    std::string ifc = text(v, kp2, "an interface name like eth1");
                    if (ifc.find_first_of(", \t=/") != std::string::npos) fail(v, kp2, "expected an interface name like eth1" + got(v));
                    out.eal.push_back("--vdev");
                    out.eal.push_back("net_af_packet" + std::to_string(n_af++) + ",iface=" + ifc);
                    live = true;
                } else {
                    app("--pcap", text(v, kp2, "the path of a capture file"), v, kp2);
                    offline = true;
                }
            });
            if (p.begin()->second.IsNull()) fail(p, kp, one);
        }
        if (live && offline) fail(seq, key, "pcap files (an offline replay) cannot be mixed with live ports");
    }

    // EAL lcore ids in the order closetap hands them out: 0 the main (control) lcore, then the
    // dispatch lcore when given, then the workers; each pinned to the CPU the file names.
    void cores(const YAML::Node& m, const std::string& key) {
        int64_t main = -1, dispatch = -1;
        std::vector<uint64_t> workers;
        YAML::Node wnode, dnode;
        each(m, key, {"main", "dispatch", "workers"}, [&](const std::string& k, const YAML::Node& v, const std::string& kp) {
            if (k == "main") {
                main = static_cast<int64_t>(whole(v, kp, "a CPU number", 0));
            } else if (k == "dispatch") {
                dnode = v;
                dispatch = static_cast<int64_t>(whole(v, kp, "a CPU number", 0));
            } else {
                wnode = v;
                if (!v.IsSequence() || v.size() == 0) fail(v, kp, "expected a list of CPU numbers, e.g. [2, 3]" + got(v));
                for (size_t i = 0; i < v.size(); i++) {
                    uint64_t c = whole(v[i], kp + "[" + std::to_string(i) + "]", "a CPU number", 0);
                    if (std::find(workers.begin(), workers.end(), c) != workers.end())
                        fail(v[i], kp + "[" + std::to_string(i) + "]", "CPU " + std::to_string(c) + " is listed twice");
                    workers.push_back(c);
                }
            }
        });
        if (main < 0 && workers.empty() && dispatch < 0) return;
        if (main < 0) fail(m, key, "give main (the control CPU) with workers");
        if (workers.empty()) fail(m, key, "give workers (the polling CPUs) with main");
        if (std::find(workers.begin(), workers.end(), static_cast<uint64_t>(main)) != workers.end())
            fail(wnode, key + ".workers", "CPU " + std::to_string(main) + " is the main CPU; workers need their own");
        if (dispatch >= 0 && (dispatch == main || std::find(workers.begin(), workers.end(), static_cast<uint64_t>(dispatch)) !=
                                                      workers.end()))
            fail(dnode, key + ".dispatch", "CPU " + std::to_string(dispatch) + " is already main or a worker");
        std::string l = "0@" + std::to_string(main);
        unsigned id = 1;
        if (dispatch >= 0) l += "," + std::to_string(id++) + "@" + std::to_string(dispatch);
        for (auto w : workers) l += "," + std::to_string(id++) + "@" + std::to_string(w);
        out.eal.insert(out.eal.end(), {"--lcores", l});
        app("--workers", std::to_string(workers.size()), wnode, key + ".workers");
    }

    void memory(const YAML::Node& m, const std::string& key) {
        int huge = -1;  // unset
        std::string huge_dir, socket_mem, size;
        YAML::Node at_socket, at_dir, at_size;
        each(m, key, {"hugepages", "huge_dir", "socket_mem_mb", "size_mb"},
             [&](const std::string& k, const YAML::Node& v, const std::string& kp) {
                 if (k == "hugepages") {
                     huge = boolean(v, kp) ? 1 : 0;
                 } else if (k == "huge_dir") {
                     huge_dir = text(v, kp, "the hugetlbfs mount point, e.g. /dev/hugepages");
                     at_dir = v;
                 } else if (k == "socket_mem_mb") {
                     at_socket = v;
                     if (v.IsSequence()) {
                         if (v.size() == 0) fail(v, kp, "expected megabytes per NUMA socket, e.g. [2048, 0]");
                         for (size_t i = 0; i < v.size(); i++)
                             socket_mem += (i ? "," : "") +
                                           std::to_string(whole(v[i], kp + "[" + std::to_string(i) + "]", "megabytes", 0));
                     } else {
                         socket_mem = std::to_string(whole(v, kp, "megabytes on socket 0 (or a list per socket)", 1));
                     }
                 } else {
                     at_size = v;
                     size = std::to_string(whole(v, kp, "megabytes", 1));
                 }
             });
        if (huge == 0 && !socket_mem.empty()) fail(at_socket, key + ".socket_mem_mb", "needs hugepages (hugepages is false)");
        if (huge == 0 && !huge_dir.empty()) fail(at_dir, key + ".huge_dir", "needs hugepages (hugepages is false)");
        if (!socket_mem.empty() && !size.empty())
            fail(at_size, key + ".size_mb", "give either size_mb or socket_mem_mb, not both (EAL refuses -m with --socket-mem)");
        if (huge == 0) out.eal.push_back("--no-huge");
        // hugepages: true must not fall back to --no-huge silently: naming the mount makes EAL
        // fail at start when it holds no free pages.
        if (huge == 1 || !huge_dir.empty())
            out.eal.insert(out.eal.end(), {"--huge-dir", huge_dir.empty() ? "/dev/hugepages" : huge_dir});
        if (!socket_mem.empty()) out.eal.insert(out.eal.end(), {"--socket-mem", socket_mem});
        if (!size.empty()) out.eal.insert(out.eal.end(), {"-m", size});
    }

    void eal(const YAML::Node& m, const std::string& key) {
        each(m, key, {"file_prefix", "extra_args"}, [&](const std::string& k, const YAML::Node& v, const std::string& kp) {
            if (k == "file_prefix") {
                std::string p = text(v, kp, "a runtime-directory name like closetap-tap1");
                if (p.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
                    std::string::npos)
                    fail(v, kp, "expected letters, digits, '-', '_' or '.'" + got(v));
                out.eal.push_back("--file-prefix=" + p);
            } else {
                if (!v.IsSequence()) fail(v, kp, "expected a list of EAL arguments, e.g. [\"--log-level=pmd.net:debug\"]" + got(v));
                for (size_t i = 0; i < v.size(); i++)
                    out.eal.push_back(text(v[i], kp + "[" + std::to_string(i) + "]", "an EAL argument"));
            }
        });
    }

    void signatures(const YAML::Node& v, const std::string& key) {
        if (v.IsScalar()) {
            bool b = true;
            if (plain(v) && YAML::convert<bool>::decode(v, b)) {
                if (b) fail(v, key, "expected a file, 'none' or false (true is the default: leave the key out)");
                app("--signatures", "none", v, key);
            } else {
                app("--signatures", text(v, key, "a signature file"), v, key);
            }
            return;
        }
        if (!v.IsMap()) fail(v, key, "expected a file, 'none', or {file: PATH, scan_bytes: N}" + got(v));
        each(v, key, {"file", "scan_bytes"}, [&](const std::string& k, const YAML::Node& x, const std::string& kp) {
            if (k == "file") signatures(x, kp);
            else app("--app-scan-bytes", std::to_string(whole(x, kp, "a number of payload bytes", 1)), x, kp);
        });
    }

    void translate(const YAML::Node& root) {
        if (root.IsNull()) return;
        each(root, "",
             {"ports", "use_ports", "cores", "memory", "eal", "flow_table", "timeouts", "signatures", "outputs",
              "metrics", "rx", "verify_checksums", "quiet", "duration"},
             [&](const std::string& k, const YAML::Node& v, const std::string& kp) {
                 if (k == "ports") {
                     ports(v, kp);
                 } else if (k == "use_ports") {
                     if (!v.IsSequence()) fail(v, kp, "expected a list of ethdev names, e.g. [\"0000:3b:00.0\"]" + got(v));
                     for (size_t i = 0; i < v.size(); i++) {
                         std::string ik = kp + "[" + std::to_string(i) + "]";
                         app("--port", text(v[i], ik, "an ethdev name"), v[i], ik);
                     }
                 } else if (k == "cores") {
                     cores(v, kp);
                 } else if (k == "memory") {
                     memory(v, kp);
                 } else if (k == "eal") {
                     eal(v, kp);
                 } else if (k == "flow_table") {
                     each(v, kp, {"capacity_per_worker"}, [&](const std::string&, const YAML::Node& x, const std::string& kp2) {
                         app("--flows", std::to_string(whole(x, kp2, "a number of flows", 1)), x, kp2);
                     });
                 } else if (k == "timeouts") {
                     each(v, kp, {"syn_sent", "established", "half_closed", "closed"},
                          [&](const std::string& t, const YAML::Node& x, const std::string& kp2) {
                              const char* flag = t == "syn_sent"      ? "--timeout-syn"
                                                 : t == "established" ? "--timeout-established"
                                                 : t == "half_closed" ? "--timeout-half-closed"
                                                                      : "--timeout-closed";
                              app(flag, num(seconds(x, kp2, false)), x, kp2);
                          });
                 } else if (k == "signatures") {
                     signatures(v, kp);
                 } else if (k == "outputs") {
                     each(v, kp, {"conn_log", "events", "events_rate", "events_burst", "metrics_file"},
                          [&](const std::string& o, const YAML::Node& x, const std::string& kp2) {
                              if (o == "conn_log") app("--conn-log", text(x, kp2, "a file path ('-' for stdout)"), x, kp2);
                              else if (o == "events") app("--events", text(x, kp2, "a file path"), x, kp2);
                              else if (o == "metrics_file") app("--metrics-file", text(x, kp2, "a file path"), x, kp2);
                              else if (o == "events_rate")
                                  app("--events-rate", num(number(x, kp2, "events per second (a number above 0)", false)), x, kp2);
                              else
                                  app("--events-burst", num(number(x, kp2, "a number of events (1 or more)", false)), x, kp2);
                          });
                 } else if (k == "metrics") {
                     each(v, kp, {"listen"}, [&](const std::string&, const YAML::Node& x, const std::string& kp2) {
                         std::string a = text(x, kp2, "ADDR:PORT, e.g. 127.0.0.1:9490");
                         if (a.find_first_of(" \t/") != std::string::npos) fail(x, kp2, "expected ADDR:PORT, e.g. 127.0.0.1:9490" + got(x));
                         app("--metrics", a, x, kp2);
                     });
                 } else if (k == "rx") {
                     each(v, kp, {"burst", "descriptors", "mbufs_per_port"},
                          [&](const std::string& r, const YAML::Node& x, const std::string& kp2) {
                              if (r == "burst") app("--burst", std::to_string(whole(x, kp2, "packets per burst", 1)), x, kp2);
                              else if (r == "descriptors")
                                  app("--rx-desc", std::to_string(whole(x, kp2, "rx descriptors per queue", 1)), x, kp2);
                              else app("--mbufs", std::to_string(whole(x, kp2, "mbufs per port", 1)), x, kp2);
                          });
                 } else if (k == "verify_checksums") {
                     if (boolean(v, kp)) app("--verify-checksums", v, kp);
                 } else if (k == "quiet") {
                     if (boolean(v, kp)) app("--quiet", v, kp);
                 } else {
                     app("--duration", num(seconds(v, kp, true)), v, kp);
                 }
             });
    }
};

bool is_app_flag_without_value(const std::string& f) { return f == "--quiet" || f == "--verify-checksums"; }

// The name a command-line token gives, "" for values: "--flows=5" -> "--flows", "-q" -> "--quiet".
std::string option_name(const std::string& t) {
    if (t == "-q") return "--quiet";
    if (t.size() > 2 && t.compare(0, 2, "--") == 0) return t.substr(0, t.find('='));
    return "";
}

struct EalGroup {
    const char* group;
    std::initializer_list<const char*> names;
};
const EalGroup eal_groups[] = {
    {"lcores", {"-l", "-c", "--lcores", "--main-lcore"}},
    {"devices", {"-a", "--allow", "-b", "--block", "--vdev", "--no-pci"}},
    {"memory", {"--no-huge", "-m", "--socket-mem", "--huge-dir", "--socket-limit"}},
    {"runtime", {"--file-prefix", "--in-memory", "--no-shconf", "--proc-type"}},
};

// Does token T name option N (T == N, "--n=value", or a short option glued to its value)?
bool names(const std::string& t, std::string_view n) {
    if (t == n) return true;
    if (t.size() > n.size() && t.compare(0, n.size(), n) == 0) {
        if (t[n.size()] == '=') return true;
        if (n.size() == 2 && n[1] != '-') return true;  // -l0-3
    }
    return false;
}

const char* eal_group_of(const std::string& t) {
    for (const auto& g : eal_groups)
        for (const char* n : g.names)
            if (names(t, n)) return g.group;
    return nullptr;
}

}  // namespace

ConfigArgs config_to_args(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot read the configuration file: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw std::runtime_error(path + ": cannot read the configuration file: " + std::strerror(errno));
    YAML::Node root;
    try {
        root = YAML::Load(ss.str());
    } catch (const YAML::Exception& e) {
        std::string s = path;
        if (e.mark.line >= 0) s += ":" + std::to_string(e.mark.line + 1);
        throw std::runtime_error(one_line(s + ": not valid YAML: " + e.msg));
    }
    Reader r{path, {}};
    r.out.file = path;
    try {
        r.translate(root);
    } catch (const YAML::Exception& e) {
        std::string s = path;
        if (e.mark.line >= 0) s += ":" + std::to_string(e.mark.line + 1);
        throw std::runtime_error(one_line(s + ": " + e.msg));
    }
    return std::move(r.out);
}

std::string ConfigArgs::explain(const std::string& usage_error) const {
    const Origin* best = nullptr;
    for (const auto& o : origins) {
        if (!names(usage_error, o.flag) && usage_error.compare(0, o.flag.size() + 1, o.flag + " ") != 0 &&
            usage_error.compare(0, o.flag.size() + 1, o.flag + ":") != 0)
            continue;
        if (best == nullptr) best = &o;
        if (!o.value.empty() && usage_error.find(o.value) != std::string::npos) {
            best = &o;
            break;
        }
    }
    if (best != nullptr) return one_line(best->where + ": " + usage_error);
    // Not one of ours: name the file anyway.
    return one_line((file.empty() ? std::string("configuration file") : file) + ": " + usage_error);
}

std::string take_config_path(std::vector<std::string>& args) {
    std::string found;
    bool have = false;
    for (size_t i = 0; i < args.size();) {
        std::string v;
        size_t n = 0;
        if (args[i] == "--config") {
            if (i + 1 >= args.size() || args[i + 1].empty())
                throw std::runtime_error("--config needs the path of a YAML file");
            v = args[i + 1];
            n = 2;
        } else if (args[i].compare(0, 9, "--config=") == 0) {
            v = args[i].substr(9);
            if (v.empty()) throw std::runtime_error("--config needs the path of a YAML file");
            n = 1;
        } else {
            i++;
            continue;
        }
        if (have) throw std::runtime_error("--config given twice");
        have = true;
        found = v;
        args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i + n));
    }
    return found;
}

std::vector<std::string> merge_app_args(const std::vector<std::string>& config, const std::vector<std::string>& cli) {
    std::set<std::string> given;
    for (const auto& t : cli) {
        std::string n = option_name(t);
        if (!n.empty()) given.insert(n);
    }
    std::vector<std::string> out;
    for (size_t i = 0; i < config.size(); i++) {
        const std::string& f = config[i];
        const bool has_value = !is_app_flag_without_value(f) && f.compare(0, 2, "--") == 0 && i + 1 < config.size();
        if (!given.count(f)) {
            out.push_back(f);
            if (has_value) out.push_back(config[i + 1]);
        }
        if (has_value) i++;
    }
    out.insert(out.end(), cli.begin(), cli.end());
    return out;
}

std::vector<std::string> merge_eal_args(const std::vector<std::string>& config, const std::vector<std::string>& cli) {
    std::set<std::string> given;
    for (const auto& t : cli)
        if (const char* g = eal_group_of(t)) given.insert(g);
    // The options config_to_args writes with a separate value token.
    static const std::set<std::string> with_value = {"-l", "--lcores", "--main-lcore", "-a", "--vdev", "-m", "--socket-mem",
                                                     "--huge-dir"};
    std::vector<std::string> out;
    for (size_t i = 0; i < config.size(); i++) {
        const std::string& t = config[i];
        const bool has_value = with_value.count(t) && i + 1 < config.size();
        const char* g = eal_group_of(t);
        if (g == nullptr || !given.count(g)) {
            out.push_back(t);
            if (has_value) out.push_back(config[i + 1]);
        }
        if (has_value) i++;
    }
    out.insert(out.end(), cli.begin(), cli.end());
    return out;
}

}  // namespace closetap
