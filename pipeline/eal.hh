// EAL start and stop. Errors become exceptions with DPDK's message; main turns them into one line.
#pragma once

#include <string>
#include <vector>

namespace closetap {

void start_eal(const std::vector<std::string>& args);  // throws std::runtime_error
void stop_eal() noexcept;

}  // namespace closetap
