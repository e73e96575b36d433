// File: csv_scan_avx2.cpp
//
// The scanner for CPUs with AVX2 (runtime-detected): 2 x 32-byte compares build the masks,
// and `""` pairs are unescaped 32 bytes at a time.
#include "csv/csv_scan_internal.hpp"

#include <algorithm>
#include <bit>

#if TIXPORT_CSV_X86
namespace tixport::csv_internal {

// Everything in this namespace, the included walker too, may use AVX2, BMI, POPCNT and PCLMUL;
// it is only called after __builtin_cpu_supports("avx2"), "bmi2", "popcnt" and "pclmul" said so
// (csv_scan_dispatch.cpp): every AVX2 CPU also has BMI1 and LZCNT.
#if defined(__clang__)
// Clang ignores GCC's target pragma; its attribute pragma gives every function here the ISA.
#pragma clang attribute push(__attribute__((target("avx2,bmi,bmi2,popcnt,lzcnt,pclmul"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,bmi,bmi2,popcnt,lzcnt,pclmul")
#endif
namespace avx2_isa {
// Two 32-byte compare results -> one 64-bit mask.
inline std::uint64_t join_avx2(__m256i lo, __m256i hi) noexcept {
  return static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(lo))) |
         (static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(hi))) << 32);
}
inline void build_masks(const char* p, std::size_t nblocks, raw_masks* out) noexcept {
  const __m256i quote_v = _mm256_set1_epi8(kQuote);
  const __m256i comma_v = _mm256_set1_epi8(kComma);
  const __m256i lf_v = _mm256_set1_epi8(kLf);
  for (std::size_t b = 0; b < nblocks; ++b, p += kBlockBytes) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    out[b] = {join_avx2(_mm256_cmpeq_epi8(lo, quote_v), _mm256_cmpeq_epi8(hi, quote_v)),
              join_avx2(_mm256_cmpeq_epi8(lo, comma_v), _mm256_cmpeq_epi8(hi, comma_v)),
              join_avx2(_mm256_cmpeq_epi8(lo, lf_v), _mm256_cmpeq_epi8(hi, lf_v))};
  }
}
// unescape_pairs_scalar, 32 bytes at a time: copy ahead optimistically, stop at the first quote.
// The field's last bytes too, with the quotes past its end masked off, when 32 bytes from there
// are still inside the data (a field ends before the data does, almost always): a byte loop
// over the tail of every quoted field cost as much as the rest. Stores stay within `out`'s
// n + kUnescapeSlack bytes: written <= pos < n.
inline std::ptrdiff_t unescape_pairs(const char* src, std::size_t n, char* out, const char* src_end) noexcept {
  const __m256i quote_v = _mm256_set1_epi8(kQuote);
  std::size_t pos = 0;
  std::size_t written = 0;
  const auto readable = static_cast<std::size_t>(src_end - src);  // >= n
  while (pos < n && pos + 32 <= readable) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + pos));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + written), v);
    auto quotes = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, quote_v)));
    const std::size_t left = n - pos;
    if (left < 32) quotes &= (std::uint32_t{1} << left) - 1;
    if (quotes == 0) {
      const std::size_t step = std::min<std::size_t>(32, left);
      pos += step;
      written += step;
      continue;
    }
    const auto k = static_cast<std::size_t>(std::countr_zero(quotes));
    if (pos + k + 1 >= n || src[pos + k + 1] != kQuote) return -1;
    written += k + 1;
    pos += k + 2;
  }
  while (pos < n) {
    const char c = src[pos];
    out[written++] = c;
    if (c != kQuote) {
      ++pos;
      continue;
    }
    if (pos + 1 >= n || src[pos + 1] != kQuote) return -1;
    pos += 2;
  }
  return static_cast<std::ptrdiff_t>(written);
}
// prefix_xor in one carry-less multiply by all ones (as simdjson finds its quoted ranges)
// instead of six shift-and-xor steps, once per 64-byte block of every walk.
inline std::uint64_t quote_regions(std::uint64_t quotes) noexcept {
  const __m128i product =
      _mm_clmulepi64_si128(_mm_set_epi64x(0, static_cast<std::int64_t>(quotes)), _mm_set1_epi8(-1), 0);
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(product));
}
#include "csv/csv_scan_generic_internal.hpp"
}  // namespace avx2_isa
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const scan_kernels& avx2_kernels() noexcept { return avx2_isa::kKernels; }

}  // namespace tixport::csv_internal
#endif
