// File: serve_test_api.cpp
//
// tixport_test_api: the fake users API the tests use (tests/support/test_index_server.cpp,
// SPEC 1.3 paging), as a program, so that `tixport fetch-users` and `run --users-url` can be
// tried without a ticketing platform. Serves on 127.0.0.1 only, until SIGINT / SIGTERM.
// scripts/serve-test-api builds and starts it.
//
//   tixport_test_api --port 8080 --users users.csv        # the index of an id,email CSV
//   tixport_test_api --port 0 --generate 2500 --latency-ms 50 --error-rate 0.05
//   tixport fetch-users --users-url http://127.0.0.1:8080/api/v2/users.json --output got.csv
#include <CLI/CLI.hpp>

#include "../support/test_index_server.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/run/json_batch_encoder.hpp"
#include "tixport/index/user_index_csv.hpp"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

// The JSON text of each valid entry of an id,email CSV (null for an empty email), in file order.
std::vector<std::string> users_from_csv(const std::string& path) {
  std::vector<std::string> users;
  for (const tixport::raw_index_entry& e : tixport::read_index_csv(path, 1)) {
    if (!e.id) continue;  // the API serves integer ids only
    std::string json = "{\"id\":" + std::to_string(*e.id) + ",\"email\":";
    if (e.email && !e.email->empty()) {
      tixport::append_json_string(json, *e.email);
    } else {
      json += "null";
    }
    users.push_back(json + "}");
  }
  return users;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Serve a fake paged users API (SPEC 1.3) on 127.0.0.1 for trying tixport fetch-users",
               "tixport_test_api"};
  app.option_defaults()->always_capture_default();
  unsigned port = 8080;
  std::string users_csv;
  std::uint64_t generate = 250;
  unsigned page_size = 100;
  bool no_count = false;
  unsigned latency_ms = 0;
  double error_rate = 0;
  unsigned every_nth_429 = 0;
  std::string retry_after = "1";
  std::uint64_t max_page = 0;
  bool tls = false;
  std::string auth;
  app.add_option("--port", port, "TCP port on 127.0.0.1 (0: any free one, printed)")->check(CLI::Range(0u, 65535u));
  auto* users = app.add_option("--users", users_csv, "Serve the entries of this id,email CSV, in file order");
  app.add_option("--generate", generate, "Else serve this many generated users (id 1000+i, useri@example.org)")
      ->excludes(users);
  app.add_option("--page-size", page_size, "Users per page when the request has no per_page")
      ->check(CLI::Range(1u, 10000u));
  app.add_flag("--no-count", no_count, "Leave `count` out of the pages (the client pages until a short page)");
  app.add_option("--latency-ms", latency_ms, "Wait this long before every answer");
  app.add_option("--error-rate", error_rate, "Answer this share of requests with 500")->check(CLI::Range(0.0, 1.0));
  app.add_option("--every-nth-429", every_nth_429, "Answer every Nth request with 429 and Retry-After");
  app.add_option("--retry-after", retry_after, "Retry-After of the 429s, in seconds");
  app.add_option("--max-page", max_page, "Answer 400 past this page number, as Zendesk does (0: never)");
  app.add_flag("--tls", tls, "Serve https with a fresh self-signed certificate (its PEM path is printed)");
  app.add_option("--auth", auth, "Require HTTP basic auth with this user:secret (else 401)");
  CLI11_PARSE(app, argc, argv);

  // The signals are waited for below; blocked before the server's thread starts, so that
  // thread inherits the mask and they all come to sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  try {
    tixport::test::index_server_config config;
    config.port = static_cast<std::uint16_t>(port);
    config.users = generate;
    if (!users_csv.empty()) config.raw_users = users_from_csv(users_csv);
    config.default_page_size = page_size;
    config.send_count = !no_count;
    config.latency = std::chrono::milliseconds(latency_ms);
    config.error_500_rate = error_rate;
    config.every_nth_429 = every_nth_429;
    config.retry_after = retry_after;
    config.max_offset_page = max_page;
    config.tls = tls;
    if (!auth.empty()) {
      // The header the client sends: "Basic " + base64(user:secret).
      static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      std::string b64;
      for (std::size_t i = 0; i < auth.size(); i += 3) {
        const std::size_t n = std::min<std::size_t>(3, auth.size() - i);
        std::uint32_t chunk = 0;
        for (std::size_t k = 0; k < 3; ++k) {
          chunk = (chunk << 8) | (k < n ? static_cast<unsigned char>(auth[i + k]) : 0u);
        }
        for (std::size_t k = 0; k < 4; ++k) b64 += k <= n ? kAlphabet[(chunk >> (18 - 6 * k)) & 63] : '=';
      }
      config.expected_authorization = "Basic " + b64;
    }
    const std::size_t count = config.raw_users ? config.raw_users->size() : config.users;
    tixport::test::index_server server(config);
    std::printf("serving %zu users at %s (127.0.0.1 only; Ctrl-C stops)\n", count,
                server.url().c_str());
    if (tls) std::printf("CA certificate: %s (give it to --ca-file)\n", server.ca_file().c_str());
    std::fflush(stdout);
    int signal_number = 0;
    sigwait(&stop, &signal_number);
    std::printf("stopped after %u requests\n", server.total_requests());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tixport_test_api: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
