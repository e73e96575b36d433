// File: run_report.hpp
//
// What a run did (SPEC 2.7): the counts, the samples, the time per stage.
// Printed as a summary on stderr and, with --report FILE, written as JSON
// whose keys are documented in README.md ("The report").
//
//   run_report report = run_migration(options);
//   print_summary(report, stderr);
//   write_report_json(report, "report.json");   // or "/dev/stdout", a FIFO, ...
#pragma once

#include "tixport/reject_log.hpp"
#include "tixport/user_index.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace tixport {

/// Wall time of one stage.
struct stage_time {
  std::string name;      ///< "parse", "index", "resolve", "write"
  double seconds = 0;    ///< wall seconds
};

/// Everything a `run` reports.
struct run_report {
  std::string input;                      ///< input path
  std::string output;                     ///< archive path
  std::string index_source;               ///< index file path or API URL
  std::uint64_t input_bytes = 0;          ///< bytes of the export
  std::uint64_t rows = 0;                 ///< data records (well-formed + malformed)
  std::uint64_t well_formed_rows = 0;     ///< records with the header's field count
  std::uint64_t blank_lines = 0;          ///< empty lines skipped
  std::uint64_t valid_comment_rows = 0;   ///< rows that were valid comments
  std::uint64_t valid_ticket_rows = 0;    ///< rows that were valid tickets
  std::uint64_t user_candidate_rows = 0;  ///< rows that were user candidates
  std::uint64_t users = 0;                ///< users written
  std::uint64_t users_matched = 0;        ///< of which matched in the index
  std::uint64_t users_new = 0;            ///< of which new
  std::uint64_t comments = 0;             ///< comments written
  std::uint64_t tickets = 0;              ///< tickets written
  std::uint64_t batches = 0;              ///< batch files written
  std::uint64_t json_bytes = 0;           ///< bytes of all batch files
  std::uint64_t archive_bytes = 0;        ///< bytes of the archive file
  std::uint64_t csv_chunks = 0;           ///< chunks the export was read in
  std::uint64_t csv_reparsed_chunks = 0;  ///< chunks re-read at the ordered merge
  user_index_stats index;                 ///< what the index kept and skipped
  reject_log issues;                      ///< counts and samples per row_issue
  std::vector<stage_time> stages;         ///< time per stage, in order
  double seconds = 0;                     ///< wall time of the whole run
  int exit_code = 0;                      ///< 0, or 1 when --strict found problems
};

/// True when --strict must fail: any issue for which row_issue_fails_strict() holds.
bool strict_problems(const run_report& report) noexcept;

/// The human summary (stderr).
void print_summary(const run_report& report, std::FILE* out);

/// Write the report as JSON to `path`. A regular file or a new path is written atomically
/// (temp file beside it, then rename); any other existing target (a character device such as
/// /dev/stdout's terminal or /dev/null, a FIFO, a socket, a symlink) is opened and written
/// directly, so the device node or link is never replaced. Throws fatal_error(output_error)
/// on any failure (open, write, close, rename), e.g. ENOSPC from /dev/full.
void write_report_json(const run_report& report, const std::filesystem::path& path);

/// The report as JSON text.
std::string report_json(const run_report& report);

}  // namespace tixport
