// File: parallelism.cpp
#include "tixport/common/parallelism.hpp"

#include <oneapi/tbb/info.h>

#include <algorithm>

namespace tixport {

unsigned resolve_threads(unsigned requested) noexcept {
  if (requested == 0) return static_cast<unsigned>(std::max(1, oneapi::tbb::info::default_concurrency()));
  return std::min(requested, kMaxThreads);
}

parallelism::parallelism(unsigned requested)
    : threads_(resolve_threads(requested)),
      limit_(oneapi::tbb::global_control::max_allowed_parallelism, threads_),
      arena_(static_cast<int>(threads_)) {}

}  // namespace tixport
