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

#include "tixport/common/atomic_output.hpp"
#include "tixport/run/reject_log.hpp"
#include "tixport/index/user_index.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tixport {

/// Wall time of one stage.
struct stage_time {
  std::string name;      ///< "parse", "index", "resolve", "write"
  double seconds = 0;    ///< wall seconds
};

/// What a run with --since / --ledger adds (SPEC 4).
struct rerun_report {
  std::string since;                    ///< the --since ledger ("" without)
  std::string ledger;                   ///< the --ledger written ("" without)
  std::string path = "none";            ///< "none", "appended" or "full_compare" (SPEC 4.3)
  std::uint32_t ledger_run = 0;         ///< run number of the ledger written
  std::uint64_t bytes_hashed = 0;       ///< export bytes hashed (prefix check, block hashes)
  std::uint64_t bytes_parsed = 0;       ///< export bytes parsed
  std::uint64_t prefix_bytes = 0;       ///< leading bytes equal to the ledger's export (by blocks)
  std::uint64_t skipped_tickets = 0;    ///< already imported: not written again
  std::uint64_t skipped_comments = 0;
  std::uint64_t skipped_users = 0;
  counted_lines changed_tickets;        ///< in the ledger, JSON now differs: counted, not written
  counted_lines changed_comments;
  std::uint64_t missing_tickets = 0;    ///< ledger objects absent from this export
  std::uint64_t missing_comments = 0;
  std::uint64_t ledger_index_conflicts = 0;  ///< ledger users the index gives another id
  bool old_part_problems = false;       ///< appended path: the old part had --strict export problems
  std::uint32_t replaced_ledger_run = 0;  ///< run of the ledger --ledger replaced without --since (0: none)
};

/// Everything a `run` reports.
struct run_report {
  std::string input;                      ///< input path
  std::string output;                     ///< archive path
  std::string index_source;               ///< index file path or API URL (as redact_url() shows it)
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
  rerun_report rerun;                     ///< --since / --ledger
  bool dry_run = false;                   ///< --dry-run: no archive, no ledger written
  std::vector<stage_time> stages;         ///< time per stage, in order
  double seconds = 0;                     ///< wall time of the whole run
  int exit_code = 0;                      ///< 0, or 1 when --strict found problems
};

/// True when --strict must fail: any issue for which row_issue_fails_strict() holds, or an
/// appended rerun whose old part (not parsed again) had export problems.
bool strict_problems(const run_report& report) noexcept;

/// True when the parsed rows had a malformed record or an invalid comment or ticket row: the
/// export's own --strict problems, which a ledger remembers for reruns that skip the old part.
bool export_had_problems(const reject_log& issues) noexcept;

/// The human summary (stderr). `every_sample`: list all kept sample lines per issue (--verbose)
/// rather than the first few.
void print_summary(const run_report& report, std::FILE* out, bool every_sample = false);

/// Write the report as JSON to `path`. A regular file or a new path is written atomically
/// (temp file beside it, then rename); any other existing target (a character device such as
/// /dev/stdout's terminal or /dev/null, a FIFO, a socket, a symlink) is opened and written
/// directly, so the device node or link is never replaced. Throws fatal_error(output_error)
/// on any failure (open, write, close, rename), e.g. ENOSPC from /dev/full.
void write_report_json(const run_report& report, const std::filesystem::path& path);

/// Write the report like write_report_json, but leave a regular target as a completed temp
/// file that the caller commits with the run's other outputs (nullptr: written through).
std::unique_ptr<atomic_output_file> stage_report_json(const run_report& report, const std::filesystem::path& path);

/// The report as JSON text.
std::string report_json(const run_report& report);

/// What the index kept and skipped, e.g. "250 entries (240 kept; skipped: 4 invalid id,
/// 3 invalid email, 2 duplicate email, 1 duplicate id)". Used by `run` and `fetch-users`.
std::string describe_index_stats(const user_index_stats& stats);

/// The warning for an index that is almost certainly not the one meant: it kept no entry, or
/// under 1% of its entries (then every, or nearly every, user becomes new). `source` names it.
/// nullopt when the index looks usable.
std::optional<std::string> index_warning(const user_index_stats& stats, std::string_view source);

/// Warnings for results that are almost certainly not what the user meant, one line each,
/// without the "tixport: warning: " prefix, in this order:
///   1. the index warning (index_warning);
///   2. an export with rows of which none is a valid comment or ticket row: the archive holds
///      no ticket and no comment; names the counts that rejected the rows and their first lines;
///   3. `--strict` failed (exit_code 1): names each count that made it fail and its first lines.
/// Also written to the JSON report as `warnings`.
std::vector<std::string> report_warnings(const run_report& report);

}  // namespace tixport
