// Error messages are one line: main prints "closetap: error: <what>" and exits. A value quoted
// from a configuration file or the command line can hold newlines or other control bytes (a
// multi-line YAML scalar, a key in quotes); they are written as C escapes instead.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace closetap {

inline std::string one_line(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c < 0x20 || c == 0x7f) {
            char b[5];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            out += b;
        } else {
            out += ch;
        }
    }
    return out;
}

}  // namespace closetap
