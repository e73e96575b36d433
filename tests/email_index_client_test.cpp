// File: email_index_client_test.cpp
//
// Tests of the REST user-index client: URL parsing, page targets, the page parser,
// Retry-After, backoff, credentials, the index CSV, and fetches against the in-process
// test server (tests/support/test_index_server.hpp), one test per fault, counting the requests
// per page so that nothing is fetched more often than its retries explain.
//
//   ./tixport_tests "[email_index_client]"
#include "support/test_index_server.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../src/index/email_index_http_internal.hpp"
#include "../src/index/email_index_page_parser_internal.hpp"
#include "tixport/index/email_index_client.hpp"
#include "tixport/index/user_index_csv.hpp"
#include "tixport/common/errors.hpp"

namespace {

using namespace std::chrono_literals;
using tixport::exit_code;
using tixport::fatal_error;
using tixport::fetch_options;
using tixport::fetch_result;
using tixport::raw_index_entry;
using tixport::test::fault;
using tixport::test::index_server;
using tixport::test::index_server_config;
using tixport::test::read_file;
using tixport::test::temp_dir;

/// Collects warnings (the fetch thread may call in).
struct warning_log {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view line) {
      std::lock_guard lock(mutex);
      lines.emplace_back(line);
    };
  }
};

/// Options for fast tests: short backoff, fixed jitter seed. The timeout is long enough never
/// to fire on a live request of a loaded machine: with 2 s, a request the server held (until
/// others arrived or were answered, or for its latency) timed out and was sent again when a
/// connect or a thread was a few seconds late, and the tests' exact request counts failed.
/// Tests of the timeout set a short one themselves, where only a stall can run into it.
fetch_options fast_options(const index_server& server, warning_log& warnings) {
  fetch_options options;
  options.users_url = server.url();
  options.concurrency = 4;
  options.timeout = 120s;
  options.retries = 3;
  options.backoff_base = 1ms;
  options.backoff_cap = 4ms;
  options.retry_after_cap = 3000ms;
  options.jitter_seed = 7;
  options.warn = warnings.sink();
  return options;
}

void check_generated_entries(const std::vector<raw_index_entry>& entries, std::uint64_t users) {
  REQUIRE(entries.size() == users);
  for (std::uint64_t i = 0; i < users; ++i) {
    INFO("entry " << i);
    REQUIRE(entries[i].id == tixport::test::test_user_id(i));
    REQUIRE(entries[i].email == tixport::test::test_user_email(i));
  }
}

/// Run `fetch` and return the fatal_error it throws.
template <class Fn>
fatal_error fetch_error(Fn&& fetch) {
  try {
    fetch();
  } catch (const fatal_error& error) {
    return error;
  }
  FAIL("the fetch did not fail");
  return fatal_error(exit_code::ok, "");
}

/// Poll `ready` until it holds, for up to a minute (a failing test's wait, never a passing
/// one's); true once it held. For server counters that trail what the client has sent.
template <class Fn>
bool eventually(Fn&& ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Sets or clears an environment variable for one test, restoring it afterwards.
struct scoped_env {
  std::string name;
  std::optional<std::string> saved;
  scoped_env(std::string variable, const char* value) : name(std::move(variable)) {
    if (const char* old = std::getenv(name.c_str())) saved = old;
    if (value) {
      ::setenv(name.c_str(), value, 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  ~scoped_env() {
    if (saved) {
      ::setenv(name.c_str(), saved->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
};

}  // namespace

// --- URLs --------------------------------------------------------------------------------

TEST_CASE("parse_url splits scheme, host, port and target", "[email_index_client]") {
  using tixport::detail::parse_url;
  using tixport::detail::parsed_url;
  {
    const auto url = std::get<parsed_url>(parse_url("https://API.Example.org/api/v2/users.json?role=end-user#top"));
    CHECK(url.tls);
    CHECK(url.host == "api.example.org");
    CHECK(url.port == 443);
    CHECK(url.default_port);
    CHECK(url.target == "/api/v2/users.json?role=end-user");
    CHECK(url.host_header() == "api.example.org");
  }
  {
    const auto url = std::get<parsed_url>(parse_url("http://127.0.0.1:8080"));
    CHECK_FALSE(url.tls);
    CHECK(url.host == "127.0.0.1");
    CHECK(url.port == 8080);
    CHECK_FALSE(url.default_port);
    CHECK(url.target == "/");
    CHECK(url.host_header() == "127.0.0.1:8080");
  }
  {
    const auto url = std::get<parsed_url>(parse_url("http://[::1]:9000?x=1"));
    CHECK(url.host == "::1");
    CHECK(url.ipv6_literal);
    CHECK(url.port == 9000);
    CHECK(url.target == "/?x=1");
    CHECK(url.host_header() == "[::1]:9000");
  }
  {
    const auto url = std::get<parsed_url>(parse_url("HTTPS://[2001:DB8::1]/u"));
    CHECK(url.host == "2001:db8::1");
    CHECK(url.port == 443);
    CHECK(url.host_header() == "[2001:db8::1]");
  }
  {
    // An explicit default port and an empty port both mean the default.
    CHECK(std::get<parsed_url>(parse_url("http://h:80/x")).default_port);
    CHECK(std::get<parsed_url>(parse_url("http://h:/x")).port == 80);
  }
}

TEST_CASE("parse_url rejects user info and malformed URLs without quoting them",
          "[email_index_client]") {
  using tixport::detail::parse_url;
  using tixport::detail::url_error;
  const char* secret = "Sup3rS3cret";
  const auto with_userinfo = parse_url(std::string("https://agent:") + secret + "@example.org/users");
  REQUIRE(std::holds_alternative<url_error>(with_userinfo));
  const std::string what = std::get<url_error>(with_userinfo).what;
  CHECK(what.find("user info") != std::string::npos);
  CHECK(what.find(secret) == std::string::npos);
  CHECK(what.find("agent") == std::string::npos);

  for (const char* bad : {"ftp://example.org/users", "example.org/users", "http:///users",
                          "http://exa mple.org/", "http://[::1/users", "http://h:0/",
                          "http://h:65536/", "http://h:12a/", "http://h:p/", "http://[zz::1]/",
                          "http://ho$t/", "https://"}) {
    INFO(bad);
    CHECK(std::holds_alternative<url_error>(parse_url(bad)));
  }
}

TEST_CASE("page targets add page, per_page and page[size] to the query",
          "[email_index_client]") {
  using tixport::detail::parse_url;
  using tixport::detail::parsed_url;
  const auto plain = std::get<parsed_url>(parse_url("https://h/api/v2/users.json"));
  const auto query = std::get<parsed_url>(parse_url("https://h/api/v2/users.json?role=agent"));
  CHECK(tixport::detail::offset_page_target(plain, 1, std::nullopt) == "/api/v2/users.json?page=1");
  CHECK(tixport::detail::offset_page_target(query, 12, 50u) ==
        "/api/v2/users.json?role=agent&page=12&per_page=50");
  CHECK(tixport::detail::cursor_first_target(plain, 100) == "/api/v2/users.json?page[size]=100");
  CHECK(tixport::detail::cursor_first_target(query, 25) ==
        "/api/v2/users.json?role=agent&page[size]=25");
}

TEST_CASE("resolve_link follows absolute URLs and absolute paths", "[email_index_client]") {
  using tixport::detail::parse_url;
  using tixport::detail::parsed_url;
  using tixport::detail::resolve_link;
  const auto base = std::get<parsed_url>(parse_url("https://h.example:8443/api/users?page[size]=5"));
  const auto path = std::get<parsed_url>(resolve_link(base, "/api/users?page[after]=xyz"));
  CHECK(path.same_origin(base));
  CHECK(path.target == "/api/users?page[after]=xyz");
  const auto absolute = std::get<parsed_url>(resolve_link(base, "https://h.example:8443/next"));
  CHECK(absolute.same_origin(base));
  const auto other = std::get<parsed_url>(resolve_link(base, "https://evil.example/next"));
  CHECK_FALSE(other.same_origin(base));
  const auto scheme_relative = std::get<parsed_url>(resolve_link(base, "//h.example:8443/n"));
  CHECK(scheme_relative.same_origin(base));
  CHECK(std::holds_alternative<tixport::detail::url_error>(resolve_link(base, "https://u:p@h.example/")));
}

// --- page bodies -------------------------------------------------------------------------

TEST_CASE("parse_page_body reads ids and emails by the SPEC 1.2 rules", "[email_index_client]") {
  std::string body = R"({"count": 9, "users": [
      {"id": 1, "email": "a@example.org", "name": "A"},
      {"email": " Padded@Example.org ", "id": -7},
      {"id": "3", "email": "string-id@example.org"},
      {"id": 4.0, "email": "float-id@example.org"},
      {"id": null, "email": null},
      {"email": 5},
      {"id": 9223372036854775807, "email": {"nested": true}},
      {"id": 9223372036854775808, "email": "too-big@example.org"},
      {"id": 12, "id": 13, "email": "dup@example.org"},
      "not an object",
      {"id": 14, "email": "esc\u00e9\"q@example.org"}
    ], "next_page": null, "extra": [1, {"x": 2}]})";
  tixport::detail::page_body page;
  const auto problem = tixport::detail::parse_page_body(body, page);
  REQUIRE_FALSE(problem);
  REQUIRE(page.users.size() == 11);
  CHECK(page.users[0].id == 1);
  CHECK(page.users[0].email == "a@example.org");
  CHECK(page.users[1].id == -7);
  CHECK(page.users[1].email == " Padded@Example.org ");
  CHECK_FALSE(page.users[2].id);
  CHECK(page.users[2].email == "string-id@example.org");
  CHECK_FALSE(page.users[3].id);
  CHECK_FALSE(page.users[4].id);
  CHECK_FALSE(page.users[4].email);
  CHECK_FALSE(page.users[5].id);
  CHECK_FALSE(page.users[5].email);
  CHECK(page.users[6].id == INT64_MAX);
  CHECK_FALSE(page.users[6].email);
  CHECK_FALSE(page.users[7].id);
  CHECK(page.users[8].id == 12);
  CHECK_FALSE(page.users[9].id);
  CHECK_FALSE(page.users[9].email);
  CHECK(page.users[10].email == "esc\xC3\xA9\"q@example.org");
  CHECK(page.count == 9u);
  CHECK(page.next_page == tixport::detail::page_body::next_kind::null);
}

TEST_CASE("parse_page_body reads next_page, links.next and meta.has_more",
          "[email_index_client]") {
  using next_kind = tixport::detail::page_body::next_kind;
  tixport::detail::page_body page;
  std::string offset = R"({"users":[],"next_page":"https://h/u?page=2","count":"12"})";
  REQUIRE_FALSE(tixport::detail::parse_page_body(offset, page));
  CHECK(page.next_page == next_kind::url);
  CHECK_FALSE(page.count);  // a count that is not an integer is ignored
  std::string absent = R"({"users":[{"id":1,"email":"a@b"}],"count":-1})";
  REQUIRE_FALSE(tixport::detail::parse_page_body(absent, page));
  CHECK(page.next_page == next_kind::absent);
  CHECK_FALSE(page.count);
  CHECK(page.users.size() == 1);
  std::string cursor =
      R"({"meta":{"has_more":true,"after_cursor":"x"},"links":{"prev":null,"next":"https://h/u?page[after]=x"},"users":[]})";
  REQUIRE_FALSE(tixport::detail::parse_page_body(cursor, page));
  CHECK(page.has_more);
  CHECK(page.links_next == "https://h/u?page[after]=x");
  std::string done = R"({"users":[],"meta":{"has_more":false},"links":{"next":null}})";
  REQUIRE_FALSE(tixport::detail::parse_page_body(done, page));
  CHECK_FALSE(page.has_more);
  CHECK_FALSE(page.links_next);
}

TEST_CASE("parse_page_body rejects bodies that are not an object with a users array",
          "[email_index_client]") {
  const std::string full = R"({"users":[{"id":1,"email":"a@example.org"},{"id":2,"email":"b@example.org"}],"count":2})";
  std::vector<std::string> bad = {
      "", "[]", "null", R"({"count":2})", R"({"users":{"id":1}})", R"({"users":"none"})",
      R"({"users":[{"id":1,"email":"a@example.org"}]} trailing)", "{\"users\":[\xff]}",
  };
  // Every proper prefix of a valid body is a truncated body.
  for (std::size_t cut = 0; cut < full.size(); ++cut) bad.push_back(full.substr(0, cut));
  for (auto& body : bad) {
    INFO("body: " << body);
    tixport::detail::page_body page;
    CHECK(tixport::detail::parse_page_body(body, page));
  }
  std::string good = full;
  tixport::detail::page_body page;
  CHECK_FALSE(tixport::detail::parse_page_body(good, page));
  CHECK(page.users.size() == 2);
}

// --- Retry-After, backoff, base64 ---------------------------------------------------------

TEST_CASE("parse_retry_after reads seconds and the three HTTP date forms",
          "[email_index_client]") {
  using tixport::detail::parse_retry_after;
  // 1994-11-06 08:49:37 UTC
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(784111777));
  CHECK(parse_retry_after("120", now) == 120000ms);
  CHECK(parse_retry_after(" 0 ", now) == 0ms);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now) == 10000ms);
  CHECK(parse_retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now) == 60000ms);
  CHECK(parse_retry_after("Sun Nov  6 08:49:40 1994", now) == 3000ms);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now) == 0ms);  // in the past
  CHECK(parse_retry_after("99999999999999", now) > 24h);
  for (const char* bad : {"", "soon", "-5", "1.5", "Sun, 31 Feb 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 CET"}) {
    INFO(bad);
    CHECK_FALSE(parse_retry_after(bad, now));
  }
}

TEST_CASE("backoff_delay is full jitter under a doubling, capped bound", "[email_index_client]") {
  std::mt19937_64 rng(1);
  for (unsigned retry = 1; retry <= 40; ++retry) {
    const auto bound = std::min<std::int64_t>(200LL << std::min(retry - 1, 20U), 10000);
    std::int64_t seen_max = 0;
    for (int i = 0; i < 200; ++i) {
      const auto delay = tixport::detail::backoff_delay(retry, 200ms, 10000ms, rng);
      REQUIRE(delay.count() >= 0);
      REQUIRE(delay.count() <= bound);
      seen_max = std::max<std::int64_t>(seen_max, delay.count());
    }
    CHECK(seen_max > bound / 2);  // the whole range is used, not just the bottom
  }
  std::mt19937_64 a(99);
  std::mt19937_64 b(99);
  CHECK(tixport::detail::backoff_delay(3, 200ms, 10000ms, a) ==
        tixport::detail::backoff_delay(3, 200ms, 10000ms, b));
}

TEST_CASE("base64_encode matches RFC 4648 vectors", "[email_index_client]") {
  using tixport::detail::base64_encode;
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode("Aladdin:open sesame") == "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  CHECK(base64_encode(std::string("\xff\xfe\x00", 3)) == "//4A");
}

// --- credentials ---------------------------------------------------------------------------

TEST_CASE("load_api_credentials reads the auth file, then the environment",
          "[email_index_client]") {
  temp_dir dir;
  scoped_env user("TIXPORT_API_USER", "env-user");
  scoped_env token("TIXPORT_API_TOKEN", "env-token");
  const auto file = dir.path() / "auth";
  std::ofstream(file) << "agent@example.org/token:s3cr:et\r\n";
  const auto from_file = tixport::load_api_credentials(file);
  REQUIRE(from_file);
  CHECK(from_file->user == "agent@example.org/token");
  CHECK(from_file->secret == "s3cr:et");
  const auto from_env = tixport::load_api_credentials(std::nullopt);
  REQUIRE(from_env);
  CHECK(from_env->user == "env-user");
  CHECK(from_env->secret == "env-token");
}

TEST_CASE("load_api_credentials gives nullopt without credentials and rejects half of them",
          "[email_index_client]") {
  {
    scoped_env user("TIXPORT_API_USER", nullptr);
    scoped_env token("TIXPORT_API_TOKEN", nullptr);
    CHECK_FALSE(tixport::load_api_credentials(std::nullopt));
  }
  {
    scoped_env user("TIXPORT_API_USER", nullptr);
    scoped_env token("TIXPORT_API_TOKEN", "TopSecretToken");
    const auto error = fetch_error([] { tixport::load_api_credentials(std::nullopt); });
    CHECK(error.code() == exit_code::user_index_error);
    CHECK(std::string(error.what()) ==
          "user index: credentials: TIXPORT_API_TOKEN is set but TIXPORT_API_USER is not");
  }
}

TEST_CASE("load_api_credentials rejects ill-formed auth files without quoting them",
          "[email_index_client]") {
  temp_dir dir;
  const std::string secret = "Sup3r-S3cret-Value";
  const std::vector<std::string> contents = {secret, ":" + secret, "user:", "user:" + secret + "\nx:y\n"};
  for (const auto& content : contents) {
    const auto file = dir.path() / "auth";
    std::ofstream(file, std::ios::trunc) << content;
    const auto error = fetch_error([&] { tixport::load_api_credentials(file); });
    INFO(error.what());
    CHECK(error.code() == exit_code::user_index_error);
    CHECK(std::string(error.what()).rfind("user index: --auth-file ", 0) == 0);
    CHECK(std::string(error.what()).find(secret) == std::string::npos);
  }
  const auto missing = fetch_error([&] { tixport::load_api_credentials(dir.path() / "nope"); });
  CHECK(missing.code() == exit_code::user_index_error);
}

// --- index CSV -----------------------------------------------------------------------------

TEST_CASE("save_index_csv writes id,email with quoting, atomically", "[email_index_client]") {
  temp_dir dir;
  const std::vector<raw_index_entry> entries = {
      {1, "a@example.org"},
      {std::nullopt, "skipped@example.org"},
      {2, std::nullopt},
      {3, " padded@example.org"},
      {4, "c,d@example.org"},
      {5, "q\"x@example.org"},
      {6, "line\nbreak@example.org"},
      {-7, "tab\t"},
      {8, ""},
  };
  const auto path = dir.path() / "users.csv";
  std::ofstream(path) << "old content";
  tixport::save_index_csv(entries, path);
  CHECK(read_file(path) ==
        "id,email\n"
        "1,a@example.org\n"
        "2,\n"
        "3,\" padded@example.org\"\n"
        "4,\"c,d@example.org\"\n"
        "5,\"q\"\"x@example.org\"\n"
        "6,\"line\nbreak@example.org\"\n"
        "-7,\"tab\t\"\n"
        "8,\n");
  // Only the output is left: the temporary file was renamed into place.
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()),
                      std::filesystem::directory_iterator()) == 1);
  const auto error =
      fetch_error([&] { tixport::save_index_csv(entries, dir.path() / "missing" / "users.csv"); });
  CHECK(error.code() == exit_code::output_error);
  CHECK(std::string(error.what()).rfind("users csv: create: ", 0) == 0);
}

// --- fetches against the test server ---------------------------------------------------------

TEST_CASE("fetch with count gets every page once, in order", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.concurrency = 16;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> progress;
  options.progress = [&](const tixport::fetch_progress& p) {
    if (p.waiting.count() == 0) progress.emplace_back(p.pages_done, p.pages_total);
  };
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(server.requests_per_page() == std::map<std::uint64_t, unsigned>{{1, 1}, {2, 1}, {3, 1}});
  CHECK(result.stats.pages == 3);
  CHECK(result.stats.users == 250);
  CHECK(result.stats.requests == 3);
  CHECK(result.stats.retries == 0);
  CHECK(result.stats.bytes > 250 * 30);
  CHECK(result.stats.seconds > 0);
  CHECK(warnings.lines.empty());
  REQUIRE(progress.size() == 3);
  CHECK(progress.back() == std::pair<std::uint64_t, std::uint64_t>{3, 3});
  for (const auto& target : server.targets()) {
    CHECK(target.rfind("/api/v2/users.json?page=", 0) == 0);
    CHECK(target.find("per_page") == std::string::npos);
  }
}

TEST_CASE("fetch sends per_page when a page size is given", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 120;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.users_url = server.url("127.0.0.1", "/api/v2/users.json?role=end-user");
  options.page_size = 50;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 120);
  auto targets = server.targets();
  std::sort(targets.begin(), targets.end());
  CHECK(targets == std::vector<std::string>{"/api/v2/users.json?role=end-user&page=1&per_page=50",
                                            "/api/v2/users.json?role=end-user&page=2&per_page=50",
                                            "/api/v2/users.json?role=end-user&page=3&per_page=50"});
}

TEST_CASE("fetch pages by page 1's size when the server ignores the page size",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.default_page_size = 40;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(result.stats.pages == 7);
  REQUIRE(warnings.lines.size() == 1);
  CHECK(warnings.lines[0] == "user index: page 1 holds 40 users, not 100; paging by 40");
}

TEST_CASE("fetch without count stops at the first short page", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.send_count = false;
  // Look-ahead pages past the end may be asked for; they answer 404 here and are ignored.
  config.page_faults[4] = {fault::http_404};
  config.page_faults[5] = {fault::http_404};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(result.stats.pages == 3);
  for (const auto& [page, count] : server.requests_per_page()) {
    INFO("page " << page);
    CHECK(count == 1);
    CHECK(page <= 3 + options.concurrency - 1);
  }
  CHECK(server.requests(1) == 1);
  CHECK(server.requests(2) == 1);
  CHECK(server.requests(3) == 1);
}

TEST_CASE("fetch without count waits for the pages below a failure before failing",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.send_count = false;
  // Page 3 (the real last page) comes last, after the empty look-ahead page 5 and then page
  // 4's 404 (the server holds each until the pages listed are answered). Neither may end the
  // fetch: page 3 decides that the index ends there. Page 4 waits for page 5 because its 404
  // makes the client drop every look-ahead page above 3: on a slow machine page 5's request
  // could be dropped before it reached the server, and page 3 would then wait for ever.
  config.hold_page_until_answered[3] = {4, 5};
  config.hold_page_until_answered[4] = {5};
  config.page_faults[4] = {fault::http_404};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.concurrency = 8;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(result.stats.pages == 3);
  CHECK(server.requests(3) == 1);
  CHECK(server.requests(4) == 1);
  CHECK(server.expired_holds().empty());  // every hold's condition was met
}

TEST_CASE("fetch without count stops at an empty page", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 200;
  config.send_count = false;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.concurrency = 1;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 200);
  CHECK(result.stats.pages == 3);
  CHECK(server.requests_per_page() == std::map<std::uint64_t, unsigned>{{1, 1}, {2, 1}, {3, 1}});
}

TEST_CASE("fetch without count stops at next_page: null", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 200;
  config.send_count = false;
  config.send_next_page = true;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.concurrency = 1;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 200);
  CHECK(result.stats.pages == 2);
  CHECK(server.requests_per_page() == std::map<std::uint64_t, unsigned>{{1, 1}, {2, 1}});
}

TEST_CASE("fetch without count fails on a page inside the index",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.send_count = false;
  config.page_faults[2] = {fault::http_500, fault::http_500, fault::http_500, fault::http_500};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(error.code() == exit_code::user_index_error);
  CHECK(std::string(error.what()) ==
        "user index: page 2: HTTP 500 Internal Server Error (failed 4 attempts)");
  CHECK(server.requests(2) == 4);
}

TEST_CASE("fetch keeps at most `concurrency` requests in flight over kept-alive connections",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 2000;
  config.latency = 20ms;
  config.hold_until_in_flight = 4;  // the first requests after page 1 wait until 4 are in flight
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.concurrency = 4;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 2000);
  CHECK(server.total_requests() == 20);
  CHECK(server.peak_in_flight() == 4);
  CHECK(server.connections() <= 4);
  CHECK(result.stats.requests == 20);
  CHECK(server.expired_holds().empty());  // every hold's condition was met
}

TEST_CASE("test server: a hold whose condition is never met lets go after max_hold and says so",
          "[email_index_client]") {
  // The tests above hold pages until other requests arrive; a client that never sent them
  // would have waited out its timeout on every attempt (8 minutes) before failing. Here one
  // request at a time can never make 8 in flight: each page after the first is let go after
  // max_hold, and listed.
  index_server_config config;
  config.users = 300;  // 3 pages
  config.hold_until_in_flight = 8;
  config.max_hold = 200ms;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.concurrency = 1;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 300);
  CHECK(server.peak_in_flight() == 1);
  CHECK(server.expired_holds() == std::vector<std::uint64_t>{2, 3});
}

TEST_CASE("fault: latency is overlapped by concurrent requests", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 1600;  // 16 pages
  config.latency = 100ms;
  // The first requests after page 1 wait until 8 are in flight: a client that overlaps them
  // gets them all answered together; one that does not would never reach 8.
  config.hold_until_in_flight = 8;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.concurrency = 8;
  const auto start = std::chrono::steady_clock::now();
  const fetch_result result = tixport::fetch_user_index(options);
  const double elapsed = seconds_since(start);
  check_generated_entries(result.entries, 1600);
  // Page 1 alone, then 15 pages 8 at a time: at least 3 rounds of 100 ms. (No upper bound:
  // on a loaded machine any bound on wall time is a guess; the peak shows the overlap.)
  CHECK(elapsed >= 0.3);
  CHECK(server.peak_in_flight() == 8);
  CHECK(server.expired_holds().empty());  // every hold's condition was met
}

TEST_CASE("fault: 500s at a rate are retried, and only as often as they fail",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 3000;
  config.error_500_rate = 0.25;
  config.seed = 3;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.retries = 10;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 3000);
  const auto per_page = server.requests_per_page();
  REQUIRE(per_page.size() == 30);
  unsigned extra = 0;
  for (const auto& [page, count] : per_page) extra += count - 1;
  CHECK(extra > 0);
  CHECK(result.stats.retries == extra);
  CHECK(result.stats.requests == server.total_requests());
}

TEST_CASE("fault: 429 with Retry-After in seconds is honoured", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.retry_after = "1";
  config.page_faults[2] = {fault::http_429};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const auto start = std::chrono::steady_clock::now();
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(seconds_since(start) >= 0.95);
  CHECK(server.requests(2) == 2);
  CHECK(result.stats.retries == 1);
}

TEST_CASE("fault: 503 with Retry-After as an HTTP date is honoured",
          "[email_index_client][parallel]") {
  const auto when = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()) + 2;
  std::tm utc{};
  ::gmtime_r(&when, &utc);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  index_server_config config;
  config.users = 250;
  config.retry_after = date;
  config.page_faults[3] = {fault::http_503};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  // The retry waited for the date, however long the fetch took to get there: the fetch ends
  // after it (a little slack for the two clocks the client and this test read).
  CHECK(std::chrono::system_clock::now() >= std::chrono::system_clock::from_time_t(when) - 20ms);
  CHECK(server.requests(3) == 2);
  CHECK(result.stats.retries == 1);
}

TEST_CASE("fault: a long Retry-After is capped", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 150;
  config.retry_after = "3600";
  config.page_faults[1] = {fault::http_429, fault::http_429};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.retry_after_cap = 50ms;
  const auto start = std::chrono::steady_clock::now();
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 150);
  CHECK(seconds_since(start) >= 0.1);
  // Uncapped, one wait alone would be an hour; any machine does the rest in far less than 60 s.
  CHECK(seconds_since(start) < 60.0);
  CHECK(server.requests(1) == 3);
  CHECK(result.stats.retries == 2);
}

TEST_CASE("fault: a truncated body is retried", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.page_faults[2] = {fault::truncated_body};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(server.requests_per_page() == std::map<std::uint64_t, unsigned>{{1, 1}, {2, 2}, {3, 1}});
  CHECK(result.stats.retries == 1);
}

TEST_CASE("fault: a body that is not the JSON page is retried", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.page_faults[3] = {fault::bad_json, fault::bad_json};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(server.requests_per_page() == std::map<std::uint64_t, unsigned>{{1, 1}, {2, 1}, {3, 3}});
  CHECK(result.stats.retries == 2);
}

TEST_CASE("fault: a body over the 32 MiB limit fails the page, with or without a length",
          "[email_index_client][parallel]") {
  constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
  REQUIRE(tixport::detail::kMaxResponseBodyBytes == 32 * kMiB);
  index_server_config config;
  config.users = 250;
  // The huge answers send the limit and 1 MiB more (the announced one: 1 MiB), then hold
  // the connection open, silent, until the server ends: the client must find the limit
  // passed, and no timer can fire first (its timeout is 10 minutes), however slowly a
  // loaded machine reads 32 MiB.
  constexpr std::uint64_t kLimit = tixport::detail::kMaxResponseBodyBytes;
  struct huge_case {
    const char* name;
    fault body;                ///< how page 2's body comes
    std::uint64_t hold_after;  ///< the server holds the connection after this many body bytes
    std::uint64_t min_sent;    ///< the server sent at least this much before the client gave up
    std::uint64_t max_sent;    ///< and at most this much
  };
  // With a Content-Length over the limit the body is refused at the header. Without a
  // length it is read until it passes the limit: before the piece that passes it, the
  // server has written every piece up to the limit.
  const std::vector<huge_case> cases = {
      {"Content-Length over the limit: refused at the header", fault::huge_body, kMiB, 0, kMiB},
      {"chunked: read up to the limit, then dropped", fault::huge_chunked_body, kLimit + kMiB, kLimit - kMiB,
       kLimit + kMiB},
      {"delimited by the close: read up to the limit, then dropped", fault::huge_close_delimited_body,
       kLimit + kMiB, kLimit - kMiB, kLimit + kMiB},
  };
  for (const huge_case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      config.page_faults[2] = {c.body};
      config.huge_body_hold_after = c.hold_after;
      index_server server(config);
      warning_log warnings;
      auto options = fast_options(server, warnings);
      options.retries = 0;
      options.timeout = 600s;
      const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
      CHECK(error.code() == exit_code::user_index_error);
      CHECK(std::string(error.what()) == "user index: page 2: read: body limit exceeded (failed 1 attempt)");
      CHECK(server.huge_bytes_sent() >= c.min_sent);
      CHECK(server.huge_bytes_sent() <= c.max_sent);
    }
  }
}

TEST_CASE("fault: a stall after the headers times out and is retried",
          "[email_index_client][parallel]") {
  // One page, one connection: the stalled attempt is the only request in flight when the
  // timer runs, and it stays silent until the server ends, so the timeout always fires on it.
  // The retry runs under the same 1 s timeout: a server or client thread that a loaded
  // machine holds up for a second makes it time out too and go once more (retries to spare
  // for that). So the test counts no fixed number of requests, but that there was a retry
  // and that every request past the first is a counted retry.
  index_server_config config;
  config.users = 100;
  config.page_faults[1] = {fault::stall_after_headers};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.concurrency = 1;
  options.timeout = 1000ms;
  options.retries = 10;
  const auto start = std::chrono::steady_clock::now();
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 100);
  CHECK(seconds_since(start) >= 0.99);
  CHECK(result.stats.requests >= 2);
  CHECK(result.stats.retries == result.stats.requests - 1);
  // A request that timed out may not have been read by the server yet: wait for it.
  CHECK(eventually([&] { return server.requests(1) >= result.stats.requests; }));
  CHECK(server.requests(1) == result.stats.requests);
}

TEST_CASE("fault: a stall on every attempt fails the page with the timeout",
          "[email_index_client][parallel]") {
  // Page 1 stalls on both attempts: no other request exists (the rest waits for page 1),
  // and the server never answers, so only the timer can end each attempt.
  index_server_config config;
  config.users = 250;
  config.page_faults[1] = {fault::stall_after_headers, fault::stall_after_headers};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.timeout = 500ms;
  options.retries = 1;
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(error.code() == exit_code::user_index_error);
  CHECK(std::string(error.what()) == "user index: page 1: read: timed out after 500 ms (failed 2 attempts)");
  // The client gives up 500 ms after sending, whether or not the server has read the request
  // by then: a server thread held up that long has not counted the second request when the
  // fetch ends. Both requests were sent, so the server reads them; wait for it.
  CHECK(eventually([&] { return server.total_requests() >= 2; }));
  CHECK(server.requests(1) == 2);
  CHECK(server.total_requests() == 2);
}

TEST_CASE("fault: connection closed after each response: reconnect, no retry",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 1000;
  config.close_after_each_response = true;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.concurrency = 2;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 1000);
  CHECK(server.total_requests() == 10);
  CHECK(server.connections() == 10);
  CHECK(result.stats.retries == 0);
}

TEST_CASE("fault: a kept-alive connection closed without a response is resent once",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.page_faults[2] = {fault::close_without_response};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.concurrency = 1;  // page 2 goes over the connection page 1 used
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(server.requests_per_page() == std::map<std::uint64_t, unsigned>{{1, 1}, {2, 2}, {3, 1}});
  CHECK(server.connections() == 2);
  CHECK(result.stats.retries == 0);
  CHECK(result.stats.requests == 4);
}

TEST_CASE("fault: a fresh connection closed without a response is a retry",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.page_faults[1] = {fault::close_without_response};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(server.requests(1) == 2);
  CHECK(result.stats.retries == 1);
}

TEST_CASE("fault: 401 stops at once and says the credentials were refused",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.expected_authorization = "Basic " + tixport::detail::base64_encode("agent:right");
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  {
    const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
    CHECK(error.code() == exit_code::user_index_error);
    CHECK(std::string(error.what()) ==
          "user index: the server refused the credentials (HTTP 401 Unauthorized); none were "
          "given: set TIXPORT_API_USER and TIXPORT_API_TOKEN, or use --auth-file");
    CHECK(server.total_requests() == 1);
  }
  options.credentials = tixport::api_credentials{"agent", "wrong"};
  {
    const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
    CHECK(std::string(error.what()) ==
          "user index: the server refused the credentials (HTTP 401 Unauthorized)");
    CHECK(server.total_requests() == 2);
  }
  options.credentials = tixport::api_credentials{"agent", "right"};
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
}

TEST_CASE("fault: 403 on a later page stops the fetch", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 1000;
  config.page_faults[4] = {fault::http_403};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(error.code() == exit_code::user_index_error);
  CHECK(std::string(error.what()).rfind(
            "user index: the server refused the credentials (HTTP 403 Forbidden)", 0) == 0);
  CHECK(server.requests(4) == 1);
}

TEST_CASE("fault: a page that fails every retry stops the fetch with its number and status",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 500;
  config.page_faults[3] = std::vector<fault>(10, fault::http_500);
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.retries = 2;
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(error.code() == exit_code::user_index_error);
  CHECK(std::string(error.what()) ==
        "user index: page 3: HTTP 500 Internal Server Error (failed 3 attempts)");
  CHECK(server.requests(3) == 3);
}

TEST_CASE("fault: 400 past page 1 suggests --pagination cursor, which then works",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 450;
  config.max_offset_page = 2;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(error.code() == exit_code::user_index_error);
  const std::string what = error.what();
  CHECK(what.find("HTTP 400 Bad Request") != std::string::npos);
  CHECK(what.find("try --pagination cursor") != std::string::npos);
  CHECK((what.rfind("user index: page 3: ", 0) == 0 || what.rfind("user index: page 4: ", 0) == 0 ||
         what.rfind("user index: page 5: ", 0) == 0));

  options.pagination = tixport::pagination_mode::cursor;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 450);
  CHECK(result.stats.pages == 5);
  CHECK(result.stats.requests == 5);
}

TEST_CASE("cursor paging follows links.next while meta.has_more", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.pagination = tixport::pagination_mode::cursor;
  options.page_size = 100;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(result.stats.pages == 3);
  CHECK(server.requests_per_page() == std::map<std::uint64_t, unsigned>{{1, 1}, {2, 1}, {3, 1}});
  CHECK(server.targets() == std::vector<std::string>{
                                "/api/v2/users.json?page[size]=100",
                                "/api/v2/users.json?page[size]=100&page[after]=100",
                                "/api/v2/users.json?page[size]=100&page[after]=200"});
  CHECK(server.peak_in_flight() == 1);
}

TEST_CASE("cursor paging retries a failed page", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.page_faults[2] = {fault::http_500, fault::truncated_body};
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.pagination = tixport::pagination_mode::cursor;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(server.requests_per_page() == std::map<std::uint64_t, unsigned>{{1, 1}, {2, 3}, {3, 1}});
  CHECK(result.stats.retries == 2);
}

TEST_CASE("raw JSON users keep their order, bad entries stay for the index to count",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.raw_users = std::vector<std::string>{
      R"({"id":5,"email":"Five@Example.org"})", R"({"id":"6","email":"six@example.org"})",
      R"({"id":7,"email":null})", R"({"id":8})", R"({"id":9.5,"email":"x@y"})", R"(17)",
      R"({"id":10,"email":" ten@example.org "})"};
  config.default_page_size = 3;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.page_size = 3;
  const fetch_result result = tixport::fetch_user_index(options);
  REQUIRE(result.entries.size() == 7);
  CHECK(result.entries[0].id == 5);
  CHECK(result.entries[0].email == "Five@Example.org");
  CHECK_FALSE(result.entries[1].id);
  CHECK(result.entries[2].id == 7);
  CHECK_FALSE(result.entries[2].email);
  CHECK(result.entries[3].id == 8);
  CHECK_FALSE(result.entries[3].email);
  CHECK_FALSE(result.entries[4].id);
  CHECK_FALSE(result.entries[5].id);
  CHECK(result.entries[6].email == " ten@example.org ");
  CHECK(result.stats.pages == 3);
}

TEST_CASE("credentials go in the Authorization header only and never into messages",
          "[email_index_client][parallel]") {
  const std::string secret = "Xq9-SECRET-zz7";
  const std::string encoded = tixport::detail::base64_encode("agent@example.org:" + secret);
  index_server_config config;
  config.users = 150;
  config.expected_authorization = "Basic " + encoded;
  config.page_faults[2] = std::vector<fault>(4, fault::http_500);
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.credentials = tixport::api_credentials{"agent@example.org", secret};
  options.insecure = true;  // (no effect on http, must not warn either)
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  const std::string what = error.what();
  CHECK(what == "user index: page 2: HTTP 500 Internal Server Error (failed 4 attempts)");
  for (const auto& auth : server.authorizations()) CHECK(auth == "Basic " + encoded);
  for (const auto& target : server.targets()) CHECK(target.find(secret) == std::string::npos);
  // A refused secret is not echoed either.
  options.credentials = tixport::api_credentials{"agent@example.org", secret + "-old"};
  const std::string refused = fetch_error([&] { tixport::fetch_user_index(options); }).what();
  for (const std::string& text : {what, refused}) {
    CHECK(text.find(secret) == std::string::npos);
    CHECK(text.find(encoded) == std::string::npos);
    CHECK(text.find("agent@example.org") == std::string::npos);
  }
  for (const auto& line : warnings.lines) CHECK(line.find(secret) == std::string::npos);
}

TEST_CASE("a URL with user info is refused before anything is sent", "[email_index_client]") {
  fetch_options options;
  options.users_url = "https://agent:Pa55word@example.org/api/v2/users.json";
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(error.code() == exit_code::user_index_error);
  CHECK(std::string(error.what()).rfind(
            "user index: --users-url https://agent:***@example.org/api/v2/users.json: user info", 0) == 0);
  CHECK(std::string(error.what()).find("Pa55word") == std::string::npos);
}

TEST_CASE("an unreachable server fails after the retries with the connect error",
          "[email_index_client][parallel]") {
  std::uint16_t port = 0;
  {
    index_server server(index_server_config{});
    port = server.port();
  }  // closed: nothing listens on the port now
  fetch_options options;
  options.users_url = "http://127.0.0.1:" + std::to_string(port) + "/users";
  options.retries = 2;
  options.backoff_base = 1ms;
  options.backoff_cap = 2ms;
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(error.code() == exit_code::user_index_error);
  CHECK(std::string(error.what()).rfind("user index: page 1: connect: ", 0) == 0);
  CHECK(std::string(error.what()).find("(failed 3 attempts)") != std::string::npos);
}

TEST_CASE("user_index_fetch runs in the background and can be cancelled",
          "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.latency = 600s;  // no answer before the test ends: only the cancel can end the fetch
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.timeout = 600s;
  const auto start = std::chrono::steady_clock::now();
  tixport::user_index_fetch fetch(options);
  std::this_thread::sleep_for(100ms);
  fetch.cancel();
  const auto error = fetch_error([&] { fetch.get(); });
  CHECK(error.code() == exit_code::interrupted);
  {
    tixport::user_index_fetch abandoned(options);  // destroyed while running: cancels, joins
  }
  // Far below the 10 minutes a fetch that ignored the cancel would take, on any machine.
  CHECK(seconds_since(start) < 60.0);
}

TEST_CASE("user_index_fetch returns the index from get()", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 321;
  index_server server(config);
  warning_log warnings;
  tixport::user_index_fetch fetch(fast_options(server, warnings));
  const fetch_result result = fetch.get();
  check_generated_entries(result.entries, 321);
  CHECK(result.stats.pages == 4);
}

// --- TLS ----------------------------------------------------------------------------------

TEST_CASE("https verifies the peer against --ca-file", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.tls = true;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.ca_file = server.ca_file();
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  CHECK(server.requests_per_page() == std::map<std::uint64_t, unsigned>{{1, 1}, {2, 1}, {3, 1}});
  CHECK(warnings.lines.empty());
  // By host name too (SNI and a DNS name in the certificate).
  options.users_url = server.url("localhost");
  check_generated_entries(tixport::fetch_user_index(options).entries, 250);
}

TEST_CASE("https refuses an untrusted certificate at once", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.tls = true;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(error.code() == exit_code::user_index_error);
  const std::string what = error.what();
  CHECK(what.rfind("user index: TLS handshake: certificate verify failed", 0) == 0);
  CHECK(what.find("--ca-file") != std::string::npos);
  CHECK(server.total_requests() == 0);
}

TEST_CASE("https to a plain-http server says the server does not speak TLS", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 50;
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.users_url = "https://127.0.0.1:" + std::to_string(server.port()) + "/api/v2/users.json";
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(error.code() == exit_code::user_index_error);
  const std::string what = error.what();
  CHECK(what.rfind("user index: TLS handshake: ", 0) == 0);
  CHECK(what.find("the server does not speak TLS on this port (is the URL http://?)") != std::string::npos);
  CHECK(what.find("--ca-file") == std::string::npos);
  CHECK(server.total_requests() == 0);
}

TEST_CASE("https checks the host name", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 50;
  config.tls = true;
  config.tls_subject_alt_names = "DNS:other.example";
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.ca_file = server.ca_file();
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(std::string(error.what()).rfind("user index: TLS handshake: ", 0) == 0);
  CHECK(server.total_requests() == 0);
}

TEST_CASE("fetch: insecure mode (--insecure) skips verification with a warning", "[email_index_client][parallel]") {
  index_server_config config;
  config.users = 250;
  config.tls = true;
  config.tls_subject_alt_names = "DNS:other.example";
  index_server server(config);
  warning_log warnings;
  auto options = fast_options(server, warnings);
  options.insecure = true;
  const fetch_result result = tixport::fetch_user_index(options);
  check_generated_entries(result.entries, 250);
  REQUIRE(warnings.lines.size() == 1);
  CHECK(warnings.lines[0] == "user index: --insecure: the server's TLS certificate is not verified");
}

TEST_CASE("a bad --ca-file is an error", "[email_index_client]") {
  temp_dir dir;
  fetch_options options;
  options.users_url = "https://127.0.0.1:1/users";
  options.ca_file = dir.path() / "missing.pem";
  const auto error = fetch_error([&] { tixport::fetch_user_index(options); });
  CHECK(error.code() == exit_code::user_index_error);
  CHECK(std::string(error.what()).rfind("user index: --ca-file ", 0) == 0);
}

TEST_CASE("redact_url shows credential-looking parameters and passwords as ***", "[email_index_client]") {
  using tixport::redact_url;
  CHECK(redact_url("https://h.example/api/v2/users.json") == "https://h.example/api/v2/users.json");
  CHECK(redact_url("https://h/u?role=agent&page=2") == "https://h/u?role=agent&page=2");
  CHECK(redact_url("https://h/u?api_key=abc&role=agent") == "https://h/u?api_key=***&role=agent");
  CHECK(redact_url("https://h/u?Token=a&KEY=b&Secret=c&PassWord=d&ACCESS_TOKEN=e") ==
        "https://h/u?Token=***&KEY=***&Secret=***&PassWord=***&ACCESS_TOKEN=***");
  CHECK(redact_url("https://h/u?client_secret=a;apikey=b&x-amz-signature=c&sig=d&auth=e&author=f") ==
        "https://h/u?client_secret=***;apikey=***&x-amz-signature=***&sig=***&auth=***&author=f");
  CHECK(redact_url("https://h/u?api%5Fkey=abc") == "https://h/u?api%5Fkey=***");
  CHECK(redact_url("https://h/u?token") == "https://h/u?token");
  CHECK(redact_url("https://h/u?token=") == "https://h/u?token=***");
  CHECK(redact_url("https://h/u?a=1#access_token=xyz&state=s") == "https://h/u?a=1#access_token=***&state=s");
  CHECK(redact_url("https://h/u#token=xyz") == "https://h/u#token=***");
  CHECK(redact_url("https://agent:Pa55@h:8443/u?key=k") == "https://agent:***@h:8443/u?key=***");
  CHECK(redact_url("https://agent@h/u") == "https://agent@h/u");
  CHECK(redact_url("http://h/p@th?q=1") == "http://h/p@th?q=1");
  CHECK(redact_url("") == "");
}
