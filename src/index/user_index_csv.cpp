// File: user_index_csv.cpp
#include "tixport/index/user_index_csv.hpp"

#include "tixport/common/atomic_output.hpp"
#include "tixport/common/interrupt_guard.hpp"
#include "tixport/common/mapped_file.hpp"
#include "tixport/csv/csv_reader.hpp"
#include "tixport/csv/field_parsers.hpp"

#include <array>
#include <string>

namespace tixport {

std::vector<raw_index_entry> read_index_csv(const std::filesystem::path& path, unsigned threads,
                                            const index_csv_reader& reader) {
  const std::string what(reader.what);
  mapped_file file = [&] {
    try {
      return mapped_file::open(path);
    } catch (const fatal_error& e) {
      // mapped_file speaks for the export ("input: open: ..."); here the file is the index.
      throw fatal_error(reader.unreadable, what + ": " + e.what());
    }
  }();
  const std::string_view data = file.bytes();
  const std::optional<csv_header> header = read_csv_header(data);
  if (!header) {
    throw fatal_error(exit_code::input_error, what + ": " + path.string() + ": empty file, no header");
  }
  constexpr std::array<std::string_view, 2> kColumns = {"id", "email"};
  const std::vector<std::size_t> columns = resolve_columns(*header, kColumns, {what, path.native(), data});
  std::vector<raw_index_entry> entries;
  csv_read_options options;
  options.threads = threads;
  options.ordered = true;  // "first in file order wins" needs the entries in order
  read_csv_records(data, *header, options, [&](csv_chunk&& chunk) {
    const std::size_t width = chunk.num_fields;
    for (std::size_t r = 0; r < chunk.record_count(); ++r) {
      const std::string_view* f = chunk.fields.data() + r * width;
      entries.push_back(raw_index_entry{parse_id(f[columns[0]]), std::string(f[columns[1]])});
    }
    // A malformed index row has no trustworthy id or email: it counts as an invalid entry.
    for (std::size_t i = 0; i < chunk.malformed.size(); ++i) entries.push_back(raw_index_entry{});
  });
  return entries;
}

std::unique_ptr<atomic_output_file> stage_index_csv(const std::vector<raw_index_entry>& entries,
                                                    const std::filesystem::path& path) {
  std::string text = "id,email\n";
  for (const raw_index_entry& entry : entries) {
    if (!entry.id) continue;
    text += std::to_string(*entry.id);
    text += ',';
    if (entry.email) append_csv_field(text, *entry.email);
    text += '\n';
  }
  auto file = std::make_unique<atomic_output_file>(path, "users csv");
  file->write(text);
  file->complete();  // flushed before any rename, so the name never points at a half-written file
  return file;
}

void save_index_csv(const std::vector<raw_index_entry>& entries, const std::filesystem::path& path) {
  const std::unique_ptr<atomic_output_file> file = stage_index_csv(entries, path);
  // A SIGINT / SIGTERM that came while the file was written (fsync can take a while) stops
  // here: no cache file is put in place (an old one stays), the run or fetch-users exits 130.
  if (interrupt_requested()) {
    throw fatal_error(exit_code::interrupted, "users csv: write " + path.string() + ": interrupted");
  }
  file->commit(false);
}

}  // namespace tixport
