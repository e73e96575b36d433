// File: commands.cpp
#include "cli/commands_internal.hpp"

#include "tixport/archive/archive_verifier.hpp"
#include "tixport/common/atomic_output.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"
#include "tixport/common/progress_meter.hpp"
#include "tixport/generate/refresh_generator.hpp"
#include "tixport/index/email_index_client.hpp"
#include "tixport/index/user_index_csv.hpp"
#include "tixport/index/user_index_source.hpp"
#include "tixport/ledger/run_ledger.hpp"
#include "tixport/run/migration_pipeline.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

namespace tixport::commands {

namespace {

// The index options of `run` and `fetch-users` (REST only; `run` adds the file and the cache).
tixport::user_index_source_options make_index_options(const api_cli_options& o, unsigned threads) {
  tixport::user_index_source_options index;
  index.threads = threads;
  if (!o.auth_file.empty()) index.auth_file = o.auth_file;
  tixport::fetch_options& f = index.fetch;
  f.users_url = o.users_url;
  if (o.page_size != 0) f.page_size = o.page_size;
  f.concurrency = o.concurrency;
  f.pagination = o.pagination == "cursor" ? tixport::pagination_mode::cursor : tixport::pagination_mode::offset;
  f.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_seconds * 1000.0));
  f.retries = o.retries;
  if (!o.ca_file.empty()) f.ca_file = o.ca_file;
  f.insecure = o.insecure;
  return index;
}

// SOURCE_DATE_EPOCH (reproducible builds convention) fixes the entries' mtime.
std::optional<std::int64_t> source_date_epoch() {
  const char* text = std::getenv("SOURCE_DATE_EPOCH");
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0) {
    throw fatal_error(exit_code::input_error, std::string("SOURCE_DATE_EPOCH: not a non-negative integer: ") + text);
  }
  return value;
}


void write_report_to_stdout(const tixport::run_report& report) {
  const std::string text = tixport::report_json(report);
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    throw fatal_error(exit_code::output_error, std::string("report: write: stdout: ") + std::strerror(errno));
  }
}

}  // namespace

int run(const run_cli_options& o, unsigned threads) {
  if (o.users_file.empty() == o.api.users_url.empty()) {
    throw fatal_error(exit_code::input_error, "run: give exactly one of --users-file or --users-url");
  }
  if (!o.users_cache.empty() && o.api.users_url.empty()) {
    throw fatal_error(exit_code::input_error, "run: --users-cache needs --users-url");
  }
  if (o.dry_run && !o.ledger.empty()) {
    throw fatal_error(exit_code::input_error, "run: --ledger does not apply with --dry-run (a dry run writes nothing)");
  }
  if (o.output.empty() && !o.dry_run) throw fatal_error(exit_code::input_error, "run: --output is required");
  if (!o.output.empty() && !tixport::archive_format_from_name(o.output)) {
    throw fatal_error(exit_code::input_error,
                      "run: --output " + o.output + ": the name must end in .tar, .tar.gz, .tgz or .tar.zst");
  }
  // Every file this run reads and writes, checked before the first byte is written.
  tixport::output_plan plan;
  plan.add_input(o.input, "--input");
  plan.add_input(o.users_file, "--users-file");
  plan.add_input(o.since, "--since");
  plan.add_output(o.output, "--output");
  plan.add_output(o.ledger, "--ledger", "--since");
  if (o.report != kStdout) plan.add_output(o.report, "--report", {}, true);
  plan.add_output(o.rejects, "--rejects", {}, true);
  if (!o.api.users_url.empty()) plan.add_output(o.users_cache, "--users-cache");
  plan.check();

  tixport::run_options opt;
  if (!o.since.empty()) opt.since = o.since;
  if (!o.ledger.empty()) opt.ledger = o.ledger;
  opt.full_compare = o.full_compare;
  opt.dry_run = o.dry_run;
  if (!o.rejects.empty()) opt.rejects = o.rejects;
  opt.input = o.input;
  opt.output = o.output;
  opt.threads = threads;
  opt.chunk_bytes = o.chunk_bytes;
  opt.strict = o.strict;
  opt.progress = !o.no_progress && !o.level.quiet;
  opt.mtime = source_date_epoch();
  opt.zstd_level = o.zstd_level;
  opt.gzip_level = o.gzip_level;
  opt.batches.batch_size = o.batch_size;
  opt.batches.name_style =
      o.name_style == "index" ? tixport::batch_name_style::index : tixport::batch_name_style::offset;
  opt.batches.style = o.pretty ? tixport::json_style::pretty : tixport::json_style::compact;

  // The file, the cache or the API; a fetch starts now, on its own thread, and runs while the
  // export is parsed.
  tixport::user_index_source_options index_options = make_index_options(o.api, threads);
  index_options.users_file = o.users_file;
  index_options.users_cache = o.users_cache;
  index_options.refresh = o.refresh_users;
  tixport::user_index_source index(std::move(index_options));
  opt.index_source = index.description();
  opt.load_index = [&index] { return index.load(); };
  opt.cancel_index = [&index] { index.cancel(); };

  tixport::run_outcome outcome = tixport::run_migration(opt);
  const tixport::run_report& report = outcome.report;
  // Every output is complete before any is put in place: a report that cannot be written
  // leaves the old archive and ledger as they were (SPEC 2.6, 4.1).
  std::unique_ptr<tixport::atomic_output_file> report_file;
  // The cache is committed with the run's other outputs: a run that fails leaves an old cache as it was.
  const std::unique_ptr<tixport::atomic_output_file> cache_file = index.stage_cache();
  if (!o.report.empty() && o.report != kStdout) report_file = tixport::stage_report_json(report, o.report);
  tixport::throw_if_interrupted();  // the last moment at which nothing has changed
  {
    const tixport::commit_guard renaming;
    outcome.commit();
    if (report_file) report_file->commit(false);
    if (cache_file) cache_file->commit(false);
  }
  if (!o.level.quiet) tixport::print_summary(report, stderr, o.level.verbose);
  if (o.report == kStdout) write_report_to_stdout(report);
  // Warnings even with --quiet: each says the result is almost certainly not what was meant.
  for (const std::string& warning : tixport::report_warnings(report)) {
    std::fprintf(stderr, "tixport: warning: %s\n", warning.c_str());
  }
  return report.exit_code;
}

int fetch_users(const api_cli_options& api, const std::string& output, const verbosity& level) {
  tixport::user_index_source_options index_options = make_index_options(api, 0);
  tixport::fetch_options& fetch = index_options.fetch;
  tixport::progress_meter progress(tixport::progress_meter::wanted(!level.quiet));
  std::uint64_t pages_total = 0;  // a retry's report does not know it; the pages' do
  fetch.progress = [&](const tixport::fetch_progress& p) {
    if (p.pages_total != 0) pages_total = p.pages_total;
    std::string note;
    if (p.retries != 0) note = std::to_string(p.retries) + (p.retries == 1 ? " retry" : " retries");
    if (p.waiting.count() > 0) {
      char wait[64];
      std::snprintf(wait, sizeof wait, "%s, waiting %.1f s", p.rate_limited ? "rate limited" : "backing off",
                    static_cast<double>(p.waiting.count()) / 1000.0);
      note += note.empty() ? wait : std::string(", ") + wait;
      if (level.verbose) {
        progress.clear();
        std::fprintf(stderr, "tixport fetch-users: page failed, retry %llu: %s\n",
                     static_cast<unsigned long long>(p.retries), wait);
      }
    }
    progress.update("fetching pages", p.pages_done, pages_total, tixport::progress_unit::items, note,
                    p.waiting.count() > 0);
  };
  tixport::user_index_source source(std::move(index_options));
  const tixport::fetch_result result = source.take();
  progress.clear();
  tixport::save_index_csv(result.entries, output);
  const auto& s = result.stats;
  const tixport::user_index_stats index = tixport::user_index::build(result.entries).stats();
  if (!level.quiet) {
    std::fprintf(stderr,
                 "tixport fetch-users: %s -> %s\n  pages %llu, users %llu, requests %llu, retries %llu, "
                 "%llu bytes, %.3f s\n  index %s\n",
                 tixport::redact_url(api.users_url).c_str(), output.c_str(), static_cast<unsigned long long>(s.pages),
                 static_cast<unsigned long long>(s.users), static_cast<unsigned long long>(s.requests),
                 static_cast<unsigned long long>(s.retries), static_cast<unsigned long long>(s.bytes), s.seconds,
                 tixport::describe_index_stats(index).c_str());
  }
  if (auto warning = tixport::index_warning(index, tixport::redact_url(api.users_url))) {
    std::fprintf(stderr, "tixport: warning: %s\n", warning->c_str());
  }
  return 0;
}

int verify(const std::string& archive, const std::string& users_file, const std::string& since, unsigned threads,
              bool json, const verbosity& level) {
  tixport::verify_options opt;
  tixport::progress_meter progress(tixport::progress_meter::wanted(!level.quiet));
  opt.progress = [&](std::uint64_t entries, std::uint64_t bytes, std::uint64_t total) {
    progress.update("verifying", bytes, total, tixport::progress_unit::bytes, std::to_string(entries) + " entries");
  };
  opt.archive = archive;
  if (!users_file.empty()) opt.users_file = users_file;
  if (!since.empty()) opt.since = since;
  opt.threads = threads;
  const tixport::verify_result result = tixport::verify_archive(opt);
  progress.clear();
  if (json) {
    const std::string text = tixport::verify_result_json(result, archive);
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
      throw fatal_error(exit_code::output_error, std::string("verify: write: stdout: ") + std::strerror(errno));
    }
  } else if (!level.quiet) {
    tixport::print_verify_result(result, stdout);
  }
  return result.valid ? 0 : 1;
}

int ledger_dump(const std::string& file, const std::string& what, const std::string& output) {
  const tixport::run_ledger ledger = tixport::load_ledger(file);
  const tixport::ledger_table table = what == "users"      ? tixport::ledger_table::users
                                      : what == "identity" ? tixport::ledger_table::identity
                                      : what == "tickets"  ? tixport::ledger_table::tickets
                                                           : tixport::ledger_table::comments;
  const std::string csv = tixport::ledger_csv(ledger, table);
  if (output.empty() || output == "-") {
    if (std::fwrite(csv.data(), 1, csv.size(), stdout) != csv.size() || std::fflush(stdout) != 0) {
      throw fatal_error(exit_code::output_error, "ledger dump: write: standard output");
    }
    return 0;
  }
  tixport::output_plan plan;
  plan.add_input(file, "ledger");
  plan.add_output(output, "--output");
  plan.check();
  tixport::atomic_output_file out(output, "ledger dump");
  out.write(csv);
  out.commit();
  return 0;
}

int generate(tixport::generate_options opt, const verbosity& level) {
  tixport::progress_meter progress(tixport::progress_meter::wanted(!level.quiet));
  opt.progress = [&](std::uint64_t done, std::uint64_t total) {
    progress.update("generating", done, total, tixport::progress_unit::items, "rows");
  };
  const tixport::generate_stats s = tixport::generate_sample(opt);
  progress.clear();
  if (level.quiet) return 0;
  std::fprintf(stderr,
               "tixport generate: %llu rows (%llu bytes) -> %s; %llu index users -> %s\n"
               "  %llu conversations, %llu chat users, %llu duplicate rows, %.3f s\n",
               static_cast<unsigned long long>(s.rows), static_cast<unsigned long long>(s.bytes),
               opt.output.c_str(), static_cast<unsigned long long>(s.index_users), opt.users_output.c_str(),
               static_cast<unsigned long long>(s.conversations), static_cast<unsigned long long>(s.chat_users),
               static_cast<unsigned long long>(s.duplicate_rows), s.seconds);
  return 0;
}

int ledger_show(const std::string& file) {
  const run_ledger ledger = load_ledger(file);
  print_ledger_summary(ledger, file, stdout);
  return 0;
}

int generate_refresh(const std::string& append_to, const std::string& output, const std::string& users_output,
                     std::uint64_t rows, std::uint64_t seed, unsigned threads, const verbosity& level) {
  if (!users_output.empty()) {
    throw fatal_error(exit_code::input_error,
                      "generate: --users-output does not apply with --append-to (the index stays as it is)");
  }
  tixport::refresh_options refresh;
  refresh.base = append_to;
  refresh.output = output;
  refresh.rows = rows;
  refresh.seed = seed;
  refresh.threads = threads;
  const tixport::refresh_stats s = tixport::generate_refresh(refresh);
  if (level.quiet) return 0;
  std::fprintf(stderr,
               "tixport generate: %s (%llu bytes) + %llu rows -> %s (%llu bytes)\n"
               "  %llu messages in old conversations, %llu new conversations, %llu new customers, %llu chat "
               "users gained an email, %llu duplicate rows, %.3f s\n",
               append_to.c_str(), static_cast<unsigned long long>(s.base_bytes),
               static_cast<unsigned long long>(s.rows), output.c_str(), static_cast<unsigned long long>(s.bytes),
               static_cast<unsigned long long>(s.messages_in_old),
               static_cast<unsigned long long>(s.new_conversations),
               static_cast<unsigned long long>(s.new_customers),
               static_cast<unsigned long long>(s.users_gaining_email),
               static_cast<unsigned long long>(s.duplicate_rows), s.seconds);
  return 0;
}

}  // namespace tixport::commands
