// File: cli_users_api_test.cpp
//
// End to end through the CLI against the in-process test index server:
// `fetch-users`, `run --users-url` with and without `--users-cache`, and the
// exit codes of SPEC 1.3 / 2.7 when the index cannot be had.
#include <catch2/catch.hpp>

#include "support/test_index_server.hpp"

#include <algorithm>
#include "support/test_support.hpp"

using tixport::test::index_server;
using tixport::test::index_server_config;
using tixport::test::read_archive;
using tixport::test::read_file;
using tixport::test::run_command;
using tixport::test::sh_quote;
using tixport::test::temp_dir;
using tixport::test::write_file;

namespace {

constexpr const char* kSecret = "s3cr3t-token-value";

const std::string kExport = tixport::test::export_csv(
    "2021-01-01 00:00:00,5,1,10,1,hello,2021-01-01 00:00:00,5,Known,USER7@example.org\n"
    "2021-01-01 00:00:00,5,2,10,1,reply,2021-01-01 00:00:01,6,New,new@x.org\n");

std::string cli(const std::string& args) {
  return "TIXPORT_API_USER=agent TIXPORT_API_TOKEN=" + std::string(kSecret) + " " + tixport::test::tixport_command(args);
}

index_server_config server_config() {
  index_server_config config;
  config.users = 250;
  config.expected_authorization = "Basic YWdlbnQ6czNjcjN0LXRva2VuLXZhbHVl";  // agent:s3cr3t-token-value
  return config;
}

}  // namespace

TEST_CASE("fetch-users saves the index as id,email, the secret is never printed (SPEC 1.3)",
          "[cli_users_api][parallel]") {
  temp_dir dir;
  index_server server(server_config());
  const auto r = run_command(cli("fetch-users --users-url " + sh_quote(server.url()) + " --output " +
                                 sh_quote(dir / "users.csv")),
                             dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string csv = read_file(dir / "users.csv");
  CHECK(csv.rfind("id,email\n1000,user0@example.org\n1001,user1@example.org\n", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 251);
  CHECK(r.err.find(kSecret) == std::string::npos);
  CHECK(r.out.find(kSecret) == std::string::npos);
  CHECK(server.requests(1) == 1);
  CHECK(server.requests(3) == 1);
}

TEST_CASE("run --users-url resolves users through the API, --users-cache reuses the saved index (SPEC 1.3)",
          "[cli_users_api][parallel]") {
  temp_dir dir;
  write_file(dir / "chat.csv", kExport);
  const std::string base = "run --input " + sh_quote(dir / "chat.csv") + " --no-progress --users-cache " +
                           sh_quote(dir / "cache.csv") + " --report " + sh_quote(dir / "report.json");
  std::string first;
  {
    index_server server(server_config());
    const auto r = run_command(cli(base + " --users-url " + sh_quote(server.url()) + " --output " +
                                   sh_quote(dir / "a.tar")),
                               dir.path());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find(kSecret) == std::string::npos);
    CHECK(read_file(dir / "report.json").find(kSecret) == std::string::npos);
    const auto entries = read_archive(dir / "a.tar");
    REQUIRE(entries.size() == 1);
    first = entries[0].data;
    CHECK(first.find(R"({"name":"Known","id":1007,"email":"USER7@example.org"})") != std::string::npos);
    CHECK(first.find(R"({"name":"New","id":6,"email":"new@x.org"})") != std::string::npos);
    CHECK(first.find(R"("requester_id":1007,"id":10})") != std::string::npos);
    REQUIRE(std::filesystem::exists(dir / "cache.csv"));
  }
  // The server is gone: the cache alone gives the same archive.
  const auto cached = run_command(cli(base + " --users-url http://127.0.0.1:9/users.json --output " +
                                      sh_quote(dir / "b.tar")),
                                  dir.path());
  INFO(cached.err);
  REQUIRE(cached.exit_code == 0);
  CHECK(read_archive(dir / "b.tar")[0].data == first);
  // --refresh-users must fetch, and the server is gone: exit 4, no archive.
  const auto refreshed = run_command(cli(base + " --refresh-users --retries 0 --timeout 2 --users-url "
                                                "http://127.0.0.1:9/users.json --output " +
                                         sh_quote(dir / "c.tar")),
                                     dir.path());
  CHECK(refreshed.exit_code == 4);
  CHECK_FALSE(std::filesystem::exists(dir / "c.tar"));
}

TEST_CASE("run --users-url: refused credentials stop the run with exit 4 (SPEC 1.3, 2.7)",
          "[cli_users_api][parallel]") {
  temp_dir dir;
  write_file(dir / "chat.csv", kExport);
  index_server_config config = server_config();
  config.expected_authorization = "Basic c29tZWJvZHk6ZWxzZQ==";
  index_server server(config);
  const auto r = run_command(cli("run --input " + sh_quote(dir / "chat.csv") + " --no-progress --users-url " +
                                 sh_quote(server.url()) + " --output " + sh_quote(dir / "a.tar")),
                             dir.path());
  CHECK(r.exit_code == 4);
  CHECK(r.err.find("credentials") != std::string::npos);
  CHECK(r.err.find(kSecret) == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "a.tar"));
}
