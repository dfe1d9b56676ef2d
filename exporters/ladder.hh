// The teardown ladder: one conn log record (JSON, exporters/conn_log.hh) drawn the way an
// engineer reads a close in Wireshark's flow graph, orig on the left, resp on the right, one
// line per wave, then the classification and the one-line reason for it. Pure functions of the
// record, so `closetap explain` and the unit tests draw exactly the same text. docs/explain.md.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace closetap {

struct LadderStyle {
    bool color = false;  // ANSI colours (a terminal); plain text when piped
};

// "10.0.0.1:51302", "[fd77::1]:35513".
std::string endpoint_text(const std::string& addr, unsigned port);

// Why the record has its close (and reason): which ACK matched which FIN, what was missing.
// One line, no trailing newline. Cites waves by number (1-based) when the record has them.
std::string close_reason_line(const nlohmann::ordered_json& rec);

// The whole ladder: endpoints, one line per wave with a note, the summary line and the reason
// line; every line ends with '\n'.
std::string render_ladder(const nlohmann::ordered_json& rec, const LadderStyle& style = {});

}  // namespace closetap
