// File: commands_internal.hpp
//
// One function per command of the tixport command line, called by main.cpp once
// CLI11 has filled the plain option structs below. Each checks what only the whole
// command can check, plans its outputs (output_plan), runs the library and puts its
// outputs in place; exit codes as SPEC 2.7 and `tixport <command> --help` say.
//
//   tixport::commands::run_cli_options o;   // filled by CLI11
//   return tixport::commands::run(o, threads);
#pragma once

#include "tixport/generate/sample_generator.hpp"
#include "tixport/run/batch_serializer.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace tixport::commands {

// Options of the user-index REST client, shared by `run` and `fetch-users`.
struct api_cli_options {
  std::string users_url;
  unsigned page_size = 0;
  unsigned concurrency = 16;
  std::string pagination = "offset";
  double timeout_seconds = 30;
  unsigned retries = 5;
  std::string ca_file;
  bool insecure = false;
  std::string auth_file;
};

// --quiet / --verbose, on every command that reports.
struct verbosity {
  bool quiet = false;    ///< no progress, no summary: warnings and errors only
  bool verbose = false;  ///< every sample line; retries and waits as they happen
};

struct run_cli_options {
  std::string input;
  std::string output;
  std::string users_file;
  std::string users_cache;
  bool refresh_users = false;
  unsigned batch_size = tixport::kMaxBatchSize;
  std::string name_style = "offset";
  bool pretty = false;
  bool strict = false;
  std::string report;
  std::size_t chunk_bytes = 4u << 20;
  bool no_progress = false;
  verbosity level;
  int zstd_level = 3;
  int gzip_level = 6;
  std::string since;
  std::string ledger;
  bool full_compare = false;
  bool dry_run = false;
  std::string rejects;
  api_cli_options api;
};

// `--report -`: the report on stdout (the summary goes to stderr, so stdout holds only the JSON).
// It cannot be staged with the other outputs; it is written once they are in place.
inline constexpr const char* kStdout = "-";

/// `tixport run`: the migration, its outputs committed together (SPEC 2, 4).
int run(const run_cli_options& o, unsigned threads);
/// `tixport fetch-users`: the index from the REST API into an id,email CSV.
int fetch_users(const api_cli_options& api, const std::string& output, const verbosity& level);
/// `tixport verify`: 0 when the archive passes every check, 1 when not.
int verify(const std::string& archive, const std::string& users_file, const std::string& since, unsigned threads,
           bool json, const verbosity& level);
/// `tixport ledger show`.
int ledger_show(const std::string& file);
/// `tixport ledger dump`: a ledger table as CSV.
int ledger_dump(const std::string& file, const std::string& what, const std::string& output);
/// `tixport generate`: a sample export and its user index.
int generate(generate_options opt, const verbosity& level);
/// `tixport generate --append-to`: a refreshed export (SPEC 4's trial workflow).
int generate_refresh(const std::string& append_to, const std::string& output, const std::string& users_output,
                     std::uint64_t rows, std::uint64_t seed, unsigned threads, const verbosity& level);

}  // namespace tixport::commands
