// File: user_index_source.hpp
//
// Where the user index comes from, decided once (SPEC 1.2, 1.3): an index CSV
// (`--users-file`), a present `--users-cache` (unless `--refresh-users`), or the
// paged REST API (`--users-url`), whose entries then refresh the cache. The CLI
// fills user_index_source_options; `run`, `fetch-users` and `verify` take the
// index from here.
//
//   user_index_source_options o;
//   o.users_file = "users.csv";                // or o.fetch.users_url (+ o.users_cache)
//   user_index_source source(o);              // with the API, the fetch starts now
//   run.index_source = source.description();
//   run.load_index = [&] { return source.load(); };   // on the run's index thread
//   run.cancel_index = [&] { source.cancel(); };
//   ... run_migration(run) ...
//   auto cache = source.stage_cache();        // null unless a fetch refreshed --users-cache
#pragma once

#include "tixport/index/email_index_client.hpp"
#include "tixport/index/user_index.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tixport {

class atomic_output_file;

/// The index options of the command line.
struct user_index_source_options {
  std::filesystem::path users_file;   ///< --users-file; empty: the REST API at fetch.users_url
  std::filesystem::path users_cache;  ///< --users-cache: read when present, else written after the fetch
  bool refresh = false;               ///< --refresh-users: fetch even when the cache is present
  fetch_options fetch;                ///< --users-url and the REST options; credentials from auth_file
  std::optional<std::filesystem::path> auth_file;  ///< --auth-file; else TIXPORT_API_USER / TIXPORT_API_TOKEN
  unsigned threads = 0;               ///< for reading a CSV; 0 = all cores
};

/// Which of the three the index comes from.
enum class user_index_origin {
  file,   ///< --users-file
  cache,  ///< a present --users-cache
  api,    ///< the REST API
};

/// The one place that knows where the index comes from. With the API, the constructor loads
/// the credentials and starts the fetch on its own thread; the destructor cancels a fetch
/// still running and waits for it.
class user_index_source {
 public:
  /// Decide where the index comes from. Throws fatal_error(user_index_error) on bad
  /// credentials, a bad URL or TLS setup (API only).
  explicit user_index_source(user_index_source_options options);
  ~user_index_source();
  user_index_source(const user_index_source&) = delete;
  user_index_source& operator=(const user_index_source&) = delete;

  [[nodiscard]] user_index_origin origin() const noexcept { return origin_; }
  /// For the report and messages: the file, "CACHE (cache of URL)", or the URL, every URL
  /// through redact_url().
  [[nodiscard]] const std::string& description() const noexcept { return description_; }

  /// Read the file, or wait for the fetch, and return the entries with the fetch's counters
  /// (zero for a file). Rethrows the fetch's fatal_error. Call at most once, and not with load().
  fetch_result take();
  /// take(), built into the index; a fetch's entries are kept for stage_cache().
  user_index load();
  /// Make a running fetch stop soon (load() then throws fatal_error(interrupted)); any thread.
  void cancel() noexcept;
  /// The refreshed --users-cache, complete but not in place (commit it with the run's other
  /// outputs, so that a run that fails leaves an old cache as it was); null when there is no
  /// cache to write (no --users-cache, the cache was read, or load() did not finish).
  [[nodiscard]] std::unique_ptr<atomic_output_file> stage_cache() const;

 private:
  user_index_source_options options_;
  user_index_origin origin_ = user_index_origin::file;
  std::string description_;
  std::unique_ptr<user_index_fetch> fetch_;        ///< the running fetch (API only)
  std::optional<std::vector<raw_index_entry>> fetched_;  ///< a finished fetch's entries, for the cache
};

}  // namespace tixport
