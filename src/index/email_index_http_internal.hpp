// File: email_index_http_internal.hpp
//
// The HTTP pieces of the REST user-index client that need no network
// (email_index_http.cpp), exposed for the fetch session and the unit tests: URL
// parsing, page targets, Retry-After parsing, the backoff schedule and base64 for
// basic auth. redact_url() and load_api_credentials(), public, live in the same
// source. Not installed, not API.
//
//   auto url = tixport::detail::parse_url("https://api.example.org:8443/v2/users?role=agent");
//   std::string target = tixport::detail::offset_page_target(*url, 7, 100);
//   // "/v2/users?role=agent&page=7&per_page=100"
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tixport::detail {

/// Largest response body the client takes into memory, per connection. A page of 100 users
/// is a few tens of KiB, so 32 MiB is over 1000x headroom for a real page; above it the
/// answer fails with Beast's "body limit exceeded" and the page is retried like any bad
/// answer. A Content-Length over it is refused at the header; a body without one (chunked
/// or delimited by the connection's close) is read until it passes the limit, so at most
/// this much per connection (times --concurrency) is ever held.
constexpr std::uint64_t kMaxResponseBodyBytes = std::uint64_t{32} << 20;

/// The parts of an http(s) URL the client needs.
struct parsed_url {
  bool tls = false;         ///< https
  std::string host;         ///< host name or IP literal, without brackets
  bool ipv6_literal = false;///< host was written [..]
  std::uint16_t port = 0;   ///< explicit port, else 80 / 443
  bool default_port = true; ///< port was not written (Host header omits it)
  std::string target;       ///< path and query, at least "/"; fragment dropped

  /// The Host header value: host, brackets for IPv6, ":port" when not the default.
  [[nodiscard]] std::string host_header() const;
  /// True when `other` reaches the same scheme, host and port.
  [[nodiscard]] bool same_origin(const parsed_url& other) const noexcept;
};

/// A URL that could not be used; `what` never quotes the URL (it could hold a secret).
struct url_error {
  std::string what;  ///< reason, e.g. "user info (user:password@) is not allowed"
};

/// Parse an absolute http:// or https:// URL. Rejects user info, other schemes, bad ports
/// and control characters or spaces.
std::variant<parsed_url, url_error> parse_url(std::string_view text);

/// Resolve `link` (absolute URL, or an absolute path "/...") against `base`.
std::variant<parsed_url, url_error> resolve_link(const parsed_url& base, std::string_view link);

/// Target of offset page `page`: `target?page=N` (or `&page=N`), plus `&per_page=S` when given.
std::string offset_page_target(const parsed_url& url, std::uint64_t page,
                               std::optional<unsigned> per_page);

/// Target of the first cursor page: `target?page[size]=S` (or `&page[size]=S`).
std::string cursor_first_target(const parsed_url& url, unsigned page_size);

/// Parse a Retry-After value: delta seconds, or an HTTP date (IMF-fixdate, RFC 850 or
/// asctime) measured against `now`. nullopt when neither; a date in the past gives 0.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

/// Full-jitter backoff before re-attempt `retry` (1 = first retry): uniform in
/// [0, min(cap, base * 2^(retry-1))].
std::chrono::milliseconds backoff_delay(unsigned retry, std::chrono::milliseconds base,
                                        std::chrono::milliseconds cap, std::mt19937_64& rng);

/// Standard base64 with padding (for the basic-auth header).
std::string base64_encode(std::string_view bytes);

}  // namespace tixport::detail
