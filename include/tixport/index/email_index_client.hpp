// File: email_index_client.hpp
//
// Fetches the ticketing platform's user index from its paged REST API (SPEC 1.3)
// into raw (id, email) entries in page order (user_index_csv.hpp saves them as the
// index CSV). One io_context runs on its own thread; up to
// `concurrency` requests are in flight over a pool of HTTP/1.1 keep-alive
// connections (http or https); failed pages are retried with exponential
// backoff and full jitter. Any failure throws fatal_error(user_index_error):
// a partial index is never returned.
//
//   tixport::fetch_options options;
//   options.users_url = "https://example.zendesk.com/api/v2/users.json";
//   options.credentials = tixport::load_api_credentials(auth_file);
//   tixport::fetch_result result = tixport::fetch_user_index(options);
//   tixport::save_index_csv(result.entries, "users.csv");  // user_index_csv.hpp
//
//   // or in the background, while the export is parsed:
//   tixport::user_index_fetch fetch(options);   // starts at once
//   ...                                         // parse the CSV
//   tixport::fetch_result result = fetch.get(); // waits; rethrows
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tixport/index/user_index.hpp"

namespace tixport {

/// How pages are walked (SPEC 1.3).
enum class pagination_mode {
  offset,  ///< `page=N`; all pages at once when page 1 has `count`, else in a sliding window
  cursor,  ///< `page[size]=S`, then follow `links.next` while `meta.has_more`, one after another
};

/// HTTP basic-auth credentials. Never printed, logged or written to a report.
struct api_credentials {
  std::string user;    ///< the part before the first ':'
  std::string secret;  ///< password or API token
};

/// Read credentials from `auth_file` (one line "user:secret"; a trailing LF / CRLF is ignored)
/// when given, else from TIXPORT_API_USER and TIXPORT_API_TOKEN; nullopt when neither is set.
/// Throws fatal_error(user_index_error) on an unreadable or ill-formed file, or when only one
/// of the two variables is set. Messages never quote the file's content.
std::optional<api_credentials> load_api_credentials(
    const std::optional<std::filesystem::path>& auth_file);

/// Where a fetch stands, for a progress line.
struct fetch_progress {
  std::uint64_t pages_done = 0;                ///< pages received
  std::uint64_t pages_total = 0;               ///< 0 while unknown
  std::uint64_t retries = 0;                   ///< re-attempts so far
  std::chrono::milliseconds waiting{0};        ///< > 0: about to wait this long before a retry
  bool rate_limited = false;                   ///< that wait is the server's Retry-After (429 / 503)
};

/// `url` as it may be shown: the value of every query or fragment parameter whose name looks
/// like a credential is replaced by `***`, and so is the password of user info. A name looks
/// like a credential when, percent-decoded and in any case, it contains `token`, `key`,
/// `secret`, `password`, `passwd` or `signature` (so `api_key`, `access_token`,
/// `client_secret`, ...), or is `sig`, `pwd`, `pass`, `auth` or `credentials`. Every message,
/// summary and report that shows a URL shows it through this function.
///   redact_url("https://h/u.json?role=agent&api_key=abc") == "https://h/u.json?role=agent&api_key=***"
std::string redact_url(std::string_view url);

/// Settings of one fetch. Only `users_url` is required.
struct fetch_options {
  std::string users_url;                   ///< http:// or https://, no user info
  std::optional<unsigned> page_size;       ///< sent as per_page (page[size] in cursor mode); default 100
  unsigned concurrency = 16;               ///< requests in flight at most (>= 1)
  pagination_mode pagination = pagination_mode::offset;  ///< how pages are walked
  std::chrono::milliseconds timeout{30000};  ///< bounds each of connect, TLS handshake, write, read
  unsigned retries = 5;                    ///< re-attempts per page after the first attempt
  std::optional<std::filesystem::path> ca_file;  ///< extra trusted CA (PEM), besides the system's
  bool insecure = false;                   ///< skip TLS peer verification (warns)
  std::optional<api_credentials> credentials;  ///< sent as HTTP basic auth when set
  /// Warnings (--insecure; a server page size other than the one asked for; a `count` the
  /// pages did not match); default: "warning: ..." on stderr. Called on the calling thread
  /// or the fetch thread, never concurrently.
  std::function<void(std::string_view)> warn;
  /// Called on the fetch thread after each finished page and before each retry's wait.
  std::function<void(const fetch_progress&)> progress;

  // Tuning and test hooks.
  std::chrono::milliseconds backoff_base{200};      ///< first backoff; doubles per retry
  std::chrono::milliseconds backoff_cap{10000};     ///< backoff never exceeds this
  std::chrono::milliseconds retry_after_cap{60000}; ///< a longer Retry-After is cut to this
  std::optional<std::uint64_t> jitter_seed;         ///< RNG seed for the jitter; default random
};

/// Counters of one fetch (for the summary and the report).
struct fetch_stats {
  std::uint64_t pages = 0;     ///< pages that make up the index
  std::uint64_t users = 0;     ///< entries in those pages (valid or not)
  std::uint64_t requests = 0;  ///< HTTP requests sent, retries and abandoned look-ahead included
  std::uint64_t retries = 0;   ///< re-attempts after a failed attempt
  std::uint64_t bytes = 0;     ///< response body bytes received
  double seconds = 0;          ///< wall time of the fetch
};

/// The fetched index.
struct fetch_result {
  std::vector<raw_index_entry> entries;  ///< in page order, then position in page
  fetch_stats stats;                     ///< counters
};

/// Fetch the whole index (blocking; the I/O runs on its own thread).
/// Throws fatal_error(user_index_error, "user index: ...") on any failure; never returns a
/// partial index.
fetch_result fetch_user_index(const fetch_options& options);

/// A fetch running in the background on its own thread, started by the constructor.
/// The destructor cancels a fetch still running and waits for its thread.
class user_index_fetch {
 public:
  /// Start fetching at once. Throws fatal_error(user_index_error) on a bad URL or TLS setup.
  explicit user_index_fetch(fetch_options options);
  ~user_index_fetch();
  user_index_fetch(const user_index_fetch&) = delete;
  user_index_fetch& operator=(const user_index_fetch&) = delete;

  /// Wait for the fetch and return it; rethrows its fatal_error. Call at most once.
  fetch_result get();
  /// Ask a running fetch to stop soon; get() then throws fatal_error(interrupted).
  void cancel() noexcept;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace tixport
