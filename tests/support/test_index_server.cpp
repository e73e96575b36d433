// File: test_index_server.cpp
//
// The in-process HTTP/1.1 test server declared in tests/support/test_index_server.hpp: Boost.Beast
// over C++20 coroutines on its own io_context thread, with the faults of index_server_config.
// Compiled once into tixport_tests (and tixport_bench) instead of in every test that uses it.
//
//   tixport::test::index_server server(config);   // listening on 127.0.0.1, its own thread
//   options.users_url = server.url();
#include <utility>  // first: Boost 1.74's Asio coroutine headers use std::exchange without it

#include "test_index_server.hpp"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tixport::test {

/// Self-signed certificate and key (PEM) for `subject_alt_names`.
std::pair<std::string, std::string> make_self_signed_certificate(
    const std::string& subject_alt_names) {
  auto fail = [](const char* what) { throw std::runtime_error(std::string("test cert: ") + what); };
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) fail("key generation");
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string common_name = "tixport test server";
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  const std::pair<int, std::string> extensions[] = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,digitalSignature,keyCertSign"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_subject_alt_name, subject_alt_names},
  };
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) fail("extension");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) fail("sign");
  auto to_pem = [&](auto write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!write(bio.get())) fail("PEM");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
  };
  std::string cert_pem = to_pem([&](BIO* bio) { return PEM_write_bio_X509(bio, cert.get()) == 1; });
  std::string key_pem = to_pem([&](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  });
  return {std::move(cert_pem), std::move(key_pem)};
}

// Everything of the server: the acceptor, the io_context and its thread, the counters.
class index_server::impl {
 public:
  explicit impl(index_server_config config)
      : config_(std::move(config)), rng_(config_.seed) {
    namespace net = boost::asio;
    if (config_.tls) {
      temp_dir_ = std::filesystem::temp_directory_path() /
                  ("tixport_test_server_" + std::to_string(::getpid()) + "_" +
                   std::to_string(reinterpret_cast<std::uintptr_t>(this)));
      std::filesystem::create_directories(temp_dir_);
      const auto [cert_pem, key_pem] = make_self_signed_certificate(config_.tls_subject_alt_names);
      ca_file_ = temp_dir_ / "ca.pem";
      std::ofstream(ca_file_) << cert_pem;
      ssl_context_.emplace(net::ssl::context::tls_server);
      ssl_context_->use_certificate_chain(net::buffer(cert_pem));
      ssl_context_->use_private_key(net::buffer(key_pem), net::ssl::context::pem);
    }
    const net::ip::tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), config_.port);
    acceptor_.open(endpoint.protocol());
    // Not inherited by the CLI children the tests start: a child holding the listening
    // socket keeps it listening after the server "dies" (connections then queue unanswered
    // until a client timeout: a timer race), and one holding a connection keeps it open
    // after the server closed it.
    set_cloexec(acceptor_.native_handle());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
    port_ = acceptor_.local_endpoint().port();
    net::co_spawn(io_, accept_loop(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~impl() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
    if (!temp_dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(temp_dir_, ignored);
    }
  }

  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  /// The users URL of this server, `host` as given (127.0.0.1 or localhost).
  [[nodiscard]] std::string url(const std::string& host = "127.0.0.1",
                                const std::string& path = "/api/v2/users.json") const {
    return std::string(config_.tls ? "https://" : "http://") + host + ":" +
           std::to_string(port_) + path;
  }
  /// The PEM file of the self-signed certificate (TLS only).
  [[nodiscard]] std::filesystem::path ca_file() const { return ca_file_; }

  [[nodiscard]] std::map<std::uint64_t, unsigned> requests_per_page() const {
    std::lock_guard lock(mutex_);
    return requests_per_page_;
  }
  [[nodiscard]] unsigned requests(std::uint64_t page) const {
    std::lock_guard lock(mutex_);
    const auto it = requests_per_page_.find(page);
    return it == requests_per_page_.end() ? 0 : it->second;
  }
  [[nodiscard]] unsigned total_requests() const {
    std::lock_guard lock(mutex_);
    return total_requests_;
  }
  [[nodiscard]] unsigned connections() const {
    std::lock_guard lock(mutex_);
    return connections_;
  }
  [[nodiscard]] unsigned peak_in_flight() const {
    std::lock_guard lock(mutex_);
    return peak_in_flight_;
  }
  [[nodiscard]] std::vector<std::string> targets() const {
    std::lock_guard lock(mutex_);
    return targets_;
  }
  [[nodiscard]] std::vector<std::string> authorizations() const {
    std::lock_guard lock(mutex_);
    return authorizations_;
  }
  /// Body bytes written by the huge_* answers so far (all connections).
  [[nodiscard]] std::uint64_t huge_bytes_sent() const {
    std::lock_guard lock(mutex_);
    return huge_bytes_sent_;
  }
  /// True once die_after_requests has been reached.
  [[nodiscard]] bool dead() const {
    std::lock_guard lock(mutex_);
    return dead_;
  }
  [[nodiscard]] std::vector<std::uint64_t> expired_holds() const {
    std::lock_guard lock(mutex_);
    return expired_holds_;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;

  static void set_cloexec(int fd) { ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC); }

  /// What to answer one request with.
  struct plan {
    fault kind = fault::none;        ///< how to answer
    std::uint64_t page = 0;          ///< the page asked for
    std::string body;                ///< the page's JSON
    std::chrono::milliseconds delay{0};  ///< wait before answering
  };

  boost::asio::awaitable<void> accept_loop() {
    namespace net = boost::asio;
    for (;;) {
      error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return;
      set_cloexec(socket.native_handle());
      {
        std::lock_guard lock(mutex_);
        ++connections_;
      }
      if (ssl_context_) {
        net::co_spawn(io_, serve_tls(std::move(socket)), net::detached);
      } else {
        net::co_spawn(io_, serve_plain(std::move(socket)), net::detached);
      }
    }
  }

  boost::asio::awaitable<void> serve_plain(tcp::socket socket) {
    boost::beast::tcp_stream stream(std::move(socket));
    co_await serve(stream);
  }

  boost::asio::awaitable<void> serve_tls(tcp::socket socket) {
    namespace net = boost::asio;
    boost::beast::ssl_stream<boost::beast::tcp_stream> stream(std::move(socket), *ssl_context_);
    error_code ec;
    co_await stream.async_handshake(net::ssl::stream_base::server,
                                    net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;
    co_await serve(stream);
  }

  template <class Stream>
  boost::asio::awaitable<void> serve(Stream& stream) {
    namespace net = boost::asio;
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    net::steady_timer timer(co_await net::this_coro::executor);
    auto close = [&] {
      error_code ignored;
      boost::beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
      boost::beast::get_lowest_layer(stream).socket().close(ignored);
    };
    for (;;) {
      error_code ec;
      http::request<http::string_body> request;
      co_await http::async_read(stream, buffer, request, net::redirect_error(net::use_awaitable, ec));
      if (ec && ec.category() == http::make_error_code(http::error::bad_method).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        // Bytes that are no HTTP request (e.g. a TLS ClientHello): 400 and close, as nginx does.
        static constexpr std::string_view kBadRequest =
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        co_await net::async_write(stream, net::buffer(kBadRequest.data(), kBadRequest.size()),
                                  net::redirect_error(net::use_awaitable, ec));
        close();
        co_return;
      }
      if (ec) co_return;
      enter();
      const plan answer = decide(request);
      die_if_due();
      co_await hold(answer.page, timer);
      if (answer.delay.count() > 0) {
        timer.expires_after(answer.delay);
        co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      }
      const bool keep_alive = request.keep_alive() && !config_.close_after_each_response;
      if (is_dead()) {
        // A dead server answers nothing, even a request it had begun to wait on.
        leave(answer.page);
        close();
        co_return;
      }
      switch (answer.kind) {
        case fault::close_without_response:
          leave(answer.page);
          close();
          co_return;
        case fault::reset_connection: {
          // Linger 0 makes close() send RST instead of FIN: the client sees ECONNRESET.
          error_code ignored;
          auto& socket = boost::beast::get_lowest_layer(stream).socket();
          socket.set_option(tcp::socket::linger(true, 0), ignored);
          socket.close(ignored);
          leave(answer.page);
          co_return;
        }
        case fault::huge_body:
        case fault::huge_chunked_body:
        case fault::huge_close_delimited_body:
          co_await send_huge_body(stream, answer.kind, timer);
          leave(answer.page);
          close();
          co_return;
        case fault::truncated_body:
        case fault::stall_after_headers: {
          std::string raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(answer.body.size()) + "\r\n\r\n";
          if (answer.kind == fault::truncated_body) raw += answer.body.substr(0, answer.body.size() / 2);
          co_await net::async_write(stream, net::buffer(raw), net::redirect_error(net::use_awaitable, ec));
          if (!ec && answer.kind == fault::stall_after_headers) {
            if (config_.stall) {
              timer.expires_after(*config_.stall);
            } else {
              timer.expires_at(net::steady_timer::time_point::max());  // until the server ends
            }
            co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
          }
          leave(answer.page);
          close();
          co_return;
        }
        default:
          break;
      }
      http::response<http::string_body> response{status_of(answer.kind), request.version()};
      response.set(http::field::server, "tixport-test-index");
      if (answer.kind == fault::http_429 || answer.kind == fault::http_503) {
        if (!config_.retry_after.empty()) response.set(http::field::retry_after, config_.retry_after);
      }
      if (answer.kind == fault::none || answer.kind == fault::bad_json) {
        response.set(http::field::content_type, "application/json");
        response.body() = answer.kind == fault::bad_json ? answer.body.substr(0, answer.body.size() / 2)
                                                         : answer.body;
      } else {
        response.set(http::field::content_type, "text/plain");
        response.body() = "fault\n";
      }
      response.keep_alive(keep_alive);
      response.prepare_payload();
      co_await http::async_write(stream, response, net::redirect_error(net::use_awaitable, ec));
      leave(answer.page);
      if (ec || !keep_alive) {
        close();
        co_return;
      }
    }
  }

  /// Stream config_.huge_body_bytes of a syntactically plausible JSON body (`{"users":[`
  /// and then blanks) in 1 MiB writes, with Content-Length (huge_body), chunked
  /// (huge_chunked_body) or with neither, ended by closing the connection
  /// (huge_close_delimited_body), until all is sent or a write fails because the client gave
  /// up. Never holds more than one MiB.
  template <class Stream>
  boost::asio::awaitable<void> send_huge_body(Stream& stream, fault kind, boost::asio::steady_timer& timer) {
    namespace net = boost::asio;
    constexpr std::size_t kPiece = std::size_t{1} << 20;
    const std::uint64_t total = config_.huge_body_bytes;
    const bool chunked = kind == fault::huge_chunked_body;
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
    if (chunked) {
      head += "Transfer-Encoding: chunked\r\n\r\n";
    } else if (kind == fault::huge_close_delimited_body) {
      head += "Connection: close\r\n\r\n";
    } else {
      head += "Content-Length: " + std::to_string(total) + "\r\n\r\n";
    }
    error_code ec;
    co_await net::async_write(stream, net::buffer(head), net::redirect_error(net::use_awaitable, ec));
    std::string piece(kPiece, ' ');
    const std::string opening = "{\"users\":[";
    std::uint64_t sent = 0;
    const std::uint64_t stop = std::min(total, config_.huge_body_hold_after.value_or(total));
    while (!ec && sent < stop) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kPiece, stop - sent));
      std::string data = sent == 0 ? opening + piece.substr(0, n - std::min(n, opening.size()))
                                   : piece.substr(0, n);
      data.resize(n);
      if (chunked) {
        char size_line[32];
        std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
        data = size_line + data + "\r\n";
      }
      co_await net::async_write(stream, net::buffer(data), net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
      sent += n;
      std::lock_guard lock(mutex_);
      huge_bytes_sent_ += n;
    }
    if (!ec && sent < total) {
      // Held: silent, the connection open, until the server ends.
      timer.expires_at(net::steady_timer::time_point::max());
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      co_return;
    }
    if (!ec && chunked) {
      const std::string last = "0\r\n\r\n";
      co_await net::async_write(stream, net::buffer(last), net::redirect_error(net::use_awaitable, ec));
    }
  }

  bool is_dead() const {
    std::lock_guard lock(mutex_);
    return dead_;
  }

  /// Past die_after_requests: stop listening so new connections are refused.
  void die_if_due() {
    bool close_now = false;
    {
      std::lock_guard lock(mutex_);
      if (config_.die_after_requests > 0 && !dead_ && total_requests_ > config_.die_after_requests) {
        dead_ = true;
        close_now = true;
      }
    }
    if (close_now) {
      error_code ignored;
      acceptor_.close(ignored);  // on the server's own thread: the acceptor is not shared
    }
  }

  static boost::beast::http::status status_of(fault kind) {
    using boost::beast::http::status;
    switch (kind) {
      case fault::http_500: return status::internal_server_error;
      case fault::http_503: return status::service_unavailable;
      case fault::http_429: return status::too_many_requests;
      case fault::http_401: return status::unauthorized;
      case fault::http_403: return status::forbidden;
      case fault::http_400: return status::bad_request;
      case fault::http_404: return status::not_found;
      default: return status::ok;
    }
  }

  void enter() {
    std::lock_guard lock(mutex_);
    ++in_flight_;
    peak_in_flight_ = std::max(peak_in_flight_, in_flight_);
  }
  void leave(std::uint64_t page) {
    std::lock_guard lock(mutex_);
    --in_flight_;
    answered_.insert(page);
  }

  /// Wait while config_.hold_until_in_flight or config_.hold_page_until_answered hold `page`
  /// back, for config_.max_hold at most (then the page is listed in expired_holds_). Polls:
  /// the outcome is what matters, never how soon the poll sees it.
  boost::asio::awaitable<void> hold(std::uint64_t page, boost::asio::steady_timer& timer) {
    namespace net = boost::asio;
    constexpr auto kPoll = std::chrono::milliseconds(2);
    const auto held = [&] {
      std::lock_guard lock(mutex_);
      if (config_.hold_until_in_flight > 0 && page > 1 && peak_in_flight_ < config_.hold_until_in_flight) {
        return true;
      }
      const auto after = config_.hold_page_until_answered.find(page);
      if (after == config_.hold_page_until_answered.end()) return false;
      return std::any_of(after->second.begin(), after->second.end(),
                         [&](std::uint64_t other) { return !answered_.contains(other); });
    };
    const auto give_up = std::chrono::steady_clock::now() + config_.max_hold;
    while (held()) {
      if (std::chrono::steady_clock::now() >= give_up) {
        std::lock_guard lock(mutex_);
        expired_holds_.push_back(page);
        co_return;
      }
      error_code ec;
      timer.expires_after(kPoll);
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
  }

  static std::string percent_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size()) {
        out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  }

  static std::map<std::string, std::string> query_of(std::string_view target) {
    std::map<std::string, std::string> params;
    const std::size_t question = target.find('?');
    if (question == std::string_view::npos) return params;
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      const std::size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      const std::size_t eq = pair.find('=');
      params[percent_decode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
    return params;
  }

  std::string user_json(std::uint64_t index) const {
    if (config_.raw_users) return (*config_.raw_users)[index];
    return "{\"id\":" + std::to_string(test_user_id(index)) + ",\"name\":\"User " +
           std::to_string(index) + "\",\"email\":\"" + test_user_email(index) +
           "\",\"role\":\"end-user\"}";
  }

  std::uint64_t user_count() const {
    return config_.raw_users ? config_.raw_users->size() : config_.users;
  }

  plan decide(const boost::beast::http::request<boost::beast::http::string_body>& request) {
    namespace http = boost::beast::http;
    const std::string target(request.target());
    const auto params = query_of(target);
    const std::string path = target.substr(0, target.find('?'));
    const bool cursor = params.count("page[size]") > 0;
    std::uint64_t page_size = config_.default_page_size;
    std::uint64_t page = 1;
    std::uint64_t first = 0;
    if (cursor) {
      page_size = std::stoull(params.at("page[size]"));
      first = params.count("page[after]") ? std::stoull(params.at("page[after]")) : 0;
      page = first / page_size + 1;
    } else {
      if (params.count("per_page")) page_size = std::stoull(params.at("per_page"));
      if (params.count("page")) page = std::stoull(params.at("page"));
      first = (page - 1) * page_size;
    }

    plan answer;
    answer.page = page;
    answer.delay = config_.latency;
    if (const auto extra = config_.page_latency.find(page); extra != config_.page_latency.end()) {
      answer.delay += extra->second;
    }
    unsigned attempt = 0;
    {
      std::lock_guard lock(mutex_);
      ++total_requests_;
      attempt = ++requests_per_page_[page];
      targets_.push_back(target);
      const auto auth = request.find(http::field::authorization);
      authorizations_.push_back(auth == request.end() ? "" : std::string(auth->value()));
      const auto faults = config_.page_faults.find(page);
      if (config_.expected_authorization &&
          (auth == request.end() || auth->value() != *config_.expected_authorization)) {
        answer.kind = fault::http_401;
      } else if (faults != config_.page_faults.end() && attempt <= faults->second.size()) {
        answer.kind = faults->second[attempt - 1];
      } else if (config_.every_nth_429 > 0 && total_requests_ % config_.every_nth_429 == 0) {
        answer.kind = fault::http_429;
      } else if (config_.error_500_rate > 0 &&
                 std::uniform_real_distribution<double>(0, 1)(rng_) < config_.error_500_rate) {
        answer.kind = fault::http_500;
      } else if (!cursor && config_.max_offset_page > 0 && page > config_.max_offset_page) {
        answer.kind = fault::http_400;
      }
    }

    const std::uint64_t total = user_count();
    const std::uint64_t end = std::min(total, first + page_size);
    std::string body = "{\"users\":[";
    for (std::uint64_t i = first; i < end; ++i) {
      if (i > first) body += ',';
      body += user_json(i);
    }
    body += ']';
    const bool more = end < total;
    const std::string base = std::string(config_.tls ? "https://" : "http://") + "127.0.0.1:" +
                             std::to_string(port_) + path;
    if (cursor) {
      body += ",\"meta\":{\"has_more\":" + std::string(more ? "true" : "false") +
              ",\"after_cursor\":\"" + std::to_string(end) + "\"},\"links\":{\"next\":";
      body += more ? "\"" + base + "?page[size]=" + std::to_string(page_size) +
                         "&page[after]=" + std::to_string(end) + "\""
                   : "null";
      body += "}";
    } else {
      if (config_.send_count) body += ",\"count\":" + std::to_string(total);
      if (config_.send_next_page) {
        body += ",\"next_page\":";
        body += more ? "\"" + base + "?page=" + std::to_string(page + 1) + "\"" : "null";
      }
    }
    body += '}';
    answer.body = std::move(body);
    return answer;
  }

  index_server_config config_;
  std::filesystem::path temp_dir_;
  std::filesystem::path ca_file_;
  boost::asio::io_context io_{1};
  std::optional<boost::asio::ssl::context> ssl_context_;
  tcp::acceptor acceptor_{io_};
  std::uint16_t port_ = 0;
  std::thread thread_;

  mutable std::mutex mutex_;
  std::mt19937_64 rng_;
  std::map<std::uint64_t, unsigned> requests_per_page_;
  std::vector<std::string> targets_;
  std::vector<std::string> authorizations_;
  unsigned total_requests_ = 0;
  unsigned connections_ = 0;
  unsigned in_flight_ = 0;
  unsigned peak_in_flight_ = 0;
  std::uint64_t huge_bytes_sent_ = 0;
  std::set<std::uint64_t> answered_;  ///< pages answered at least once (any answer)
  std::vector<std::uint64_t> expired_holds_;  ///< pages let go after config_.max_hold
  bool dead_ = false;
};


index_server::index_server(index_server_config config) : impl_(std::make_unique<impl>(std::move(config))) {}
index_server::~index_server() = default;

std::uint16_t index_server::port() const { return impl_->port(); }
std::string index_server::url(const std::string& host, const std::string& path) const {
  return impl_->url(host, path);
}
std::filesystem::path index_server::ca_file() const { return impl_->ca_file(); }
std::map<std::uint64_t, unsigned> index_server::requests_per_page() const { return impl_->requests_per_page(); }
unsigned index_server::requests(std::uint64_t page) const { return impl_->requests(page); }
unsigned index_server::total_requests() const { return impl_->total_requests(); }
unsigned index_server::connections() const { return impl_->connections(); }
unsigned index_server::peak_in_flight() const { return impl_->peak_in_flight(); }
std::vector<std::string> index_server::targets() const { return impl_->targets(); }
std::vector<std::string> index_server::authorizations() const { return impl_->authorizations(); }
std::uint64_t index_server::huge_bytes_sent() const { return impl_->huge_bytes_sent(); }
bool index_server::dead() const { return impl_->dead(); }
std::vector<std::uint64_t> index_server::expired_holds() const { return impl_->expired_holds(); }

}  // namespace tixport::test
