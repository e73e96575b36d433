// File: csv_scan_dispatch.cpp
//
// Which scanner runs: the best this CPU supports, unless a test or benchmark forces one.
#include "csv/csv_scan_internal.hpp"

#include <atomic>
#include <stdexcept>
#include <string>

namespace tixport::csv_internal {

namespace {

bool cpu_has(simd_level level) noexcept {
  switch (level) {
    case simd_level::portable:
      return true;
#if TIXPORT_CSV_X86
    case simd_level::sse2:
      return true;  // part of x86-64
    case simd_level::avx2:
      return __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("bmi2") != 0 &&
             __builtin_cpu_supports("popcnt") != 0 && __builtin_cpu_supports("pclmul") != 0;
#else
    case simd_level::sse2:
    case simd_level::avx2:
      return false;
#endif
  }
  return false;
}

const scan_kernels& kernels_for(simd_level level) noexcept {
  switch (level) {
#if TIXPORT_CSV_X86
    case simd_level::sse2:
      return sse2_kernels();
    case simd_level::avx2:
      return avx2_kernels();
#endif
    default:
      return portable_kernels();
  }
}

std::atomic<simd_level>& active_level() noexcept {
  static std::atomic<simd_level> level{best_simd_level()};
  return level;
}

}  // namespace

const scan_kernels& active_kernels() noexcept { return kernels_for(active_level().load(std::memory_order_relaxed)); }

simd_level best_simd_level() noexcept {
  if (cpu_has(simd_level::avx2)) return simd_level::avx2;
  if (cpu_has(simd_level::sse2)) return simd_level::sse2;
  return simd_level::portable;
}

simd_level active_simd_level() noexcept { return active_level().load(std::memory_order_relaxed); }

void set_simd_level(simd_level level) {
  if (!cpu_has(level)) throw std::invalid_argument(std::string("csv: simd level not supported: ") + simd_level_name(level));
  active_level().store(level, std::memory_order_relaxed);
}

const char* simd_level_name(simd_level level) noexcept {
  switch (level) {
    case simd_level::portable:
      return "portable";
    case simd_level::sse2:
      return "sse2";
    case simd_level::avx2:
      return "avx2";
  }
  return "unknown";
}

quote_lf_counts count_quotes_and_lfs(std::string_view data, std::uint64_t begin, std::uint64_t end) noexcept {
  return active_kernels().count_range(data.data(), begin, end);
}

}  // namespace tixport::csv_internal
