// The YAML configuration file (`closetap --config PATH`, docs/deploy.md): translated into the
// argument lists the command line would give, EAL's and closetap's own, so that every value goes
// through the same checks as a flag (CLI11's in options.cc, EAL's own) and the command line can
// override any of it.
//
// This file is pure (yaml-cpp and the standard library): no DPDK, no CLI11.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace closetap {

struct ConfigArgs {
    std::string file;              // the path it was read from
    std::vector<std::string> eal;  // EAL arguments (what goes before `--`)
    std::vector<std::string> app;  // closetap's flags, spelled as `closetap --help` lists them
    // Where each app flag came from: {"--flows", "closetap.yaml:9: flow_table.capacity_per_worker"},
    // one entry per occurrence, in order, with the value that was passed.
    struct Origin {
        std::string flag, value, where;
    };
    std::vector<Origin> origins;

    // A one-line error about the config's app arguments (a UsageError from parse_options(app))
    // rewritten to name the file, the line and the key: "--flows: Value 0 not in range 1 to ..."
    // becomes "closetap.yaml:9: flow_table.capacity_per_worker: --flows: Value 0 not in range ...".
    std::string explain(const std::string& usage_error) const;
};

// Reads PATH and translates it. An empty file (or one with only comments) gives no arguments.
// Throws std::runtime_error with one line "PATH:LINE: key.path: problem" for unreadable files,
// YAML syntax errors, unknown keys, wrong types and values YAML alone shows are wrong (a negative
// count, a string where a number of seconds belongs). Ranges are left to parse_options.
ConfigArgs config_to_args(const std::string& path);

// Removes `--config PATH` or `--config=PATH` from ARGS and returns PATH ("" when absent).
// Throws std::runtime_error for `--config` without a value or given twice.
std::string take_config_path(std::vector<std::string>& args);

// The command line overrides the file. closetap's flags: CLI11 refuses a scalar option given
// twice, so every option the command line names is dropped from the config's part (for the
// repeatable --pcap and --port the command line's list replaces the config's); the result is the
// config's remaining flags, then the command line's.
std::vector<std::string> merge_app_args(const std::vector<std::string>& config,
                                        const std::vector<std::string>& cli);

// EAL arguments, by group: lcores (-l -c --lcores --main-lcore), devices (-a --allow -b --block
// --vdev --no-pci), memory (--no-huge -m --socket-mem --huge-dir --socket-limit) and runtime
// directory (--file-prefix --in-memory --no-shconf --proc-type). A group the command line
// mentions replaces the config's; the config's `eal.extra_args` are always kept.
std::vector<std::string> merge_eal_args(const std::vector<std::string>& config,
                                        const std::vector<std::string>& cli);

}  // namespace closetap
