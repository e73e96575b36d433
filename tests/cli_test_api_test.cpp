// File: cli_test_api_test.cpp
//
// tixport_test_api (scripts/serve-test-api): the tests' fake users API as a program. A user
// starts it on 127.0.0.1, and `tixport fetch-users` and `run --users-url` work against it.
//
//   ./tixport_tests "[cli_test_api]"
#include <catch2/catch.hpp>

#include "support/test_support.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tixport::test::read_file;
using tixport::test::run_command;
using tixport::test::run_tixport;
using tixport::test::sh_quote;
using tixport::test::temp_dir;
using tixport::test::write_file;

namespace {

/// tixport_test_api started in the background with `args`; stopped (SIGTERM) on destruction.
class test_api {
 public:
  test_api(const temp_dir& dir, const std::string& args) : out_(dir / "api.out") {
    const auto r = run_command("{ " + sh_quote(TIXPORT_TEST_API_PATH) + " " + args + " >" + sh_quote(out_) +
                                   " 2>&1 & } ; echo $!",
                               dir.path());
    REQUIRE(r.exit_code == 0);
    pid_ = std::stoi(r.out);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (read_file(out_).find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    first_line_ = read_file(out_);
    first_line_ = first_line_.substr(0, first_line_.find('\n'));
  }
  ~test_api() {
    ::kill(pid_, SIGTERM);
    // Not our child (the shell started it): wait until it has exited, and with it its
    // listening socket. A zombie has exited: where init does not reap it soon (or at all, in
    // some containers) kill(pid, 0) still succeeds. The bound is a hang's, not a pace: a
    // test that went on after 5 s found the server still answering on a loaded machine.
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (!exited() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  }
  test_api(const test_api&) = delete;
  test_api& operator=(const test_api&) = delete;

  /// "serving N users at URL (...)"
  [[nodiscard]] const std::string& banner() const { return first_line_; }
  /// The URL from the banner.
  [[nodiscard]] std::string url() const {
    const std::size_t at = first_line_.find(" at ");
    return at == std::string::npos ? "" : first_line_.substr(at + 4, first_line_.find(' ', at + 4) - at - 4);
  }
  /// True while the process runs: a zombie (it exited, nobody reaped it yet) does not.
  [[nodiscard]] bool running() const { return !exited(); }
  /// True once the process has exited: gone, or a zombie (state Z in /proc/<pid>/stat).
  [[nodiscard]] bool exited() const {
    if (::kill(pid_, 0) != 0) return true;
    const std::string stat = read_file("/proc/" + std::to_string(pid_) + "/stat");
    const std::size_t name_end = stat.rfind(')');
    return name_end == std::string::npos || (name_end + 2 < stat.size() && stat[name_end + 2] == 'Z');
  }
  [[nodiscard]] std::string output() const { return read_file(out_); }

 private:
  fs::path out_;
  int pid_ = -1;
  std::string first_line_;
};

}  // namespace

TEST_CASE("tixport_test_api serves an id,email CSV that fetch-users saves back", "[cli_test_api]") {
  temp_dir dir;
  write_file(dir / "users.csv", "id,email\n7,a@x.org\n8,\n9,\"B,\"\"b\"\"@x.org\"\nbad,c@x.org\n");
  std::string url;
  {
    test_api api(dir, "--port 0 --users " + sh_quote(dir / "users.csv") + " --page-size 2");
    INFO(api.output());
    REQUIRE(api.banner().rfind("serving 3 users at http://127.0.0.1:", 0) == 0);
    url = api.url();
    REQUIRE(url.ends_with("/api/v2/users.json"));
    const auto r = run_tixport("fetch-users --users-url " + sh_quote(url) + " --output " + sh_quote(dir / "got.csv"),
                               dir.path());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(read_file(dir / "got.csv") == "id,email\n7,a@x.org\n8,\n9,\"B,\"\"b\"\"@x.org\"\n");
    CHECK(r.err.find("pages 2, users 3") != std::string::npos);

    // run --users-url against it: the export's user a@x.org is matched to index id 7.
    write_file(dir / "chat.csv", tixport::test::export_csv(
                                     "2021-01-01 00:00:00,5,1,10,true,hello,2021-01-01 00:00:01,5,Ann,A@x.org\n"));
    const auto run = run_tixport("run --input " + sh_quote(dir / "chat.csv") + " --users-url " + sh_quote(url) +
                                     " --output " + sh_quote(dir / "out.tar") + " --report -",
                                 dir.path());
    INFO(run.err);
    REQUIRE(run.exit_code == 0);
    CHECK(run.out.find("\"users\":{\"total\":1,\"matched\":1,\"new\":0}") != std::string::npos);
    CHECK(api.running());
  }
  // Stopped by SIGTERM: nothing listens there any more.
  const auto gone = run_tixport("fetch-users --retries 0 --timeout 2 --users-url " + sh_quote(url) + " --output " +
                                    sh_quote(dir / "again.csv"),
                                dir.path());
  CHECK(gone.exit_code == 4);
}

TEST_CASE("tixport_test_api: generated users, faults, basic auth, https", "[cli_test_api]") {
  temp_dir dir;
  SECTION("generated users, 500s and 429s are retried") {
    test_api api(dir, "--port 0 --generate 250 --error-rate 0.2 --every-nth-429 3 --retry-after 0");
    INFO(api.output());
    REQUIRE(api.banner().rfind("serving 250 users at http://127.0.0.1:", 0) == 0);
    const auto r = run_tixport("fetch-users --users-url " + sh_quote(api.url()) + " --retries 20 --output " +
                                   sh_quote(dir / "got.csv"),
                               dir.path());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const std::string csv = read_file(dir / "got.csv");
    CHECK(csv.rfind("id,email\n1000,user0@example.org\n", 0) == 0);
    CHECK(csv.ends_with("1249,user249@example.org\n"));
  }
  SECTION("basic auth") {
    test_api api(dir, "--port 0 --generate 5 --auth me:s3cret");
    write_file(dir / "creds", "me:wrong\n");
    const auto refused = run_tixport("fetch-users --users-url " + sh_quote(api.url()) + " --auth-file " +
                                         sh_quote(dir / "creds") + " --output " + sh_quote(dir / "got.csv"),
                                     dir.path());
    CHECK(refused.exit_code == 4);
    write_file(dir / "creds", "me:s3cret\n");
    const auto ok = run_tixport("fetch-users --users-url " + sh_quote(api.url()) + " --auth-file " +
                                    sh_quote(dir / "creds") + " --output " + sh_quote(dir / "got.csv"),
                                dir.path());
    INFO(ok.err);
    CHECK(ok.exit_code == 0);
  }
  SECTION("https with its CA file") {
    test_api api(dir, "--port 0 --generate 5 --tls");
    INFO(api.output());
    REQUIRE(api.url().rfind("https://127.0.0.1:", 0) == 0);
    std::string out = api.output();
    const std::size_t at = out.find("CA certificate: ");
    REQUIRE(at != std::string::npos);
    const std::string ca = out.substr(at + 16, out.find(' ', at + 16) - at - 16);
    const auto r = run_tixport("fetch-users --users-url " + sh_quote(api.url()) + " --ca-file " + sh_quote(ca) +
                                   " --output " + sh_quote(dir / "got.csv"),
                               dir.path());
    INFO(r.err);
    CHECK(r.exit_code == 0);
  }
}
