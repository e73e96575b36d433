// File: csv_reader_fuzz.cpp
//
// libFuzzer target for the parallel CSV reader (csv_reader.hpp). The first
// three input bytes choose how to read, the rest is the CSV file:
//   byte 0  planned chunk size: 1..128 bytes, or multiples of 61 up to ~7.8 KB
//           (so chunks end inside and across the scanner's 64-byte blocks),
//           but never more than 512 chunks;
//   byte 1  bits 0-1 threads - 1, bit 2 ordered delivery, bits 3-4 and 5-6
//           the SIMD kernel of the serial and of the parallel read;
//   byte 2  bits 0-2 max chunks in flight (0 = the default, at most 4);
//           bits 3-7 all set: widen the input by 66 KiB of one repeated byte
//           right after its first `"` (or in its middle), so a record can
//           outgrow the fast walker's 64 KiB look-ahead and span many chunks.
// Oracle: the parallel read equals the serial one (one chunk holding the whole
// input, one thread) and both equal the scalar exact parser (the pandas state
// machine, no SIMD, no speculation): the same records with the same fields,
// lines and offsets, the same malformed records and blank lines, every
// chunk_seq delivered once, and stats that agree with what was delivered.
//
//   build-fuzz/csv_reader_fuzz tests/fuzz/corpus/csv_reader -max_len=4096
#include "tixport/csv/csv_reader.hpp"

#include "../../src/csv/csv_reader_internal.hpp"
#include "fuzz_check.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace tixport;
using csv_internal::simd_level;

constexpr std::size_t kControlBytes = 3;
constexpr std::size_t kMaxChunks = 512;
constexpr std::size_t kWidenBytes = 66u << 10;  // just past csv_reader's kMaxSpeculativeRecord (64 KiB)
constexpr unsigned kWidenBits = 31;

/// Everything a read delivers, in file order, with the fields copied out.
struct flat_read {
  std::vector<std::uint64_t> lines;
  std::vector<std::uint64_t> offsets;
  std::vector<std::string> fields;  ///< num_fields per record
  std::vector<malformed_record> malformed;
  std::uint64_t blank_lines = 0;
};

void append_chunk(const csv_chunk& chunk, std::uint32_t num_fields, flat_read& out) {
  FUZZ_CHECK(chunk.num_fields == num_fields);
  FUZZ_CHECK(chunk.record_lines.size() == chunk.record_count());
  FUZZ_CHECK(chunk.fields.size() == chunk.record_count() * num_fields);
  // Fields left escaped (keep_escaped_field) are unescaped, so that they compare with the
  // other reads: the list must be ascending and name fields holding `""`.
  FUZZ_CHECK(std::is_sorted(chunk.escaped.begin(), chunk.escaped.end()));
  auto next_escaped = chunk.escaped.begin();
  for (std::size_t r = 0; r < chunk.record_count(); ++r) {
    out.lines.push_back(chunk.record_lines[r]);
    out.offsets.push_back(chunk.record_offsets[r]);
    for (std::size_t k = 0; k < num_fields; ++k) {
      const std::string_view field = chunk.record(r)[k];
      if (next_escaped != chunk.escaped.end() && *next_escaped == r * num_fields + k) {
        ++next_escaped;
        FUZZ_CHECK(field.find("\"\"") != std::string_view::npos);
        out.fields.push_back(tixport::csv_unescape_pairs(field));
      } else {
        out.fields.emplace_back(field);
      }
    }
  }
  FUZZ_CHECK(next_escaped == chunk.escaped.end());
  out.malformed.insert(out.malformed.end(), chunk.malformed.begin(), chunk.malformed.end());
  out.blank_lines += chunk.blank_lines;
}

bool same_malformed(const std::vector<malformed_record>& a, const std::vector<malformed_record>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const malformed_record& x, const malformed_record& y) {
    return x.line == y.line && x.offset == y.offset && x.field_count == y.field_count &&
           x.unterminated_quote == y.unterminated_quote;
  });
}

void check_equal(const flat_read& a, const flat_read& b) {
  FUZZ_CHECK(a.offsets == b.offsets);
  FUZZ_CHECK(a.lines == b.lines);
  FUZZ_CHECK(a.fields == b.fields);
  FUZZ_CHECK(same_malformed(a.malformed, b.malformed));
  FUZZ_CHECK(a.blank_lines == b.blank_lines);
}

/// read_csv_records, its chunks put back in chunk order and checked for completeness.
flat_read read_all(std::string_view csv, const csv_header& header, const csv_read_options& options,
                   csv_read_stats& stats) {
  std::mutex mutex;
  std::vector<csv_chunk> chunks;
  stats = read_csv_records(csv, header, options, [&](csv_chunk&& chunk) {
    const std::lock_guard lock(mutex);
    chunks.push_back(std::move(chunk));
  });
  if (options.ordered) {
    FUZZ_CHECK(std::is_sorted(chunks.begin(), chunks.end(),
                              [](const csv_chunk& a, const csv_chunk& b) { return a.chunk_seq < b.chunk_seq; }));
  }
  std::sort(chunks.begin(), chunks.end(), [](const csv_chunk& a, const csv_chunk& b) { return a.chunk_seq < b.chunk_seq; });
  FUZZ_CHECK(chunks.size() == stats.chunks);
  const auto num_fields = static_cast<std::uint32_t>(header.fields.size());
  flat_read out;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    FUZZ_CHECK(chunks[i].chunk_seq == i);
    append_chunk(chunks[i], num_fields, out);
  }
  FUZZ_CHECK(stats.records == out.offsets.size());
  FUZZ_CHECK(stats.malformed == out.malformed.size());
  FUZZ_CHECK(stats.blank_lines == out.blank_lines);
  FUZZ_CHECK(stats.bytes == csv.size() - header.data_offset);
  return out;
}

/// True when `csv` holds no record: an optional BOM, then only LF and CRLF line ends.
bool only_blank_lines(std::string_view csv) {
  if (csv.starts_with("\xEF\xBB\xBF")) csv.remove_prefix(3);
  for (;;) {
    if (csv.starts_with('\n')) {
      csv.remove_prefix(1);
    } else if (csv.starts_with("\r\n")) {
      csv.remove_prefix(2);
    } else {
      return csv.empty();
    }
  }
}

simd_level level_from(unsigned bits) {
  const auto wanted = static_cast<simd_level>(bits % 3);
  // Kernels the CPU lacks fall back to the best it has (the enum is ordered by width).
  return std::min(wanted, csv_internal::best_simd_level());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < kControlBytes) return 0;
  const unsigned chunk_sel = data[0];
  const unsigned flags = data[1];
  const unsigned in_flight = (data[2] & 7) % 5;
  std::string_view csv(reinterpret_cast<const char*>(data + kControlBytes), size - kControlBytes);
  std::vector<char> widened;  // exactly sized, so ASan sees any read past its end
  if ((data[2] >> 3) == kWidenBits && !csv.empty()) {
    const std::size_t quote = csv.find('"');
    const std::size_t at = quote == std::string_view::npos ? csv.size() / 2 : quote + 1;
    const char fill = at < csv.size() ? csv[at] : 'x';
    widened.reserve(csv.size() + kWidenBytes);
    widened.insert(widened.end(), csv.begin(), csv.begin() + static_cast<std::ptrdiff_t>(at));
    widened.insert(widened.end(), kWidenBytes, fill);
    widened.insert(widened.end(), csv.begin() + static_cast<std::ptrdiff_t>(at), csv.end());
    csv = std::string_view(widened.data(), widened.size());
  }

  const std::optional<csv_header> header = read_csv_header(csv);
  FUZZ_CHECK(header.has_value() == !only_blank_lines(csv));
  if (!header) return 0;
  FUZZ_CHECK(header->data_offset <= csv.size());
  FUZZ_CHECK(!header->fields.empty());
  const auto num_fields = static_cast<std::uint32_t>(header->fields.size());

  // 1. The reference: the scalar exact parser over everything after the header.
  flat_read exact;
  append_chunk(csv_internal::parse_range(csv, header->data_offset, header->data_first_line, csv.size(), num_fields,
                                         csv_internal::parse_mode::exact),
               num_fields, exact);
  for (std::size_t r = 1; r < exact.offsets.size(); ++r) {
    FUZZ_CHECK(exact.offsets[r - 1] < exact.offsets[r]);
    FUZZ_CHECK(exact.lines[r - 1] < exact.lines[r]);
  }

  // 2. Serial: one planned chunk holding the whole input, one thread.
  csv_internal::set_simd_level(level_from(flags >> 3 & 3));
  csv_read_options serial_options;
  serial_options.chunk_bytes = std::max<std::size_t>(1, csv.size());
  serial_options.threads = 1;
  serial_options.ordered = true;
  csv_read_stats serial_stats;
  const flat_read serial = read_all(csv, *header, serial_options, serial_stats);
  check_equal(serial, exact);
  const std::uint64_t lfs = static_cast<std::uint64_t>(std::count(csv.begin(), csv.end(), '\n'));
  FUZZ_CHECK(serial_stats.lines == lfs + (!csv.empty() && csv.back() != '\n' ? 1 : 0));

  // 3. Parallel: small chunks, several threads, the chosen kernel.
  csv_internal::set_simd_level(level_from(flags >> 5 & 3));
  csv_read_options parallel_options;
  // At most kMaxChunks planned chunks: tiny chunks over a long input cost graph hand-offs, not coverage.
  parallel_options.chunk_bytes =
      std::max<std::size_t>(chunk_sel < 128 ? chunk_sel + 1 : (chunk_sel - 127) * 61, csv.size() / kMaxChunks);
  parallel_options.threads = (flags & 3) + 1;
  parallel_options.ordered = (flags & 4) != 0;
  parallel_options.max_chunks_in_flight = in_flight;
  // A column left escaped, as the run reads BODY: some inputs name none, some one past the end.
  parallel_options.keep_escaped_field =
      (flags >> 7 & 1) != 0 ? (chunk_sel % (num_fields + 1)) : csv_read_options::kNoColumn;
  csv_read_stats parallel_stats;
  const flat_read parallel = read_all(csv, *header, parallel_options, parallel_stats);
  check_equal(parallel, serial);
  FUZZ_CHECK(parallel_stats.lines == serial_stats.lines);
  return 0;
}
