// File: csv_record_parser.cpp
//
// The serial record parser behind read_csv_records: a range of records (fast or exact),
// the boundary-only scan the benchmark measures, one field of one record re-read (the
// batch serializer's bodies that held ""), and the header record.
#include "csv/csv_scan_internal.hpp"
#include "common/thread_scratch_internal.hpp"

#include <algorithm>

namespace tixport {
namespace csv_internal {

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


void read_record_field(std::string_view data, std::uint64_t record_start, std::size_t field, std::string& out) {
  // One wanted field: a slice of the input is copied into `out`, an unescaped one is already there.
  const std::size_t wanted[1] = {field};
  std::string_view views[1];
  std::string* const owned[1] = {&out};
  out.clear();
  read_record_fields(data, record_start, wanted, views, owned);
  if (views[0].data() == out.data()) {
    out.resize(views[0].size());  // unescaped into `out`, which may have been left longer
  } else {
    out.assign(views[0]);
  }
}

bool read_record_fields(std::string_view data, std::uint64_t record_start, std::span<const std::size_t> wanted,
                        std::span<std::string_view> views, std::span<std::string* const> owned,
                        std::size_t keep_escaped) {
  for (std::string_view& v : views) v = {};
  if (wanted.empty() || record_start >= data.size()) return false;
  thread_local std::string scratch;
  release_if_huge(scratch);  // a huge field must not stay pinned to a thread
  wanted_fields_sink sink{wanted, views, owned, &scratch};
  sink.last = *std::max_element(wanted.begin(), wanted.end());
  // Only a wanted field may be left escaped: the result must say so of a view the caller has.
  if (std::find(wanted.begin(), wanted.end(), keep_escaped) != wanted.end()) sink.keep_escaped = keep_escaped;
  // The batch serializer reads every comment's record again: the SIMD walker first, as the
  // chunk parse did; a record it cannot take goes to the exact parser, which gives the same
  // fields wherever the walker accepts a record. (At a blank line both give empty views.)
  const position start{record_start, 0};
  const fast_run run = active_kernels().walk_fields(data.data(), data.size(), start, record_start + 1, sink);
  if (!run.fallback) return sink.left_escaped;
  sink.rollback(0);
  scratch.clear();
  parse_record_exact(data.data(), data.size(), start, sink, scratch);
  return false;  // the exact parser unescapes every field
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

}  // namespace tixport
