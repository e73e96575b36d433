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

#include "support/test_support.hpp"

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

using tixport::test::kExportHeader;

std::string small_export() {
  return std::string(kExportHeader) +
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

TEST_CASE("help: every option's default, examples and exit codes for every command", "[cli_conventions]") {
  temp_dir dir;
  const auto run = run_tixport("run --help", dir.path());
  REQUIRE(run.exit_code == 0);
  for (const char* expected :
       {"--batch-size", "[default: 100]", "[default: offset]", "[default: 4194304]", "[default: 3]", "[default: 6]",
        "[default: all cores]", "[default: 16]", "[default: 30]", "[default: 5]", "[default: not sent; the server's, 100]",
        "(- for stdout)", "Examples:\n  tixport run --input chat.csv", "Exit codes:\n  0    done\n", "  130  interrupted"}) {
    INFO(expected);
    CHECK(has(run.out, expected));
  }
  for (const char* command : {"", "fetch-users ", "verify ", "generate ", "ledger ", "ledger show ", "completion "}) {
    const auto r = run_tixport(std::string(command) + "--help", dir.path());
    INFO(command);
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "Usage: tixport "));
    CHECK(has(r.out, "\nExamples:\n  tixport "));
    CHECK(has(r.out, "\nExit codes:\n  0    "));
  }
  CHECK(run_tixport("--version", dir.path()).out == "tixport 0.1.0\n");
}

TEST_CASE("every usage error reads 'tixport: error:' with a hint to --help, exit 2", "[cli_conventions]") {
  temp_dir dir;
  write_file(dir / "chat.csv", small_export());
  write_file(dir / "users.csv", "id,email\n");
  const std::string io = "--input " + sh_quote(dir / "chat.csv") + " --output " + sh_quote(dir / "out.tar");
  struct usage_case {
    std::string args;     // the command line after `tixport`
    std::string message;  // in the error line
    std::string help;     // the command whose --help the hint names
  };
  const std::vector<usage_case> cases = {
      {"run " + io + " --users-file users.csv --threads abc", "tixport: error: --threads: Value abc not in range 1 to 4096",
       "tixport run"},
      {"", "tixport: error: a command is required: run, fetch-users, verify, generate, ledger, completion", "tixport"},
      {"runn --input x", "tixport: error: unknown command 'runn' (did you mean 'run'?)", "tixport"},
      {"fetch-user --output x", "tixport: error: unknown command 'fetch-user' (did you mean 'fetch-users'?)", "tixport"},
      {"verfy x.tar", "(did you mean 'verify'?)", "tixport"},
      {"frobnicate", "tixport: error: unknown command 'frobnicate'; the commands are run, fetch-users", "tixport"},
      {"verify x.tar --jsn", "(did you mean --json?)", "tixport verify"},
      {"run " + io + " --users-file users.csv --thread 3", "(did you mean --threads?)", "tixport run"},
      {"run --output x.tar", "tixport: error: --input is required", "tixport run"},
      {"run " + io + " --users-file users.csv --batch-size 101", "--batch-size: Value 101 not in range 1 to 100",
       "tixport run"},
      {"run " + io + " --users-file users.csv --name-style pages", "--name-style", "tixport run"},
      {"completion fish", "fish not in {bash,zsh}", "tixport completion"},
      {"ledger", "tixport: error: ledger: a command is required: show, dump", "tixport ledger"},
      {"ledger shw x", "unknown command 'shw' for 'tixport ledger' (did you mean 'show'?)", "tixport ledger"},
  };
  for (const usage_case& c : cases) {
    INFO(c.args);
    const auto r = run_tixport(c.args, dir.path());
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.rfind("tixport: error: ", 0) == 0);
    CHECK(has(r.err, c.message));
    CHECK(has(r.err, "\nRun '" + c.help + " --help' for the options, examples and exit codes.\n"));
    CHECK_FALSE(fs::exists(dir / "out.tar"));
  }
}

TEST_CASE("options that cannot apply to this run are a usage error that says why", "[cli_conventions]") {
  temp_dir dir;
  write_file(dir / "chat.csv", small_export());
  write_file(dir / "users.csv", "id,email\n");
  write_file(dir / "creds", "u:p\n");
  const std::string in = "--input " + sh_quote(dir / "chat.csv") + " ";
  const std::string file = " --users-file " + sh_quote(dir / "users.csv");
  const std::string url = " --users-url http://127.0.0.1:1/users";
  const auto out = [&](const std::string& name) { return "--output " + sh_quote(dir / name); };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {out("a.tar") + file + " --gzip-level 9", "run: --gzip-level applies only to a .tar.gz or .tgz --output, not "},
      {out("a.tar.zst") + file + " --gzip-level 9", "--gzip-level applies only to a .tar.gz or .tgz --output"},
      {out("a.tar") + file + " --zstd-level 9", "run: --zstd-level applies only to a .tar.zst --output, not "},
      {out("a.tgz") + file + " --zstd-level 9", "--zstd-level applies only to a .tar.zst --output"},
      {out("a.tar") + file + " --users-cache c.csv", "run: --users-cache applies only with --users-url"},
      {out("a.tar") + file + " --refresh-users", "run: --refresh-users applies only with --users-url and --users-cache"},
      {out("a.tar") + url + " --refresh-users", "run: --refresh-users applies only with --users-url and --users-cache"},
      {out("a.tar") + file + " --page-size 10", "run: --page-size is a REST API option; it cannot apply with --users-file"},
      {out("a.tar") + file + " --concurrency 2", "run: --concurrency is a REST API option"},
      {out("a.tar") + file + " --pagination cursor", "run: --pagination is a REST API option"},
      {out("a.tar") + file + " --timeout 3", "run: --timeout is a REST API option"},
      {out("a.tar") + file + " --retries 1", "run: --retries is a REST API option"},
      {out("a.tar") + file + " --ca-file " + sh_quote(dir / "creds"), "run: --ca-file is a REST API option"},
      {out("a.tar") + file + " --insecure", "run: --insecure is a REST API option"},
      {out("a.tar") + file + " --auth-file " + sh_quote(dir / "creds"), "run: --auth-file is a REST API option"},
      {out("a.tar"), "run: give one of --users-file or --users-url"},
      {file.substr(1), "run: --output is required (unless --dry-run)"},
      {"--dry-run" + file + " --gzip-level 3", "run: --gzip-level does not apply with --dry-run"},
      {"--dry-run" + file + " --zstd-level 3", "run: --zstd-level does not apply with --dry-run"},
      {"--dry-run" + file + " --ledger l.ledger", "run: --ledger does not apply with --dry-run"},
      {out("a.tar") + file + " --report - --rejects -", "run: --report - and --rejects - cannot both write to stdout"},
  };
  for (const auto& [args, message] : cases) {
    INFO(args);
    const auto r = run_tixport("run " + in + args, dir.path());
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.rfind("tixport: error: " + std::string(message.rfind("run: ", 0) == 0 ? message : ""), 0) == 0);
    CHECK(has(r.err, message));
    CHECK(has(r.err, "Run 'tixport run --help'"));
  }
  CHECK(fs::is_empty(dir.path()) == false);
  CHECK_FALSE(fs::exists(dir / "a.tar"));
  CHECK_FALSE(fs::exists(dir / "c.csv"));
  // What does apply is accepted: the level of the format written, defaults given explicitly.
  for (const std::string& ok : {out("a.tar.gz") + file + " --gzip-level 9", out("a.tgz") + file + " --gzip-level 1",
                                out("a.tar.zst") + file + " --zstd-level 19", out("b.tar") + file}) {
    INFO(ok);
    CHECK(run_tixport("run " + in + ok, dir.path()).exit_code == 0);
  }
}

TEST_CASE("run --report - writes the JSON report to stdout, nothing else there", "[cli_conventions]") {
  temp_dir dir;
  write_file(dir / "chat.csv", small_export());
  write_file(dir / "users.csv", "id,email\n");
  const auto r = run_on(dir, dir / "chat.csv", dir / "users.csv", "--report -");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.rfind("{\"input\":", 0) == 0);
  CHECK(r.out.ends_with(",\"strict_problems\":false,\"exit_code\":0}\n"));
  CHECK(r.out.find('\n') == r.out.size() - 1);
  CHECK(has(r.err, "tixport run: "));  // the summary stays on stderr
  CHECK_FALSE(fs::exists(dir / "-"));
  // Written to a file it is the same report (but for the timings).
  const auto f = run_on(dir, dir / "chat.csv", dir / "users.csv", "--report " + sh_quote(dir / "report.json"));
  REQUIRE(f.exit_code == 0);
  const std::string file = read_file(dir / "report.json");
  CHECK(file.substr(0, file.find("\"stages\"")) == r.out.substr(0, r.out.find("\"stages\"")));
  // A stdout that cannot be written is an output error.
  const auto full = run_on(dir, dir / "chat.csv", dir / "users.csv", "--report - >/dev/full");
  CHECK(full.exit_code == 3);
  CHECK(has(full.err, "tixport: error: report: write: stdout: No space left on device"));
}

TEST_CASE("verify --json: one JSON object with the result", "[cli_conventions]") {
  temp_dir dir;
  write_file(dir / "chat.csv", small_export());
  write_file(dir / "users.csv", "id,email\n");
  REQUIRE(run_on(dir, dir / "chat.csv", dir / "users.csv").exit_code == 0);
  const auto ok = run_tixport("verify --json " + sh_quote(dir / "out.tar"), dir.path());
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.rfind("{\"archive\":" + std::string("\"") + (dir / "out.tar").string() +
                         "\",\"valid\":true,\"exit_code\":0,\"entries\":1,\"tickets\":1,\"comments\":2,\"users\":2,",
                     0) == 0);
  CHECK(ok.out.ends_with(",\"problems\":0,\"problems_by_kind\":{},\"first_problems\":[]}\n"));
  CHECK(ok.err.empty());

  // An archive with a misnamed entry and a dangling reference.
  fs::create_directories(dir / "bad");
  write_file(dir / "bad" / "notes.txt", "x");
  REQUIRE(run_command("tar -C " + sh_quote(dir / "bad") + " -cf " + sh_quote(dir / "bad.tar") + " notes.txt",
                      dir.path())
              .exit_code == 0);
  const auto bad = run_tixport("verify " + sh_quote(dir / "bad.tar") + " --json", dir.path());
  CHECK(bad.exit_code == 1);
  CHECK(has(bad.out, "\"valid\":false,\"exit_code\":1,\"entries\":1,"));
  CHECK(has(bad.out, "\"problems\":1,\"problems_by_kind\":{\"entry_name\":1},\"first_problems\":[{\"entry\":"
                     "\"notes.txt\",\"json_path\":\"\",\"kind\":\"entry_name\",\"message\":\""));
  CHECK(bad.out.ends_with("\"}]}\n"));
}
