// File: csv_reader.cpp
//
// The CSV reader: header parsing, column resolution, and the two-pass parallel
// record reader (see csv_reader.hpp for the record rules and the design).
//
// Layers, bottom up:
//   1. mask kernels: 64 input bytes -> bitmasks of `"`, `,` and LF (portable,
//      SSE2, AVX2 by runtime dispatch);
//   2. the exact parser: the pandas / Python csv state machine for one record;
//   3. the fast walker: simdjson stage-1 style. The in-quote mask is the
//      prefix XOR of the quote mask (carried across blocks); separators are
//      (comma | LF) & ~inquote. Each field is checked against the pandas rules
//      (quotes only as an opening quote, `""` pairs and a closing quote right
//      before the separator); any record that fails, or runs longer than
//      kMaxSpeculativeRecord, is handed to the exact parser and the walk resumes
//      after it with a fresh quote state;
//   4. read_csv_records: pass 1 (parallel quote/LF counts), pass 2 (flow graph:
//      speculative parse, ordered verify/repair, delivery).
//
//   auto chunk = csv_internal::parse_range(data, off, line, data.size(), n, csv_internal::parse_mode::fast);
#include "tixport/csv/csv_reader.hpp"

#include "csv/csv_reader_internal.hpp"
#include "common/tsan_annotations_internal.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/csv/field_parsers.hpp"
#include "tixport/common/parallelism.hpp"

#include <oneapi/tbb/concurrent_queue.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cassert>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>


#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TIXPORT_CSV_X86 1
#else
#define TIXPORT_CSV_X86 0
#endif

namespace tixport {
namespace csv_internal {

/// The reader's access to csv_chunk's private unescape storage.
struct chunk_access {
  static constexpr std::size_t kBlockBytes = 64u << 10;  // arena block; larger fields get their own

  /// At least `n` writable bytes that stay put for the chunk's lifetime (commit what you use).
  static char* reserve(csv_chunk& chunk, std::size_t n) {
    if (chunk.remaining_ < n) {
      const std::size_t bytes = std::max(n, kBlockBytes);
      chunk.blocks_.push_back(std::make_unique_for_overwrite<char[]>(bytes));  // no zeroing
      chunk.cursor_ = chunk.blocks_.back().get();
      chunk.remaining_ = bytes;
    }
    return chunk.cursor_;
  }
  /// Empty `chunk` for the next planned chunk, keeping its vectors' capacity: a fresh
  /// multi-megabyte field vector per chunk cost a page fault per 4 KiB on every chunk.
  static void recycle(csv_chunk& chunk, std::uint64_t seq, std::uint32_t num_fields) noexcept {
    chunk.chunk_seq = seq;
    chunk.num_fields = num_fields;
    chunk.fields.clear();
    chunk.record_offsets.clear();
    chunk.record_lines.clear();
    chunk.malformed.clear();
    chunk.blank_lines = 0;
    chunk.blocks_.clear();
    chunk.cursor_ = nullptr;
    chunk.remaining_ = 0;
  }
  /// Take the first `n` bytes of the last reserve() as a field.
  static std::string_view commit(csv_chunk& chunk, std::size_t n) noexcept {
    std::string_view view(chunk.cursor_, n);
    chunk.cursor_ += n;
    chunk.remaining_ -= n;
    return view;
  }
};

namespace {

constexpr std::size_t kBlockBytes = 64;              // one bitmask bit per byte
constexpr std::size_t kBatchBlocks = 16;             // masks built per kernel call (1 KiB)
constexpr std::uint64_t kMaxSpeculativeRecord = 64u << 10;  // longer records go to the exact parser
constexpr char kQuote = '"';
constexpr char kComma = ',';
constexpr char kLf = '\n';
constexpr char kCr = '\r';

struct raw_masks {
  std::uint64_t quote;  // bit j: byte j is `"`
  std::uint64_t comma;  // bit j: byte j is `,`
  std::uint64_t lf;     // bit j: byte j is LF
};

// Bit i of the result = XOR of bits 0..i: 1 inside a quoted region, including its opening quote.
constexpr std::uint64_t prefix_xor(std::uint64_t x) noexcept {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}
// Bits [from, 63], from in [0, 64].
constexpr std::uint64_t bits_from(std::uint64_t from) noexcept { return from >= 64 ? 0 : ~std::uint64_t{0} << from; }
// Bits [0, to), to in [0, 63].
constexpr std::uint64_t bits_below(unsigned to) noexcept { return (std::uint64_t{1} << to) - 1; }
// Bits [0, to], to in [0, 63].
constexpr std::uint64_t bits_through(unsigned to) noexcept { return (std::uint64_t{2} << to) - 1; }

// ---------------------------------------------------------------------------
// Sinks: where the parsers put fields and records.
// ---------------------------------------------------------------------------

// Builds a csv_chunk. chunk.fields serves as the buffer (its size is the buffer's, used_ counts the
// fields so far), so the hot path is one store instead of a push_back; the destructor trims it.
class chunk_sink {
 public:
  explicit chunk_sink(csv_chunk& chunk) : chunk_(chunk), used_(chunk.fields.size()) {
    chunk_.fields.resize(std::max(chunk_.fields.capacity(), used_ + kMinBuffer));
  }
  ~chunk_sink() { chunk_.fields.resize(used_); }  // shrinking: never allocates
  chunk_sink(const chunk_sink&) = delete;
  chunk_sink& operator=(const chunk_sink&) = delete;

  std::size_t mark() const noexcept { return used_; }
  void rollback(std::size_t mark) noexcept { used_ = mark; }
  void field(std::string_view view) {
    if (used_ == chunk_.fields.size()) grow();
    chunk_.fields[used_++] = view;
  }
  char* reserve(std::size_t n) { return chunk_access::reserve(chunk_, n); }
  void commit(std::size_t n) { field(chunk_access::commit(chunk_, n)); }
  void owned_field(std::string_view content) {
    char* out = reserve(content.size());
    if (!content.empty()) std::memcpy(out, content.data(), content.size());
    commit(content.size());
  }
  void record(std::uint64_t offset, std::uint64_t line, std::uint32_t field_count, std::size_t mark,
              bool unterminated) {
    if (!unterminated && field_count == chunk_.num_fields) {
      chunk_.record_offsets.push_back(offset);
      chunk_.record_lines.push_back(line);
      return;
    }
    used_ = mark;
    chunk_.malformed.push_back({line, offset, field_count, unterminated});
  }
  void blank(std::size_t mark) noexcept {
    used_ = mark;
    ++chunk_.blank_lines;
  }

 private:
  static constexpr std::size_t kMinBuffer = 64;
  [[gnu::noinline]] void grow() { chunk_.fields.resize(chunk_.fields.size() * 2); }

  csv_chunk& chunk_;
  std::size_t used_;  // fields written
};

// Counts only (the boundary benchmark).
struct counting_sink {
  std::uint32_t num_fields;
  boundary_stats stats{};

  std::size_t mark() const noexcept { return 0; }
  void rollback(std::size_t) noexcept {}
  void field(std::string_view) noexcept {}
  std::string scratch{};  // unescaped bytes land here and are dropped

  char* reserve(std::size_t n) {
    if (scratch.size() < n) scratch.resize(n);
    return scratch.data();
  }
  void commit(std::size_t) noexcept {}
  void owned_field(std::string_view) noexcept {}
  void record(std::uint64_t, std::uint64_t, std::uint32_t field_count, std::size_t, bool unterminated) noexcept {
    stats.fields += field_count;
    if (!unterminated && field_count == num_fields) {
      ++stats.records;
    } else {
      ++stats.malformed;
    }
  }
  void blank(std::size_t) noexcept { ++stats.blank_lines; }
};

// The header record (its fields may need storage of their own).
struct header_sink {
  std::vector<std::string_view> fields;
  std::vector<std::string> owned;                                   // unescaped fields
  std::vector<std::pair<std::size_t, std::size_t>> owned_fields;    // (field index, owned index)
  bool is_record = false;

  std::size_t mark() const noexcept { return fields.size(); }
  void rollback(std::size_t mark) { fields.resize(mark); }
  void field(std::string_view view) { fields.push_back(view); }
  void owned_field(std::string_view content) {
    owned_fields.emplace_back(fields.size(), owned.size());
    owned.emplace_back(content);
    fields.emplace_back();  // pointed at the final storage in read_csv_header
  }
  void record(std::uint64_t, std::uint64_t, std::uint32_t, std::size_t, bool) noexcept { is_record = true; }
  void blank(std::size_t) noexcept {}
};

// ---------------------------------------------------------------------------
// 2. The exact parser (pandas / Python csv, non-strict, lone CR ordinary)
// ---------------------------------------------------------------------------

struct position {
  std::uint64_t offset;  // a record start (outside quotes) or EOF
  std::uint64_t line;    // its physical line
};

std::uint64_t count_lf_scalar(const char* p, std::uint64_t n) noexcept {
  return static_cast<std::uint64_t>(std::count(p, p + n, kLf));
}

// Parse the one record (or blank line) starting at `start`, which must be a record start
// before EOF, and return the position after it.
template <class Sink>
position parse_record_exact(const char* data, std::uint64_t size, position start, Sink& sink, std::string& scratch) {
  const std::uint64_t rs = start.offset;
  const std::size_t mark = sink.mark();
  // Case 1: an empty line (LF or CRLF) is skipped, not a record.
  if (data[rs] == kLf) {
    sink.blank(mark);
    return {rs + 1, start.line + 1};
  }
  if (data[rs] == kCr && rs + 1 < size && data[rs + 1] == kLf) {
    sink.blank(mark);
    return {rs + 2, start.line + 1};
  }
  std::uint64_t pos = rs;
  std::uint32_t field_count = 0;
  bool unterminated = false;
  for (;;) {
    const std::uint64_t fs = pos;
    if (pos < size && data[pos] == kQuote) {
      // Case 2: quoted field. `""` is one quote; the first lone quote closes it.
      ++pos;
      const std::uint64_t content_begin = pos;
      bool owned = false;  // content no longer a contiguous slice of data: build it in scratch
      std::uint64_t content_end = 0;
      for (;;) {
        const void* hit = std::memchr(data + pos, kQuote, static_cast<std::size_t>(size - pos));
        if (hit == nullptr) {
          // Case 2a: EOF inside quotes; the rest of the file is this (malformed) record.
          unterminated = true;
          if (owned) scratch.append(data + pos, static_cast<std::size_t>(size - pos));
          content_end = size;
          pos = size;
          break;
        }
        const std::uint64_t q = static_cast<std::uint64_t>(static_cast<const char*>(hit) - data);
        if (q + 1 < size && data[q + 1] == kQuote) {
          if (!owned) {
            scratch.assign(data + content_begin, static_cast<std::size_t>(q + 1 - content_begin));
            owned = true;
          } else {
            scratch.append(data + pos, static_cast<std::size_t>(q + 1 - pos));
          }
          pos = q + 2;
          continue;
        }
        if (owned) scratch.append(data + pos, static_cast<std::size_t>(q - pos));
        content_end = q;
        pos = q + 1;
        break;
      }
      if (!unterminated) {
        // Case 2b: bytes after the closing quote up to the separator / line end are kept as they are.
        const std::uint64_t tail_begin = pos;
        while (pos < size && data[pos] != kComma && data[pos] != kLf) ++pos;
        std::uint64_t tail_end = pos;
        if (pos < size && data[pos] == kLf && tail_end > tail_begin && data[tail_end - 1] == kCr) --tail_end;
        if (tail_end > tail_begin) {
          if (!owned) {
            scratch.assign(data + content_begin, static_cast<std::size_t>(content_end - content_begin));
            owned = true;
          }
          scratch.append(data + tail_begin, static_cast<std::size_t>(tail_end - tail_begin));
        }
      }
      if (owned) {
        sink.owned_field(scratch);
      } else {
        sink.field({data + content_begin, static_cast<std::size_t>(content_end - content_begin)});
      }
    } else {
      // Case 3: unquoted field; a quote here is an ordinary byte. The CR of a CRLF is not content.
      while (pos < size && data[pos] != kComma && data[pos] != kLf) ++pos;
      std::uint64_t end = pos;
      if (pos < size && data[pos] == kLf && end > fs && data[end - 1] == kCr) --end;
      sink.field({data + fs, static_cast<std::size_t>(end - fs)});
    }
    ++field_count;
    if (pos >= size) break;  // EOF ends the last record
    if (data[pos] == kComma) {
      ++pos;  // a separator as the last byte still opens an (empty) field
      continue;
    }
    ++pos;  // LF
    break;
  }
  sink.record(rs, start.line, field_count, mark, unterminated);
  return {pos, start.line + count_lf_scalar(data + rs, pos - rs)};
}

// ---------------------------------------------------------------------------
// 3. The fast walker
// ---------------------------------------------------------------------------

enum class field_end : std::uint8_t { comma, lf, eof };

struct fast_run {
  position at;     // where the run stopped: a record start
  bool fallback;   // true: the record at `at` needs the exact parser
};

// First record start candidate in [b, e) by quote parity, given the parity state at b: b itself
// when it follows an LF outside quotes, else one past the first LF outside quotes in [b, e - 1).
// `lfs` = LF bytes in [b, candidate); nullopt when the chunk holds none.
struct start_candidate {
  std::uint64_t offset;  // candidate record start
  std::uint64_t lfs;     // LF bytes in [b, offset)
};

// One instruction set's scanner (csv_scan_generic_internal.hpp compiled for it).
struct scan_kernels {
  fast_run (*walk_chunk)(const char* data, std::uint64_t size, position start, std::uint64_t stop_at,
                         chunk_sink& sink);
  fast_run (*walk_counting)(const char* data, std::uint64_t size, position start, std::uint64_t stop_at,
                            counting_sink& sink);
  std::optional<start_candidate> (*find_record_start)(const char* data, std::uint64_t b, std::uint64_t e,
                                                      std::uint64_t data_begin, bool entry_in_quote);
  quote_lf_counts (*count_range)(const char* data, std::uint64_t begin, std::uint64_t end) noexcept;
};

// ---------------------------------------------------------------------------
// 1. Mask kernels, and the scanner compiled per instruction set
// ---------------------------------------------------------------------------

// Copy src[0, n) to out (n bytes of room), turning each `""` into `"`; -1 when a quote is not
// half of such a pair (then pandas would have closed the field there).
std::ptrdiff_t unescape_pairs_scalar(const char* src, std::size_t n, char* out) noexcept {
  std::size_t pos = 0;
  std::size_t written = 0;
  while (pos < n) {
    const void* hit = std::memchr(src + pos, kQuote, n - pos);
    const std::size_t q = hit == nullptr ? n : static_cast<std::size_t>(static_cast<const char*>(hit) - src);
    if (q < n && (q + 1 >= n || src[q + 1] != kQuote)) return -1;
    const std::size_t piece_end = q < n ? q + 1 : n;  // keep one quote of the pair
    std::memcpy(out + written, src + pos, piece_end - pos);
    written += piece_end - pos;
    pos = q < n ? q + 2 : n;
  }
  return static_cast<std::ptrdiff_t>(written);
}

namespace portable_isa {
inline std::ptrdiff_t unescape_pairs(const char* src, std::size_t n, char* out) noexcept {
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
#include "csv/csv_scan_generic_internal.hpp"
}  // namespace portable_isa

#if TIXPORT_CSV_X86
namespace sse2_isa {
inline std::ptrdiff_t unescape_pairs(const char* src, std::size_t n, char* out) noexcept {
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
#include "csv/csv_scan_generic_internal.hpp"
}  // namespace sse2_isa

// Everything in this namespace, the included walker too, may use AVX2, BMI and POPCNT; it is
// only called after __builtin_cpu_supports("avx2") (every AVX2 CPU has BMI1/2 and POPCNT).
#if defined(__clang__)
// Clang ignores GCC's target pragma; its attribute pragma gives every function here the ISA.
#pragma clang attribute push(__attribute__((target("avx2,bmi,bmi2,popcnt,lzcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,bmi,bmi2,popcnt,lzcnt")
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
// The store stays inside `out`: written <= pos, and pos + 32 <= n.
inline std::ptrdiff_t unescape_pairs(const char* src, std::size_t n, char* out) noexcept {
  const __m256i quote_v = _mm256_set1_epi8(kQuote);
  std::size_t pos = 0;
  std::size_t written = 0;
  while (pos + 32 <= n) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + pos));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + written), v);
    const auto quotes = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, quote_v)));
    if (quotes == 0) {
      pos += 32;
      written += 32;
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
#include "csv/csv_scan_generic_internal.hpp"
}  // namespace avx2_isa
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

bool cpu_has(simd_level level) noexcept {
  switch (level) {
    case simd_level::portable:
      return true;
#if TIXPORT_CSV_X86
    case simd_level::sse2:
      return true;  // part of x86-64
    case simd_level::avx2:
      return __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("bmi2") != 0 &&
             __builtin_cpu_supports("popcnt") != 0;
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
      return sse2_isa::kKernels;
    case simd_level::avx2:
      return avx2_isa::kKernels;
#endif
    default:
      return portable_isa::kKernels;
  }
}

std::atomic<simd_level>& active_level() noexcept {
  static std::atomic<simd_level> level{best_simd_level()};
  return level;
}

const scan_kernels& active_kernels() noexcept { return kernels_for(active_level().load(std::memory_order_relaxed)); }

// Parse every record that starts in [start, stop_at) (start a record start); returns the first
// record start at or after stop_at (or EOF).
template <class Sink>
position parse_records(const char* data, std::uint64_t size, position start, std::uint64_t stop_at, Sink& sink,
                       parse_mode mode, std::uint64_t* fallbacks = nullptr) {
  std::string scratch;
  const scan_kernels& kernels = active_kernels();
  position at = start;
  while (at.offset < stop_at && at.offset < size) {
    if (mode == parse_mode::fast) {
      fast_run run;
      if constexpr (std::is_same_v<Sink, chunk_sink>) {
        run = kernels.walk_chunk(data, size, at, stop_at, sink);
      } else {
        run = kernels.walk_counting(data, size, at, stop_at, sink);
      }
      at = run.at;
      if (!run.fallback) break;
      if (fallbacks != nullptr) ++*fallbacks;
    }
    at = parse_record_exact(data, size, at, sink, scratch);
  }
  return at;
}

constexpr bool is_trim_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_trim_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_trim_space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

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

csv_chunk parse_range(std::string_view data, std::uint64_t begin, std::uint64_t begin_line, std::uint64_t stop_at,
                      std::uint32_t num_fields, parse_mode mode) {
  csv_chunk chunk;
  chunk.num_fields = num_fields;
  {
    chunk_sink sink{chunk};
    parse_records(data.data(), data.size(), {begin, begin_line}, stop_at, sink, mode);
  }
  return chunk;
}

boundary_stats scan_record_boundaries(std::string_view data, std::uint64_t begin, std::uint64_t begin_line,
                                      std::uint32_t num_fields) {
  counting_sink sink{num_fields};
  const position end =
      parse_records(data.data(), data.size(), {begin, begin_line}, data.size(), sink, parse_mode::fast,
                    &sink.stats.fallbacks);
  sink.stats.end_line = end.line;
  return sink.stats;
}

quote_lf_counts count_quotes_and_lfs(std::string_view data, std::uint64_t begin, std::uint64_t end) noexcept {
  return active_kernels().count_range(data.data(), begin, end);
}

void read_record_field(std::string_view data, std::uint64_t record_start, std::size_t field, std::string& out) {
  // Keeps field `field` of the one record parse_record_exact reads; the others are dropped.
  struct one_field_sink {
    std::size_t want;
    std::string& out;
    std::size_t seen = 0;
    std::size_t mark() const noexcept { return 0; }
    void field(std::string_view view) {
      if (seen++ == want) out.assign(view);
    }
    void owned_field(std::string_view content) { field(content); }
    void record(std::uint64_t, std::uint64_t, std::uint32_t, std::size_t, bool) noexcept {}
    void blank(std::size_t) noexcept {}
  };
  out.clear();
  if (record_start >= data.size()) return;
  one_field_sink sink{field, out};
  // Called for every body that held "" (about 40% in real exports): reuse the buffer.
  thread_local std::string scratch;
  constexpr std::size_t kKeepBytes = 16u << 20;  // a huge field must not stay pinned to a thread
  if (scratch.capacity() > kKeepBytes) std::string().swap(scratch);
  scratch.clear();
  parse_record_exact(data.data(), data.size(), {record_start, 0}, sink, scratch);
}

}  // namespace csv_internal

using csv_internal::parse_mode;

std::optional<csv_header> read_csv_header(std::string_view data) {
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  const char* bytes = data.data();
  const std::uint64_t size = data.size();
  csv_internal::position at{data.starts_with(kBom) ? kBom.size() : 0, 1};
  std::string scratch;
  csv_internal::header_sink sink;
  // Blank lines before the header are skipped like any other blank line.
  while (at.offset < size && !sink.is_record) at = csv_internal::parse_record_exact(bytes, size, at, sink, scratch);
  if (!sink.is_record) return std::nullopt;

  csv_header header;
  header.data_offset = at.offset;
  header.data_first_line = at.line;
  header.fields = std::move(sink.fields);
  if (!sink.owned.empty()) {
    auto storage = std::make_shared<std::vector<std::string>>(std::move(sink.owned));
    for (const auto& [field_idx, owned_idx] : sink.owned_fields) header.fields[field_idx] = (*storage)[owned_idx];
    header.unescaped_storage = std::move(storage);
  }
  return header;
}

namespace {

// --- header diagnosis: what a file whose header lacks columns holds instead -----------

constexpr std::size_t kSniffBytes = 64u << 10;     // enough to tell text from binary
constexpr std::size_t kShownColumns = 30;          // columns listed in the message at most
constexpr std::size_t kShownColumnBytes = 40;      // bytes of one column name shown at most
constexpr std::size_t kBinaryControlPercent = 2;   // more C0 control bytes than this: not text...
constexpr std::size_t kBinaryMinControls = 4;      // ...when there are at least this many (short headers)

// A header field as shown in a message: trimmed, quoted, control and non-ASCII bytes of a
// binary file escaped (valid UTF-8 names are shown as they are), long names cut.
std::string show_column(std::string_view field) {
  field = csv_internal::trim(field);
  const bool utf8 = is_valid_utf8(field);
  std::string out = "\"";
  std::size_t shown = 0;
  for (const char c : field) {
    const auto byte = static_cast<unsigned char>(c);
    const bool continuation = utf8 && (byte & 0xc0) == 0x80;  // never cut a character in two
    if (shown >= kShownColumnBytes && !continuation) {
      out += "...";
      break;
    }
    if (byte < 0x20 || byte == 0x7f || c == '"' || c == '\\' || (byte >= 0x80 && !utf8)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", byte);
      out += buf;
    } else {
      out += c;
    }
    ++shown;
  }
  return out + '"';
}

// Why the bytes are not a comma-separated text header, or "" when they look like one.
std::string content_hint(std::string_view data) {
  const auto starts = [&](std::string_view magic) { return data.starts_with(magic); };
  using namespace std::string_view_literals;
  // 1. Compressed files and archives, by their magic bytes.
  if (starts("\x1f\x8b"sv)) return "the file is gzip-compressed (it starts with 1f 8b): decompress it first (gunzip)";
  if (starts("\x28\xb5\x2f\xfd"sv)) {
    return "the file is zstd-compressed (it starts with 28 b5 2f fd): decompress it first (zstd -d)";
  }
  if (starts("PK\x03\x04"sv) || starts("PK\x05\x06"sv) || starts("PK\x07\x08"sv)) {
    return "the file is a zip archive (it starts with PK): extract the CSV first (unzip)";
  }
  if (starts("\xfd" "7zXZ\x00"sv)) return "the file is xz-compressed: decompress it first (xz -d)";
  if (data.size() >= 4 && starts("BZh") && data[3] >= '1' && data[3] <= '9') {
    return "the file is bzip2-compressed: decompress it first (bunzip2)";
  }
  if (data.size() >= 262 && data.substr(257, 5) == "ustar") {
    return "the file is a tar archive: extract the CSV first (tar -xf)";
  }
  // 2. UTF-16 text (its ASCII letters come with NUL bytes, so before the binary check).
  if (starts("\xff\xfe"sv) || starts("\xfe\xff"sv)) {
    return "the file is UTF-16 text: convert it to UTF-8 first (iconv -f UTF-16 -t UTF-8)";
  }
  // 3. Binary data: any NUL, or more control bytes than text ever holds.
  const std::string_view sample = data.substr(0, kSniffBytes);
  std::size_t controls = 0;
  for (const char c : sample) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == 0) return "the file holds binary data (NUL bytes), not CSV text";
    if ((byte < 0x20 && c != '\t' && c != '\n' && c != '\r') || byte == 0x7f) ++controls;
  }
  if (controls >= kBinaryMinControls && controls * 100 > sample.size() * kBinaryControlPercent) {
    return "the file holds binary data (control bytes), not CSV text";
  }
  return {};
}

// True when `name` (trimmed, any case) is one of `required`.
bool is_required_name(std::string_view name, std::span<const std::string_view> required) {
  name = csv_internal::trim(name);
  return std::any_of(required.begin(), required.end(), [&](std::string_view wanted) {
    return csv_internal::iequals_ascii(name, csv_internal::trim(wanted));
  });
}

// A one-column header that splits at another separator into required names: which one.
std::string separator_hint(const csv_header& header, std::span<const std::string_view> required) {
  if (header.fields.size() != 1) return {};
  struct candidate {
    char separator;       // the byte to split at
    const char* display;  // how the message shows it
  };
  constexpr std::array<candidate, 3> kCandidates = {{{';', "';'"}, {'\t', "tab"}, {'|', "'|'"}}};
  const std::string_view field = header.fields[0];
  for (const candidate& c : kCandidates) {
    std::size_t hits = 0;
    std::size_t begin = 0;
    while (begin <= field.size()) {
      const std::size_t end = std::min(field.find(c.separator, begin), field.size());
      if (end == field.size() && begin == 0) break;  // the separator does not occur at all
      if (is_required_name(field.substr(begin, end - begin), required)) ++hits;
      begin = end + 1;
    }
    if (hits > 0) {
      return std::string("the header looks ") + c.display + "-separated (" + std::to_string(hits) + " of the " +
             std::to_string(required.size()) + " required names appear when it is split at " + c.display +
             "): tixport reads comma-separated CSV (RFC 4180); export the file again with ',' as the separator";
    }
  }
  return {};
}

std::string join_names(const std::vector<std::string_view>& names) {
  std::string out;
  for (const std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

std::vector<std::size_t> resolve_columns(const csv_header& header, std::span<const std::string_view> required,
                                         const csv_source& source) {
  const std::size_t none = header.fields.size();
  std::vector<std::size_t> indices;
  indices.reserve(required.size());
  std::vector<std::string_view> missing;
  std::vector<std::string> problems;  // "missing columns ...", "repeated column ..."
  for (const std::string_view name : required) {
    const std::string_view wanted = csv_internal::trim(name);
    std::vector<std::size_t> at;
    for (std::size_t i = 0; i < header.fields.size(); ++i) {
      if (csv_internal::iequals_ascii(csv_internal::trim(header.fields[i]), wanted)) at.push_back(i);
    }
    if (at.empty()) missing.push_back(wanted);
    if (at.size() > 1) {
      std::string where;
      for (const std::size_t i : at) where += (where.empty() ? "" : ", ") + std::to_string(i + 1);
      problems.push_back("repeated column " + std::string(wanted) + " (columns " + where + ")");
    }
    indices.push_back(at.empty() ? none : at.front());
  }
  if (!missing.empty()) {
    problems.insert(problems.begin(), (missing.size() == 1 ? "missing column " : "missing columns ") +
                                          join_names(missing) + " (" + std::to_string(missing.size()) + " of " +
                                          std::to_string(required.size()) + " required)");
  }
  if (problems.empty()) return indices;

  // Every bad column at once, what the header holds instead, and why when the bytes say so.
  std::string message(source.what);
  if (!source.path.empty()) message += ": " + std::string(source.path);
  message += ": header: ";
  for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
  message += "; found " + std::to_string(header.fields.size()) +
             (header.fields.size() == 1 ? " column: " : " columns: ");
  for (std::size_t i = 0; i < header.fields.size() && i < kShownColumns; ++i) {
    if (i) message += ", ";
    message += show_column(header.fields[i]);
  }
  if (header.fields.size() > kShownColumns) {
    message += ", ... (" + std::to_string(header.fields.size() - kShownColumns) + " more)";
  }
  std::string hint = content_hint(source.data);
  if (hint.empty()) hint = separator_hint(header, required);
  if (!hint.empty()) message += "; " + hint;
  throw fatal_error(exit_code::input_error, message);
}

namespace {

// ThreadSanitizer cannot see oneTBB's hand-offs between threads (Debian's libtbb is not
// instrumented), so each place where one graph stage passes data to the next says so: the
// writer releases the object, the reader acquires it. No-ops without TSan.
inline void handoff_release(const void* object) noexcept { tsan::release(object); }
inline void handoff_acquire(const void* object) noexcept { tsan::acquire(object); }

// What travels along the graph edges: a chunk number and the slot holding its work.
struct chunk_token {
  std::uint64_t seq = 0;   // planned chunk index
  std::uint32_t slot = 0;  // index into the slot pool (assigned by the parse node)
};

// One chunk's speculative parse, owned by a token between the parse and delivery nodes.
struct chunk_slot {
  csv_chunk chunk;                  // records as parsed (speculatively, then verified)
  bool owns_nothing = false;        // parity found no record start in [b, e)
  csv_internal::position start{};   // where the speculative parse began
  csv_internal::position end{};     // first record start at or after e (or EOF)
};

}  // namespace

csv_read_stats read_csv_records(std::string_view data, const csv_header& header, const csv_read_options& options,
                                const std::function<void(csv_chunk&&)>& on_chunk) {
  namespace flow = oneapi::tbb::flow;
  using csv_internal::position;

  const char* bytes = data.data();
  const std::uint64_t size = data.size();
  const std::uint64_t begin = std::min<std::uint64_t>(header.data_offset, size);
  const std::uint64_t chunk_bytes = std::max<std::uint64_t>(1, options.chunk_bytes);
  const std::uint64_t chunk_count = (size - begin + chunk_bytes - 1) / chunk_bytes;
  // More arena slots than TBB may run only earn a warning on stderr; the process-wide limit
  // (hardware threads, or a tbb::global_control set by the caller) caps them.
  const auto tbb_limit = oneapi::tbb::global_control::active_value(oneapi::tbb::global_control::max_allowed_parallelism);
  const std::size_t threads = std::min(tbb_limit, std::size_t{resolve_threads(static_cast<unsigned>(std::min<std::size_t>(options.threads, kMaxThreads)))});
  const std::size_t in_flight = options.max_chunks_in_flight != 0 ? options.max_chunks_in_flight : 2 * threads;
  const auto num_fields = static_cast<std::uint32_t>(header.fields.size());
  const csv_internal::scan_kernels& kernels = csv_internal::active_kernels();

  const auto chunk_begin = [&](std::uint64_t seq) { return begin + seq * chunk_bytes; };
  const auto chunk_end = [&](std::uint64_t seq) { return std::min(size, begin + (seq + 1) * chunk_bytes); };

  csv_read_stats stats;
  stats.bytes = size - begin;
  stats.chunks = chunk_count;

  in_arena(static_cast<unsigned>(threads), [&] {
    // Pass 1: quote parity and LF count per planned chunk, then the exclusive scans: entry_parity[j]
    // = quote parity before chunk j, first_line[j] = physical line of its first byte. The separator
    // count sizes the chunk's vectors up front (no regrowth, fewer page faults).
    std::vector<std::uint8_t> entry_parity(chunk_count);
    std::vector<std::uint64_t> first_line(chunk_count);
    std::vector<std::uint32_t> separators(chunk_count);
    // tsan::body: oneTBB copies the body into each task it splits off, on the splitting thread.
    oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<std::uint64_t>(0, chunk_count),
                              tsan::body(&entry_parity, [&](const oneapi::tbb::blocked_range<std::uint64_t>& range) {
                                for (std::uint64_t j = range.begin(); j != range.end(); ++j) {
                                  const auto counts = kernels.count_range(bytes, chunk_begin(j), chunk_end(j));
                                  entry_parity[j] = static_cast<std::uint8_t>(counts.quotes & 1);
                                  first_line[j] = counts.lfs;
                                  // Bounded so a chunk of quoted commas cannot reserve 16 bytes a byte.
                                  separators[j] = static_cast<std::uint32_t>(std::min<std::uint64_t>(
                                      {counts.commas + counts.lfs, (chunk_end(j) - chunk_begin(j)) / 4,
                                       std::numeric_limits<std::uint32_t>::max()}));
                                }
                              }));
    handoff_acquire(&entry_parity);
    std::uint8_t parity = 0;
    std::uint64_t line = header.data_first_line;
    for (std::uint64_t j = 0; j < chunk_count; ++j) {
      const std::uint8_t chunk_parity = entry_parity[j];
      entry_parity[j] = parity;
      parity ^= chunk_parity;
      const std::uint64_t lfs = first_line[j];
      first_line[j] = line;
      line += lfs;
    }
    stats.lines = (line - 1) + ((size != 0 && bytes[size - 1] != '\n') ? 1 : 0);
    if (chunk_count == 0) {
      handoff_release(&stats);
      return;
    }

    // Pass 2. Slots hold the chunks in flight; the limiter guarantees a free one at each parse.
    std::vector<chunk_slot> slots(in_flight);
    oneapi::tbb::concurrent_queue<std::uint32_t> free_slots;
    for (std::size_t s = 0; s < in_flight; ++s) free_slots.push(static_cast<std::uint32_t>(s));
    // Quote parity seen at the last verified record start that needed repair: a stray quote
    // flips the parity of everything after it, so later chunks correct their entry state by it.
    std::atomic<std::uint8_t> parity_fix{0};
    std::uint64_t next_seq = 0;
    position expected{begin, header.data_first_line};  // verify node: the true next record start

    // A slot's chunk was handed to on_chunk by rvalue reference; whatever the consumer left
    // in it (usually all of it) is reused here, only after on_chunk has returned.
    const auto fresh_chunk = [&](csv_chunk& chunk, std::uint64_t seq) {
      csv_internal::chunk_access::recycle(chunk, seq, num_fields);
    };
    const auto raw_parity_at = [&](std::uint64_t offset) -> std::uint8_t {
      const std::uint64_t j = (offset - begin) / chunk_bytes;
      const auto counts = kernels.count_range(bytes, chunk_begin(j), offset);
      return static_cast<std::uint8_t>(entry_parity[j] ^ (counts.quotes & 1));
    };

    // Every node body releases bodies_done when it returns (or throws): see the end.
    const int bodies_done = 0;
    flow::graph graph;
    flow::input_node<chunk_token> source(
        graph, tsan::serial_body(&bodies_done, [&](oneapi::tbb::flow_control& control) -> chunk_token {
      handoff_acquire(&graph);
      handoff_acquire(&next_seq);  // a serial body, but not always on the same thread
      const chunk_token token{next_seq, 0};
      if (next_seq == chunk_count) {
        control.stop();
      } else {
        ++next_seq;
      }
      handoff_release(&next_seq);
      return token;
    }));
    flow::limiter_node<chunk_token> limiter(graph, in_flight);
    flow::function_node<chunk_token, chunk_token> parse(
        graph, flow::unlimited, tsan::body(&bodies_done, [&](chunk_token token) {
      handoff_acquire(&graph);
      const bool popped = free_slots.try_pop(token.slot);
      assert(popped && "limiter admits no more chunks than slots");
      (void)popped;
      chunk_slot& slot = slots[token.slot];
      handoff_acquire(&slot);  // from the last delivery that used it
      fresh_chunk(slot.chunk, token.seq);
      slot.chunk.fields.reserve(separators[token.seq] + num_fields);
      const std::uint64_t lfs = (token.seq + 1 < chunk_count ? first_line[token.seq + 1] : line) - first_line[token.seq];
      slot.chunk.record_offsets.reserve(lfs + 1);
      slot.chunk.record_lines.reserve(lfs + 1);
      const std::uint64_t b = chunk_begin(token.seq);
      const std::uint64_t e = chunk_end(token.seq);
      const bool in_quote = (entry_parity[token.seq] ^ parity_fix.load(std::memory_order_relaxed)) != 0;
      const auto start = kernels.find_record_start(bytes, b, e, begin, in_quote);
      slot.owns_nothing = !start.has_value();
      if (start) {
        slot.start = {start->offset, first_line[token.seq] + start->lfs};
        csv_internal::chunk_sink sink{slot.chunk};
        slot.end = csv_internal::parse_records(bytes, size, slot.start, e, sink, parse_mode::fast);
      }
      handoff_release(&slot);
      return token;
    }));
    flow::sequencer_node<chunk_token> in_order(graph, [](const chunk_token& token) { return token.seq; });
    flow::function_node<chunk_token, chunk_token> verify(
        graph, flow::serial, tsan::serial_body(&bodies_done, [&](chunk_token token) {
      handoff_acquire(&graph);
      handoff_acquire(&expected);  // serial state: the previous verify may have run elsewhere
      chunk_slot& slot = slots[token.slot];
      handoff_acquire(&slot);
      const std::uint64_t e = chunk_end(token.seq);
      if (expected.offset >= e) {
        // Case 1: the previous chunk's last record swallowed this whole chunk: it owns nothing.
        if (!slot.owns_nothing) {
          fresh_chunk(slot.chunk, token.seq);
          ++stats.reparsed_chunks;
        }
      } else if (!slot.owns_nothing && slot.start.offset == expected.offset) {
        // Case 2: the speculative start is the true one, so the whole parse is exact.
        assert(slot.start.line == expected.line);
        expected = slot.end;
      } else {
        // Case 3: parity misled the speculation (a stray quote before or in this chunk):
        // re-parse from the true position and re-anchor the parity for later chunks.
        fresh_chunk(slot.chunk, token.seq);
        csv_internal::chunk_sink sink{slot.chunk};
        expected = csv_internal::parse_records(bytes, size, expected, e, sink, parse_mode::fast);
        ++stats.reparsed_chunks;
        if (expected.offset < size) parity_fix.store(raw_parity_at(expected.offset), std::memory_order_relaxed);
      }
      stats.records += slot.chunk.record_count();
      stats.malformed += slot.chunk.malformed.size();
      stats.blank_lines += slot.chunk.blank_lines;
      handoff_release(&slot);
      handoff_release(&expected);
      return token;
    }));
    // In ordered mode the delivery order is enforced here, not left to the graph: oneTBB
    // does not promise that a serial node runs messages in the order a sequencer released
    // them when the puts come from different threads (seen once in ~10^5 chunks under
    // TSan's scheduling). Early tokens wait in `early` (their slots stay taken), and each
    // delivered chunk, not each call, gives the limiter one token back, so the number of
    // slots in use never exceeds the limiter's count.
    using deliver_node = flow::multifunction_node<chunk_token, std::tuple<flow::continue_msg>>;
    std::map<std::uint64_t, chunk_token> early;  // ordered only: seq -> token that came too soon
    std::uint64_t next_delivery = 0;             // ordered only: the seq on_chunk takes next
    deliver_node deliver(
        graph, options.ordered ? flow::serial : flow::unlimited,
        tsan::body_fn(&bodies_done, options.ordered, [&](const chunk_token& token, deliver_node::output_ports_type& ports) {
          handoff_acquire(&graph);
          const auto hand_over = [&](const chunk_token& t) {
            chunk_slot& slot = slots[t.slot];
            handoff_acquire(&slot);
            on_chunk(std::move(slot.chunk));
            handoff_release(&slot);
            free_slots.push(t.slot);
            std::get<0>(ports).try_put(flow::continue_msg{});
          };
          if (!options.ordered) {
            hand_over(token);
            return;
          }
          handoff_acquire(&on_chunk);  // ordered deliveries follow each other
          if (token.seq != next_delivery) {
            early.emplace(token.seq, token);
          } else {
            hand_over(token);
            ++next_delivery;
            for (auto it = early.find(next_delivery); it != early.end(); it = early.find(next_delivery)) {
              hand_over(it->second);
              early.erase(it);
              ++next_delivery;
            }
          }
          handoff_release(&on_chunk);  // ... and all of them precede our return
        }));

    // A serial node may emit its outputs out of order (oneTBB spawns its next queued body before
    // forwarding the current result), so ordered delivery gets a sequencer of its own.
    flow::sequencer_node<chunk_token> delivery_order(graph, [](const chunk_token& token) { return token.seq; });

    flow::make_edge(source, limiter);
    flow::make_edge(limiter, parse);
    flow::make_edge(parse, in_order);
    flow::make_edge(in_order, verify);
    if (options.ordered) {
      flow::make_edge(verify, delivery_order);
      flow::make_edge(delivery_order, deliver);
    } else {
      flow::make_edge(verify, deliver);
    }
    flow::make_edge(flow::output_port<0>(deliver), limiter.decrementer());
    handoff_release(&graph);
    // Destroyed first when wait_for_all() rethrows a body's exception, before the nodes and slots.
    const tsan::acquire_on_exit all_bodies_done(&bodies_done);
    source.activate();
    graph.wait_for_all();
    handoff_acquire(&on_chunk);
    handoff_acquire(&expected);
    handoff_acquire(&next_seq);
    handoff_release(&stats);
  });
  handoff_acquire(&stats);
  return stats;
}

void append_csv_field(std::string& out, std::string_view field) {
  constexpr std::string_view kWhiteSpace = " \t\r\n";
  const bool edge_space = !field.empty() && (kWhiteSpace.find(field.front()) != std::string_view::npos ||
                                             kWhiteSpace.find(field.back()) != std::string_view::npos);
  if (!edge_space && field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += field;
    return;
  }
  out += '"';
  for (const char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

}  // namespace tixport
