// File: csv_reader.hpp
//
// The parallel CSV reader for the chat export (SPEC 1.1) and the user index
// CSV (SPEC 1.2). It reads the whole file's bytes (usually a mapped_file) in
// planned byte chunks under a oneTBB flow graph and hands out verified chunks
// of records whose fields are zero-copy views into the input.
//
//   auto file = tixport::mapped_file::open(path);
//   auto header = tixport::read_csv_header(file.bytes());       // nullopt: empty file
//   auto cols = tixport::resolve_columns(*header, kRequiredColumns, {"input", path, file.bytes()});
//   tixport::csv_read_options opt; opt.threads = n; opt.ordered = true;
//   auto stats = tixport::read_csv_records(file.bytes(), *header, opt, [&](tixport::csv_chunk&& c) {
//     for (std::size_t r = 0; r < c.record_count(); ++r) use(c.record(r)[cols[0]], c.record_lines[r]);
//   });
//
// Record rules (decided, pandas / Python csv compatible; SPEC 1.1):
// - A UTF-8 BOM (EF BB BF) is skipped at the start of the file only.
// - A record ends at LF or CRLF (the CR is not part of the field); a lone CR is
//   an ordinary character (also as the file's last byte). The last record may
//   lack a line end; a `,` as the last byte still opens an empty last field.
// - A line with zero bytes (just LF or CRLF) outside quotes is skipped: not a
//   record, not counted as one, but it is still a physical line (blank_lines).
// - Physical line of byte offset X = 1 + number of LF bytes before X (a CRLF is
//   one line end, a lone CR none). Lines and offsets are 64-bit.
// - A `"` is special only at the start of a field. Inside a quoted field `""`
//   is one `"` and a single `"` closes it; bytes after the closing quote up to
//   the next separator / line end are appended to the field as they are; a `"`
//   in the middle of an unquoted field is an ordinary byte. A quoted field may
//   hold `,`, CR and LF. Quoted fields come out without their quotes.
// - A record whose field count differs from the header's is malformed and
//   reported with the line on which it starts. An unterminated quote makes the
//   rest of the file one malformed record (unterminated_quote = true).
// - Empty file (or only blank lines / a BOM): read_csv_header gives nullopt.
//   Header-only file: zero records. A header with an unterminated quote takes
//   the rest of the file; there are then no data records.
// - Fields are neither trimmed nor UTF-8 checked here (later stages do that).
//
// Parallel design: pass 1 counts `"` and LF bytes per planned chunk (parallel);
// an exclusive XOR scan of quote parity gives each chunk's entry quote state, an
// exclusive sum of LFs its first line. Pass 2 parses the chunks speculatively in
// parallel, then a serial node in chunk order checks that each chunk started
// exactly where the previous one ended and re-parses it from the true position
// when not (stray quotes break the parity assumption), and re-anchors the parity
// of the chunks after it at that true position. Only a few integers per
// planned chunk are kept for the whole file; at most max_chunks_in_flight parsed
// chunks exist at a time.
#pragma once

#include "tixport/common/uninitialized_allocator.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tixport {

namespace csv_internal {
struct chunk_access;
}  // namespace csv_internal

/// A record whose field count differs from the header's, or that ran into EOF inside quotes.
struct malformed_record {
  std::uint64_t line = 0;           ///< physical line (1-based) on which the record starts
  std::uint64_t offset = 0;         ///< byte offset of the record start
  std::uint32_t field_count = 0;    ///< fields found (for the error message)
  bool unterminated_quote = false;  ///< the record ran to EOF inside a quoted field
};

/// A run of complete records, all starting inside one planned chunk, final (verified) when delivered.
/// Move-only: fields that held `""` point into the chunk's own storage, which moves with it.
struct csv_chunk {
  std::uint64_t chunk_seq = 0;                ///< 0-based chunk index in file order (every index is delivered once)
  std::uint32_t num_fields = 0;               ///< the header's field count
  /// record r = fields[r*num_fields, (r+1)*num_fields); the parser's buffer too, hence the
  /// allocator: growing it must not zero megabytes that are overwritten at once.
  std::vector<std::string_view, uninitialized_allocator<std::string_view>> fields;
  std::vector<std::uint64_t> record_offsets;  ///< byte offset of each well-formed record's start (file order key)
  std::vector<std::uint64_t> record_lines;    ///< physical line of each well-formed record's start
  std::vector<malformed_record> malformed;    ///< records whose field count != num_fields, in order
  std::uint64_t blank_lines = 0;              ///< empty lines skipped (not records)
  /// Indices into `fields`, ascending, of the views left escaped (csv_read_options::
  /// keep_escaped_field): the bytes between the field's quotes with every `"` still doubled.
  /// csv_unescape_pairs() gives their text.
  std::vector<std::size_t> escaped;

  csv_chunk() = default;
  csv_chunk(csv_chunk&& other) noexcept { *this = std::move(other); }
  csv_chunk& operator=(csv_chunk&& other) noexcept {
    if (this == &other) return *this;
    chunk_seq = other.chunk_seq;
    num_fields = other.num_fields;
    fields = std::move(other.fields);
    record_offsets = std::move(other.record_offsets);
    record_lines = std::move(other.record_lines);
    malformed = std::move(other.malformed);
    blank_lines = other.blank_lines;
    escaped = std::move(other.escaped);
    blocks_ = std::move(other.blocks_);  // heap blocks keep their addresses, so views stay valid
    cursor_ = std::exchange(other.cursor_, nullptr);
    remaining_ = std::exchange(other.remaining_, 0);
    return *this;
  }
  csv_chunk(const csv_chunk&) = delete;
  csv_chunk& operator=(const csv_chunk&) = delete;
  ~csv_chunk() = default;

  /// Number of well-formed records.
  [[nodiscard]] std::size_t record_count() const noexcept { return record_offsets.size(); }
  /// The fields of well-formed record `record_idx` (num_fields views).
  [[nodiscard]] std::span<const std::string_view> record(std::size_t record_idx) const noexcept {
    return std::span<const std::string_view>(fields).subspan(record_idx * num_fields, num_fields);
  }

 private:
  friend struct csv_internal::chunk_access;
  std::vector<std::unique_ptr<char[]>> blocks_;  ///< unescaped field bytes; blocks never move
  char* cursor_ = nullptr;                       ///< next free byte in blocks_.back()
  std::size_t remaining_ = 0;                    ///< free bytes after cursor_
};

/// The header record of a CSV file.
struct csv_header {
  std::vector<std::string_view> fields;  ///< header fields, unquoted (BOM stripped); views live as long as the data/mapping
  std::uint64_t data_offset = 0;         ///< byte offset where the first data record starts
  std::uint64_t data_first_line = 1;     ///< its physical line
  /// Keeps header fields that held `""` alive; shared so a copied header's views stay valid.
  std::shared_ptr<const std::vector<std::string>> unescaped_storage = {};
};

/// How read_csv_records splits and schedules the work.
struct csv_read_options {
  std::size_t chunk_bytes = 4u << 20;    ///< planned chunk size (tests use tiny ones, down to 1; 0 means 1)
  std::size_t threads = 0;               ///< 0 = all cores; a tbb::task_arena of this size (at most TBB's max_allowed_parallelism) runs the graph
  std::size_t max_chunks_in_flight = 0;  ///< 0 = 2 * threads; bounds memory (limiter_node)
  bool ordered = false;                  ///< true: on_chunk called serially in chunk order; false: in parallel, any order
  /// A column whose quoted `""` pairs are checked but left in place (listed in csv_chunk::
  /// escaped) instead of being copied out unescaped: for a long column the consumer only
  /// tests, such as BODY, which the write reads again from the record anyway. Fields the
  /// fast scanner cannot take are unescaped as usual. kNoColumn: none.
  std::size_t keep_escaped_field = kNoColumn;
  static constexpr std::size_t kNoColumn = static_cast<std::size_t>(-1);
};

/// Totals of one read_csv_records call.
struct csv_read_stats {
  std::uint64_t records = 0;          ///< well-formed records
  std::uint64_t malformed = 0;        ///< malformed records
  std::uint64_t blank_lines = 0;      ///< blank lines skipped after the header
  std::uint64_t chunks = 0;           ///< chunks delivered (= planned chunks)
  std::uint64_t reparsed_chunks = 0;  ///< chunks whose speculative parse was discarded at the ordered merge
  std::uint64_t bytes = 0;            ///< bytes after the header (data.size() - header.data_offset)
  std::uint64_t lines = 0;            ///< physical lines of the whole file, header included
};

/// The text of a field view left escaped (csv_chunk::escaped): each `""` becomes `"`.
std::string csv_unescape_pairs(std::string_view escaped);

/// Append `field` to `out` as one CSV field that this reader reads back as exactly `field`:
/// quoted (with `""` for each `"`) when it holds `,` `"` CR or LF, or starts or ends with
/// white space (which a trimming reader would drop), else as it is.
void append_csv_field(std::string& out, std::string_view field);

/// Parse the header record of `data` (whole file bytes). nullopt when the file has no record at all.
/// Leading blank lines are skipped (and counted in data_first_line's numbering).
std::optional<csv_header> read_csv_header(std::string_view data);

/// Where a header came from, so that resolve_columns' error names the file and says what it holds.
struct csv_source {
  std::string_view what = "input";  ///< message prefix: "input" (the export) or "user index"
  std::string_view path;            ///< the file, named in the message; empty: not named
  std::string_view data;            ///< the file's bytes, looked at for compression / binary data; may be empty
};

/// Find required columns by name (trimmed of ASCII space/tab/CR/LF, ASCII case-insensitive), any order,
/// extras ignored. Returns for each required name its field index. Throws fatal_error(input_error,
/// "WHAT: PATH: header: missing columns A, B (2 of N required); repeated column C; found K columns:
/// ...; HINT") naming every missing and repeated column in the order of `required`, the columns the
/// header holds, and, when `source.data` shows it, why: a gzip / zstd / zip / xz / bzip2 / tar file,
/// UTF-16 text, binary data, or a one-column header that splits at `;`, tab or `|` into required names.
std::vector<std::size_t> resolve_columns(const csv_header& header, std::span<const std::string_view> required,
                                         const csv_source& source = {});

/// Read all data records after the header, in parallel chunks under a oneTBB flow graph, calling
/// on_chunk for each verified chunk (see options.ordered); every chunk_seq in [0, stats.chunks) is
/// delivered exactly once, possibly with no records. Exceptions thrown by on_chunk cancel the graph
/// and are rethrown. `data` must be the same bytes the header was read from.
csv_read_stats read_csv_records(std::string_view data, const csv_header& header, const csv_read_options& options,
                                const std::function<void(csv_chunk&&)>& on_chunk);

}  // namespace tixport
