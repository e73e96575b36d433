// File: user_index_csv.hpp
//
// The user index as a CSV file (SPEC 1.2): columns `id` and `email`, any order,
// extras ignored. `run --users-file`, a present `--users-cache` and `verify
// --users-file` read it; `fetch-users` and a refreshed `--users-cache` write it.
//
//   std::vector<raw_index_entry> entries = read_index_csv("users.csv", threads);
//   user_index index = user_index::build(entries);
//   save_index_csv(entries, "copy.csv");                 // in place at once
//   auto cache = stage_index_csv(entries, "cache.csv");  // complete, not yet in place
//   cache->commit(false);                                // with the run's other outputs
#pragma once

#include "tixport/common/errors.hpp"
#include "tixport/index/user_index.hpp"

#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

namespace tixport {

class atomic_output_file;

/// Who reads an index CSV: what its error messages start with, and the exit code of a file
/// that cannot be opened or read. `run` reads the index (exit 4); `verify` reads a users file
/// that is one of its inputs (exit 2).
struct index_csv_reader {
  std::string_view what = "user index";                     ///< message prefix
  exit_code unreadable = exit_code::user_index_error;       ///< open / read failure
};

/// Read an index CSV with columns `id` and `email` (SPEC 1.2) into entries in file order; a
/// malformed record counts as an entry without id or email. `threads` 0 = all cores.
/// Throws fatal_error(reader.unreadable, "WHAT: ...") when the file cannot be opened or read,
/// fatal_error(input_error, "WHAT: PATH: ...") when it is empty or a column is missing or repeated.
std::vector<raw_index_entry> read_index_csv(const std::filesystem::path& path, unsigned threads,
                                            const index_csv_reader& reader = {});

/// Write `entries` as CSV "id,email": a header line, then one line per entry with a valid id,
/// in order; a null email gives an empty field; a field holding , " CR or LF or leading or
/// trailing white space is quoted. Lines end in LF. Written to a temporary file beside `path`
/// and renamed into place. Throws fatal_error(output_error, ...); throws
/// fatal_error(interrupted) instead of renaming when SIGINT / SIGTERM arrived under an
/// interrupt_guard (the temporary file is removed, an existing `path` stays as it was).
void save_index_csv(const std::vector<raw_index_entry>& entries, const std::filesystem::path& path);

/// The same file, complete but not yet in place: `run` commits it with its other outputs.
std::unique_ptr<atomic_output_file> stage_index_csv(const std::vector<raw_index_entry>& entries,
                                                    const std::filesystem::path& path);

}  // namespace tixport
