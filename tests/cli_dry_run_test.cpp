// File: cli_dry_run_test.cpp
//
// `run --dry-run`: everything but the archive and the ledger. The report's
// counts are the real run's, nothing is written, and --strict still decides
// the exit code.
#include <catch2/catch.hpp>

#include "support/test_support.hpp"

#include <simdjson.h>

#include <fstream>
#include <map>

namespace {

namespace fs = std::filesystem;
using tixport::test::read_file;
using tixport::test::run_tixport;
using tixport::test::sh_quote;

}  // namespace

TEST_CASE("a dry run reports what the real run writes, and writes nothing", "[cli_dry_run]") {
  tixport::test::temp_dir dir;
  REQUIRE(run_tixport("generate --rows 3000 --seed 4 --output " + sh_quote(dir / "chat.csv") + " --users-output " +
                          sh_quote(dir / "users.csv"),
                      dir.path())
              .exit_code == 0);
  const std::string common = "run --no-progress --input " + sh_quote(dir / "chat.csv") + " --users-file " +
                             sh_quote(dir / "users.csv");
  const auto dry = run_tixport(common + " --dry-run --report " + sh_quote(dir / "dry.json"), dir.path());
  REQUIRE(dry.exit_code == 0);
  CHECK(dry.err.find("dry run, nothing written") != std::string::npos);
  const auto real = run_tixport(common + " --output " + sh_quote(dir / "out.tar") + " --report " +
                                    sh_quote(dir / "real.json"),
                                dir.path());
  REQUIRE(real.exit_code == 0);

  simdjson::dom::parser p1;
  simdjson::dom::parser p2;
  simdjson::padded_string dry_text(read_file(dir / "dry.json"));
  simdjson::padded_string real_text(read_file(dir / "real.json"));
  const simdjson::dom::element d = p1.parse(dry_text);
  const simdjson::dom::element r = p2.parse(real_text);
  CHECK(bool(d["dry_run"]));
  CHECK_FALSE(bool(r["dry_run"]));
  for (const char* key : {"rows", "comments", "tickets", "batches", "well_formed_rows"}) {
    INFO(key);
    CHECK(uint64_t(d[key]) == uint64_t(r[key]));
  }
  CHECK(uint64_t(d["users"]["total"]) == uint64_t(r["users"]["total"]));
  for (auto [name, value] : r["issues"].get_object()) {
    INFO(name);
    CHECK(uint64_t(d["issues"][name]["count"]) == uint64_t(value["count"]));
  }
  // Only the report and the real run's files: the dry run made no archive, no temp file.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"chat.csv", "dry.json", "out.tar", "real.json", "users.csv"});

  // --strict decides the exit code as in a real run (the sample has dangling references).
  CHECK(run_tixport(common + " --dry-run --strict", dir.path()).exit_code == 1);
  // A dry run writes no ledger: asking for one is a usage error.
  CHECK(run_tixport(common + " --dry-run --ledger " + sh_quote(dir / "l"), dir.path()).exit_code == 2);
  CHECK_FALSE(fs::exists(dir / "l"));
  CHECK(run_tixport(common, dir.path()).exit_code == 2);  // neither --output nor --dry-run
}

TEST_CASE("run --rejects lists every counted row: its counts equal the report's, per reason", "[cli_dry_run]") {
  tixport::test::temp_dir dir;
  REQUIRE(run_tixport("generate --rows 4000 --seed 8 --output " + sh_quote(dir / "chat.csv") + " --users-output " +
                          sh_quote(dir / "users.csv"),
                      dir.path())
              .exit_code == 0);
  {
    std::ofstream(dir / "chat.csv", std::ios::app) << "short,row\n";  // a malformed record for sure
  }
  const std::string common = "run --no-progress --input " + sh_quote(dir / "chat.csv") + " --users-file " +
                             sh_quote(dir / "users.csv");
  for (const std::string& mode : std::vector<std::string>{"--dry-run", "--output " + sh_quote(dir / "out.tar.zst")}) {
    INFO(mode);
    const auto r = run_tixport(common + " " + mode + " --rejects " + sh_quote(dir / "rejects.csv") + " --report " +
                                   sh_quote(dir / "report.json"),
                               dir.path());
    REQUIRE(r.exit_code == 0);
    const std::string csv = read_file(dir / "rejects.csv");
    REQUIRE(csv.rfind("line,reason,comment_id,conversation_id,author_id,requester_id,fields,expected_fields\n", 0) == 0);
    std::map<std::string, std::uint64_t> per_reason;
    std::uint64_t previous_line = 0;
    bool malformed_seen = false;
    std::size_t pos = csv.find('\n') + 1;
    while (pos < csv.size()) {
      const std::size_t end = csv.find('\n', pos);
      const std::string row = csv.substr(pos, end - pos);
      pos = end + 1;
      const std::size_t c1 = row.find(',');
      const std::size_t c2 = row.find(',', c1 + 1);
      const std::uint64_t line = std::stoull(row.substr(0, c1));
      CHECK(line >= previous_line);  // sorted by line
      previous_line = line;
      const std::string reason = row.substr(c1 + 1, c2 - c1 - 1);
      ++per_reason[reason];
      if (reason == "malformed_record") {
        malformed_seen = true;
        CHECK(row.substr(row.size() - 3) == ",10");  // found vs expected field counts
      }
    }
    CHECK(malformed_seen);
    simdjson::dom::parser parser;
    simdjson::padded_string text(read_file(dir / "report.json"));
    const simdjson::dom::element report = parser.parse(text);
    for (auto [name, value] : report["issues"].get_object()) {
      INFO(name);
      CHECK(per_reason[std::string(name)] == uint64_t(value["count"]));
    }
  }
  const auto to_stdout = run_tixport(common + " --dry-run --rejects -", dir.path());
  CHECK(to_stdout.exit_code == 0);
  CHECK(to_stdout.out == read_file(dir / "rejects.csv"));
  const auto clash = run_tixport(common + " --dry-run --rejects " + sh_quote(dir / "chat.csv"), dir.path());
  CHECK(clash.exit_code == 2);
}
