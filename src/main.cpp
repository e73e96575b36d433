// File: main.cpp
//
// The tixport command line: parses options with CLI11 and calls one function per
// command (cli/commands.cpp) with plain option structs. Only this file includes
// CLI11 (it is slow to compile).
//
//   tixport run --input chat.csv --users-file users.csv --output out.tar.zst
//   tixport fetch-users --users-url https://host/api/v1/users.json --output users.csv
//   tixport verify out.tar.zst --users-file users.csv
//   tixport generate --rows 100000 --output chat.csv --users-output users.csv
//
// The conventions of every command (defaults, examples and exit codes in --help, the
// `tixport: error:` prefix, "did you mean") are applied to the whole option tree by
// cli_help_internal.hpp; the man page and shell completions are rendered from the same
// tree (cli_docs_internal.hpp) by the hidden `man` and the `completion` commands.
#include <CLI/CLI.hpp>

#include "cli/cli_docs_internal.hpp"
#include "cli/cli_help_internal.hpp"
#include "cli/commands_internal.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <memory>

#ifndef TIXPORT_VERSION
#define TIXPORT_VERSION "0.0.0"
#endif

namespace {

using tixport::exit_code;
using tixport::fatal_error;
namespace cli = tixport::cli;
namespace commands = tixport::commands;
using commands::api_cli_options;
using commands::run_cli_options;
using commands::verbosity;
using commands::kStdout;

constexpr const char* kVersion = TIXPORT_VERSION;

// The help group of the REST options; with --users-file none of them can apply.
constexpr const char* kApiGroup = "User index REST API options";

void add_api_options(CLI::App& cmd, api_cli_options& o) {
  cmd.add_option("--page-size", o.page_size, "Users per page, sent as per_page")
      ->check(CLI::Range(1u, 10000u))
      ->default_str("not sent; the server's, 100")
      ->group(kApiGroup);
  cmd.add_option("--concurrency", o.concurrency, "Requests in flight at most")
      ->check(CLI::Range(1u, 1024u))
      ->group(kApiGroup);
  cmd.add_option("--pagination", o.pagination, "offset (page=N) or cursor (links.next / meta.has_more)")
      ->check(CLI::IsMember({"offset", "cursor"}))
      ->group(kApiGroup);
  cmd.add_option("--timeout", o.timeout_seconds, "Seconds per request step (connect, write, read)")
      ->check(CLI::Range(0.001, 86400.0))
      ->group(kApiGroup);
  cmd.add_option("--retries", o.retries, "Retries per page after the first attempt")
      ->check(CLI::Range(0u, 100u))
      ->group(kApiGroup);
  cmd.add_option("--ca-file", o.ca_file, "Extra trusted CA certificate (PEM)")
      ->check(CLI::ExistingFile)
      ->group(kApiGroup);
  cmd.add_flag("--insecure", o.insecure, "Do not verify the server's TLS certificate (warns)")->group(kApiGroup);
  cmd.add_option("--auth-file", o.auth_file, "File holding user:secret for HTTP basic auth")
      ->check(CLI::ExistingFile)
      ->default_str("TIXPORT_API_USER / TIXPORT_API_TOKEN")
      ->group(kApiGroup);
}

void add_verbosity(CLI::App& cmd, verbosity& v) {
  auto* q = cmd.add_flag("--quiet,-q", v.quiet, "No progress line and no summary: only warnings and errors");
  auto* l = cmd.add_flag("--verbose,-v", v.verbose, "More detail: every sample line, each retry and wait");
  q->excludes(l);
}

// Examples and exit codes per command, for --help, the man page and the README's tables.
cli::command_docs program_docs() {
  const std::vector<cli::exit_status> run_codes = {
      {0, "done"},
      {1, "done, archive written, but --strict found export problems"},
      {2, "usage or input error (bad option, unreadable export, missing / repeated column)"},
      {3, "output error (cannot create or write the archive or report)"},
      {4, "user-index error (index unreadable, credentials refused, a page failed every retry)"},
      {130, "interrupted (SIGINT / SIGTERM)"},
  };
  cli::command_docs docs;
  docs[""] = {{{"tixport run --input chat.csv --users-file users.csv --output backup.tar.zst",
                "migrate an export against a user index file"},
               {"tixport verify backup.tar.zst --users-file users.csv", "check the archive"},
               {"tixport run --help", "the options of one command"}},
              {{0, "done"},
               {1, "done, but problems were found (run --strict, verify)"},
               {2, "usage or input error"},
               {3, "output error"},
               {4, "user-index error"},
               {130, "interrupted (SIGINT / SIGTERM)"}}};
  docs["run"] = {
      {{"tixport run --input chat.csv --users-file users.csv --output backup.tar.zst --report report.json",
        "migrate against an index file, keep the report"},
       {"tixport run --input chat.csv --users-url https://host/api/v2/users.json --users-cache users.csv "
        "--output backup.tar.gz --gzip-level 9",
        "fetch the index once (then reuse users.csv), write a .tar.gz"},
       {"tixport run --input chat.csv --users-file users.csv --output backup.tar --strict --report - | jq .issues",
        "fail on export problems; the JSON report on stdout"}},
      run_codes};
  docs["fetch-users"] = {
      {{"tixport fetch-users --users-url https://host/api/v2/users.json --auth-file creds --output users.csv",
        "save the platform's index as id,email; credentials (user:secret) from a file"},
       {"TIXPORT_API_USER=me TIXPORT_API_TOKEN=... tixport fetch-users --users-url https://host/api/v2/users.json "
        "--pagination cursor --output users.csv",
        "cursor paging (APIs that cap page numbers), credentials from the environment"},
       {"tixport fetch-users --users-url http://127.0.0.1:8080/api/v2/users.json --output users.csv",
        "against the local test API (scripts/serve-test-api)"}},
      {{0, "done, the CSV written"},
       {2, "usage error"},
       {3, "cannot write the CSV"},
       {4, "user-index error (credentials refused, a page failed every retry, TLS refused)"},
       {130, "interrupted; no CSV written"}}};
  docs["verify"] = {{{"tixport verify backup.tar.zst", "check an archive on its own"},
                     {"tixport verify backup.tar.zst --users-file users.csv",
                      "references may also point to the index's users"},
                     {"tixport verify backup.tar.zst --json | jq .problems_by_kind", "machine-readable result"}},
                    {{0, "valid"},
                     {1, "problems found (listed)"},
                     {2, "usage error, or the archive or index unreadable"},
                     {130, "interrupted"}}};
  docs["generate"] = {{{"tixport generate --rows 200000 --output chat.csv --users-output users.csv --seed 1",
                        "a 200k-row sample export and its index"}},
                      {{0, "done"}, {2, "usage error"}, {3, "cannot write a file"}, {130, "interrupted"}}};
  const std::vector<cli::exit_status> ledger_codes = {
      {0, "done"}, {2, "usage error, or the ledger unreadable or not a ledger"}, {3, "output error"}};
  docs["ledger"] = {{{"tixport ledger show run.ledger", "what a ledger holds"},
                     {"tixport ledger dump run.ledger --what users", "its users as CSV on stdout"}},
                    ledger_codes};
  docs["ledger show"] = {{{"tixport ledger show run.ledger", "runs, counts and the export prefix it covers"}},
                         ledger_codes};
  docs["ledger dump"] = {{{"tixport ledger dump run.ledger --what identity --output identity.csv",
                           "the chat id -> user id map as CSV"},
                          {"tixport ledger dump run.ledger --what comments | wc -l", "count the comments sent"}},
                         ledger_codes};
  docs["completion"] = {{{"tixport completion bash > ~/.local/share/bash-completion/completions/tixport",
                          "bash completion for one user (the package installs it for everyone)"},
                         {"tixport completion zsh > ~/.zfunc/_tixport", "zsh completion (~/.zfunc in fpath)"}},
                        {{0, "printed"}, {2, "usage error"}}};
  return docs;
}

// Environment variables, for the man page.
std::vector<cli::environment_doc> program_environment() {
  return {{"TIXPORT_API_USER, TIXPORT_API_TOKEN",
           "HTTP basic auth for the users API (run --users-url, fetch-users) unless --auth-file is given"},
          {"SOURCE_DATE_EPOCH", "fixes the mtime of the archive entries (reproducible builds)"}};
}

// Options given that cannot apply to this run: a usage error that says why.
void check_run_applies(const CLI::App& cmd, const run_cli_options& o) {
  const auto given = [&](const std::string& name) { return cmd.get_option(name)->count() > 0; };
  const auto format = tixport::archive_format_from_name(o.output);
  const auto fail = [](const std::string& why) { throw cli::usage_error("run: " + why); };
  if (o.users_file.empty() && o.api.users_url.empty()) fail("give one of --users-file or --users-url");
  if (o.output.empty() && !o.dry_run) fail("--output is required (unless --dry-run)");
  if (o.dry_run) {
    for (const char* name : {"--gzip-level", "--zstd-level", "--ledger"}) {
      if (given(name)) fail(std::string(name) + " does not apply with --dry-run (a dry run writes no archive)");
    }
  }
  if (o.report == kStdout && o.rejects == kStdout) {
    fail("--report - and --rejects - cannot both write to stdout; give one of them a file");
  }
  if (format && *format != tixport::archive_format::tar_gz && given("--gzip-level")) {
    fail("--gzip-level applies only to a .tar.gz or .tgz --output, not " + o.output);
  }
  if (format && *format != tixport::archive_format::tar_zst && given("--zstd-level")) {
    fail("--zstd-level applies only to a .tar.zst --output, not " + o.output);
  }
  if (o.api.users_url.empty() && given("--users-cache")) {
    fail("--users-cache applies only with --users-url (it caches the index fetched from the API)");
  }
  if (o.users_cache.empty() && given("--refresh-users")) {
    fail("--refresh-users applies only with --users-url and --users-cache (it fetches the index again instead of "
         "reading the cache)");
  }
  if (!o.users_file.empty()) {
    for (const CLI::Option* opt : cmd.get_options()) {
      if (opt->get_group() == kApiGroup && opt->count() > 0) {
        fail(opt->get_name() + " is a REST API option; it cannot apply with --users-file (the index is read " +
             "from the file, not fetched)");
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // A fixed mmap threshold: blocks of 256 KiB and more (the dedup tables, per-chunk candidate
  // vectors) go back to the kernel when freed. glibc's default raises the threshold as such
  // blocks are freed, after which the freed tables of every doubling stay in the heap:
  // -84 MiB of peak RSS on 2.5M rows (perf/RESULTS.md). Chunk vectors are recycled, so the
  // extra page faults are few.
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
#endif
  CLI::App app{"tixport: move a chat export into a ticketing-system import archive", "tixport"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("tixport ") + kVersion);
  // Every option added from here on, in any command, shows its default in --help.
  app.option_defaults()->always_capture_default();
  unsigned threads = 0;
  const std::string kAllCores = "all cores";

  run_cli_options run;
  CLI::App* run_cmd = app.add_subcommand("run", "Convert a chat export CSV into an import archive");
  run_cmd->add_option("--input", run.input, "The chat export CSV")->required();
  run_cmd->add_option("--output", run.output, "The archive: .tar, .tar.gz, .tgz or .tar.zst (not with --dry-run)");
  run_cmd->add_option("--rejects", run.rejects,
                      "Write every skipped, duplicate, conflicting, dangling or repaired row as CSV (- for stdout)");
  run_cmd->add_flag("--dry-run", run.dry_run,
                    "Check the export: parse, deduplicate, resolve users, count and report, but write no archive");
  auto* users_file = run_cmd->add_option("--users-file", run.users_file, "The platform's user index CSV (id,email)");
  auto* users_url = run_cmd->add_option("--users-url", run.api.users_url, "The platform's paged users REST API");
  users_file->excludes(users_url);
  run_cmd->add_option("--users-cache", run.users_cache, "Reuse this index CSV when present; else fetch and save it");
  run_cmd->add_flag("--refresh-users", run.refresh_users, "Fetch the index even when --users-cache exists");
  run_cmd->add_option("--batch-size", run.batch_size, "Objects per array per batch file (1..100)")
      ->check(CLI::Range(1u, tixport::kMaxBatchSize));
  run_cmd->add_option("--name-style", run.name_style, "offset: backup_tickets_{k*B}.json; index: backup_tickets_{k}.json")
      ->check(CLI::IsMember({"offset", "index"}));
  run_cmd->add_flag("--pretty", run.pretty, "Indent the JSON files");
  run_cmd->add_flag("--strict", run.strict, "Exit 1 when the export had problems (the archive is still written)");
  run_cmd->add_option("--report", run.report, "Write the run report as JSON to this file (- for stdout)");
  run_cmd->add_option("--chunk-size", run.chunk_bytes, "Bytes per parallel CSV chunk")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 32));
  run_cmd->add_flag("--no-progress", run.no_progress, "No progress line, even on a terminal");
  run_cmd->add_option("--zstd-level", run.zstd_level, "zstd level for .tar.zst")->check(CLI::Range(1, 19));
  run_cmd->add_option("--gzip-level", run.gzip_level, "gzip level for .tar.gz")->check(CLI::Range(1, 9));
  run_cmd->add_option("--threads", threads, "Worker threads")->check(CLI::Range(1u, 4096u))->default_str(kAllCores);
  run_cmd->add_option("--ledger", run.ledger,
                      "Also write the ledger of what this archive puts on the platform (for later --since runs)");
  run_cmd->add_option("--since", run.since,
                      "Ledger of the earlier runs: write only what it does not hold (a delta archive; may be the "
                      "same file as --ledger)");
  run_cmd->add_flag("--full-compare", run.full_compare,
                    "With --since: parse the whole export even when it only appends to the ledger's");
  add_verbosity(*run_cmd, run.level);
  add_api_options(*run_cmd, run.api);

  api_cli_options fetch;
  std::string fetch_output;
  CLI::App* fetch_cmd = app.add_subcommand("fetch-users", "Save the platform's user index as CSV (id,email)");
  fetch_cmd->add_option("--users-url", fetch.users_url, "The platform's paged users REST API")->required();
  fetch_cmd->add_option("--output", fetch_output, "The CSV to write")->required();
  fetch_cmd->add_option("--threads", threads, "Accepted for symmetry; the fetch is asynchronous I/O")
      ->check(CLI::Range(1u, 4096u))
      ->default_str(kAllCores);
  verbosity fetch_level;
  add_verbosity(*fetch_cmd, fetch_level);
  add_api_options(*fetch_cmd, fetch);

  std::string verify_archive;
  std::string verify_users;
  CLI::App* verify_cmd = app.add_subcommand("verify", "Check an archive against the import contract");
  verify_cmd->add_option("archive", verify_archive, "The archive to check")->required();
  verify_cmd->add_option("--users-file", verify_users, "Index CSV whose ids references may point to");
  std::string verify_since;
  verify_cmd->add_option("--since", verify_since,
                         "Ledger of the earlier imports: references to its tickets and users are known (delta archives)");
  verify_cmd->add_option("--threads", threads, "Worker threads")->check(CLI::Range(1u, 4096u))->default_str(kAllCores);
  bool verify_json = false;
  verify_cmd->add_flag("--json", verify_json, "Print the result as one JSON object (keys in the README)");
  verbosity verify_level;
  add_verbosity(*verify_cmd, verify_level);

  tixport::generate_options gen;
  std::string gen_output;
  std::string gen_users_output;
  CLI::App* gen_cmd = app.add_subcommand("generate", "Write a realistic synthetic export and user index");
  gen_cmd->add_option("--rows", gen.rows, "Data rows of the export")->required();
  gen_cmd->add_option("--output", gen_output, "The export CSV to write")->required();
  gen_cmd->add_option("--users-output", gen_users_output, "The index CSV to write (not with --append-to)");
  std::string gen_append_to;
  gen_cmd->add_option("--append-to", gen_append_to,
                      "Write a refresh of this export instead: its bytes, then --rows new rows (new messages, "
                      "conversations and users), to try `run --since`");
  gen_cmd->add_option("--seed", gen.seed, "Same seed, same bytes");
  gen_cmd->add_option("--threads", threads, "Worker threads")->check(CLI::Range(1u, 4096u))->default_str(kAllCores);
  verbosity gen_level;
  add_verbosity(*gen_cmd, gen_level);

  CLI::App* ledger_cmd = app.add_subcommand("ledger", "Look into a ledger written by run --ledger");
  ledger_cmd->require_subcommand(1);
  std::string ledger_file;
  CLI::App* ledger_show = ledger_cmd->add_subcommand("show", "Print a ledger's summary");
  ledger_show->add_option("file", ledger_file, "The ledger")->required();
  std::string dump_what;
  std::string dump_output;
  CLI::App* ledger_dump = ledger_cmd->add_subcommand("dump", "Write one of a ledger's tables as CSV");
  ledger_dump->add_option("file", ledger_file, "The ledger")->required();
  ledger_dump->add_option("--what", dump_what, "users, identity, tickets or comments")
      ->required()
      ->check(CLI::IsMember({"users", "identity", "tickets", "comments"}));
  ledger_dump->add_option("--output", dump_output, "Write the CSV here (default: standard output)");

  // The man page and completions, rendered from the option tables above (the build installs them).
  std::string completion_shell;
  CLI::App* completion_cmd = app.add_subcommand("completion", "Print a shell completion script");
  completion_cmd->add_option("shell", completion_shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));
  CLI::App* man_cmd = app.add_subcommand("man", "Print the tixport(1) man page (roff)")->group("");

  const cli::command_docs docs = program_docs();
  cli::apply_conventions(app, docs);
  if (const auto done = cli::parse(app, argc, argv, [&] {
        if (run_cmd->parsed()) check_run_applies(*run_cmd, run);
      })) {
    return *done;
  }
  if (man_cmd->parsed()) {
    std::fputs(cli::man_page(app, docs, kVersion, program_environment()).c_str(), stdout);
    return std::fflush(stdout) == 0 ? 0 : static_cast<int>(exit_code::output_error);
  }
  if (completion_cmd->parsed()) {
    const std::string script = completion_shell == "bash" ? cli::bash_completion(app) : cli::zsh_completion(app);
    std::fputs(script.c_str(), stdout);
    return std::fflush(stdout) == 0 ? 0 : static_cast<int>(exit_code::output_error);
  }

  tixport::interrupt_guard interrupts;
  try {
    if (run_cmd->parsed()) return commands::run(run, threads);
    if (fetch_cmd->parsed()) return commands::fetch_users(fetch, fetch_output, fetch_level);
    if (verify_cmd->parsed()) {
      return commands::verify(verify_archive, verify_users, verify_since, threads, verify_json, verify_level);
    }
    if (ledger_show->parsed()) return commands::ledger_show(ledger_file);
    if (ledger_dump->parsed()) return commands::ledger_dump(ledger_file, dump_what, dump_output);
    if (gen_cmd->parsed() && !gen_append_to.empty()) {
      return commands::generate_refresh(gen_append_to, gen_output, gen_users_output, gen.rows, gen.seed, threads, gen_level);
    }
    if (gen_cmd->parsed()) {
      if (gen_users_output.empty()) {
        throw fatal_error(exit_code::input_error, "generate: --users-output is required (unless --append-to)");
      }
      gen.output = gen_output;
      gen.users_output = gen_users_output;
      gen.threads = threads;
      return commands::generate(gen, gen_level);
    }
  } catch (const fatal_error& e) {
    std::fprintf(stderr, "tixport: error: %s\n", e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tixport: error: %s\n", e.what());
    return static_cast<int>(exit_code::output_error);
  }
  return 0;
}
