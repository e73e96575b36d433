// File: refresh_generator_test.cpp
//
// `generate --append-to`: the old export's bytes, then new rows that a rerun
// reads on its appended path; the same bytes for the same base and seed.
#include <catch2/catch.hpp>

#include "support/test_support.hpp"
#include "tixport/generate/refresh_generator.hpp"
#include "tixport/generate/sample_generator.hpp"

namespace {

namespace fs = std::filesystem;
using tixport::test::read_file;
using tixport::test::run_tixport;
using tixport::test::sh_quote;

}  // namespace

TEST_CASE("a refresh keeps the old bytes, adds the rows asked for, and depends only on base and seed",
          "[refresh_generator]") {
  tixport::test::temp_dir dir;
  tixport::generate_options gen;
  gen.rows = 3000;
  gen.output = dir / "trial.csv";
  gen.users_output = dir / "users.csv";
  gen.seed = 5;
  tixport::generate_sample(gen);
  const std::string trial = read_file(dir / "trial.csv");

  tixport::refresh_options opt;
  opt.base = dir / "trial.csv";
  opt.output = dir / "refresh.csv";
  opt.rows = 700;
  opt.seed = 9;
  opt.threads = 1;
  const tixport::refresh_stats s = tixport::generate_refresh(opt);
  const std::string refresh = read_file(dir / "refresh.csv");
  CHECK(s.rows == 700);
  CHECK(s.base_bytes == trial.size());
  CHECK(s.bytes == refresh.size());
  CHECK(refresh.compare(0, trial.size(), trial) == 0);
  CHECK(s.messages_in_old > 0);
  CHECK(s.new_conversations > 0);
  CHECK(s.new_customers > 0);
  CHECK(s.duplicate_rows > 0);
  CHECK(s.messages_in_old + s.duplicate_rows + s.users_gaining_email <= s.rows);

  opt.output = dir / "again.csv";
  opt.threads = 4;
  tixport::generate_refresh(opt);
  CHECK(read_file(dir / "again.csv") == refresh);
  opt.seed = 10;
  opt.output = dir / "other.csv";
  tixport::generate_refresh(opt);
  CHECK(read_file(dir / "other.csv") != refresh);
}

TEST_CASE("generate --append-to through the CLI, then a rerun on the appended path", "[refresh_generator]") {
  tixport::test::temp_dir dir;
  REQUIRE(run_tixport("generate --rows 2000 --seed 3 --output " + sh_quote(dir / "trial.csv") + " --users-output " +
                          sh_quote(dir / "users.csv"),
                      dir.path())
              .exit_code == 0);
  const auto gen = run_tixport("generate --append-to " + sh_quote(dir / "trial.csv") + " --rows 300 --output " +
                                   sh_quote(dir / "refresh.csv"),
                               dir.path());
  REQUIRE(gen.exit_code == 0);
  CHECK(gen.err.find("+ 300 rows") != std::string::npos);
  const auto both = run_tixport("generate --append-to " + sh_quote(dir / "trial.csv") + " --rows 3 --output " +
                                    sh_quote(dir / "x.csv") + " --users-output " + sh_quote(dir / "u2.csv"),
                                dir.path());
  CHECK(both.exit_code == 2);

  const std::string run = "run --no-progress --users-file " + sh_quote(dir / "users.csv");
  REQUIRE(run_tixport(run + " --input " + sh_quote(dir / "trial.csv") + " --output " + sh_quote(dir / "a.tar") +
                          " --ledger " + sh_quote(dir / "l"),
                      dir.path())
              .exit_code == 0);
  const auto delta = run_tixport(run + " --input " + sh_quote(dir / "refresh.csv") + " --output " +
                                     sh_quote(dir / "b.tar") + " --since " + sh_quote(dir / "l") + " --ledger " +
                                     sh_quote(dir / "l"),
                                 dir.path());
  CHECK(delta.exit_code == 0);
  CHECK(delta.err.find("appended path") != std::string::npos);
  CHECK_FALSE(tixport::test::read_archive(dir / "b.tar").empty());
}
