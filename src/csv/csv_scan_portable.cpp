// File: csv_scan_portable.cpp
//
// The scanner for any CPU: a plain byte loop builds the masks.
#include "csv/csv_scan_internal.hpp"

namespace tixport::csv_internal {

namespace portable_isa {
inline std::ptrdiff_t unescape_pairs(const char* src, std::size_t n, char* out, const char*) noexcept {
  return unescape_pairs_scalar(src, n, out);
}
void build_masks(const char* p, std::size_t nblocks, raw_masks* out) noexcept {
  for (std::size_t b = 0; b < nblocks; ++b, p += kBlockBytes) {
    std::uint64_t quote = 0;
    std::uint64_t comma = 0;
    std::uint64_t lf = 0;
    for (unsigned j = 0; j < kBlockBytes; ++j) {
      const char c = p[j];
      quote |= static_cast<std::uint64_t>(c == kQuote) << j;
      comma |= static_cast<std::uint64_t>(c == kComma) << j;
      lf |= static_cast<std::uint64_t>(c == kLf) << j;
    }
    out[b] = {quote, comma, lf};
  }
}
inline std::uint64_t quote_regions(std::uint64_t quotes) noexcept { return prefix_xor(quotes); }
#include "csv/csv_scan_generic_internal.hpp"
}  // namespace portable_isa

const scan_kernels& portable_kernels() noexcept { return portable_isa::kKernels; }

}  // namespace tixport::csv_internal
