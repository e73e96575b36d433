// File: csv_scan_sse2.cpp
//
// The scanner for the x86-64 baseline: 4 x 16-byte SSE2 compares build the masks.
#include "csv/csv_scan_internal.hpp"

#if TIXPORT_CSV_X86
namespace tixport::csv_internal {

namespace sse2_isa {
inline std::ptrdiff_t unescape_pairs(const char* src, std::size_t n, char* out, const char*) noexcept {
  return unescape_pairs_scalar(src, n, out);
}
inline std::uint64_t movemask_sse2(__m128i v, __m128i wanted) noexcept {
  return static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, wanted))));
}
void build_masks(const char* p, std::size_t nblocks, raw_masks* out) noexcept {
  const __m128i quote_v = _mm_set1_epi8(kQuote);
  const __m128i comma_v = _mm_set1_epi8(kComma);
  const __m128i lf_v = _mm_set1_epi8(kLf);
  for (std::size_t b = 0; b < nblocks; ++b, p += kBlockBytes) {
    std::uint64_t quote = 0;
    std::uint64_t comma = 0;
    std::uint64_t lf = 0;
    for (unsigned k = 0; k < 4; ++k) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
      quote |= movemask_sse2(v, quote_v) << (16 * k);
      comma |= movemask_sse2(v, comma_v) << (16 * k);
      lf |= movemask_sse2(v, lf_v) << (16 * k);
    }
    out[b] = {quote, comma, lf};
  }
}
inline std::uint64_t quote_regions(std::uint64_t quotes) noexcept { return prefix_xor(quotes); }
#include "csv/csv_scan_generic_internal.hpp"
}  // namespace sse2_isa

const scan_kernels& sse2_kernels() noexcept { return sse2_isa::kKernels; }

}  // namespace tixport::csv_internal
#endif
