// File: run_stages.cpp
#include "run/run_stages_internal.hpp"

#include "common/huge_page_new_internal.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"
#include "tixport/run/rejects_file.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>

namespace tixport::run_stages {

namespace {

using clock_type = std::chrono::steady_clock;

// Typical bytes per export row; only sizes hash maps before the parse.
constexpr std::uint64_t kTypicalRowBytes = 360;
constexpr auto kIndexPollInterval = std::chrono::milliseconds(250);

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// Keep the objects whose mask entry is 1, in order, in place.
template <typename Vector>
void keep_written(Vector& objects, const std::vector<std::uint8_t>& written) {
  std::size_t out = 0;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    if (written[i] != 0) objects[out++] = objects[i];
  }
  objects.resize(out);
}

}  // namespace

// ---- the stages ----------------------------------------------------------------------------

prefix_result check_prefix(const run_context& context) {
  prefix_result result;
  result.parse_header = context.header;
  if (context.ledger_load == nullptr) return result;
  // The ledger has been loading on its own thread while the export's full blocks are hashed.
  const auto start = clock_type::now();
  result.full_blocks = hash_full_blocks(context.data, /*release_pages=*/true);
  loaded_ledger loaded = context.ledger_load->get();
  result.previous = std::move(loaded.ledger);
  result.load_seconds = loaded.seconds;
  const prefix_match match = match_appended_prefix(result.previous->source, context.data, true, result.full_blocks);
  result.bytes_hashed = match.bytes_hashed;
  result.prefix_bytes = match.matching_bytes;
  if (match.appended && !context.options.full_compare && result.previous->source.size >= context.header.data_offset) {
    // Only what follows the old bytes is parsed; the ledger stands for the old rows.
    result.path = rerun_path::appended;
    result.parse_header.data_offset = result.previous->source.size;
    result.parse_header.data_first_line = result.previous->source.line_feeds + 1;
  } else {
    result.path = rerun_path::full_compare;
  }
  result.seconds = seconds_since(start);
  return result;
}

parse_result parse_export(const run_context& context, const prefix_result& prefix) {
  const auto start = clock_type::now();
  const std::string_view data = context.data;
  const csv_header& header = prefix.parse_header;
  const std::uint64_t parse_bytes = data.size() - std::min<std::uint64_t>(header.data_offset, data.size());
  parse_result result;
  result.dedup = std::make_unique<row_deduplicator>(parse_bytes / kTypicalRowBytes);
  row_deduplicator& dedup = *result.dedup;
  std::atomic<std::uint64_t> rows_seen{0};
  std::atomic<std::uint64_t> bytes_seen{0};
  std::atomic<bool> unterminated_quote{false};
  csv_read_options read_options;
  read_options.chunk_bytes = context.options.chunk_bytes;
  read_options.threads = context.threads;
  // The classifier only tests BODY (null? too large?); the write reads it again from the record.
  read_options.keep_escaped_field = context.columns.body;
  result.stats = read_csv_records(data, header, read_options, [&](csv_chunk&& chunk) {
    throw_if_interrupted();
    for (const malformed_record& m : chunk.malformed) {
      if (m.unterminated_quote) unterminated_quote.store(true, std::memory_order_relaxed);
    }
    classified_chunk classified;
    classify_chunk(chunk, context.columns, classified, context.options.max_text_json_bytes);
    const std::uint64_t rows = rows_seen += chunk.record_count() + chunk.malformed.size();
    std::uint64_t chunk_end = 0;
    if (!chunk.record_offsets.empty()) chunk_end = chunk.record_offsets.back();
    std::uint64_t seen = bytes_seen.load();
    while (chunk_end > seen && !bytes_seen.compare_exchange_weak(seen, chunk_end)) {
    }
    dedup.absorb(std::move(classified));
    const std::uint64_t done =
        std::min(parse_bytes, bytes_seen.load() - std::min(bytes_seen.load(), header.data_offset));
    context.progress.update("reading", done, parse_bytes, progress_unit::bytes, std::to_string(rows) + " rows");
  });
  throw_if_interrupted();
  result.unterminated_quote = unterminated_quote.load();
  result.seconds = seconds_since(start);
  return result;
}

export_hash_result hash_export(const run_context& context, const prefix_result& prefix, const parse_result& parse) {
  // An appended export keeps the old blocks. It continues at a record boundary when its last
  // byte is a LF outside quotes.
  const auto start = clock_type::now();
  const std::string_view data = context.data;
  const bool ends_in_lf = !data.empty() && data.back() == '\n';
  const bool ends_at_record = ends_in_lf && !parse.unterminated_quote && context.header.data_offset <= data.size();
  // The reader counted the physical lines (a last line without its LF is one too).
  const std::uint64_t line_feeds = parse.stats.lines - (!data.empty() && !ends_in_lf ? 1 : 0);
  export_hash_result result;
  if (prefix.appended()) {
    result.source = extend_fingerprint(prefix.previous->source, data, ends_at_record, line_feeds, result.bytes_hashed,
                                       prefix.full_blocks);
  } else {
    // After a prefix check only the partial last block is left to hash.
    result.source = fingerprint_export(data, ends_at_record, line_feeds, prefix.full_blocks, &result.bytes_hashed);
  }
  result.seconds = seconds_since(start);
  return result;
}

index_result wait_for_index(const run_context& context) {
  const auto start = clock_type::now();
  while (context.index_load->wait_for(kIndexPollInterval) != std::future_status::ready) {
    throw_if_interrupted();
    context.progress.update("waiting for the user index", 0, 0, progress_unit::items,
                            std::to_string(static_cast<long long>(seconds_since(start))) + " s");
  }
  index_result result{context.index_load->get(), 0};
  result.seconds = seconds_since(start);
  return result;
}

resolve_result resolve(const run_context& context, const prefix_result& prefix, parse_result& parse,
                       const user_index& index) {
  const auto start = clock_type::now();
  row_deduplicator& dedup = *parse.dedup;
  resolve_result r;
  const comment_source comments = context.comments();
  // Before log(): it counts duplicate comments.
  r.comments = dedup.take_comments([&comments](const comment_candidate& c) { return read_comment_id(comments, c); });
  r.log = dedup.log();
  r.totals = dedup.totals();
  r.tickets = dedup.take_tickets();
  const std::optional<run_ledger>& previous = prefix.previous;
  std::optional<ledger_lookup> lookup;
  if (previous) lookup.emplace(*previous);
  r.users = resolve_users(dedup.take_users(), dedup.take_authors(), index, dedup.max_id(), r.log,
                          lookup ? &*lookup : nullptr);
  remap_scope scope;
  if (previous) {
    const auto lines_of = [](const auto& objects) {
      std::vector<std::uint64_t> lines;
      lines.reserve(objects.size());
      for (const auto& o : objects) lines.push_back(o.line);
      return lines;
    };
    std::vector<std::int64_t> ids;
    ids.reserve(r.tickets.size());
    for (const ticket_candidate& t : r.tickets) ids.push_back(t.id);
    r.ticket_delta = partition_against_ledger(ids, lines_of(r.tickets), previous->tickets, prefix.appended());
    // A held comment keeps no id: read again from the records.
    ids = read_comment_ids(comments, r.comments);
    r.comment_delta = partition_against_ledger(ids, lines_of(r.comments), previous->comments, prefix.appended());
    scope.ticket_written = &r.ticket_delta.written;
  }
  if (context.ledger_wanted) scope.dangling = &r.unmapped;
  remap_ticket_references(r.tickets, r.users.identity, r.log, scope);
  // Comments are mapped and counted when they are written (their references are read again
  // from their records); the orphan check knows every ticket, written or not.
  r.ticket_ids = sorted_ticket_ids(r.tickets);
  if (previous) {
    r.ledger_tickets = previous->tickets;
    // Objects the platform has: compared by the fingerprint of their JSON, never written.
    const comment_references references = r.references();
    if (context.ledger_wanted) {
      list_unwritten_dangling(comments, r.comments, r.comment_delta.written, references, r.unmapped);
    }
    r.changed = changed_tickets(r.tickets, r.ticket_delta, previous->tickets);
    const std::vector<ledger_changed> comments_changed =
        changed_comments(comments, r.comments, references, r.comment_delta, previous->comments);
    r.changed.insert(r.changed.end(), comments_changed.begin(), comments_changed.end());
    if (prefix.appended()) {
      add_old_part_changes(*previous, r.users.identity, comments, context.columns, r.changed);
    } else {
      normalize_changed(r.changed);
    }
    r.rerun.changed_tickets = changed_lines(r.changed, object_kind::ticket);
    r.rerun.changed_comments = changed_lines(r.changed, object_kind::comment);
    // The old part's --strict problems, which this run did not parse again (SPEC 2.7, 4.3).
    r.rerun.old_part_problems = prefix.appended() && previous->source.had_problems;
    r.rerun.skipped_tickets = r.ticket_delta.skipped;
    r.rerun.skipped_comments = r.comment_delta.skipped;
    r.rerun.skipped_users = r.users.ledger_users;
    r.rerun.missing_tickets = r.ticket_delta.missing;
    r.rerun.missing_comments = r.comment_delta.missing;
    r.rerun.ledger_index_conflicts = r.users.ledger_index_conflicts;
    keep_written(r.tickets, r.ticket_delta.written);
    keep_written(r.comments, r.comment_delta.written);
  }
  r.seconds = seconds_since(start);
  return r;
}

write_result write_archive(const run_context& context, resolve_result& resolved, run_outcome& outcome) {
  write_result result;
  result.started = clock_type::now();
  // What the parse and the resolve freed in small blocks (chunk maps, keys, drained maps) is
  // still resident in malloc's arenas; the write's peak is that plus zstd's context, so give
  // it back first.
  return_free_heap_to_os();
  const run_options& options = context.options;
  archive_options archive;
  archive.format = *archive_format_from_name(options.output.string());
  archive.mtime = options.mtime ? *options.mtime : context.file.mtime_seconds();
  archive.threads = context.threads;
  archive.zstd_level = options.zstd_level;
  archive.gzip_level = options.gzip_level;
  outcome.archive = std::make_unique<tar_archive_sink>(options.output, archive);
  batch_options batches = options.batches;
  batches.progress = [&](std::uint64_t done, std::uint64_t total) {
    context.progress.update("writing batches", done, total, progress_unit::items);
  };
  object_fingerprints fingerprints;
  if (context.ledger_wanted) {
    result.ticket_objects = std::make_unique_for_overwrite<written_object[]>(resolved.tickets.size());
    result.comment_objects = std::make_unique_for_overwrite<written_object[]>(resolved.comments.size());
    fingerprints.tickets = {result.ticket_objects.get(), resolved.tickets.size()};
    fingerprints.comments = {result.comment_objects.get(), resolved.comments.size()};
  }
  result.written = write_batches(context.comments(), resolved.tickets, resolved.comments, resolved.users.users,
                                 resolved.references(), batches, *outcome.archive, resolved.log, fingerprints,
                                 context.ledger_wanted ? &resolved.unmapped : nullptr);
  if (context.ledger_wanted) sort_dangling(resolved.unmapped);
  result.batches = result.written.batches;
  // A file rewritten in place while mapped raises no SIGBUS, but what was read may mix
  // old and new bytes: never publish an archive made from that.
  if (context.file.changed_since_open()) {
    throw fatal_error(exit_code::input_error,
                      "input: " + options.input.string() + ": the file was truncated or changed while being read");
  }
  // The archive's end and fsync run beside the ledger's build and write: two fsyncs at once.
  result.archive_done =
      std::async(std::launch::async, [archive_sink = outcome.archive.get()] { return archive_sink->complete(); });
  return result;  // its seconds are taken when run_migration has waited for archive_done
}

write_result check_archive(const run_context& context, resolve_result& resolved) {
  const auto start = clock_type::now();
  check_comments(context.comments(), resolved.comments, resolved.references(), resolved.log);
  write_result result;
  result.stage = "check";
  result.batches = batch_count(resolved.tickets.size(), resolved.comments.size(), resolved.users.users.size(),
                               context.options.batches.batch_size);
  result.seconds = seconds_since(start);
  return result;
}

ledger_result write_next_ledger(const run_context& context, const prefix_result& prefix, export_hash_result& hash,
                                const resolve_result& resolved, write_result& written, run_outcome& outcome) {
  // The old ledger plus what this archive wrote (SPEC 4.1, 4.2).
  const auto start = clock_type::now();
  const std::optional<run_ledger>& previous = prefix.previous;
  ledger_update update;
  update.previous = previous ? &*previous : nullptr;
  update.source = std::move(hash.source);
  update.largest_id = resolved.users.largest_id;
  update.users = resolved.users.users;
  update.decided = resolved.users.decided;
  update.tickets = {written.ticket_objects.get(), resolved.tickets.size()};
  update.comments = {written.comment_objects.get(), resolved.comments.size()};
  update.ticket_delta = previous ? &resolved.ticket_delta : nullptr;
  update.comment_delta = previous ? &resolved.comment_delta : nullptr;
  update.dangling = resolved.unmapped;
  update.changed = resolved.changed;
  update.appended = prefix.appended();
  update.identity = &resolved.users.identity;
  update.export_problems = resolved.rerun.old_part_problems || export_had_problems(resolved.log);
  next_ledger next = build_next_ledger(update);
  outcome.ledger = std::make_unique<atomic_output_file>(*context.options.ledger, "ledger");
  write_ledger(next.ledger, next.tickets, next.comments, *outcome.ledger);
  outcome.ledger->complete();
  return {next.ledger.run, seconds_since(start)};
}

rejects_result write_rejects(const run_context& context, const prefix_result& prefix, const resolve_result& resolved,
                             run_outcome& outcome) {
  // Every counted row, its ids re-read from the rows the run parsed.
  const auto start = clock_type::now();
  const std::filesystem::path& path = *context.options.rejects;
  std::vector<reject_entry> entries = resolved.log.entries();
  if (path == "-" || is_write_through_target(path)) {
    std::FILE* out = path == "-" ? stdout : std::fopen(path.c_str(), "w");
    if (out == nullptr) {
      throw fatal_error(exit_code::output_error, "rejects: open: " + path.string() + ": " + errno_text(errno));
    }
    bool ok = true;
    write_rejects_csv(context.data, prefix.parse_header, context.columns, std::move(entries), context.threads,
                      [&](std::string_view piece) { ok = ok && std::fwrite(piece.data(), 1, piece.size(), out) == piece.size(); });
    ok = std::fflush(out) == 0 && ok;
    if (out != stdout) ok = std::fclose(out) == 0 && ok;
    if (!ok) throw fatal_error(exit_code::output_error, "rejects: write: " + path.string());
  } else {
    outcome.rejects = std::make_unique<atomic_output_file>(path, "rejects");
    write_rejects_csv(context.data, prefix.parse_header, context.columns, std::move(entries), context.threads,
                      [&](std::string_view piece) { outcome.rejects->write(piece); });
    outcome.rejects->complete();
  }
  return {true, seconds_since(start)};
}

// ---- the report, from the results --------------------------------------------------------

void prefix_result::add_to(run_report& report, std::uint64_t file_bytes) const {
  if (path != rerun_path::none) {
    report.stages.push_back({"ledger_load", load_seconds});  // beside the first part of the next stage
    report.stages.push_back({"ledger_read_and_prefix_check", seconds});
  }
  report.rerun.path = std::string(rerun_path_name(path));
  report.rerun.bytes_hashed += bytes_hashed;
  report.rerun.prefix_bytes = prefix_bytes;
  report.rerun.bytes_parsed = appended() ? file_bytes - parse_header.data_offset : file_bytes;
}

void parse_result::add_to(run_report& report) const {
  report.stages.push_back({"parse", seconds});
  report.csv_chunks = stats.chunks;
  report.csv_reparsed_chunks = stats.reparsed_chunks;
  report.blank_lines = stats.blank_lines;
}

void export_hash_result::add_to(run_report& report) const {
  report.stages.push_back({"export_hash", seconds});
  report.rerun.bytes_hashed += bytes_hashed;
}

void index_result::add_to(run_report& report) const {
  report.stages.push_back({"index_wait", seconds});
  report.index = index.stats();
}

void resolve_result::add_to(run_report& report) const {
  report.well_formed_rows = totals.rows;
  report.rows = totals.rows + log.count(row_issue::malformed_record);
  report.valid_comment_rows = totals.valid_comment_rows;
  report.valid_ticket_rows = totals.valid_ticket_rows;
  report.user_candidate_rows = totals.user_candidate_rows;
  report.users = users.users.size();
  report.users_matched = users.matched;
  report.users_new = users.created;
  report.comments = comments.size();
  report.tickets = tickets.size();
  rerun_report& rr = report.rerun;
  rr.changed_tickets = rerun.changed_tickets;
  rr.changed_comments = rerun.changed_comments;
  rr.old_part_problems = rerun.old_part_problems;
  rr.skipped_tickets = rerun.skipped_tickets;
  rr.skipped_comments = rerun.skipped_comments;
  rr.skipped_users = rerun.skipped_users;
  rr.missing_tickets = rerun.missing_tickets;
  rr.missing_comments = rerun.missing_comments;
  rr.ledger_index_conflicts = rerun.ledger_index_conflicts;
  report.stages.push_back({"resolve", seconds});
}

void write_result::add_to(run_report& report) const {
  report.batches = batches;
  report.json_bytes = written.json_bytes;
  report.stages.push_back({stage, seconds});
}

void ledger_result::add_to(run_report& report) const {
  report.rerun.ledger_run = run;
  report.stages.push_back({"ledger", seconds});
}

void rejects_result::add_to(run_report& report) const {
  if (written) report.stages.push_back({"rejects", seconds});
}

}  // namespace tixport::run_stages
