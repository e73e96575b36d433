// File: test_index_server.hpp
//
// An in-process HTTP/1.1 server (Boost.Beast, C++20 coroutines, its own thread) that
// serves a user index in pages the way SPEC 1.3 describes, with injectable faults:
// latency, 500s at a rate, 429 / 503 with Retry-After, truncated bodies, a stall after
// the headers, a connection closed after each response or without any response, a
// connection reset (RST), a huge body (Content-Length, chunked or ended by the close, 2 GiB
// by default, streamed without holding it), the whole server dying after N requests, 401/403, 400 past a page
// cap, no `count`, `next_page` links, cursor paging, and TLS with a self-signed certificate
// made at start. A request that is not HTTP at all (a TLS ClientHello sent to the plain
// server) gets a 400 and the connection closed, as nginx does. Faults that a client's timer
// races against (a stall, a huge body) can wait for the server's end instead of a duration,
// and requests can be held until others have arrived or been answered, so outcomes never
// depend on the machine's speed. It counts requests per page, connections and
// the peak number of requests in flight, so tests can show that nothing is fetched more
// often than its retries explain. Included by tests and the benchmark; this header only
// declares (no Boost, no OpenSSL), the Beast server is compiled once in
// tests/support/test_index_server.cpp: as a header-only server it cost every including
// test 1.5 minutes of compile time in Release and several minutes under sanitizers.
//
//   tixport::test::index_server_config config;
//   config.users = 250;
//   config.page_faults[2] = {tixport::test::fault::http_500};  // page 2, first attempt
//   tixport::test::index_server server(config);
//   options.users_url = server.url();
//   ... fetch ...
//   CHECK(server.requests_per_page().at(2) == 2);
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tixport::test {

/// A fault the server can answer a request with.
enum class fault {
  none,                    ///< the normal page
  http_500,                ///< 500 Internal Server Error
  http_503,                ///< 503 with Retry-After (config.retry_after)
  http_429,                ///< 429 with Retry-After (config.retry_after)
  http_401,                ///< 401 Unauthorized
  http_403,                ///< 403 Forbidden
  http_400,                ///< 400 Bad Request
  http_404,                ///< 404 Not Found
  truncated_body,          ///< Content-Length of the full body, half of it, then close
  bad_json,                ///< a complete response whose JSON is cut in half
  stall_after_headers,     ///< the header, then silence (until the server ends, or config.stall), then close
  close_without_response,  ///< read the request, then close the connection
  reset_connection,        ///< read the request, then reset the connection (RST, SO_LINGER 0)
  huge_body,               ///< 200, Content-Length config.huge_body_bytes, streamed until sent, held or the client goes
  huge_chunked_body,       ///< 200, chunked, config.huge_body_bytes of body streamed the same way
  huge_close_delimited_body,  ///< 200, no length, "Connection: close": the body ends when the connection does
};

/// What the server serves and how it misbehaves.
struct index_server_config {
  std::uint64_t users = 250;               ///< users in the index (generated unless raw_users)
  unsigned default_page_size = 100;        ///< when the request has no per_page / page[size]
  bool send_count = true;                  ///< offset pages carry `count`
  bool send_next_page = false;             ///< offset pages carry `next_page` (URL or null)
  std::chrono::milliseconds latency{0};    ///< added before every response
  std::map<std::uint64_t, std::chrono::milliseconds> page_latency;  ///< more for some pages
  bool close_after_each_response = false;  ///< "Connection: close", then close
  std::optional<std::string> expected_authorization;  ///< else 401
  std::map<std::uint64_t, std::vector<fault>> page_faults;  ///< page -> fault per attempt
  double error_500_rate = 0;               ///< share of other requests answered 500
  unsigned every_nth_429 = 0;              ///< every Nth request (server-wide) gets 429
  std::string retry_after = "0";           ///< Retry-After with 429 / 503; empty: none
  std::uint64_t max_offset_page = 0;       ///< > 0: offset pages above it answer 400
  std::uint64_t seed = 42;                 ///< for error_500_rate
  bool tls = false;                        ///< serve https with a fresh self-signed cert
  std::uint16_t port = 0;                  ///< port on 127.0.0.1; 0: an ephemeral one
  std::string tls_subject_alt_names = "DNS:localhost,IP:127.0.0.1";  ///< of that cert
  std::optional<std::vector<std::string>> raw_users;  ///< JSON text of each user, verbatim
  /// How long stall_after_headers stays silent; nullopt: until the server ends, so a client
  /// timeout is the only way out and the outcome never depends on which timer fires first.
  std::optional<std::chrono::milliseconds> stall;
  std::uint64_t huge_body_bytes = std::uint64_t{2} << 30;  ///< body size of the huge_* faults
  /// The huge_* answers stop after this many body bytes and hold the connection open, silent,
  /// until the server ends (the test's signal): how much was sent never depends on how fast
  /// the client reads or gives up. nullopt: stream until all is sent or the client goes.
  std::optional<std::uint64_t> huge_body_hold_after;
  /// > 0: a request for a page after page 1 is held until this many requests have been in
  /// flight at one time (from then on none is held), so tests of concurrency need no timing.
  unsigned hold_until_in_flight = 0;
  /// The answer for page P waits until every page listed for P has been answered, so a
  /// test can fix the order in which pages arrive without racing latencies.
  std::map<std::uint64_t, std::vector<std::uint64_t>> hold_page_until_answered;
  /// The longest a request is held for the two conditions above. One held longer is let go
  /// and listed in expired_holds(), so a condition that is never met (a client that never
  /// sends the requests it waits for) fails its test after this, not after the client's
  /// timeout times its attempts (120 s x 4 in the fetch tests). No live hold comes near it.
  std::chrono::milliseconds max_hold{60000};
  /// > 0: the server dies after answering this many requests: the listener closes (new
  /// connections are refused), and every later request, or one still waiting out its
  /// latency, is dropped without a response.
  unsigned die_after_requests = 0;
};

/// Id and email of generated user `index` (0-based).
inline std::int64_t test_user_id(std::uint64_t index) {
  return 1000 + static_cast<std::int64_t>(index);
}
inline std::string test_user_email(std::uint64_t index) {
  return "user" + std::to_string(index) + "@example.org";
}

/// Self-signed certificate and key (PEM) for `subject_alt_names`.
std::pair<std::string, std::string> make_self_signed_certificate(const std::string& subject_alt_names);

/// The server. Starts listening on 127.0.0.1 (ephemeral port) in the constructor, serves on
/// its own thread, and stops in the destructor.
class index_server {
 public:
  explicit index_server(index_server_config config);
  ~index_server();
  index_server(const index_server&) = delete;
  index_server& operator=(const index_server&) = delete;

  [[nodiscard]] std::uint16_t port() const;
  /// The users URL of this server, `host` as given (127.0.0.1 or localhost).
  [[nodiscard]] std::string url(const std::string& host = "127.0.0.1",
                                const std::string& path = "/api/v2/users.json") const;
  /// The PEM file of the self-signed certificate (TLS only).
  [[nodiscard]] std::filesystem::path ca_file() const;

  /// Requests per page number, all attempts counted.
  [[nodiscard]] std::map<std::uint64_t, unsigned> requests_per_page() const;
  /// Requests for page `page` so far.
  [[nodiscard]] unsigned requests(std::uint64_t page) const;
  /// Requests of all pages so far.
  [[nodiscard]] unsigned total_requests() const;
  /// Connections accepted so far.
  [[nodiscard]] unsigned connections() const;
  /// Most requests being answered at one time.
  [[nodiscard]] unsigned peak_in_flight() const;
  /// Request targets, in arrival order.
  [[nodiscard]] std::vector<std::string> targets() const;
  /// Authorization header of each request ("" when absent), in arrival order.
  [[nodiscard]] std::vector<std::string> authorizations() const;
  /// Body bytes written by the huge_* answers so far (all connections).
  [[nodiscard]] std::uint64_t huge_bytes_sent() const;
  /// The pages whose hold outlasted max_hold, in the order they were let go.
  [[nodiscard]] std::vector<std::uint64_t> expired_holds() const;
  /// True once die_after_requests has been reached.
  [[nodiscard]] bool dead() const;

 private:
  class impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace tixport::test
