// File: run_stages_internal.hpp
//
// The stages of `run`, one function each, and what each hands on. run_migration
// (migration_pipeline.cpp) wires them into a oneTBB flow graph: a stage reads
// the shared run_context and the results of the stages before it, and writes
// only its own result, so stages without an edge between them may run at the
// same time. The report is filled from the results once the graph is done
// (each result's add_to), never field by field from inside a stage.
//
//   prefix_check ─> parse ─┬─> export_hash ─────────────────┐
//                          └─> index_wait ─> resolve ─> write (or check) ─> ledger
//                                                             └───────────> rejects
#pragma once

#include "tixport/common/atomic_output.hpp"
#include "tixport/common/mapped_file.hpp"
#include "tixport/common/progress_meter.hpp"
#include "tixport/csv/csv_reader.hpp"
#include "tixport/ledger/ledger_delta.hpp"
#include "tixport/ledger/run_ledger.hpp"
#include "tixport/run/batch_serializer.hpp"
#include "tixport/run/migration_pipeline.hpp"
#include "tixport/run/row_classifier.hpp"
#include "tixport/run/row_deduplicator.hpp"
#include "tixport/run/run_report.hpp"
#include "tixport/run/user_resolver.hpp"

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace tixport::run_stages {

/// The --since ledger, read on its own thread, and the seconds that took.
struct loaded_ledger {
  run_ledger ledger;
  double seconds = 0;
};

/// What every stage may read: the options and the opened export. Built before the graph.
struct run_context {
  const run_options& options;
  unsigned threads = 1;
  mapped_file& file;
  std::string_view data;
  csv_header header;            ///< the export's own header
  export_columns columns;
  bool ledger_wanted = false;   ///< --ledger, and not a dry run
  progress_meter& progress;
  std::future<loaded_ledger>* ledger_load = nullptr;  ///< --since: loading on its own thread
  std::future<user_index>* index_load = nullptr;    ///< loading on its own thread

  [[nodiscard]] comment_source comments() const {
    return comment_source::of(data, header.fields.size(), columns);
  }
};

/// --since: the old ledger, and whether the export continues its bytes (SPEC 4.3).
struct prefix_result {
  std::optional<run_ledger> previous;
  rerun_path path = rerun_path::none;
  csv_header parse_header;            ///< where the parse starts (after the old bytes when appended)
  std::uint64_t bytes_hashed = 0;
  std::uint64_t prefix_bytes = 0;
  std::vector<std::uint64_t> full_blocks;  ///< hashes of the export's full ledger blocks (--since)
  double load_seconds = 0;            ///< reading and checking the --since ledger (on its own thread)
  double seconds = 0;
  [[nodiscard]] bool appended() const noexcept { return path == rerun_path::appended; }
  void add_to(run_report& report, std::uint64_t file_bytes) const;
};

/// The rows, classified and deduplicated.
struct parse_result {
  std::unique_ptr<row_deduplicator> dedup;
  csv_read_stats stats;
  bool unterminated_quote = false;    ///< the export ends inside a quoted field
  double seconds = 0;
  void add_to(run_report& report) const;
};

/// The export's fingerprint for the next ledger.
struct export_hash_result {
  export_fingerprint source;
  std::uint64_t bytes_hashed = 0;
  double seconds = 0;
  void add_to(run_report& report) const;
};

struct index_result {
  user_index index;
  double seconds = 0;
  void add_to(run_report& report) const;
};

/// Users resolved, references remapped, and with --since what the ledger already has left out.
struct resolve_result {
  reject_log log;                     ///< every counted issue so far (write adds UTF-8 repairs)
  row_totals totals;
  std::vector<ticket_candidate> tickets;     ///< to write
  comment_candidates comments;               ///< to write
  resolved_users users;
  object_delta ticket_delta;
  object_delta comment_delta;
  std::vector<std::int64_t> ticket_ids;      ///< every ticket of the export, sorted (for orphans)
  std::span<const ledger_object> ledger_tickets;  ///< the --since ledger's tickets (no orphans either)
  std::vector<ledger_dangling> unmapped;     ///< references no user id maps (for the next ledger; the
                                             ///< write adds the written comments' and sorts it)
  std::vector<ledger_changed> changed;       ///< ledger objects whose JSON changed
  rerun_report rerun;                        ///< skipped / changed / missing counts
  double seconds = 0;
  /// Where the comments' references go, read again from their records when they are written.
  [[nodiscard]] comment_references references() const { return {users.identity, ticket_ids, ledger_tickets}; }
  void add_to(run_report& report) const;
};

/// The archive, complete but not in place (or, in a dry run, what it would hold).
struct write_result {
  serialize_stats written;
  std::uint64_t batches = 0;
  /// With --ledger: each written ticket's and comment's id and fingerprint, in output order.
  /// Left uninitialized until the serializer fills them (see written_object).
  std::unique_ptr<written_object[]> ticket_objects;
  std::unique_ptr<written_object[]> comment_objects;
  std::future<std::uint64_t> archive_done;   ///< the archive's end and fsync, on its own thread
  const char* stage = "write";               ///< "check" in a dry run
  std::chrono::steady_clock::time_point started;
  double seconds = 0;                        ///< up to the archive's fsync (run_migration waits for it)
  void add_to(run_report& report) const;
};

struct ledger_result {
  std::uint32_t run = 0;
  double seconds = 0;
  void add_to(run_report& report) const;
};

struct rejects_result {
  bool written = false;
  double seconds = 0;
  void add_to(run_report& report) const;
};

prefix_result check_prefix(const run_context& context);
parse_result parse_export(const run_context& context, const prefix_result& prefix);
export_hash_result hash_export(const run_context& context, const prefix_result& prefix, const parse_result& parse);
index_result wait_for_index(const run_context& context);
resolve_result resolve(const run_context& context, const prefix_result& prefix, parse_result& parse,
                       const user_index& index);
/// Encode and write the batches into `outcome.archive` (a temporary file until commit).
write_result write_archive(const run_context& context, resolve_result& resolved, run_outcome& outcome);
/// A dry run's end: count what the archive would hold.
write_result check_archive(const run_context& context, resolve_result& resolved);
ledger_result write_next_ledger(const run_context& context, const prefix_result& prefix, export_hash_result& hash,
                                const resolve_result& resolved, write_result& written, run_outcome& outcome);
rejects_result write_rejects(const run_context& context, const prefix_result& prefix, const resolve_result& resolved,
                             run_outcome& outcome);

}  // namespace tixport::run_stages
