// File: csv_reader_internal.hpp
//
// Pieces of csv_reader.cpp that tests and benchmarks reach directly (never
// installed): the SIMD kernel selection, the serial range parser in its fast
// (SIMD speculative) and exact (scalar state machine) forms, the boundary-only
// scanner the benchmark measures, the pass-1 counter, and one field of one record
// re-read by the exact parser (the batch serializer's bodies that held "").
//
//   using namespace tixport::csv_internal;
//   set_simd_level(simd_level::portable);                   // force the scalar kernel
//   csv_chunk all = parse_range(data, off, line, data.size(), 10, parse_mode::fast);
//   boundary_stats s = scan_record_boundaries(data, off, line, 10);
#pragma once

#include "tixport/csv/csv_reader.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <span>
#include <string_view>

namespace tixport::csv_internal {

/// The kernel that builds the quote / comma / LF bitmasks, 64 bytes at a time.
enum class simd_level {
  portable,  ///< plain C++ byte loop (any CPU)
  sse2,      ///< x86-64 baseline, 4 x 16 bytes
  avx2,      ///< runtime-detected, 2 x 32 bytes
};

/// The best kernel this CPU supports.
simd_level best_simd_level() noexcept;
/// The kernel in use (best_simd_level() unless set_simd_level changed it).
simd_level active_simd_level() noexcept;
/// Force a kernel (tests, benchmarks). Throws std::invalid_argument if the CPU lacks it.
void set_simd_level(simd_level level);
/// Name for reports: "portable", "sse2", "avx2".
const char* simd_level_name(simd_level level) noexcept;

/// How parse_range finds fields.
enum class parse_mode {
  fast,   ///< SIMD bitmasks and quote parity, with per-record fallback to the exact parser
  exact,  ///< the scalar pandas state machine only (the reference)
};

/// Parse, serially, every record that starts in [begin, stop_at); `begin` must be a record start
/// (outside quotes) on physical line `begin_line`. The chunk's chunk_seq is 0.
csv_chunk parse_range(std::string_view data, std::uint64_t begin, std::uint64_t begin_line, std::uint64_t stop_at,
                      std::uint32_t num_fields, parse_mode mode);

/// Totals of a boundary-only scan (no field views kept).
struct boundary_stats {
  std::uint64_t records = 0;      ///< records with num_fields fields
  std::uint64_t malformed = 0;    ///< other records (count mismatch or unterminated quote)
  std::uint64_t blank_lines = 0;  ///< skipped empty lines
  std::uint64_t fields = 0;       ///< fields seen in all records
  std::uint64_t fallbacks = 0;    ///< records handed to the exact parser
  std::uint64_t end_line = 0;     ///< physical line at EOF
};

/// Find every record boundary from `begin` (a record start on `begin_line`) to EOF with the fast
/// path, exactly as parse_range would, without storing fields. Used by the benchmark.
boundary_stats scan_record_boundaries(std::string_view data, std::uint64_t begin, std::uint64_t begin_line,
                                      std::uint32_t num_fields);

/// `"`, `,` and LF bytes in [begin, end) (pass 1 of read_csv_records).
struct quote_lf_counts {
  std::uint64_t quotes = 0;  ///< `"` bytes
  std::uint64_t commas = 0;  ///< `,` bytes (sizes the chunk's field vector)
  std::uint64_t lfs = 0;     ///< LF bytes
};
quote_lf_counts count_quotes_and_lfs(std::string_view data, std::uint64_t begin, std::uint64_t end) noexcept;

/// Field `field` (0-based) of the one record starting at `record_start` (a record start outside
/// quotes), unescaped by the exact parser, into `out`: the same bytes parse_range gives for it.
/// Empty when the record has fewer fields or `record_start` is at EOF.
void read_record_field(std::string_view data, std::uint64_t record_start, std::size_t field, std::string& out);

/// Fields wanted[i] (0-based, any order) of the one record starting at `record_start`, as
/// parse_range gives them: views[i] is a view into `data` when the field is a slice of it,
/// else the unescaped text in *owned[i] (views[i] then points to its start; the string may be
/// longer than the field, so use views[i]). The record is walked with the SIMD kernels as
/// parse_range does, and by the exact parser when they cannot take it; either stops after the
/// last wanted field. A field the record lacks is empty. All three spans are as long.
/// keep_escaped: a wanted field index that, when the walker takes the record and the field holds
/// `""`, is left escaped (csv_read_options::keep_escaped_field): its view is then the bytes
/// between its quotes, and the result is true.
bool read_record_fields(std::string_view data, std::uint64_t record_start, std::span<const std::size_t> wanted,
                        std::span<std::string_view> views, std::span<std::string* const> owned,
                        std::size_t keep_escaped = csv_read_options::kNoColumn);

}  // namespace tixport::csv_internal
