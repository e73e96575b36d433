// File: progress_meter_test.cpp
//
// The progress line: its text (percent, amounts, rate, ETA), that a disabled
// meter prints nothing, and through the CLI on a pseudo-terminal (script(1)):
// drawn for TERM=xterm, never for TERM=dumb, --quiet-like --no-progress or a pipe.
#include <catch2/catch.hpp>

#include "support/test_index_server.hpp"
#include "support/test_support.hpp"
#include "tixport/common/progress_meter.hpp"

#include <cstdio>

namespace {

using tixport::progress_meter;
using tixport::progress_unit;
using tixport::test::run_command;
using tixport::test::sh_quote;

std::string drawn(bool enabled) {
  std::FILE* f = std::tmpfile();
  {
    progress_meter meter(enabled, f);
    meter.update("reading", 50, 100, progress_unit::items, "note", true);
  }
  std::rewind(f);
  std::string text;
  for (int c = std::fgetc(f); c != EOF; c = std::fgetc(f)) text += static_cast<char>(c);
  std::fclose(f);
  return text;
}

}  // namespace

TEST_CASE("progress_meter: the line says stage, done of total, rate and time left", "[progress_meter]") {
  CHECK(progress_meter::format("reading", 250'000'000, 1'000'000'000, progress_unit::bytes, 2.0, "9 rows") ==
        "reading  25.0%  250.0 MB of 1000.0 MB  125.0 MB/s  ETA 0:06  9 rows");
  CHECK(progress_meter::format("writing batches", 10, 40, progress_unit::items, 5.0, "") ==
        "writing batches  25.0%  10 of 40  2/s  ETA 0:15");
  CHECK(progress_meter::format("fetching pages", 7, 0, progress_unit::items, 1.0, "1 retry") ==
        "fetching pages  7  7/s  1 retry");  // total unknown: no percent, no ETA
  CHECK(progress_meter::format("slow", 1, 10000, progress_unit::items, 1.0, "") ==
        "slow   0.0%  1 of 10000  1/s  ETA 2:46:39");
  CHECK(progress_meter::format("start", 0, 10, progress_unit::items, 0.0, "") == "start   0.0%  0 of 10");
}

TEST_CASE("progress_meter: drawn in place when enabled, nothing at all when not", "[progress_meter]") {
  const std::string on = drawn(true);
  CHECK(on.rfind("\r\033[Kreading  50.0%  50 of 100", 0) == 0);
  CHECK(on.size() >= 4);
  CHECK(on.substr(on.size() - 4) == "\r\033[K");  // cleared when done
  CHECK(drawn(false).empty());
}

TEST_CASE("run on a terminal shows progress, TERM=dumb, --no-progress and a pipe do not", "[progress_meter]") {
  tixport::test::temp_dir dir;
  REQUIRE(tixport::test::run_tixport("generate --rows 2000 --output " + sh_quote(dir / "c.csv") + " --users-output " +
                                         sh_quote(dir / "u.csv"),
                                     dir.path())
              .exit_code == 0);
  const std::string cmd = tixport::test::tixport_command("run --input " + sh_quote(dir / "c.csv") + " --users-file " +
                                                        sh_quote(dir / "u.csv") + " --output " + sh_quote(dir / "o.tar"));
  // script(1) runs the command on a pseudo-terminal; its own stdout is the captured file.
  const auto on_tty = [&](const std::string& env, const std::string& extra) {
    return run_command(env + " script -qec " + sh_quote(cmd + extra) + " /dev/null", dir.path());
  };
  const auto xterm = on_tty("TERM=xterm", "");
  REQUIRE(xterm.exit_code == 0);
  CHECK(xterm.out.find("\r\033[Kreading") != std::string::npos);
  CHECK(xterm.out.find("tixport run:") != std::string::npos);  // the summary still comes
  CHECK(on_tty("TERM=dumb", "").out.find("\033[K") == std::string::npos);
  CHECK(on_tty("TERM=xterm", " --no-progress").out.find("\033[K") == std::string::npos);
  const auto piped = run_command("TERM=xterm " + cmd, dir.path());
  CHECK(piped.err.find("\033[K") == std::string::npos);
}

TEST_CASE("fetch-users on a terminal: pages done of total, retries, and rate-limit waits", "[progress_meter]") {
  tixport::test::temp_dir dir;
  tixport::test::index_server_config config;
  config.users = 1000;
  config.every_nth_429 = 4;
  config.retry_after = "1";
  tixport::test::index_server server(config);
  const std::string cmd = tixport::test::tixport_command("fetch-users --concurrency 1 --users-url " +
                                                        sh_quote(server.url()) + " --output " + sh_quote(dir / "users.csv"));
  const auto r = run_command("TERM=xterm script -qec " + sh_quote(cmd + " --verbose") + " /dev/null", dir.path());
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("fetching pages") != std::string::npos);
  CHECK(r.out.find("of 10") != std::string::npos);
  CHECK(r.out.find("rate limited, waiting 1.0 s") != std::string::npos);
  CHECK(r.out.find("page failed, retry 1: rate limited") != std::string::npos);  // --verbose logs each
}

TEST_CASE("quiet (-q): no progress and no summary, only the exit code (and errors)", "[progress_meter]") {
  tixport::test::temp_dir dir;
  const auto gen = tixport::test::run_tixport("generate -q --rows 500 --output " + sh_quote(dir / "c.csv") +
                                                  " --users-output " + sh_quote(dir / "u.csv"),
                                              dir.path());
  CHECK(gen.exit_code == 0);
  CHECK(gen.err.empty());
  const auto run = tixport::test::run_tixport("run -q --input " + sh_quote(dir / "c.csv") + " --users-file " +
                                                  sh_quote(dir / "u.csv") + " --output " + sh_quote(dir / "o.tar"),
                                              dir.path());
  CHECK(run.exit_code == 0);
  CHECK(run.err.empty());
  const auto verify = tixport::test::run_tixport("verify -q " + sh_quote(dir / "o.tar"), dir.path());
  CHECK(verify.out.empty());
  CHECK(verify.err.empty());
  const auto bad = tixport::test::run_tixport("run -q --input " + sh_quote(dir / "missing.csv") + " --users-file " +
                                                  sh_quote(dir / "u.csv") + " --output " + sh_quote(dir / "o.tar"),
                                              dir.path());
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("tixport: error:") != std::string::npos);  // errors still speak
  const auto both = tixport::test::run_tixport("run -q -v --input " + sh_quote(dir / "c.csv") + " --users-file " +
                                                   sh_quote(dir / "u.csv") + " --output " + sh_quote(dir / "o.tar"),
                                               dir.path());
  CHECK(both.exit_code == 2);
}
