// File: email_index_fetch_session.cpp
//
// The REST user-index client's fetch (SPEC 1.3): fetch_user_index() and
// user_index_fetch. The pieces without network are email_index_http.cpp (URLs,
// retries, credentials) and email_index_page_parser.cpp (page bodies).
//
// One io_context runs on a thread of its own.
// `concurrency` worker coroutines each own one HTTP/1.1 keep-alive connection (plain TCP
// or TLS), reconnecting when the server closes it, and take page numbers from a shared
// scheduler. All shared state lives on that one io_context thread, so it is an implicit
// strand: no mutex is needed, and results are merged in page slots, then concatenated.
//
//   fetch_session session(options, io);   // parses the URL, builds the TLS context
//   session.start();                       // co_spawns the workers
//   io.run();                              // on the fetch thread
//   fetch_result result = session.finish();// throws fatal_error on failure
//
// Paging (offset mode): page 1 goes out alone. If it carries `count`, pages
// 2..ceil(count / page size) are then all handed out at once. If not, pages 2, 3, ... are
// handed out in a sliding window of `concurrency` until a page is known to be the last
// (`next_page: null`, or no `next_page` and fewer users than the page size, or no users);
// look-ahead pages past the last one are abandoned (cancelled) and discarded.
// Cursor mode walks `links.next` with one connection.
#include <utility>  // first: Boost 1.74's Asio coroutine headers use std::exchange without it

#include "tixport/index/email_index_client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <limits>
#include <thread>

#include "index/email_index_http_internal.hpp"
#include "index/email_index_page_parser_internal.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"

namespace tixport {

// ---------------------------------------------------------------------------------------
// The fetch

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;

constexpr unsigned kDefaultPageSize = 100;
constexpr std::uint64_t kMaxPages = 10'000'000;             // guards absurd `count` values
constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kReadBufferBytes = 64 * 1024;  // per connection; Beast reads at most 64 KiB at once
constexpr const char* kUserAgent = "tixport/0.1";
constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();

/// How one attempt at a page ended.
enum class attempt_kind {
  ok,           ///< 2xx with a usable body
  retry,        ///< transient: retried after a delay
  page_failed,  ///< this page cannot be had (4xx other than 401/403/408/429)
  fatal,        ///< the whole fetch stops (credentials refused, TLS verification failed)
  abandoned,    ///< the fetch stopped or no longer needs this page
};

struct attempt_outcome {
  attempt_kind kind = attempt_kind::ok;
  std::string error;                     ///< what went wrong (no URL, no credentials)
  std::optional<milliseconds> retry_after;  ///< from a 429 / 503
  detail::page_body body;                ///< when ok
};

std::string status_text(unsigned status) {
  std::string text = "HTTP " + std::to_string(status);
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  if (!reason.empty() && reason != "<unknown-status>") {
    text += ' ';
    text.append(reason.data(), reason.size());
  }
  return text;
}

std::string describe(std::string_view step, const error_code& ec, milliseconds timeout) {
  if (ec == beast::error::timeout) {
    return std::string(step) + ": timed out after " + std::to_string(timeout.count()) + " ms";
  }
  return std::string(step) + ": " + ec.message();
}

/// Errors that mean the server closed a kept-alive connection before reading our request.
bool is_stale_connection_error(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

void default_warn(std::string_view message) { std::cerr << "warning: " << message << '\n'; }

class fetch_session;

/// One connection and the coroutine that drives it.
class worker {
 public:
  worker(fetch_session& session, net::any_io_executor executor);

  /// Fetch offset pages until the scheduler has none left.
  net::awaitable<void> run_offset();
  /// Walk the cursor links (cursor mode has one worker).
  net::awaitable<void> run_cursor();
  /// Cancel whatever this worker waits for and drop its connection (io thread only).
  void interrupt();
  /// The offset page this worker is busy with, 0 when none.
  [[nodiscard]] std::uint64_t current_page() const noexcept { return current_page_; }

 private:
  /// Fetch one page with retries; `page` names it in messages.
  net::awaitable<attempt_outcome> fetch_page(std::uint64_t page, const std::string& target);
  /// One attempt: connect when needed, send, read, classify.
  net::awaitable<attempt_outcome> attempt(std::uint64_t page, const std::string& target);
  net::awaitable<error_code> connect(std::uint64_t page, std::string& step);
  template <class Stream>
  net::awaitable<error_code> exchange(Stream& stream, http::request<http::empty_body>& request,
                                      http::response_parser<http::string_body>& parser,
                                      std::string& step);
  net::awaitable<void> sleep(milliseconds delay);
  beast::tcp_stream& lowest();
  void close() noexcept;
  /// Whether the result of `page` is still wanted.
  [[nodiscard]] bool wanted(std::uint64_t page) const noexcept;

  fetch_session& session_;
  net::any_io_executor executor_;
  tcp::resolver resolver_;
  net::steady_timer timer_;     ///< backoff sleeps
  net::steady_timer deadline_;  ///< bounds name resolution
  std::optional<beast::tcp_stream> tcp_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
  bool open_ = false;
  std::uint64_t requests_on_connection_ = 0;
  std::uint64_t current_page_ = 0;
};

/// The shared state of one fetch. Lives on the io thread only.
class fetch_session {
 public:
  fetch_session(const fetch_options& options, net::io_context& io);
  fetch_session(const fetch_session&) = delete;
  fetch_session& operator=(const fetch_session&) = delete;

  /// Spawn the workers.
  void start();
  /// Stop everything (io thread); finish() then throws `message` with `code`.
  void fail(exit_code code, std::string message);
  /// Assemble the result once io.run() has returned; throws on failure.
  fetch_result finish();

 private:
  friend class worker;

  /// The next offset page to fetch, or nullopt when there is none (waits for page 1).
  net::awaitable<std::optional<std::uint64_t>> next_page();
  /// Record a fetched offset page and update the end of the index.
  void page_done(std::uint64_t page, detail::page_body body);
  /// Record a page that could not be fetched.
  void page_failed(std::uint64_t page, std::string message);
  /// Stop when a failed page is known to be part of the index.
  void evaluate();
  /// Pages above this are not handed out, and in-flight ones are abandoned.
  [[nodiscard]] std::uint64_t issue_limit() const noexcept;
  void shrink_limit();
  [[nodiscard]] std::string page_message(std::uint64_t page, std::string_view what) const;
  [[nodiscard]] unsigned page_size() const noexcept {
    return options_.page_size.value_or(kDefaultPageSize);
  }

  fetch_options options_;
  net::io_context& io_;
  detail::parsed_url url_;
  std::optional<ssl::context> ssl_context_;
  std::string authorization_;  ///< "Basic ..." or empty; never logged
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<worker>> workers_;
  net::steady_timer wake_;  ///< cancelled to wake workers waiting for page 1
  std::chrono::steady_clock::time_point started_;

  bool stopping_ = false;
  std::optional<std::pair<exit_code, std::string>> error_;

  // Offset scheduling.
  bool page1_issued_ = false;
  bool page1_done_ = false;
  std::uint64_t next_page_ = 2;
  std::uint64_t known_last_ = kNoLimit;  ///< last page of the index, once known
  bool count_mode_ = false;
  std::uint64_t first_failed_ = kNoLimit;
  std::string first_failure_;
  std::uint64_t contiguous_ok_ = 0;  ///< pages 1..contiguous_ok_ are fetched
  std::uint64_t pages_done_ = 0;
  std::optional<std::uint64_t> count_;
  std::vector<std::optional<std::vector<raw_index_entry>>> pages_;  ///< [page - 1]

  fetch_stats stats_;
};

// --- worker ---------------------------------------------------------------------------

worker::worker(fetch_session& session, net::any_io_executor executor)
    : session_(session),
      executor_(executor),
      resolver_(executor),
      timer_(executor),
      deadline_(executor) {
  // Beast reads max(512, free capacity) bytes per read_some: without room reserved, a big
  // body came in 512-byte reads (256 MiB took ~500,000 recvmsg calls and 25 s).
  buffer_.reserve(kReadBufferBytes);
}

beast::tcp_stream& worker::lowest() {
  return tls_ ? beast::get_lowest_layer(*tls_) : *tcp_;
}

void worker::close() noexcept {
  // Errors on close are of no interest: the connection is being dropped either way. No TLS
  // close_notify is sent; the next request opens a new connection.
  if (tls_) {
    error_code ignored;
    beast::get_lowest_layer(*tls_).socket().close(ignored);
  }
  if (tcp_) {
    error_code ignored;
    tcp_->socket().close(ignored);
  }
  open_ = false;
}

void worker::interrupt() {
  resolver_.cancel();
  deadline_.cancel();
  timer_.cancel();
  close();
}

bool worker::wanted(std::uint64_t page) const noexcept {
  return !session_.stopping_ && (page == 0 || page <= session_.issue_limit());
}

net::awaitable<void> worker::sleep(milliseconds delay) {
  timer_.expires_after(delay);
  error_code ec;
  co_await timer_.async_wait(net::redirect_error(net::use_awaitable, ec));
}

net::awaitable<error_code> worker::connect(std::uint64_t page, std::string& step) {
  const fetch_options& options = session_.options_;
  const detail::parsed_url& url = session_.url_;
  error_code ec;
  close();
  tcp_.reset();
  tls_.reset();
  buffer_.clear();
  requests_on_connection_ = 0;

  // The resolver has no timeout of its own: a timer cancels it. The flags are shared with
  // the timer's handler, which may run after this coroutine has moved on.
  step = "resolve";
  struct resolve_guard {
    bool done = false;
    bool timed_out = false;
  };
  auto guard = std::make_shared<resolve_guard>();
  deadline_.expires_after(options.timeout);
  deadline_.async_wait([this, guard](error_code wait_ec) {
    if (!wait_ec && !guard->done) {
      guard->timed_out = true;
      resolver_.cancel();
    }
  });
  const auto endpoints = co_await resolver_.async_resolve(
      url.host, std::to_string(url.port), net::redirect_error(net::use_awaitable, ec));
  guard->done = true;
  deadline_.cancel();
  if (guard->timed_out) co_return beast::error::timeout;
  if (ec) co_return ec;
  // An interrupt during the lookup found no socket to close: stop here instead.
  if (!wanted(page)) co_return net::error::operation_aborted;

  if (url.tls) {
    tls_.emplace(executor_, *session_.ssl_context_);
  } else {
    tcp_.emplace(executor_);
  }
  step = "connect";
  lowest().expires_after(options.timeout);
  co_await lowest().async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
  lowest().expires_never();
  if (ec) co_return ec;
  open_ = true;

  if (tls_) {
    step = "TLS handshake";
    error_code address_ec;
    net::ip::make_address(url.host, address_ec);
    // SNI carries host names only, never IP literals (RFC 6066 3).
    if (address_ec && !SSL_set_tlsext_host_name(tls_->native_handle(), url.host.c_str())) {
      co_return error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category());
    }
    if (!options.insecure) tls_->set_verify_callback(ssl::host_name_verification(url.host));
    lowest().expires_after(options.timeout);
    co_await tls_->async_handshake(ssl::stream_base::client,
                                   net::redirect_error(net::use_awaitable, ec));
    lowest().expires_never();
    if (ec) co_return ec;
  }
  co_return error_code{};
}

template <class Stream>
net::awaitable<error_code> worker::exchange(Stream& stream,
                                            http::request<http::empty_body>& request,
                                            http::response_parser<http::string_body>& parser,
                                            std::string& step) {
  const milliseconds timeout = session_.options_.timeout;
  error_code ec;
  step = "write";
  lowest().expires_after(timeout);
  co_await http::async_write(stream, request, net::redirect_error(net::use_awaitable, ec));
  if (!ec) {
    step = "read";
    lowest().expires_after(timeout);
    // The header on its own first: Beast 1.74's eager parse (what async_read does) drops the
    // body_limit error of a Content-Length over the limit when body bytes come in the same
    // read as the header, and then reads the whole body into memory (a 2 GiB answer took
    // 2 GiB and ran into the timeout). async_read_header stops at the header and reports it.
    co_await http::async_read_header(stream, buffer_, parser,
                                     net::redirect_error(net::use_awaitable, ec));
    if (!ec && !parser.is_done()) {
      co_await http::async_read(stream, buffer_, parser,
                                net::redirect_error(net::use_awaitable, ec));
    }
  }
  if (open_) lowest().expires_never();
  co_return ec;
}

net::awaitable<attempt_outcome> worker::attempt(std::uint64_t page, const std::string& target) {
  const fetch_options& options = session_.options_;
  std::string step;
  auto failure = [&](const error_code& ec) {
    attempt_outcome outcome;
    if (!wanted(page)) {
      outcome.kind = attempt_kind::abandoned;
      return outcome;
    }
    close();
    outcome.error = describe(step, ec, options.timeout);
    // A TLS protocol failure in the handshake (certificate not trusted, name mismatch, no
    // common protocol) does not heal by retrying.
    outcome.kind = step == "TLS handshake" && ec.category() == net::error::get_ssl_category()
                       ? attempt_kind::fatal
                       : attempt_kind::retry;
    if (outcome.kind == attempt_kind::fatal) {
      // "wrong version number": the first bytes back were no TLS record, typically a plain
      // HTTP answer ("HTTP/1.1 400") to our ClientHello. No CA fixes that.
      const bool plain_http = ERR_GET_LIB(static_cast<unsigned long>(ec.value())) == ERR_LIB_SSL &&
                              ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_WRONG_VERSION_NUMBER;
      outcome.error = "user index: " + outcome.error +
                      (plain_http ? ": the server does not speak TLS on this port (is the URL http://?)"
                       : options.ca_file ? ""
                                         : " (--ca-file adds a trusted CA)");
    }
    return outcome;
  };

  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, session_.url_.host_header());
  request.set(http::field::user_agent, kUserAgent);
  request.set(http::field::accept, "application/json");
  if (!session_.authorization_.empty()) {
    request.set(http::field::authorization, session_.authorization_);
  }
  request.keep_alive(true);

  std::optional<http::response_parser<http::string_body>> parser;
  // A kept-alive connection the server has closed meanwhile fails before any byte of a
  // response arrives. GET is idempotent: send once more on a fresh connection, without
  // counting a retry. Only once, so a server that always drops us still fails the attempt.
  for (int send = 0;; ++send) {
    if (!open_) {
      const error_code ec = co_await connect(page, step);
      if (ec) co_return failure(ec);
    }
    const bool reused = requests_on_connection_ > 0;
    ++requests_on_connection_;
    ++session_.stats_.requests;
    parser.emplace();
    parser->body_limit(detail::kMaxResponseBodyBytes);
    parser->header_limit(kMaxHeaderBytes);
    const error_code ec = tls_ ? co_await exchange(*tls_, request, *parser, step)
                               : co_await exchange(*tcp_, request, *parser, step);
    if (!ec) break;
    if (reused && send == 0 && !parser->got_some() && is_stale_connection_error(ec) &&
        wanted(page)) {
      close();
      continue;
    }
    co_return failure(ec);
  }

  if (!wanted(page)) co_return attempt_outcome{attempt_kind::abandoned, {}, {}, {}};
  if (!parser->keep_alive()) close();
  http::response<http::string_body> response = parser->release();
  const unsigned status = response.result_int();
  attempt_outcome outcome;
  if (status >= 200 && status < 300) {
    session_.stats_.bytes += response.body().size();
    if (auto problem = detail::parse_page_body(response.body(), outcome.body)) {
      outcome.kind = attempt_kind::retry;
      outcome.error = "bad body: " + *problem;
    }
    co_return outcome;
  }
  outcome.error = status_text(status);
  if (status == 401 || status == 403) {
    outcome.kind = attempt_kind::fatal;
    outcome.error = "user index: the server refused the credentials (" + outcome.error + ")";
    if (!options.credentials) {
      outcome.error +=
          "; none were given: set TIXPORT_API_USER and TIXPORT_API_TOKEN, or use --auth-file";
    }
  } else if (status == 429 || status == 503) {
    outcome.kind = attempt_kind::retry;
    const auto header = response.find(http::field::retry_after);
    if (header != response.end()) {
      const auto value = header->value();
      outcome.retry_after = detail::parse_retry_after(std::string_view(value.data(), value.size()),
                                                      std::chrono::system_clock::now());
    }
  } else if (status == 408 || status >= 500) {
    outcome.kind = attempt_kind::retry;
  } else {
    outcome.kind = attempt_kind::page_failed;
    if (status >= 300 && status < 400) {
      outcome.error += " (redirects are not followed";
      const auto location = response.find(http::field::location);
      if (location != response.end()) {
        outcome.error += "; Location: " + redact_url(std::string_view(location->value().data(),
                                                                      location->value().size()));
      }
      outcome.error += ')';
    }
    if (status == 400 && page > 1 && options.pagination == pagination_mode::offset) {
      outcome.error +=
          "; the API may cap page numbers (Zendesk answers 400 past 10,000 records): "
          "try --pagination cursor";
    }
  }
  co_return outcome;
}

net::awaitable<attempt_outcome> worker::fetch_page(std::uint64_t page,
                                                   const std::string& target) {
  const fetch_options& options = session_.options_;
  attempt_outcome outcome;
  for (unsigned attempt_idx = 0;; ++attempt_idx) {
    outcome = co_await attempt(page, target);
    if (outcome.kind != attempt_kind::retry) co_return outcome;
    if (attempt_idx >= options.retries) break;
    milliseconds delay =
        detail::backoff_delay(attempt_idx + 1, options.backoff_base, options.backoff_cap,
                              session_.rng_);
    if (outcome.retry_after) delay = std::min(*outcome.retry_after, options.retry_after_cap);
    ++session_.stats_.retries;
    if (options.progress) {
      options.progress(fetch_progress{session_.pages_done_, 0, session_.stats_.retries, delay,
                                      outcome.retry_after.has_value()});
    }
    co_await sleep(delay);
    if (!wanted(page)) co_return attempt_outcome{attempt_kind::abandoned, {}, {}, {}};
  }
  outcome.kind = attempt_kind::page_failed;
  outcome.error += " (failed " + std::to_string(options.retries + 1) +
                   (options.retries == 0 ? " attempt)" : " attempts)");
  co_return outcome;
}

net::awaitable<void> worker::run_offset() {
  for (;;) {
    const std::optional<std::uint64_t> page = co_await session_.next_page();
    if (!page) co_return;
    current_page_ = *page;
    const std::string target =
        detail::offset_page_target(session_.url_, *page, session_.options_.page_size);
    attempt_outcome outcome = co_await fetch_page(*page, target);
    current_page_ = 0;
    switch (outcome.kind) {
      case attempt_kind::ok:
        session_.page_done(*page, std::move(outcome.body));
        break;
      case attempt_kind::page_failed:
        session_.page_failed(*page, std::move(outcome.error));
        break;
      case attempt_kind::fatal:
        session_.fail(exit_code::user_index_error, std::move(outcome.error));
        break;
      case attempt_kind::retry:
      case attempt_kind::abandoned:
        break;
    }
  }
}

net::awaitable<void> worker::run_cursor() {
  const unsigned page_size = session_.page_size();
  std::string target = detail::cursor_first_target(session_.url_, page_size);
  for (std::uint64_t page = 1;; ++page) {
    attempt_outcome outcome = co_await fetch_page(page, target);
    if (outcome.kind == attempt_kind::abandoned) co_return;
    if (outcome.kind != attempt_kind::ok) {
      session_.fail(exit_code::user_index_error,
                    outcome.kind == attempt_kind::fatal ? std::move(outcome.error)
                                                        : session_.page_message(page, outcome.error));
      co_return;
    }
    const bool has_more = outcome.body.has_more;
    std::optional<std::string> next = std::move(outcome.body.links_next);
    session_.stats_.users += outcome.body.users.size();
    session_.pages_.emplace_back(std::move(outcome.body.users));
    ++session_.pages_done_;
    if (session_.options_.progress) {
      session_.options_.progress(fetch_progress{session_.pages_done_, 0, session_.stats_.retries, {}, false});
    }
    if (!has_more) co_return;
    if (!next) {
      session_.fail(exit_code::user_index_error,
                    session_.page_message(page, "meta.has_more is true but links.next is missing"));
      co_return;
    }
    auto resolved = detail::resolve_link(session_.url_, *next);
    if (const auto* problem = std::get_if<detail::url_error>(&resolved)) {
      session_.fail(exit_code::user_index_error,
                    session_.page_message(page, "links.next is not usable: " + problem->what));
      co_return;
    }
    const auto& next_url = std::get<detail::parsed_url>(resolved);
    // Credentials go to the users URL's origin only.
    if (!next_url.same_origin(session_.url_)) {
      session_.fail(exit_code::user_index_error,
                    session_.page_message(page, "links.next " + redact_url(*next) +
                                                    " points to another host or scheme; not followed"));
      co_return;
    }
    if (next_url.target == target) {
      session_.fail(exit_code::user_index_error,
                    session_.page_message(page, "links.next repeats the page just fetched"));
      co_return;
    }
    if (page >= kMaxPages) {
      session_.fail(exit_code::user_index_error,
                    session_.page_message(page, "more than 10,000,000 cursor pages"));
      co_return;
    }
    target = next_url.target;
  }
}

// --- session --------------------------------------------------------------------------

fetch_session::fetch_session(const fetch_options& options, net::io_context& io)
    : options_(options), io_(io), wake_(io) {
  if (!options_.warn) options_.warn = default_warn;
  auto parsed = detail::parse_url(options_.users_url);
  if (const auto* problem = std::get_if<detail::url_error>(&parsed)) {
    throw fatal_error(exit_code::user_index_error,
                      "user index: --users-url " + redact_url(options_.users_url) + ": " + problem->what);
  }
  url_ = std::get<detail::parsed_url>(std::move(parsed));
  if (options_.concurrency == 0) {
    throw fatal_error(exit_code::user_index_error, "user index: --concurrency must be at least 1");
  }
  if (options_.page_size && *options_.page_size == 0) {
    throw fatal_error(exit_code::user_index_error, "user index: --page-size must be at least 1");
  }
  if (options_.credentials) {
    authorization_ = "Basic " + detail::base64_encode(options_.credentials->user + ":" +
                                                      options_.credentials->secret);
  }
  if (url_.tls) {
    ssl_context_.emplace(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ssl_context_->native_handle(), TLS1_2_VERSION);
    error_code ec;
    ssl_context_->set_default_verify_paths(ec);
    if (ec) {
      throw fatal_error(exit_code::user_index_error,
                        "user index: TLS: cannot load the system CAs: " + ec.message());
    }
    if (options_.ca_file) {
      ssl_context_->load_verify_file(options_.ca_file->string(), ec);
      if (ec) {
        throw fatal_error(exit_code::user_index_error,
                          "user index: --ca-file " + options_.ca_file->string() + ": " +
                              ec.message());
      }
    }
    ssl_context_->set_verify_mode(options_.insecure ? ssl::verify_none : ssl::verify_peer);
    if (options_.insecure) {
      options_.warn("user index: --insecure: the server's TLS certificate is not verified");
    }
  }
  rng_.seed(options_.jitter_seed ? *options_.jitter_seed : std::random_device{}());
}

void fetch_session::start() {
  started_ = std::chrono::steady_clock::now();
  const unsigned count =
      options_.pagination == pagination_mode::cursor ? 1U : options_.concurrency;
  for (unsigned i = 0; i < count; ++i) {
    workers_.push_back(std::make_unique<worker>(*this, io_.get_executor()));
  }
  for (auto& w : workers_) {
    auto body = options_.pagination == pagination_mode::cursor ? w->run_cursor() : w->run_offset();
    net::co_spawn(io_, std::move(body), [this](std::exception_ptr error) {
      if (!error) return;
      try {
        std::rethrow_exception(error);
      } catch (const fatal_error& e) {
        fail(e.code(), e.what());
      } catch (const std::exception& e) {
        fail(exit_code::user_index_error, std::string("user index: ") + e.what());
      }
    });
  }
}

void fetch_session::fail(exit_code code, std::string message) {
  if (!error_) error_.emplace(code, std::move(message));
  if (stopping_) return;
  stopping_ = true;
  wake_.cancel();
  for (auto& w : workers_) w->interrupt();
}

std::string fetch_session::page_message(std::uint64_t page, std::string_view what) const {
  return "user index: page " + std::to_string(page) + ": " + std::string(what);
}

std::uint64_t fetch_session::issue_limit() const noexcept {
  return std::min(known_last_, first_failed_ == kNoLimit ? kNoLimit : first_failed_ - 1);
}

void fetch_session::shrink_limit() {
  const std::uint64_t limit = issue_limit();
  for (auto& w : workers_) {
    if (w->current_page() > limit) w->interrupt();
  }
}

net::awaitable<std::optional<std::uint64_t>> fetch_session::next_page() {
  for (;;) {
    if (stopping_) co_return std::nullopt;
    if (!page1_issued_) {
      page1_issued_ = true;
      co_return 1;
    }
    if (!page1_done_) {
      // Page 1 decides between "all pages at once" (count) and the sliding window.
      error_code ec;
      co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
      continue;
    }
    if (next_page_ <= issue_limit()) co_return next_page_++;
    co_return std::nullopt;
  }
}

void fetch_session::page_done(std::uint64_t page, detail::page_body body) {
  if (stopping_ || page > issue_limit()) return;
  const std::size_t users = body.users.size();
  if (page == 1) {
    page1_done_ = true;
    if (body.count) {
      count_mode_ = true;
      count_ = body.count;
      std::uint64_t per_page = page_size();
      // A server that ignores per_page (or whose default is not 100) shows its real page
      // size on page 1; paging by the size asked for would silently skip users.
      if (*body.count > users && users != per_page && users > 0) {
        options_.warn("user index: page 1 holds " + std::to_string(users) + " users, not " +
                      std::to_string(per_page) + "; paging by " + std::to_string(users));
        per_page = users;
      }
      if (*body.count > users && users == 0) {
        fail(exit_code::user_index_error,
             page_message(1, "no users, but count is " + std::to_string(*body.count)));
        return;
      }
      const std::uint64_t total = std::max<std::uint64_t>(1, (*body.count + per_page - 1) / per_page);
      if (total > kMaxPages) {
        fail(exit_code::user_index_error,
             page_message(1, "count " + std::to_string(*body.count) + " means too many pages"));
        return;
      }
      known_last_ = total;
    }
    wake_.cancel();
  }
  if (!count_mode_) {
    // Offset paging without a count: the page is the last when it says next_page: null, or
    // has no next_page and is short, or is empty. A next_page URL outranks a short page.
    bool last = users == 0;
    if (body.next_page == detail::page_body::next_kind::null) last = true;
    if (body.next_page == detail::page_body::next_kind::absent && users < page_size()) last = true;
    if (last && page < known_last_) known_last_ = page;
  }
  if (pages_.size() < page) pages_.resize(page);
  stats_.users += users;
  pages_[page - 1] = std::move(body.users);
  ++pages_done_;
  if (options_.progress) {
    options_.progress(
        fetch_progress{pages_done_, known_last_ != kNoLimit ? known_last_ : 0, stats_.retries, {}, false});
  }
  shrink_limit();
  evaluate();
}

void fetch_session::page_failed(std::uint64_t page, std::string message) {
  if (stopping_ || page > issue_limit()) return;
  if (page == 1) page1_done_ = true;
  if (page < first_failed_) {
    first_failed_ = page;
    first_failure_ = page_message(page, message);
  }
  shrink_limit();
  evaluate();
}

void fetch_session::evaluate() {
  if (stopping_) return;
  while (contiguous_ok_ < pages_.size() && pages_[contiguous_ok_]) ++contiguous_ok_;
  if (first_failed_ == kNoLimit) return;
  // A failed page belongs to the index (and the fetch stops):
  //  1. with `count`, when it is not past the last page, which is then exact;
  //  2. without, when every page before it is in and none of them was the last. A last
  //     page seen further on only bounds the index: a page below may still end it.
  const bool before_last = first_failed_ <= known_last_;
  const bool part_of_index =
      count_mode_ ? before_last : before_last && contiguous_ok_ + 1 >= first_failed_;
  if (part_of_index) fail(exit_code::user_index_error, first_failure_);
}

fetch_result fetch_session::finish() {
  if (error_) throw fatal_error(error_->first, error_->second);
  fetch_result result;
  std::uint64_t last = 0;
  if (options_.pagination == pagination_mode::cursor) {
    last = pages_.size();
  } else {
    if (known_last_ == kNoLimit) {
      throw fatal_error(exit_code::user_index_error,
                        "user index: the fetch ended before the last page was known");
    }
    last = known_last_;
    if (pages_.size() < last) pages_.resize(last);
  }
  std::size_t total = 0;
  for (std::uint64_t i = 0; i < last; ++i) {
    if (!pages_[i]) {
      throw fatal_error(exit_code::user_index_error,
                        page_message(i + 1, "missing after the fetch ended"));
    }
    total += pages_[i]->size();
  }
  result.entries.reserve(total);
  for (std::uint64_t i = 0; i < last; ++i) {
    std::move(pages_[i]->begin(), pages_[i]->end(), std::back_inserter(result.entries));
  }
  if (count_ && *count_ != total) {
    options_.warn("user index: page 1 said count " + std::to_string(*count_) + ", the pages held " +
                  std::to_string(total) + " users (the index changed during the fetch?)");
  }
  stats_.pages = last;
  stats_.users = total;
  stats_.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  result.stats = stats_;
  return result;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// user_index_fetch

struct user_index_fetch::state {
  net::io_context io{1};
  std::optional<fetch_session> session;
  std::thread thread;
  std::optional<fetch_result> result;
  std::exception_ptr error;
  bool taken = false;
  std::atomic<bool> finished{false};  ///< set by the thread as its last step
};

user_index_fetch::user_index_fetch(fetch_options options) : state_(std::make_unique<state>()) {
  state_->session.emplace(options, state_->io);
  state_->session->start();
  state* s = state_.get();
  s->thread = std::thread([s] {
    try {
      s->io.run();
      s->result = s->session->finish();
    } catch (...) {
      s->error = std::current_exception();
    }
    s->finished.store(true, std::memory_order_release);
  });
}

user_index_fetch::~user_index_fetch() {
  if (!state_) return;
  cancel();
  if (state_->thread.joinable()) state_->thread.join();
}

void user_index_fetch::cancel() noexcept {
  state* s = state_.get();
  // post() is thread-safe; if run() has already returned, the handler is never called.
  net::post(s->io, [s] {
    s->session->fail(exit_code::interrupted, "user index: the fetch was cancelled");
  });
}

fetch_result user_index_fetch::get() {
  // Wait in short steps so that SIGINT / SIGTERM (interrupt_guard's flag) cancels a fetch
  // that would otherwise go on through its timeouts and retries for minutes: `fetch-users`
  // has no other way to stop. The cancel makes the result fatal_error(interrupted).
  constexpr auto kInterruptPoll = std::chrono::milliseconds(20);
  bool cancelled = false;
  while (!state_->finished.load(std::memory_order_acquire)) {
    if (!cancelled && interrupt_requested()) {
      cancel();
      cancelled = true;
    }
    std::this_thread::sleep_for(kInterruptPoll);
  }
  if (state_->thread.joinable()) state_->thread.join();
  if (state_->taken) {
    throw fatal_error(exit_code::user_index_error, "user index: the result was already taken");
  }
  state_->taken = true;
  if (state_->error) std::rethrow_exception(state_->error);
  return std::move(*state_->result);
}

fetch_result fetch_user_index(const fetch_options& options) {
  user_index_fetch fetch(options);
  return fetch.get();
}

}  // namespace tixport

