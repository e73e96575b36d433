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
#include "tixport/csv_reader.hpp"

#include "csv_reader_internal.hpp"
#include "tixport/errors.hpp"

#include <oneapi/tbb/concurrent_queue.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <cstring>
#include <stdexcept>
#include <string>

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
      chunk.blocks_.push_back(std::make_unique<char[]>(bytes));
      chunk.cursor_ = chunk.blocks_.back().get();
      chunk.remaining_ = bytes;
    }
    return chunk.cursor_;
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

// ---------------------------------------------------------------------------
// 1. Mask kernels
// ---------------------------------------------------------------------------

struct raw_masks {
  std::uint64_t quote;  // bit j: byte j is `"`
  std::uint64_t comma;  // bit j: byte j is `,`
  std::uint64_t lf;     // bit j: byte j is LF
};

// Builds masks for `nblocks` full 64-byte blocks at p.
using mask_kernel = void (*)(const char* p, std::size_t nblocks, raw_masks* out) noexcept;

void masks_portable(const char* p, std::size_t nblocks, raw_masks* out) noexcept {
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

#if TIXPORT_CSV_X86
void masks_sse2(const char* p, std::size_t nblocks, raw_masks* out) noexcept {
  const __m128i quote_v = _mm_set1_epi8(kQuote);
  const __m128i comma_v = _mm_set1_epi8(kComma);
  const __m128i lf_v = _mm_set1_epi8(kLf);
  for (std::size_t b = 0; b < nblocks; ++b, p += kBlockBytes) {
    std::uint64_t quote = 0;
    std::uint64_t comma = 0;
    std::uint64_t lf = 0;
    for (unsigned k = 0; k < 4; ++k) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
      const unsigned shift = 16 * k;
      quote |= static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote_v))))
               << shift;
      comma |= static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, comma_v))))
               << shift;
      lf |= static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf_v))))
            << shift;
    }
    out[b] = {quote, comma, lf};
  }
}

// Two 32-byte compare results -> one 64-bit mask.
__attribute__((target("avx2"))) inline std::uint64_t join_avx2(__m256i lo, __m256i hi) noexcept {
  return static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(lo))) |
         (static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(hi))) << 32);
}

__attribute__((target("avx2"))) void masks_avx2(const char* p, std::size_t nblocks, raw_masks* out) noexcept {
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
#endif

bool cpu_has(simd_level level) noexcept {
  switch (level) {
    case simd_level::portable:
      return true;
#if TIXPORT_CSV_X86
    case simd_level::sse2:
      return true;  // part of x86-64
    case simd_level::avx2:
      return __builtin_cpu_supports("avx2") != 0;
#else
    case simd_level::sse2:
    case simd_level::avx2:
      return false;
#endif
  }
  return false;
}

mask_kernel kernel_for(simd_level level) noexcept {
  switch (level) {
#if TIXPORT_CSV_X86
    case simd_level::sse2:
      return masks_sse2;
    case simd_level::avx2:
      return masks_avx2;
#endif
    default:
      return masks_portable;
  }
}

std::atomic<simd_level>& active_level() noexcept {
  static std::atomic<simd_level> level{best_simd_level()};
  return level;
}

mask_kernel active_kernel() noexcept { return kernel_for(active_level().load(std::memory_order_relaxed)); }

// Masks for the bytes [pos, limit) in 64-byte blocks starting at pos, at most kBatchBlocks of
// them; bytes at or past `limit` read as zero (no bit set), so nothing past the data is touched.
// Returns the number of blocks filled (>= 1 when pos < limit).
std::size_t fill_masks(const char* data, std::uint64_t pos, std::uint64_t limit, raw_masks* out,
                       mask_kernel kernel) noexcept {
  const std::uint64_t avail = limit - pos;
  const std::size_t full = static_cast<std::size_t>(std::min<std::uint64_t>(kBatchBlocks, avail / kBlockBytes));
  if (full != 0) kernel(data + pos, full, out);
  if (full == kBatchBlocks) return full;
  const std::size_t tail = static_cast<std::size_t>(avail - full * kBlockBytes);
  if (tail == 0) return full;
  alignas(kBlockBytes) char pad[kBlockBytes] = {};
  std::memcpy(pad, data + pos + full * kBlockBytes, tail);
  kernel(pad, 1, out + full);
  return full + 1;
}

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

// Builds a csv_chunk.
struct chunk_sink {
  csv_chunk& chunk;

  std::size_t mark() const noexcept { return chunk.fields.size(); }
  void rollback(std::size_t mark) { chunk.fields.resize(mark); }
  void field(std::string_view view) { chunk.fields.push_back(view); }
  char* reserve(std::size_t n) { return chunk_access::reserve(chunk, n); }
  void commit(std::size_t n) { chunk.fields.push_back(chunk_access::commit(chunk, n)); }
  void owned_field(std::string_view content) {
    char* out = reserve(content.size());
    if (!content.empty()) std::memcpy(out, content.data(), content.size());
    commit(content.size());
  }
  void record(std::uint64_t offset, std::uint64_t line, std::uint32_t field_count, std::size_t mark,
              bool unterminated) {
    if (!unterminated && field_count == chunk.num_fields) {
      chunk.record_offsets.push_back(offset);
      chunk.record_lines.push_back(line);
      return;
    }
    chunk.fields.resize(mark);
    chunk.malformed.push_back({line, offset, field_count, unterminated});
  }
  void blank(std::size_t mark) {
    chunk.fields.resize(mark);
    ++chunk.blank_lines;
  }
};

// Counts only (the boundary benchmark).
struct counting_sink {
  std::uint32_t num_fields;
  boundary_stats stats{};

  std::size_t mark() const noexcept { return 0; }
  void rollback(std::size_t) noexcept {}
  void field(std::string_view) noexcept {}
  char* reserve(std::size_t) noexcept { return nullptr; }  // validate without copying
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

// Emit field [s, i) (i = its separator, LF or EOF) holding `quotes` quote bytes, if it follows the
// pandas rules under the quote-parity reading. False: leave it to the exact parser.
template <class Sink>
bool emit_fast_field(const char* data, std::uint64_t s, std::uint64_t i, std::uint64_t quotes, field_end end,
                     Sink& sink) {
  if (quotes == 0) {
    std::uint64_t e = i;
    if (end == field_end::lf && e > s && data[e - 1] == kCr) --e;
    sink.field({data + s, static_cast<std::size_t>(e - s)});
    return true;
  }
  if (data[s] != kQuote) return false;  // a quote inside an unquoted field: parity is wrong from there on
  std::uint64_t t = i;                  // one past the closing quote
  if (t - s >= 2 && data[t - 1] == kQuote) {
    // closing quote right before the separator
  } else if (end == field_end::lf && t - s >= 3 && data[t - 1] == kCr && data[t - 2] == kQuote) {
    --t;  // closing quote, then CRLF
  } else {
    return false;  // bytes after the closing quote: pandas appends them
  }
  const std::uint64_t cb = s + 1;
  const std::uint64_t ce = t - 1;
  if (quotes == 2) {
    sink.field({data + cb, static_cast<std::size_t>(ce - cb)});
    return true;
  }
  // Inner quotes must all be `""` pairs; unescape while checking.
  char* out = sink.reserve(static_cast<std::size_t>(ce - cb));
  std::size_t written = 0;
  std::uint64_t pos = cb;
  while (pos < ce) {
    const void* hit = std::memchr(data + pos, kQuote, static_cast<std::size_t>(ce - pos));
    const std::uint64_t q = hit == nullptr ? ce : static_cast<std::uint64_t>(static_cast<const char*>(hit) - data);
    if (q < ce && (q + 1 >= ce || data[q + 1] != kQuote)) return false;
    const std::uint64_t piece_end = q < ce ? q + 1 : ce;  // keep one quote of the pair
    if (out != nullptr) std::memcpy(out + written, data + pos, static_cast<std::size_t>(piece_end - pos));
    written += static_cast<std::size_t>(piece_end - pos);
    pos = q < ce ? q + 2 : ce;
  }
  sink.commit(written);
  return true;
}

struct fast_run {
  position at;     // where the run stopped: a record start
  bool fallback;   // true: the record at `at` needs the exact parser
};

// Walk records from `start` (a record start outside quotes) while they start before stop_at,
// until EOF or a record the fast path cannot take.
template <class Sink>
fast_run walk_fast(const char* data, std::uint64_t size, position start, std::uint64_t stop_at, Sink& sink,
                   mask_kernel kernel) {
  std::uint64_t rs = start.offset;    // current record start
  std::uint64_t rs_line = start.line;
  std::uint64_t fs = rs;              // current field start
  std::uint64_t quotes_before = 0;    // quote bytes in [fs, current block base)
  std::uint32_t field_count = 0;
  std::size_t mark = sink.mark();
  std::uint64_t in_quote_carry = 0;   // all ones when the previous block ended inside quotes
  std::uint64_t block_line = rs_line; // physical line at the current block's first byte
  raw_masks masks[kBatchBlocks];

  for (std::uint64_t batch = rs; batch < size;) {
    const std::size_t blocks = fill_masks(data, batch, size, masks, kernel);
    for (std::size_t bi = 0; bi < blocks; ++bi) {
      const std::uint64_t base = batch + bi * kBlockBytes;
      const raw_masks& m = masks[bi];
      const std::uint64_t in_quote = prefix_xor(m.quote) ^ in_quote_carry;
      in_quote_carry = static_cast<std::uint64_t>(static_cast<std::int64_t>(in_quote) >> 63);
      std::uint64_t separators = (m.comma | m.lf) & ~in_quote;
      while (separators != 0) {
        const unsigned k = static_cast<unsigned>(std::countr_zero(separators));
        separators &= separators - 1;
        const std::uint64_t i = base + k;
        const std::uint64_t fs_bit = fs > base ? fs - base : 0;
        const std::uint64_t quotes =
            quotes_before + static_cast<std::uint64_t>(std::popcount(m.quote & bits_below(k) & bits_from(fs_bit)));
        const bool is_lf = ((m.lf >> k) & 1) != 0;
        if (!emit_fast_field(data, fs, i, quotes, is_lf ? field_end::lf : field_end::comma, sink)) {
          sink.rollback(mark);
          return {{rs, rs_line}, true};
        }
        ++field_count;
        fs = i + 1;
        quotes_before = 0;
        if (!is_lf) continue;
        // Record ends at i. One empty field ending in LF or CRLF is a blank line.
        if (field_count == 1 && (i == rs || (i == rs + 1 && data[rs] == kCr))) {
          sink.blank(mark);
        } else {
          sink.record(rs, rs_line, field_count, mark, false);
        }
        rs = i + 1;
        rs_line = block_line + static_cast<std::uint64_t>(std::popcount(m.lf & bits_through(k)));
        field_count = 0;
        mark = sink.mark();
        if (rs >= stop_at) return {{rs, rs_line}, false};
      }
      const std::uint64_t fs_bit = fs > base ? fs - base : 0;
      quotes_before += static_cast<std::uint64_t>(std::popcount(m.quote & bits_from(fs_bit)));
      block_line += static_cast<std::uint64_t>(std::popcount(m.lf));
      // A record this long is rare; it is likely a stray quote that hid the separators. Bound
      // the look-ahead so one bad quote per chunk cannot make the scan quadratic.
      if (base + kBlockBytes - rs > kMaxSpeculativeRecord) {
        sink.rollback(mark);
        return {{rs, rs_line}, true};
      }
    }
    batch += blocks * kBlockBytes;
  }
  // EOF. A last record without a line end may be open in [rs, size).
  if (rs >= size) return {{rs, rs_line}, false};
  if (in_quote_carry != 0 || !emit_fast_field(data, fs, size, quotes_before, field_end::eof, sink)) {
    sink.rollback(mark);
    return {{rs, rs_line}, true};
  }
  sink.record(rs, rs_line, field_count + 1, mark, false);
  return {{size, block_line}, false};
}

// Parse every record that starts in [start, stop_at) (start a record start); returns the first
// record start at or after stop_at (or EOF).
template <class Sink>
position parse_records(const char* data, std::uint64_t size, position start, std::uint64_t stop_at, Sink& sink,
                       parse_mode mode, std::uint64_t* fallbacks = nullptr) {
  std::string scratch;
  const mask_kernel kernel = active_kernel();
  position at = start;
  while (at.offset < stop_at && at.offset < size) {
    if (mode == parse_mode::fast) {
      const fast_run run = walk_fast(data, size, at, stop_at, sink, kernel);
      at = run.at;
      if (!run.fallback) break;
      if (fallbacks != nullptr) ++*fallbacks;
    }
    at = parse_record_exact(data, size, at, sink, scratch);
  }
  return at;
}

// First record start candidate in [b, e) by quote parity, given the parity state at b: b itself
// when it follows an LF outside quotes, else one past the first LF outside quotes in [b, e - 1).
// `lfs` = LF bytes in [b, candidate). nullopt when the chunk holds none.
struct start_candidate {
  std::uint64_t offset;
  std::uint64_t lfs;
};
std::optional<start_candidate> find_record_start(const char* data, std::uint64_t b, std::uint64_t e,
                                                 std::uint64_t data_begin, bool entry_in_quote, mask_kernel kernel) {
  if (b == data_begin || (!entry_in_quote && data[b - 1] == kLf)) return start_candidate{b, 0};
  if (e - b < 2) return std::nullopt;
  const std::uint64_t limit = e - 1;
  std::uint64_t carry = entry_in_quote ? ~std::uint64_t{0} : 0;
  std::uint64_t lfs = 0;
  raw_masks masks[kBatchBlocks];
  for (std::uint64_t batch = b; batch < limit;) {
    const std::size_t blocks = fill_masks(data, batch, limit, masks, kernel);
    for (std::size_t bi = 0; bi < blocks; ++bi) {
      const raw_masks& m = masks[bi];
      const std::uint64_t in_quote = prefix_xor(m.quote) ^ carry;
      carry = static_cast<std::uint64_t>(static_cast<std::int64_t>(in_quote) >> 63);
      const std::uint64_t ends = m.lf & ~in_quote;
      if (ends != 0) {
        const unsigned k = static_cast<unsigned>(std::countr_zero(ends));
        return start_candidate{batch + bi * kBlockBytes + k + 1,
                               lfs + static_cast<std::uint64_t>(std::popcount(m.lf & bits_through(k)))};
      }
      lfs += static_cast<std::uint64_t>(std::popcount(m.lf));
    }
    batch += blocks * kBlockBytes;
  }
  return std::nullopt;
}

quote_lf_counts count_range(const char* data, std::uint64_t begin, std::uint64_t end, mask_kernel kernel) noexcept {
  quote_lf_counts counts;
  raw_masks masks[kBatchBlocks];
  for (std::uint64_t batch = begin; batch < end;) {
    const std::size_t blocks = fill_masks(data, batch, end, masks, kernel);
    for (std::size_t bi = 0; bi < blocks; ++bi) {
      counts.quotes += static_cast<std::uint64_t>(std::popcount(masks[bi].quote));
      counts.lfs += static_cast<std::uint64_t>(std::popcount(masks[bi].lf));
    }
    batch += blocks * kBlockBytes;
  }
  return counts;
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
  chunk_sink sink{chunk};
  parse_records(data.data(), data.size(), {begin, begin_line}, stop_at, sink, mode);
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
  return count_range(data.data(), begin, end, active_kernel());
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

std::vector<std::size_t> resolve_columns(const csv_header& header, std::span<const std::string_view> required) {
  std::vector<std::size_t> indices;
  indices.reserve(required.size());
  for (const std::string_view name : required) {
    const std::string_view wanted = csv_internal::trim(name);
    std::size_t found = header.fields.size();
    for (std::size_t i = 0; i < header.fields.size(); ++i) {
      if (!csv_internal::iequals_ascii(csv_internal::trim(header.fields[i]), wanted)) continue;
      if (found != header.fields.size()) {
        throw fatal_error(exit_code::input_error, "input: header: repeated column " + std::string(wanted));
      }
      found = i;
    }
    if (found == header.fields.size()) {
      throw fatal_error(exit_code::input_error, "input: header: missing column " + std::string(wanted));
    }
    indices.push_back(found);
  }
  return indices;
}

namespace {

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
  const std::size_t threads =
      options.threads != 0 ? options.threads : static_cast<std::size_t>(oneapi::tbb::info::default_concurrency());
  const std::size_t in_flight = options.max_chunks_in_flight != 0 ? options.max_chunks_in_flight : 2 * threads;
  const auto num_fields = static_cast<std::uint32_t>(header.fields.size());
  const csv_internal::mask_kernel kernel = csv_internal::active_kernel();

  const auto chunk_begin = [&](std::uint64_t seq) { return begin + seq * chunk_bytes; };
  const auto chunk_end = [&](std::uint64_t seq) { return std::min(size, begin + (seq + 1) * chunk_bytes); };

  csv_read_stats stats;
  stats.bytes = size - begin;
  stats.chunks = chunk_count;

  oneapi::tbb::task_arena arena(static_cast<int>(threads));
  arena.execute([&] {
    // Pass 1: quote parity and LF count per planned chunk, then the exclusive scans: entry_parity[j]
    // = quote parity before chunk j, first_line[j] = physical line of its first byte.
    std::vector<std::uint8_t> entry_parity(chunk_count);
    std::vector<std::uint64_t> first_line(chunk_count);
    oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<std::uint64_t>(0, chunk_count),
                              [&](const oneapi::tbb::blocked_range<std::uint64_t>& range) {
                                for (std::uint64_t j = range.begin(); j != range.end(); ++j) {
                                  const auto counts =
                                      csv_internal::count_range(bytes, chunk_begin(j), chunk_end(j), kernel);
                                  entry_parity[j] = static_cast<std::uint8_t>(counts.quotes & 1);
                                  first_line[j] = counts.lfs;
                                }
                              });
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
    if (chunk_count == 0) return;

    // Pass 2. Slots hold the chunks in flight; the limiter guarantees a free one at each parse.
    std::vector<chunk_slot> slots(in_flight);
    oneapi::tbb::concurrent_queue<std::uint32_t> free_slots;
    for (std::size_t s = 0; s < in_flight; ++s) free_slots.push(static_cast<std::uint32_t>(s));
    // Quote parity seen at the last verified record start that needed repair: a stray quote
    // flips the parity of everything after it, so later chunks correct their entry state by it.
    std::atomic<std::uint8_t> parity_fix{0};
    std::uint64_t next_seq = 0;
    position expected{begin, header.data_first_line};  // verify node: the true next record start

    const auto fresh_chunk = [&](csv_chunk& chunk, std::uint64_t seq) {
      chunk = csv_chunk{};
      chunk.chunk_seq = seq;
      chunk.num_fields = num_fields;
    };
    const auto raw_parity_at = [&](std::uint64_t offset) -> std::uint8_t {
      const std::uint64_t j = (offset - begin) / chunk_bytes;
      const auto counts = csv_internal::count_range(bytes, chunk_begin(j), offset, kernel);
      return static_cast<std::uint8_t>(entry_parity[j] ^ (counts.quotes & 1));
    };

    flow::graph graph;
    flow::input_node<chunk_token> source(graph, [&](oneapi::tbb::flow_control& control) -> chunk_token {
      if (next_seq == chunk_count) {
        control.stop();
        return {};
      }
      return {next_seq++, 0};
    });
    flow::limiter_node<chunk_token> limiter(graph, in_flight);
    flow::function_node<chunk_token, chunk_token> parse(graph, flow::unlimited, [&](chunk_token token) {
      const bool popped = free_slots.try_pop(token.slot);
      assert(popped && "limiter admits no more chunks than slots");
      (void)popped;
      chunk_slot& slot = slots[token.slot];
      fresh_chunk(slot.chunk, token.seq);
      const std::uint64_t b = chunk_begin(token.seq);
      const std::uint64_t e = chunk_end(token.seq);
      const bool in_quote = (entry_parity[token.seq] ^ parity_fix.load(std::memory_order_relaxed)) != 0;
      const auto start = csv_internal::find_record_start(bytes, b, e, begin, in_quote, kernel);
      slot.owns_nothing = !start.has_value();
      if (start) {
        slot.start = {start->offset, first_line[token.seq] + start->lfs};
        csv_internal::chunk_sink sink{slot.chunk};
        slot.end = csv_internal::parse_records(bytes, size, slot.start, e, sink, parse_mode::fast);
      }
      return token;
    });
    flow::sequencer_node<chunk_token> in_order(graph, [](const chunk_token& token) { return token.seq; });
    flow::function_node<chunk_token, chunk_token> verify(graph, flow::serial, [&](chunk_token token) {
      chunk_slot& slot = slots[token.slot];
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
      return token;
    });
    flow::function_node<chunk_token, flow::continue_msg> deliver(
        graph, options.ordered ? flow::serial : flow::unlimited, [&](const chunk_token& token) {
          on_chunk(std::move(slots[token.slot].chunk));
          free_slots.push(token.slot);
          return flow::continue_msg{};
        });

    flow::make_edge(source, limiter);
    flow::make_edge(limiter, parse);
    flow::make_edge(parse, in_order);
    flow::make_edge(in_order, verify);
    flow::make_edge(verify, deliver);
    flow::make_edge(deliver, limiter.decrementer());
    source.activate();
    graph.wait_for_all();
  });
  return stats;
}

}  // namespace tixport
