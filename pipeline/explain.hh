// `closetap explain`: the teardown ladder of chosen connections of a capture, drawn in the
// terminal (docs/explain.md). It runs this same binary's offline replay on the capture, reads the
// conn log records it wrote, and draws them with exporters/ladder.hh: what it shows is exactly
// what the pipeline concluded.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace closetap {

// --conn ADDR:PORT-ADDR:PORT (either order; IPv6 as [addr]:port). Addresses in conn log text.
struct ConnFilter {
    std::string a_host, b_host;
    unsigned a_port = 0, b_port = 0;
};
// Throws std::invalid_argument naming the problem.
ConnFilter parse_conn_filter(const std::string& text);

// argv[0] is "explain". Returns the exit code: 0, 1 (replay or input failed, or --conn matched
// nothing), 2 (usage).
int explain_main(int argc, char** argv);

}  // namespace closetap
