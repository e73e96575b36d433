// File: refresh_generator.hpp
//
// `tixport generate --append-to OLD.csv`: a refreshed export to try reruns
// (SPEC 4) on: the old export's bytes unchanged, then new rows as a live chat
// system would add them in the weeks after a trial export: new messages in
// old conversations, new conversations from new and known customers, chat
// users without an email who now have one, and some duplicate rows. The new
// rows depend only on the old export and the seed.
//
//   refresh_options opt;
//   opt.base = "trial.csv"; opt.output = "refresh.csv"; opt.rows = 10'000; opt.seed = 2;
//   refresh_stats st = generate_refresh(opt);
#pragma once

#include <cstdint>
#include <filesystem>

namespace tixport {

/// What to append and where.
struct refresh_options {
  std::filesystem::path base;    ///< the old export (any export with the required columns)
  std::filesystem::path output;  ///< the refreshed export: base bytes + new rows (may be base itself)
  std::uint64_t rows = 10000;    ///< rows to append
  std::uint64_t seed = 1;        ///< same base and seed, same bytes
  unsigned threads = 0;          ///< for reading the base; never changes the bytes
};

/// What was appended.
struct refresh_stats {
  std::uint64_t base_bytes = 0;              ///< bytes of the old export
  std::uint64_t rows = 0;                    ///< rows appended
  std::uint64_t bytes = 0;                   ///< bytes of the refreshed export
  std::uint64_t messages_in_old = 0;         ///< new messages in conversations of the old export
  std::uint64_t new_conversations = 0;       ///< conversations not in the old export
  std::uint64_t new_customers = 0;           ///< chat users not in the old export
  std::uint64_t users_gaining_email = 0;     ///< old chat ids without an email that now have one
  std::uint64_t duplicate_rows = 0;          ///< rows repeating an appended row
  double seconds = 0;                        ///< wall time
};

/// Write the refreshed export atomically. Throws fatal_error(input_error) when the base cannot be
/// read or lacks a required column, fatal_error(output_error) when the output cannot be written.
refresh_stats generate_refresh(const refresh_options& options);

}  // namespace tixport
