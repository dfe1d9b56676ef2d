// The short human summary printed at the end of a run.
#pragma once

#include <string>

#include "exporters/metrics.hh"

namespace closetap {

std::string format_summary(const MetricsSources& src, double elapsed_s);

}  // namespace closetap
