// File: cli_conventions_test.cpp
//
// The command line as a user meets it, end to end through the built binary: what a
// bad export or index file is said to be (missing columns, compressed, binary, another
// separator), --help (defaults, examples, exit codes), one error prefix for every
// message, "did you mean", `--report -`, options that cannot apply to a run, and
// `verify --json`.
//
//   ./tixport_tests "[cli_conventions]"
#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <cstdlib>
#include <string>

namespace fs = std::filesystem;
using tixport::test::read_file;
using tixport::test::run_command;
using tixport::test::run_tixport;
using tixport::test::sh_quote;
using tixport::test::temp_dir;
using tixport::test::write_file;

namespace {

constexpr const char* kHeader =
    "TICKET_CREATED_AT,TICKET_REQUESTER_ID,COMMENT_PART_ID,CONVERSATION_ID,COMMENT_PUBLIC,BODY,"
    "COMMENT_CREATED_AT,AUTHOR_ID,NAME,EMAIL\n";

std::string small_export() {
  return std::string(kHeader) +
         "2021-01-01 00:00:00,5,1,10,true,hello,2021-01-01 00:00:01,5,Ann,ann@x.org\n"
         "2021-01-01 00:00:00,5,2,10,false,world,2021-01-01 00:00:02,6,Bob,bob@x.org\n";
}

bool has(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

/// `run` of `input` against `users` into dir/out.tar, with `extra` options.
tixport::test::command_result run_on(const temp_dir& dir, const fs::path& input, const fs::path& users,
                                     const std::string& extra = "") {
  return run_tixport("run --input " + sh_quote(input) + " --users-file " + sh_quote(users) + " --output " +
                         sh_quote(dir / "out.tar") + " " + extra,
                     dir.path());
}

}  // namespace

TEST_CASE("a bad export or index header: the file, every missing column, what was found, what the file is",
          "[cli_conventions]") {
  temp_dir dir;
  write_file(dir / "users.csv", "id,email\n1,a@x.org\n");
  write_file(dir / "chat.csv", small_export());

  SECTION("every missing column and the columns found") {
    write_file(dir / "few.csv", "TICKET_CREATED_AT,BODY,NAME,Extra\n");
    const auto r = run_on(dir, dir / "few.csv", dir / "users.csv");
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "tixport: error: input: " + (dir / "few.csv").string() +
                         ": header: missing columns TICKET_REQUESTER_ID, COMMENT_PART_ID, CONVERSATION_ID, "
                         "COMMENT_PUBLIC, COMMENT_CREATED_AT, AUTHOR_ID, EMAIL (7 of 10 required); found 4 columns: "
                         "\"TICKET_CREATED_AT\", \"BODY\", \"NAME\", \"Extra\"\n"));
    CHECK_FALSE(fs::exists(dir / "out.tar"));
  }
  SECTION("a gzip-compressed export") {
    REQUIRE(run_command("gzip -k " + sh_quote(dir / "chat.csv"), dir.path()).exit_code == 0);
    const auto r = run_on(dir, dir / "chat.csv.gz", dir / "users.csv");
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "input: " + (dir / "chat.csv.gz").string() + ": header: missing column"));
    CHECK(has(r.err, "the file is gzip-compressed"));
  }
  SECTION("a zstd-compressed export") {
    REQUIRE(run_command("zstd -q " + sh_quote(dir / "chat.csv"), dir.path()).exit_code == 0);
    const auto r = run_on(dir, dir / "chat.csv.zst", dir / "users.csv");
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "the file is zstd-compressed"));
  }
  SECTION("binary data") {
    std::string garbage;
    for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 7919) & 0xff);
    write_file(dir / "garbage.csv", garbage);
    const auto r = run_on(dir, dir / "garbage.csv", dir / "users.csv");
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "the file holds binary data"));
  }
  SECTION("a ;-separated export") {
    std::string semi = small_export();
    for (char& c : semi) c = c == ',' ? ';' : c;
    write_file(dir / "semi.csv", semi);
    const auto r = run_on(dir, dir / "semi.csv", dir / "users.csv");
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "(10 of 10 required); found 1 column: "));
    CHECK(has(r.err, "the header looks ';'-separated (10 of the 10 required names"));
  }
  SECTION("a tab-separated index file") {
    write_file(dir / "users.tsv", "id\temail\n1\ta@x.org\n");
    const auto r = run_on(dir, dir / "chat.csv", dir / "users.tsv");
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "tixport: error: user index: " + (dir / "users.tsv").string() +
                         ": header: missing columns id, email (2 of 2 required); found 1 column: \"id\\x09email\"; "
                         "the header looks tab-separated"));
  }
}
