// File: migration_pipeline.hpp
//
// `tixport run` end to end (SPEC 2): map the export, read it in parallel
// chunks while the user index loads on its own thread, classify and
// deduplicate rows, resolve users, remap references, and stream the batches
// into the archive. Throws fatal_error for anything that stops the run; the
// archive is then never left half-written.
//
//   run_options opt;
//   opt.input = "chat.csv"; opt.output = "out.tar.zst";
//   opt.load_index = [] { return user_index::build(read_index_csv("users.csv", 0)); };  // user_index_csv.hpp
//   run_outcome run = run_migration(opt);       // archive (and ledger) complete, not yet in place
//   run.commit();                               // rename them into place, archive first
#pragma once

#include "tixport/common/atomic_output.hpp"
#include "tixport/run/batch_limits.hpp"
#include "tixport/run/batch_serializer.hpp"
#include "tixport/run/run_report.hpp"
#include "tixport/archive/tar_archive_sink.hpp"
#include "tixport/index/user_index.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace tixport {

/// Everything `run` needs; main() fills it from the command line.
struct run_options {
  std::filesystem::path input;                   ///< the chat export CSV
  std::filesystem::path output;                  ///< .tar, .tar.gz/.tgz or .tar.zst
  std::string index_source;                      ///< for the report: index file, or URL through redact_url()
  std::function<user_index()> load_index;        ///< runs on its own thread during the parse
  std::function<void()> cancel_index;            ///< optional: makes a running load_index return soon
  batch_options batches;                         ///< batch size, names, JSON style
  unsigned threads = 0;                          ///< 0 = all cores
  std::size_t chunk_bytes = 4u << 20;            ///< CSV chunk size
  bool strict = false;                           ///< exit 1 on export problems (SPEC 2.7)
  bool progress = false;                         ///< progress line on stderr
  std::optional<std::int64_t> mtime;             ///< entry mtime; default: the input's
  int zstd_level = 3;                            ///< zstd level for .tar.zst
  int gzip_level = 6;                            ///< gzip level for .tar.gz
  std::optional<std::filesystem::path> since;    ///< --since: the ledger of the earlier runs (SPEC 4.2)
  std::optional<std::filesystem::path> ledger;   ///< --ledger: write the next ledger here (SPEC 4.1)
  bool full_compare = false;                     ///< parse the whole export even when it is appended (SPEC 4.3)
  bool dry_run = false;                          ///< everything but the archive and the ledger: nothing written
  std::optional<std::filesystem::path> rejects;  ///< --rejects: every counted row as CSV ("-": standard output)
  std::size_t max_text_json_bytes = kMaxTextJsonBytes;  ///< batch_limits.hpp; lowered only by tests
};

/// A finished run whose outputs are complete but not yet in place.
struct run_outcome {
  run_report report;                              ///< exit_code 0, or 1 under --strict with problems
  std::unique_ptr<tar_archive_sink> archive;      ///< completed, uncommitted (none in a dry run)
  std::unique_ptr<atomic_output_file> ledger;     ///< completed, uncommitted (with --ledger)
  std::unique_ptr<atomic_output_file> rejects;    ///< completed, uncommitted (with --rejects to a file)

  /// Rename the archive, then the ledger, then the rejects file into place (SPEC 4.1: the ledger only after the
  /// archive). Call under a commit_guard after a last throw_if_interrupted(): once the archive
  /// is in place its ledger must follow. Outputs not committed are removed with the outcome.
  void commit();
};

/// Run the migration up to its complete but uncommitted outputs.
run_outcome run_migration(const run_options& options);

}  // namespace tixport
