// File: migration_pipeline.cpp
#include "tixport/run/migration_pipeline.hpp"

#include "tixport/csv/csv_reader.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/csv/field_parsers.hpp"
#include "tixport/common/interrupt_guard.hpp"
#include "tixport/ledger/ledger_delta.hpp"
#include "tixport/common/mapped_file.hpp"
#include "tixport/common/parallelism.hpp"
#include "tixport/common/progress_meter.hpp"
#include "tixport/run/rejects_file.hpp"
#include "tixport/run/row_classifier.hpp"
#include "tixport/run/row_deduplicator.hpp"
#include "tixport/run/user_resolver.hpp"

#include <atomic>
#include <cerrno>
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
constexpr auto kIndexPollInterval = std::chrono::milliseconds(250);

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

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
  const std::vector<std::size_t> columns = resolve_columns(*header, kColumns, {"user index", path.native(), data});
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

namespace {

/// Keep the objects whose mask entry is 1, in order, in place.
template <typename T>
void keep_written(std::vector<T>& objects, const std::vector<std::uint8_t>& written) {
  std::size_t out = 0;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    if (written[i] != 0) objects[out++] = objects[i];
  }
  objects.resize(out);
}

}  // namespace

void run_outcome::commit() {
  if (archive) archive->commit();
  try {
    if (ledger) ledger->commit(false);
  } catch (const fatal_error& e) {
    // The archive is already in place: say so, or the user would import it and rerun on the
    // old ledger, which would then write its objects again.
    throw fatal_error(e.code(), std::string(e.what()) + "; the archive " + archive->output_path().string() +
                                    " IS in place but the ledger was not updated: do not import that archive, "
                                    "rerun with the same --since");
  }
  if (rejects) rejects->commit(false);
}

run_outcome run_migration(const run_options& options) {
  const auto run_start = clock_type::now();
  parallelism arena(options.threads);  // the run's one arena; every stage runs inside it
  const unsigned threads = arena.threads();

  const std::optional<archive_format> format =
      options.dry_run ? std::optional<archive_format>(archive_format::tar) : archive_format_from_name(options.output.string());
  if (!format) {
    throw fatal_error(exit_code::input_error,
                      "output: " + options.output.string() + ": the name must end in .tar, .tar.gz, .tgz or .tar.zst");
  }

  run_outcome outcome;
  run_report& report = outcome.report;
  // --rejects: every log of this run keeps every line it counts, not only the samples.
  std::optional<reject_log::record_every_line> recording;
  if (options.rejects) recording.emplace();
  report.input = options.input.string();
  report.output = options.output.string();
  report.index_source = options.index_source;
  report.dry_run = options.dry_run;

  // 0. A --since ledger loads on its own thread while the export's blocks are hashed for the
  //    prefix check (SPEC 4.3); a bad ledger is an input error before any other work.
  std::optional<run_ledger> previous;
  std::future<run_ledger> ledger_load;
  if (options.since) {
    ledger_load = std::async(std::launch::async, [path = *options.since] { return load_ledger(path); });
    report.rerun.since = options.since->string();
  }
  const bool ledger_wanted = options.ledger.has_value() && !options.dry_run;
  if (ledger_wanted) report.rerun.ledger = options.ledger->string();

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
  const export_columns columns = export_columns::resolve(*header, {"input", options.input.native(), data});

  // 2. A rerun: when the export continues the ledger's byte for byte, only what follows the
  //    old bytes is parsed and the ledger stands for the old rows (SPEC 4.3).
  rerun_path path = rerun_path::none;
  csv_header parse_header = *header;
  if (ledger_load.valid()) {
    const auto hash_start = clock_type::now();
    std::vector<std::uint64_t> full_blocks;
    arena.execute([&] { full_blocks = hash_full_blocks(data, file.fd()); });
    previous = ledger_load.get();
    prefix_match match;
    arena.execute([&] { match = match_appended_prefix(previous->source, data, file.fd(), full_blocks); });
    report.stages.push_back({"ledger_read_and_prefix_check", seconds_since(hash_start)});
    report.rerun.bytes_hashed = match.bytes_hashed;
    report.rerun.prefix_bytes = match.matching_bytes;
    if (match.appended && !options.full_compare && previous->source.size >= header->data_offset) {
      path = rerun_path::appended;
      parse_header.data_offset = previous->source.size;
      parse_header.data_first_line = previous->source.line_feeds + 1;
    } else {
      path = rerun_path::full_compare;
    }
  }
  const bool appended = path == rerun_path::appended;
  report.rerun.path = std::string(rerun_path_name(path));
  report.rerun.bytes_parsed = appended ? data.size() - parse_header.data_offset : data.size();

  progress_meter progress(progress_meter::wanted(options.progress));
  const std::uint64_t parse_bytes = data.size() - std::min<std::uint64_t>(parse_header.data_offset, data.size());
  row_deduplicator dedup((data.size() - parse_header.data_offset) / kTypicalRowBytes);
  std::atomic<std::uint64_t> rows_seen{0};
  std::atomic<std::uint64_t> bytes_seen{0};
  std::atomic<bool> unterminated_quote{false};
  csv_read_stats read_stats;
  const auto parse_start = clock_type::now();
  arena.execute([&] {
    csv_read_options read_options;
    read_options.chunk_bytes = options.chunk_bytes;
    read_options.threads = threads;
    read_stats = read_csv_records(data, parse_header, read_options, [&](csv_chunk&& chunk) {
      throw_if_interrupted();
      for (const malformed_record& m : chunk.malformed) {
        if (m.unterminated_quote) unterminated_quote.store(true, std::memory_order_relaxed);
      }
      classified_chunk classified;
      classify_chunk(chunk, columns, data, classified, options.max_text_json_bytes);
      const std::uint64_t rows = rows_seen += chunk.record_count() + chunk.malformed.size();
      std::uint64_t chunk_end = 0;
      if (!chunk.record_offsets.empty()) chunk_end = chunk.record_offsets.back();
      std::uint64_t seen = bytes_seen.load();
      while (chunk_end > seen && !bytes_seen.compare_exchange_weak(seen, chunk_end)) {
      }
      dedup.absorb(std::move(classified));
      const std::uint64_t done = std::min(parse_bytes, bytes_seen.load() - std::min(bytes_seen.load(),
                                                                                      parse_header.data_offset));
      progress.update("reading", done, parse_bytes, progress_unit::bytes, std::to_string(rows) + " rows");
    });
  });
  throw_if_interrupted();
  report.stages.push_back({"parse", seconds_since(parse_start)});
  report.csv_chunks = read_stats.chunks;
  report.csv_reparsed_chunks = read_stats.reparsed_chunks;
  report.blank_lines = read_stats.blank_lines;

  // The fingerprint of this export for the next ledger: an appended one keeps the old blocks.
  // It continues at a record boundary when its last byte is a LF outside quotes.
  export_fingerprint source;
  if (ledger_wanted) {
    const auto hash_start = clock_type::now();
    const bool ends_in_lf = !data.empty() && data.back() == '\n';
    const bool ends_at_record = ends_in_lf && !unterminated_quote.load() && header->data_offset <= data.size();
    // The reader counted the physical lines (a last line without its LF is one too).
    const std::uint64_t line_feeds = read_stats.lines - (!data.empty() && !ends_in_lf ? 1 : 0);
    arena.execute([&] {
      if (appended) {
        std::uint64_t hashed = 0;
        source = extend_fingerprint(previous->source, data, ends_at_record, line_feeds, hashed);
        report.rerun.bytes_hashed += hashed;
      } else {
        source = fingerprint_export(data, ends_at_record, line_feeds);
        report.rerun.bytes_hashed += data.size();
      }
    });
    report.stages.push_back({"export_hash", seconds_since(hash_start)});
  }

  // 3. Wait for the index only now, where users are resolved.
  const auto index_start = clock_type::now();
  while (index_future.wait_for(kIndexPollInterval) != std::future_status::ready) {
    throw_if_interrupted();
    progress.update("waiting for the user index", 0, 0, progress_unit::items,
                    std::to_string(static_cast<long long>(seconds_since(index_start))) + " s");
  }
  const user_index index = index_future.get();
  report.stages.push_back({"index_wait", seconds_since(index_start)});
  report.index = index.stats();

  // 4. Resolve users and remap every reference; with a ledger, leave out what it has.
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
  const body_source bodies{data, header->fields.size(), columns.body};
  std::vector<ticket_candidate> tickets;
  resolved_users users;
  object_delta ticket_delta;
  object_delta comment_delta;
  std::vector<ledger_dangling> unmapped;
  std::vector<ledger_changed> changed;
  arena.execute([&] {
    tickets = dedup.take_tickets();
    std::optional<ledger_lookup> lookup;
    if (previous) lookup.emplace(*previous);
    users = resolve_users(dedup.take_users(), dedup.take_authors(), index, dedup.max_id(), log,
                          lookup ? &*lookup : nullptr);
    remap_scope scope;
    if (previous) {
      const auto ids_and_lines = [](const auto& objects, std::vector<std::int64_t>& ids,
                                    std::vector<std::uint64_t>& lines) {
        ids.reserve(objects.size());
        lines.reserve(objects.size());
        for (const auto& o : objects) {
          ids.push_back(o.id);
          lines.push_back(o.line);
        }
      };
      std::vector<std::int64_t> ids;
      std::vector<std::uint64_t> lines;
      ids_and_lines(tickets, ids, lines);
      ticket_delta = partition_against_ledger(ids, lines, previous->tickets, appended);
      ids.clear();
      lines.clear();
      ids_and_lines(comments, ids, lines);
      comment_delta = partition_against_ledger(ids, lines, previous->comments, appended);
      scope.ticket_written = &ticket_delta.written;
      scope.comment_written = &comment_delta.written;
      scope.ledger_tickets = previous->tickets;
    }
    if (ledger_wanted) scope.dangling = &unmapped;
    remap_references(comments, tickets, users.identity, log, scope);
    if (previous) {
      // Objects the platform has: compared by the fingerprint of their JSON, never written.
      rerun_report& rr = report.rerun;
      changed = changed_tickets(tickets, ticket_delta, previous->tickets);
      const std::vector<ledger_changed> comments_changed =
          changed_comments(bodies, comments, comment_delta, previous->comments);
      changed.insert(changed.end(), comments_changed.begin(), comments_changed.end());
      if (appended) {
        add_old_part_changes(*previous, users.identity, bodies, columns, changed);
      } else {
        normalize_changed(changed);
      }
      rr.changed_tickets = changed_lines(changed, object_kind::ticket);
      rr.changed_comments = changed_lines(changed, object_kind::comment);
      // The old part's --strict problems, which this run did not parse again (SPEC 2.7, 4.3).
      rr.old_part_problems = appended && previous->source.had_problems;
      rr.skipped_tickets = ticket_delta.skipped;
      rr.skipped_comments = comment_delta.skipped;
      rr.skipped_users = users.ledger_users;
      rr.missing_tickets = ticket_delta.missing;
      rr.missing_comments = comment_delta.missing;
      rr.ledger_index_conflicts = users.ledger_index_conflicts;
      keep_written(tickets, ticket_delta.written);
      keep_written(comments, comment_delta.written);
    }
  });
  report.users = users.users.size();
  report.users_matched = users.matched;
  report.users_new = users.created;
  report.comments = comments.size();
  report.tickets = tickets.size();
  report.stages.push_back({"resolve", seconds_since(resolve_start)});

  // The rejects file: every counted row, its ids re-read from the rows the run parsed.
  const auto write_rejects = [&] {
    if (!options.rejects) return;
    const auto rejects_start = clock_type::now();
    std::vector<reject_entry> entries = report.issues.entries();
    if (*options.rejects == "-" || is_write_through_target(*options.rejects)) {
      std::FILE* out = *options.rejects == "-" ? stdout : std::fopen(options.rejects->c_str(), "w");
      if (out == nullptr) {
        throw fatal_error(exit_code::output_error, "rejects: open: " + options.rejects->string() + ": " + errno_text(errno));
      }
      bool ok = true;
      arena.execute([&] {
        write_rejects_csv(data, parse_header, columns, std::move(entries), threads, [&](std::string_view piece) {
          ok = ok && std::fwrite(piece.data(), 1, piece.size(), out) == piece.size();
        });
      });
      ok = std::fflush(out) == 0 && ok;
      if (out != stdout) ok = std::fclose(out) == 0 && ok;
      if (!ok) throw fatal_error(exit_code::output_error, "rejects: write: " + options.rejects->string());
    } else {
      outcome.rejects = std::make_unique<atomic_output_file>(*options.rejects, "rejects");
      arena.execute([&] {
        write_rejects_csv(data, parse_header, columns, std::move(entries), threads,
                          [&](std::string_view piece) { outcome.rejects->write(piece); });
      });
      outcome.rejects->complete();
    }
    report.stages.push_back({"rejects", seconds_since(rejects_start)});
  };

  // 5. Encode and write the batches into a temporary file; it is put in place by commit().
  //    A dry run stops here, with what the archive would hold counted.
  const auto write_start = clock_type::now();
  if (options.dry_run) {
    arena.execute([&] { count_body_repairs(bodies, comments, log); });
    report.batches = batch_count(tickets.size(), comments.size(), users.users.size(), options.batches.batch_size);
    report.stages.push_back({"check", seconds_since(write_start)});
    progress.clear();
    report.issues = std::move(log);
    write_rejects();
    report.seconds = seconds_since(run_start);
    report.exit_code = options.strict && strict_problems(report) ? static_cast<int>(exit_code::strict_failed) : 0;
    return outcome;
  }
  archive_options archive;
  archive.format = *format;
  archive.mtime = options.mtime ? *options.mtime : file.mtime_seconds();
  archive.threads = threads;
  archive.zstd_level = options.zstd_level;
  archive.gzip_level = options.gzip_level;
  outcome.archive = std::make_unique<tar_archive_sink>(options.output, archive);
  batch_options batches = options.batches;
  batches.progress = [&](std::uint64_t done, std::uint64_t total) {
    progress.update("writing batches", done, total, progress_unit::items);
  };
  std::vector<std::uint64_t> ticket_fingerprints(ledger_wanted ? tickets.size() : 0);
  std::vector<std::uint64_t> comment_fingerprints(ledger_wanted ? comments.size() : 0);
  serialize_stats written;
  arena.execute([&] {
    written = write_batches(bodies, tickets, comments, users.users, batches, *outcome.archive, log,
                            object_fingerprints{ticket_fingerprints, comment_fingerprints});
  });
  // A file rewritten in place while mapped raises no SIGBUS, but what was read may mix
  // old and new bytes: never publish an archive made from that.
  if (file.changed_since_open()) {
    throw fatal_error(exit_code::input_error,
                      "input: " + options.input.string() + ": the file was truncated or changed while being read");
  }
  // The archive's end and fsync run beside the ledger's build and write: two fsyncs at once.
  std::future<std::uint64_t> archive_done =
      std::async(std::launch::async, [archive_sink = outcome.archive.get()] { return archive_sink->complete(); });
  report.batches = written.batches;
  report.json_bytes = written.json_bytes;

  report.issues = std::move(log);

  // 6. The next ledger: the old one plus what this archive wrote (SPEC 4.1, 4.2).
  double ledger_seconds = 0;
  if (ledger_wanted) {
    const auto ledger_start = clock_type::now();
    ledger_update update;
    update.previous = previous ? &*previous : nullptr;
    update.source = std::move(source);
    update.largest_id = users.largest_id;
    update.users = users.users;
    update.decided = users.decided;
    update.tickets = tickets;
    update.ticket_fingerprints = ticket_fingerprints;
    update.comments = comments;
    update.comment_fingerprints = comment_fingerprints;
    update.ticket_delta = previous ? &ticket_delta : nullptr;
    update.comment_delta = previous ? &comment_delta : nullptr;
    update.dangling = unmapped;
    update.changed = changed;
    update.appended = appended;
    update.identity = &users.identity;
    update.export_problems = report.rerun.old_part_problems || export_had_problems(report.issues);
    run_ledger next;
    arena.execute([&] { next = build_next_ledger(update); });
    outcome.ledger = std::make_unique<atomic_output_file>(*options.ledger, "ledger");
    write_ledger(next, *outcome.ledger);
    outcome.ledger->complete();
    report.rerun.ledger_run = next.run;
    ledger_seconds = seconds_since(ledger_start);
  }
  report.archive_bytes = archive_done.get();
  report.stages.push_back({"write", seconds_since(write_start)});
  if (ledger_wanted) report.stages.push_back({"ledger", ledger_seconds});
  progress.clear();

  write_rejects();
  report.seconds = seconds_since(run_start);
  report.exit_code = options.strict && strict_problems(report) ? static_cast<int>(exit_code::strict_failed) : 0;
  return outcome;
}

}  // namespace tixport
