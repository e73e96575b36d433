// File: sample_generator.hpp
//
// `tixport generate`: a deterministic generator of realistic chat exports
// (SPEC 1.1) and ticketing-platform user indexes (SPEC 1.2) at any size, with
// the mess of the original export in it: duplicate rows, pandas-style `123.0`
// ids, mixed boolean spellings, timestamps with zones and fractions, HTML
// bodies with commas, quotes, LF and CRLF, non-ASCII names, emails in other
// letter case, a few invalid values and malformed records.
//
// The bytes depend only on (rows, seed), never on the thread count: rows are
// generated in fixed-size blocks, each with its own PRNG seeded from
// (seed, block index), and written in block order.
//
//   tixport::generate_options opt;
//   opt.rows = 2'500'000;
//   opt.output = "chat.csv";
//   opt.users_output = "index.csv";
//   opt.seed = 42;
//   tixport::generate_stats st = tixport::generate_sample(opt);
//   std::cerr << st.rows << " rows, " << st.bytes << " bytes\n";
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

namespace tixport {

/// What to generate and where.
struct generate_options {
  std::uint64_t rows = 100000;            ///< data rows (records after the header), exact
  std::filesystem::path output;           ///< the chat export CSV
  std::filesystem::path users_output;     ///< the ticketing platform's index CSV "id,email"
  std::uint64_t seed = 1;                 ///< same (rows, seed) -> same bytes
  unsigned threads = 0;                   ///< 0 = all cores; output bytes never depend on it
  std::function<void(std::uint64_t rows_done, std::uint64_t rows_total)> progress;  ///< called in block order
};

/// What was generated.
struct generate_stats {
  std::uint64_t rows = 0;           ///< data records written to the export (header excluded)
  std::uint64_t bytes = 0;          ///< bytes of the export file
  std::uint64_t conversations = 0;  ///< distinct conversations planned
  std::uint64_t chat_users = 0;     ///< distinct valid AUTHOR_IDs in well-formed rows
  std::uint64_t index_users = 0;    ///< entries written to the index file (header excluded)
  std::uint64_t duplicate_rows = 0; ///< well-formed rows whose valid COMMENT_PART_ID an earlier well-formed row had
  double seconds = 0;               ///< wall time of the whole call
};

/// Write both files atomically (temp + rename). Throws fatal_error(output_error, ...) on write errors,
/// fatal_error(input_error, ...) when the paths are empty or the same file, and
/// fatal_error(interrupted, ...) when main's interrupt_guard saw SIGINT/SIGTERM; in every
/// case the temporary files are removed and existing outputs are left untouched.
generate_stats generate_sample(const generate_options& options);

}  // namespace tixport
