// File: cli_safety_test.cpp
//
// Through the CLI, what keeps a user from losing data without noticing: secrets in URLs shown
// as ***, `run` and `verify` agreeing on objects too large for a batch file, the warnings for
// results that are almost certainly not what was meant, and what `fetch-users` skipped.
#include <catch2/catch.hpp>

#include "support/test_index_server.hpp"
#include "support/test_support.hpp"

#include <string>

using tixport::test::index_server;
using tixport::test::index_server_config;
using tixport::test::read_file;
using tixport::test::run_tixport;
using tixport::test::sh_quote;
using tixport::test::temp_dir;
using tixport::test::write_file;

namespace {

using tixport::test::kExportHeader;

/// A row of ticket 10 (requester 5): comment `id` by author 5 with `body` (written as given).
std::string row(int id, const std::string& body, const std::string& name = "Ann") {
  return "2021-01-01 00:00:00,5," + std::to_string(id) + ",10,true," + body + ",2021-01-01 00:00:01,5," + name +
         ",ann@x.org\n";
}

std::string run_args(const temp_dir& dir, const std::string& extra) {
  return "run --no-progress --input " + sh_quote((dir / "chat.csv").string()) + " --output " +
         sh_quote((dir / "out.tar").string()) + " --report " + sh_quote((dir / "report.json").string()) + " " + extra;
}

/// Lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    if (text.compare(pos, prefix.size(), prefix) == 0) out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("a secret in the users URL's query is shown as *** in the summary, the report and errors",
          "[cli_safety][parallel]") {
  temp_dir dir;
  write_file(dir / "chat.csv", std::string(kExportHeader) + row(1, "hello"));
  index_server_config config;
  config.users = 150;
  index_server server(config);
  const std::string secret = "Sup3rS3cret";
  const std::string url = server.url() + "?role=agent&API_KEY=" + secret + "&access_token=" + secret + "2";

  SECTION("run --users-url: summary and report") {
    const auto r = run_tixport(run_args(dir, "--users-url " + sh_quote(url)), dir.path());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const std::string report = read_file(dir / "report.json");
    for (const std::string& text : {r.err, r.out, report}) CHECK(text.find(secret) == std::string::npos);
    CHECK(r.err.find("?role=agent&API_KEY=***&access_token=***") != std::string::npos);
    CHECK(report.find(R"("index_source":")" + server.url() + R"(?role=agent&API_KEY=***&access_token=***")") !=
          std::string::npos);
  }
  SECTION("run --users-cache: the cache's source names the URL redacted") {
    const std::string args = "--users-cache " + sh_quote((dir / "cache.csv").string()) + " --users-url " + sh_quote(url);
    REQUIRE(run_tixport(run_args(dir, args), dir.path()).exit_code == 0);
    const auto r = run_tixport(run_args(dir, args), dir.path());
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("(cache of " + server.url() + "?role=agent&API_KEY=***&access_token=***)") != std::string::npos);
    CHECK(read_file(dir / "report.json").find(secret) == std::string::npos);
  }
  SECTION("fetch-users: summary") {
    const auto r = run_tixport("fetch-users --users-url " + sh_quote(url) + " --output " +
                                   sh_quote((dir / "users.csv").string()),
                               dir.path());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find(secret) == std::string::npos);
    CHECK(r.err.find("API_KEY=***") != std::string::npos);
  }
  SECTION("errors: a refused URL, and a page that fails") {
    const auto refused = run_tixport("fetch-users --users-url " +
                                         sh_quote("https://agent:" + secret + "@example.org/u?token=" + secret) +
                                         " --output " + sh_quote((dir / "users.csv").string()),
                                     dir.path());
    CHECK(refused.exit_code == 4);
    CHECK(refused.err.find(secret) == std::string::npos);
    CHECK(refused.err.find("https://agent:***@example.org/u?token=***") != std::string::npos);
    const auto failed = run_tixport("fetch-users --retries 0 --users-url " +
                                        sh_quote("http://127.0.0.1:9/u?password=" + secret) + " --output " +
                                        sh_quote((dir / "users.csv").string()),
                                    dir.path());
    CHECK(failed.exit_code == 4);
    CHECK(failed.err.find(secret) == std::string::npos);
  }
}

TEST_CASE("a comment too large for a batch file: run skips and counts it, --strict fails, verify passes the "
          "archive",
          "[cli_safety]") {
  temp_dir dir;
  // 300,000 bytes of body: over the 256 KiB rule. The next row of the same id is valid and
  // wins (a rejected row never hides a later valid one); a too-large name gives no user.
  const std::string big(300000, 'x');
  write_file(dir / "chat.csv", std::string(kExportHeader) + row(1, "hello") + row(2, big) + row(2, "short") +
                                   row(3, "by a long name", big));
  write_file(dir / "users.csv", "id,email\n5,ann@x.org\n");
  const std::string users = "--users-file " + sh_quote((dir / "users.csv").string());

  const auto lax = run_tixport(run_args(dir, users), dir.path());
  INFO(lax.err);
  CHECK(lax.exit_code == 0);
  const auto strict = run_tixport(run_args(dir, users + " --strict"), dir.path());
  INFO(strict.err);
  CHECK(strict.exit_code == 1);
  const std::string report = read_file(dir / "report.json");
  CHECK(report.find(R"("comment_too_large":{"count":1,"sample_lines":[3]})") != std::string::npos);
  CHECK(report.find(R"("user_too_large":{"count":1,"sample_lines":[5]})") != std::string::npos);
  CHECK(report.find(R"("comments":3,)") != std::string::npos);
  CHECK(strict.err.find("tixport: warning: --strict: exit 1 because of comment_too_large 1 (line 3); "
                        "user_too_large 1 (line 5)") != std::string::npos);

  const auto verified = run_tixport("verify " + sh_quote((dir / "out.tar").string()) + " " + users, dir.path());
  INFO(verified.out << verified.err);
  CHECK(verified.exit_code == 0);
}

TEST_CASE("warnings: an index that keeps almost nothing, an export without a valid row, a failed --strict",
          "[cli_safety]") {
  temp_dir dir;
  const std::string users = "--users-file " + sh_quote((dir / "users.csv").string());

  SECTION("a clean run warns about nothing") {
    write_file(dir / "chat.csv", std::string(kExportHeader) + row(1, "hello"));
    write_file(dir / "users.csv", "id,email\n5,ann@x.org\n");
    const auto r = run_tixport(run_args(dir, users + " --strict"), dir.path());
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("warning") == std::string::npos);
    CHECK(read_file(dir / "report.json").find(R"("warnings":[])") != std::string::npos);
  }
  SECTION("an index of garbage keeps no entry") {
    write_file(dir / "chat.csv", std::string(kExportHeader) + row(1, "hello"));
    std::string garbage = "id,email\n";
    for (int i = 0; i < 100; ++i) garbage += "user" + std::to_string(i) + ",not an id\n";
    write_file(dir / "users.csv", garbage);
    const auto r = run_tixport(run_args(dir, users), dir.path());
    CHECK(r.exit_code == 0);
    const auto warnings = lines_starting(r.err, "tixport: warning: ");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0] == "tixport: warning: the user index " + (dir / "users.csv").string() +
                             " kept none of its 100 entries (skipped: 100 invalid id, 0 invalid email, 0 duplicate "
                             "email, 0 duplicate id): every user is new; is it the right file, with columns id,email?");
    CHECK(read_file(dir / "report.json").find(R"("warnings":["the user index )") != std::string::npos);
  }
  SECTION("an index that keeps under 1% of its entries") {
    write_file(dir / "chat.csv", std::string(kExportHeader) + row(1, "hello"));
    std::string index = "id,email\n1,one@x.org\n";
    for (int i = 0; i < 150; ++i) index += std::to_string(1000 + i) + ",\n";
    write_file(dir / "users.csv", index);
    const auto r = run_tixport(run_args(dir, users), dir.path());
    const auto warnings = lines_starting(r.err, "tixport: warning: ");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("kept only 1 of its 151 entries (skipped: 0 invalid id, 150 invalid email") !=
          std::string::npos);
  }
  SECTION("an index that keeps 1% gives no warning") {
    write_file(dir / "chat.csv", std::string(kExportHeader) + row(1, "hello"));
    std::string index = "id,email\n1,one@x.org\n";
    for (int i = 0; i < 99; ++i) index += std::to_string(1000 + i) + ",\n";
    write_file(dir / "users.csv", index);
    const auto r = run_tixport(run_args(dir, users), dir.path());
    CHECK(lines_starting(r.err, "tixport: warning: ").empty());
  }
  SECTION("no row is a valid comment or ticket row, and --strict fails") {
    write_file(dir / "chat.csv", std::string(kExportHeader) +
                                     "yesterday,5,1,10,true,hi,yesterday,5,Ann,ann@x.org\n"
                                     "2021-01-01 00:00:00,5,x,y,true,hi\n"
                                     "yesterday,5,2,10,true,hi,yesterday,5,Ann,ann@x.org\n");
    write_file(dir / "users.csv", "id,email\n5,ann@x.org\n");
    const auto r = run_tixport(run_args(dir, users + " --strict"), dir.path());
    CHECK(r.exit_code == 1);
    const auto warnings = lines_starting(r.err, "tixport: warning: ");
    REQUIRE(warnings.size() == 2);
    CHECK(warnings[0] ==
          "tixport: warning: none of the export's 3 rows is a valid comment or ticket row: the archive holds no "
          "ticket and no comment; rejected by: malformed_record 1 (line 3); comment_invalid_created_at 2 (lines 2, "
          "4); ticket_invalid_created_at 2 (lines 2, 4)");
    CHECK(warnings[1] ==
          "tixport: warning: --strict: exit 1 because of malformed_record 1 (line 3); comment_invalid_created_at 2 "
          "(lines 2, 4); ticket_invalid_created_at 2 (lines 2, 4)");
  }
  SECTION("--strict names at most 5 lines a count") {
    std::string csv(kExportHeader);
    for (int i = 0; i < 8; ++i) csv += row(i, "\"\"");  // a quoted empty body: comment_null_body
    write_file(dir / "chat.csv", csv + row(100, "ok"));
    write_file(dir / "users.csv", "id,email\n5,ann@x.org\n");
    const auto r = run_tixport(run_args(dir, users + " --strict"), dir.path());
    CHECK(r.exit_code == 1);
    const auto warnings = lines_starting(r.err, "tixport: warning: ");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0] == "tixport: warning: --strict: exit 1 because of comment_null_body 8 (lines 2, 3, 4, 5, 6, ...)");
  }
}

TEST_CASE("fetch-users says how many index entries it skipped and why (SPEC 1.2)", "[cli_safety][parallel]") {
  temp_dir dir;
  index_server_config config;
  config.raw_users = std::vector<std::string>{
      R"({"id":5,"email":"Five@Example.org"})", R"({"id":"6","email":"six@example.org"})",
      R"({"id":7,"email":null})",             R"({"id":8,"email":"not-an-email"})",
      R"({"id":9.5,"email":"x@y"})",          R"({"id":5,"email":"other@example.org"})",
      R"({"id":11,"email":" FIVE@example.org "})"};
  index_server server(config);
  const auto r = run_tixport("fetch-users --users-url " + sh_quote(server.url()) + " --output " +
                                 sh_quote((dir / "users.csv").string()),
                             dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("  index 7 entries (1 kept; skipped: 2 invalid id, 2 invalid email, 1 duplicate email, "
                   "1 duplicate id)") != std::string::npos);
  CHECK(lines_starting(r.err, "tixport: warning: ").empty());

  SECTION("an index that keeps nothing warns") {
    index_server_config empty;
    empty.raw_users = std::vector<std::string>{R"({"id":"a","email":"a@x.org"})", R"({"id":2,"email":null})"};
    index_server bad(empty);
    const auto w = run_tixport("fetch-users --users-url " + sh_quote(bad.url()) + " --output " +
                                   sh_quote((dir / "users.csv").string()),
                               dir.path());
    REQUIRE(w.exit_code == 0);
    const auto warnings = lines_starting(w.err, "tixport: warning: ");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("kept none of its 2 entries (skipped: 1 invalid id, 1 invalid email") != std::string::npos);
  }
}

TEST_CASE("fresh user ids that would pass the int64 maximum stop the run with exit 2 and nothing written",
          "[cli]") {
  temp_dir dir;
  // The largest id seen is int64 max - 1 (a requester); three users share AUTHOR_ID 5, so
  // the second takes max and the third has no fresh id left.
  write_file(dir / "chat.csv", std::string(kExportHeader) +
                                   "2021-01-01 00:00:00,9223372036854775806,1,100,true,a,2021-01-01 00:00:00,5,A,a@x.org\n"
                                   "2021-01-01 00:00:00,7,2,100,true,b,2021-01-01 00:00:00,5,B,b@x.org\n"
                                   "2021-01-01 00:00:00,7,3,100,true,c,2021-01-01 00:00:00,5,C,c@x.org\n");
  write_file(dir / "users.csv", "id,email\n");
  const auto r = run_tixport("run --no-progress --input " + sh_quote(dir / "chat.csv") + " --users-file " +
                                 sh_quote(dir / "users.csv") + " --output " + sh_quote(dir / "out.tar"),
                             dir.path());
  CHECK(r.exit_code == 2);
  INFO(r.err);
  CHECK(r.err.find("no fresh user id left: fresh ids have reached the int64 maximum (9223372036854775807)") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "out.tar"));
}
