// File: migration_pipeline.cpp
#include "tixport/migration_pipeline.hpp"

#include "tixport/csv_reader.hpp"
#include "tixport/errors.hpp"
#include "tixport/field_parsers.hpp"
#include "tixport/interrupt_guard.hpp"
#include "tixport/mapped_file.hpp"
#include "tixport/row_classifier.hpp"
#include "tixport/row_deduplicator.hpp"
#include "tixport/user_resolver.hpp"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <unistd.h>

namespace tixport {

namespace {

using clock_type = std::chrono::steady_clock;

// Typical bytes per export row; only sizes hash maps before the parse.
constexpr std::uint64_t kTypicalRowBytes = 360;
constexpr auto kProgressInterval = std::chrono::milliseconds(250);

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// A single progress line on stderr, rewritten in place; only when stderr is a terminal.
class progress_line {
 public:
  explicit progress_line(bool enabled) : enabled_(enabled) {}
  ~progress_line() { clear(); }

  void update(const char* stage, double fraction, std::uint64_t rows, double elapsed) {
    if (!enabled_) return;
    const auto now = clock_type::now();
    std::lock_guard lock(mutex_);
    if (now - last_ < kProgressInterval) return;
    last_ = now;
    std::fprintf(stderr, "\r\033[K%s %5.1f%%  %llu rows  %.0f rows/s", stage, 100.0 * fraction,
                 static_cast<unsigned long long>(rows), elapsed > 0 ? static_cast<double>(rows) / elapsed : 0.0);
    std::fflush(stderr);
    shown_ = true;
  }

  void clear() {
    if (!enabled_) return;
    std::lock_guard lock(mutex_);
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::mutex mutex_;
  clock_type::time_point last_{};
};

}  // namespace

std::vector<raw_index_entry> read_index_csv(const std::filesystem::path& path, unsigned threads) {
  mapped_file file = [&] {
    try {
      return mapped_file::open(path);
    } catch (const fatal_error& e) {
      throw fatal_error(exit_code::user_index_error, std::string("user index: ") + e.what());
    }
  }();
  const std::string_view data = file.bytes();
  const std::optional<csv_header> header = read_csv_header(data);
  if (!header) {
    throw fatal_error(exit_code::input_error, "user index: " + path.string() + ": empty file, no header");
  }
  constexpr std::array<std::string_view, 2> kColumns = {"id", "email"};
  std::vector<std::size_t> columns;
  try {
    columns = resolve_columns(*header, kColumns);
  } catch (const fatal_error& e) {
    throw fatal_error(exit_code::input_error, "user index: " + path.string() + ": " + e.what());
  }
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

run_report run_migration(const run_options& options) {
  const auto run_start = clock_type::now();
  const unsigned threads =
      options.threads != 0 ? options.threads : static_cast<unsigned>(oneapi::tbb::info::default_concurrency());
  oneapi::tbb::global_control parallelism(oneapi::tbb::global_control::max_allowed_parallelism, threads);
  oneapi::tbb::task_arena arena(static_cast<int>(threads));

  const std::optional<archive_format> format = archive_format_from_name(options.output.string());
  if (!format) {
    throw fatal_error(exit_code::input_error,
                      "output: " + options.output.string() + ": the name must end in .tar, .tar.gz, .tgz or .tar.zst");
  }

  run_report report;
  report.input = options.input.string();
  report.output = options.output.string();
  report.index_source = options.index_source;

  // 1. The index loads on its own thread while the export is parsed. If the run
  //    stops early, the load is cancelled so that leaving does not wait for a
  //    slow fetch to finish (a future from std::async joins in its destructor).
  std::future<user_index> index_future = std::async(std::launch::async, options.load_index);
  struct cancel_on_exit {
    const std::function<void()>& cancel;
    std::future<user_index>& future;
    ~cancel_on_exit() {
      if (future.valid() && cancel) cancel();
    }
  } index_guard{options.cancel_index, index_future};

  mapped_file file = mapped_file::open(options.input);
  const std::string_view data = file.bytes();
  report.input_bytes = data.size();
  const std::optional<csv_header> header = read_csv_header(data);
  if (!header) {
    throw fatal_error(exit_code::input_error, "input: " + options.input.string() + ": empty file, no header record");
  }
  const export_columns columns = export_columns::resolve(*header);

  progress_line progress(options.progress && ::isatty(STDERR_FILENO) == 1);
  row_deduplicator dedup(data.size() / kTypicalRowBytes);
  std::atomic<std::uint64_t> rows_seen{0};
  std::atomic<std::uint64_t> bytes_seen{0};
  csv_read_stats read_stats;
  const auto parse_start = clock_type::now();
  arena.execute([&] {
    csv_read_options read_options;
    read_options.chunk_bytes = options.chunk_bytes;
    read_options.threads = threads;
    read_stats = read_csv_records(data, *header, read_options, [&](csv_chunk&& chunk) {
      throw_if_interrupted();
      classified_chunk classified;
      classify_chunk(chunk, columns, data, classified);
      const std::uint64_t rows = rows_seen += chunk.record_count() + chunk.malformed.size();
      std::uint64_t chunk_end = 0;
      if (!chunk.record_offsets.empty()) chunk_end = chunk.record_offsets.back();
      std::uint64_t seen = bytes_seen.load();
      while (chunk_end > seen && !bytes_seen.compare_exchange_weak(seen, chunk_end)) {
      }
      dedup.absorb(std::move(classified));
      progress.update("reading", data.empty() ? 1.0 : static_cast<double>(bytes_seen.load()) / data.size(), rows,
                      seconds_since(parse_start));
    });
  });
  throw_if_interrupted();
  report.stages.push_back({"parse", seconds_since(parse_start)});
  report.csv_chunks = read_stats.chunks;
  report.csv_reparsed_chunks = read_stats.reparsed_chunks;
  report.blank_lines = read_stats.blank_lines;

  // 2. Wait for the index only now, where users are resolved.
  const auto index_start = clock_type::now();
  while (index_future.wait_for(kProgressInterval) != std::future_status::ready) {
    throw_if_interrupted();
    progress.update("waiting for the user index", 1.0, rows_seen.load(), seconds_since(parse_start));
  }
  const user_index index = index_future.get();
  report.stages.push_back({"index_wait", seconds_since(index_start)});
  report.index = index.stats();

  // 3. Resolve users and remap every reference.
  const auto resolve_start = clock_type::now();
  std::vector<comment_candidate> comments;
  arena.execute([&] { comments = dedup.take_comments(); });  // before log(): it counts duplicate comments
  reject_log log = dedup.log();
  const row_totals totals = dedup.totals();
  report.well_formed_rows = totals.rows;
  report.rows = totals.rows + log.count(row_issue::malformed_record);
  report.valid_comment_rows = totals.valid_comment_rows;
  report.valid_ticket_rows = totals.valid_ticket_rows;
  report.user_candidate_rows = totals.user_candidate_rows;
  std::vector<ticket_candidate> tickets;
  resolved_users users;
  arena.execute([&] {
    tickets = dedup.take_tickets();
    users = resolve_users(dedup.take_users(), dedup.take_authors(), index, dedup.max_id(), log);
    remap_references(comments, tickets, users.identity, log);
  });
  report.users = users.users.size();
  report.users_matched = users.matched;
  report.users_new = users.created;
  report.comments = comments.size();
  report.tickets = tickets.size();
  report.stages.push_back({"resolve", seconds_since(resolve_start)});

  // 4. Encode and write the batches; the archive appears only when complete.
  const auto write_start = clock_type::now();
  archive_options archive;
  archive.format = *format;
  archive.mtime = options.mtime ? *options.mtime : file.mtime_seconds();
  archive.threads = threads;
  archive.zstd_level = options.zstd_level;
  archive.gzip_level = options.gzip_level;
  tar_archive_sink sink(options.output, archive);
  batch_options batches = options.batches;
  batches.progress = [&](std::uint64_t done, std::uint64_t total) {
    progress.update("writing", static_cast<double>(done) / static_cast<double>(total), report.rows,
                    seconds_since(run_start));
  };
  serialize_stats written;
  arena.execute([&] {
    written = write_batches(body_source{data, header->fields.size(), columns.body}, tickets, comments, users.users,
                            batches, sink, log);
  });
  // A file rewritten in place while mapped raises no SIGBUS, but what was read may mix
  // old and new bytes: never publish an archive made from that.
  if (file.changed_since_open()) {
    throw fatal_error(exit_code::input_error,
                      "input: " + options.input.string() + ": the file was truncated or changed while being read");
  }
  report.archive_bytes = sink.finish();
  progress.clear();
  report.batches = written.batches;
  report.json_bytes = written.json_bytes;
  report.stages.push_back({"write", seconds_since(write_start)});

  report.issues = std::move(log);
  report.seconds = seconds_since(run_start);
  report.exit_code = options.strict && strict_problems(report) ? static_cast<int>(exit_code::strict_failed) : 0;
  return report;
}

}  // namespace tixport
