// File: csv_scan_internal.hpp
//
// The CSV scanner's shared pieces (never installed), used by the kernel of each
// instruction set (csv_scan_portable.cpp, csv_scan_sse2.cpp, csv_scan_avx2.cpp,
// each compiling csv_scan_generic_internal.hpp for its ISA), the runtime dispatch
// (csv_scan_dispatch.cpp), the record parser (csv_record_parser.cpp) and the chunk
// reader (csv_reader.cpp):
//   1. mask kernels: 64 input bytes -> bitmasks of `"`, `,` and LF (portable,
//      SSE2, AVX2 by runtime dispatch);
//   2. the exact parser: the pandas / Python csv state machine for one record;
//   3. the fast walker: simdjson stage-1 style. The in-quote mask is the
//      prefix XOR of the quote mask (carried across blocks); separators are
//      (comma | LF) & ~inquote. Each field is checked against the pandas rules
//      (quotes only as an opening quote, `""` pairs and a closing quote right
//      before the separator); any record that fails, or runs longer than
//      kMaxSpeculativeRecord, is handed to the exact parser and the walk resumes
//      after it with a fresh quote state.
//
//   const scan_kernels& k = active_kernels();
//   position end = parse_records(data, size, {offset, line}, stop_at, sink, parse_mode::fast);
#pragma once

#include "tixport/csv/csv_reader.hpp"

#include "csv/csv_reader_internal.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TIXPORT_CSV_X86 1
#else
#define TIXPORT_CSV_X86 0
#endif

namespace tixport::csv_internal {


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
    chunk.escaped.clear();
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


constexpr std::size_t kBlockBytes = 64;              // one bitmask bit per byte
constexpr std::size_t kBatchBlocks = 16;             // masks built per kernel call (1 KiB)
constexpr std::uint64_t kMaxSpeculativeRecord = 64u << 10;  // longer records go to the exact parser
constexpr std::size_t kUnescapeSlack = 32;  // room past an unescaped field for a whole-vector store
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
  explicit chunk_sink(csv_chunk& chunk, std::size_t keep_escaped = csv_read_options::kNoColumn)
      : chunk_(chunk), used_(chunk.fields.size()), keep_escaped_(keep_escaped) {
    chunk_.fields.resize(std::max(chunk_.fields.capacity(), used_ + kMinBuffer));
  }
  ~chunk_sink() { chunk_.fields.resize(used_); }  // shrinking: never allocates
  chunk_sink(const chunk_sink&) = delete;
  chunk_sink& operator=(const chunk_sink&) = delete;

  std::size_t mark() const noexcept { return used_; }
  void rollback(std::size_t mark) noexcept { drop_fields_from(mark); }
  void field(std::string_view view) {
    if (used_ == chunk_.fields.size()) grow();
    chunk_.fields[used_++] = view;
  }
  /// Whether field `index` of a record is left escaped when it holds `""` (emit_fast_field).
  [[nodiscard]] bool keeps_escaped(std::uint32_t index) const noexcept { return index == keep_escaped_; }
  void escaped_field(std::string_view raw) {
    chunk_.escaped.push_back(used_);
    field(raw);
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
    drop_fields_from(mark);
    chunk_.malformed.push_back({line, offset, field_count, unterminated});
  }
  void blank(std::size_t mark) noexcept {
    drop_fields_from(mark);
    ++chunk_.blank_lines;
  }

 private:
  static constexpr std::size_t kMinBuffer = 64;
  [[gnu::noinline]] void grow() { chunk_.fields.resize(chunk_.fields.size() * 2); }
  void drop_fields_from(std::size_t mark) noexcept {
    used_ = mark;
    while (!chunk_.escaped.empty() && chunk_.escaped.back() >= mark) chunk_.escaped.pop_back();
  }

  csv_chunk& chunk_;
  std::size_t used_;          // fields written
  std::size_t keep_escaped_;  // csv_read_options::keep_escaped_field
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

// Some fields of one record (read_record_fields): wanted[i] goes to views[i], as a view into the
// data when the field is a slice of it, else unescaped into *owned[i] (views[i] then points
// there; the string may be longer than the field). Both parsers feed it: the fast walker
// unescapes straight into the owned string, the exact parser hands over its scratch.
// done() ends either parse after the last wanted field.
struct wanted_fields_sink {
  std::span<const std::size_t> wanted;
  std::span<std::string_view> views;
  std::span<std::string* const> owned;
  std::string* spare = nullptr;  // unescaped bytes of a field nobody wants
  std::size_t last = 0;          // the largest wanted index
  std::size_t seen = 0;          // fields so far
  std::size_t keep_escaped = csv_read_options::kNoColumn;  // the field that may be left escaped
  bool left_escaped = false;                               // ... and was

  std::size_t mark() const noexcept { return 0; }
  void rollback(std::size_t) noexcept {
    for (std::string_view& v : views) v = {};
    seen = 0;
    left_escaped = false;
  }
  [[nodiscard]] bool keeps_escaped(std::uint32_t index) const noexcept { return index == keep_escaped; }
  void escaped_field(std::string_view raw) noexcept {
    left_escaped = true;
    field(raw);
  }
  void field(std::string_view view) noexcept {
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      if (wanted[i] == seen) views[i] = view;
    }
    ++seen;
  }
  // The fast walker's unescape: into the first wanted slot's string, grown but never shrunk
  // (so a reused string is not zero-filled again), then shared by any other slot for it.
  char* reserve(std::size_t n) {
    std::string* out = spare;
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      if (wanted[i] == seen) {
        out = owned[i];
        break;
      }
    }
    if (out->size() < n) out->resize(n);
    reserved = out;
    return out->data();
  }
  void commit(std::size_t n) noexcept { field(std::string_view(reserved->data(), n)); }
  void owned_field(std::string_view content) {  // the exact parser's scratch: copy it out
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      if (wanted[i] != seen) continue;
      owned[i]->assign(content);
      views[i] = *owned[i];
    }
    ++seen;
  }
  [[nodiscard]] bool done() const noexcept { return seen > last; }
  void record(std::uint64_t, std::uint64_t, std::uint32_t, std::size_t, bool) noexcept {}
  void blank(std::size_t) noexcept {}

  std::string* reserved = nullptr;  // where the last reserve() put its bytes
};

// ---------------------------------------------------------------------------
// 2. The exact parser (pandas / Python csv, non-strict, lone CR ordinary)
// ---------------------------------------------------------------------------

struct position {
  std::uint64_t offset;  // a record start (outside quotes) or EOF
  std::uint64_t line;    // its physical line
};

// The first byte in [pos, size) that is a comma or an LF, or `size`: where an unquoted field
// (or the tail after a closing quote) ends. Eight bytes at a time: the exact parser runs on
// every comment again when its batch is written (read_record_fields), not only on fallbacks.
inline std::uint64_t find_comma_or_lf(const char* data, std::uint64_t pos, std::uint64_t size) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
    while (size - pos >= 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, data + pos, sizeof word);
      const std::uint64_t commas = word ^ (kOnes * static_cast<unsigned char>(kComma));
      const std::uint64_t lfs = word ^ (kOnes * static_cast<unsigned char>(kLf));
      // A byte's high bit is set where the byte was zero; borrows can only mark bytes after
      // the first true zero, so the lowest mark is exact.
      const std::uint64_t hits = (((commas - kOnes) & ~commas) | ((lfs - kOnes) & ~lfs)) & kHigh;
      if (hits != 0) return pos + static_cast<std::uint64_t>(std::countr_zero(hits) >> 3);
      pos += 8;
    }
  }
  while (pos < size && data[pos] != kComma && data[pos] != kLf) ++pos;
  return pos;
}

inline std::uint64_t count_lf_scalar(const char* p, std::uint64_t n) noexcept {
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
        pos = find_comma_or_lf(data, pos, size);
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
      pos = find_comma_or_lf(data, pos, size);
      std::uint64_t end = pos;
      if (pos < size && data[pos] == kLf && end > fs && data[end - 1] == kCr) --end;
      sink.field({data + fs, static_cast<std::size_t>(end - fs)});
    }
    ++field_count;
    // A sink that wants only the first fields ends the parse here; the position returned
    // then is not a record start and its line is not counted.
    if constexpr (requires { sink.done(); }) {
      if (sink.done()) return {pos, start.line};
    }
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
  // One record from `start`, until the sink is done or the record ends (stop_at = start + 1).
  fast_run (*walk_fields)(const char* data, std::uint64_t size, position start, std::uint64_t stop_at,
                          wanted_fields_sink& sink);
  std::optional<start_candidate> (*find_record_start)(const char* data, std::uint64_t b, std::uint64_t e,
                                                      std::uint64_t data_begin, bool entry_in_quote);
  quote_lf_counts (*count_range)(const char* data, std::uint64_t begin, std::uint64_t end) noexcept;
};

// ---------------------------------------------------------------------------
// 1. Mask kernels, and the scanner compiled per instruction set
// ---------------------------------------------------------------------------

// Whether every quote in src[0, n) is half of a `""` pair (what unescape_pairs checks, without
// the copy). Quoted HTML holds a few pairs per field, so a memchr per pair is enough.
inline bool quotes_paired(const char* src, std::size_t n) noexcept {
  const char* p = src;
  const char* const end = src + n;
  while (p != end) {
    const void* hit = std::memchr(p, kQuote, static_cast<std::size_t>(end - p));
    if (hit == nullptr) return true;
    const char* q = static_cast<const char*>(hit);
    if (end - q < 2 || q[1] != kQuote) return false;
    p = q + 2;
  }
  return true;
}

// Copy src[0, n) to out (n bytes of room), turning each `""` into `"`; -1 when a quote is not
// half of such a pair (then pandas would have closed the field there).
inline std::ptrdiff_t unescape_pairs_scalar(const char* src, std::size_t n, char* out) noexcept {
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

// The kernels of each instruction set (csv_scan_<isa>.cpp); sse2 and avx2 only on x86-64.
const scan_kernels& portable_kernels() noexcept;
#if TIXPORT_CSV_X86
const scan_kernels& sse2_kernels() noexcept;
const scan_kernels& avx2_kernels() noexcept;
#endif
/// The kernels set_simd_level chose (csv_scan_dispatch.cpp).
const scan_kernels& active_kernels() noexcept;

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

inline bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace tixport::csv_internal
