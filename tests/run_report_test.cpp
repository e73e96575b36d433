// File: run_report_test.cpp
//
// write_report_json's targets (SPEC 2.7 `--report FILE`): a regular file or a new path
// is replaced atomically by temp file + rename; a character device (/dev/null, /dev/full,
// a terminal), a FIFO or a symlink such as /dev/stdout is written through, so the node or
// link itself is never replaced. Unit cases call write_report_json directly; the CLI cases
// run the built binary with `--report /dev/stdout`, a FIFO and /dev/full.
//
//   ./tixport_tests "[run_report]"
#include <catch2/catch.hpp>

#include "tixport/common/errors.hpp"
#include "tixport/run/run_report.hpp"

#include "support/test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using tixport::test::read_file;
using tixport::test::run_tixport;
using tixport::test::sh_quote;
using tixport::test::temp_dir;
using tixport::test::write_file;

namespace {

const std::string kExport = tixport::test::export_csv(
    "2021-01-01 00:00:00,5,1,10,true,hello,2021-01-01 00:00:01,5,Ann,ann@x.org\n"
    "2021-01-01 00:00:00,5,2,10,false,world,2021-01-01 00:00:02,6,Bob,bob@x.org\n");

tixport::run_report sample_report() {
  tixport::run_report r;
  r.input = "chat.csv";
  r.output = "out.tar";
  r.index_source = "users.csv";
  r.rows = 2;
  r.comments = 2;
  r.tickets = 1;
  return r;
}

struct stat stat_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st;
}

/// Names in `dir` starting with `prefix` (the temp files write_report_json would leave).
std::vector<std::string> entries_starting_with(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

/// Everything written to the FIFO at `path` until its writer closes it, read on a thread.
/// The read end is opened without blocking and polled with a deadline, so a writer that never
/// comes fails the test instead of hanging it.
class fifo_reader {
 public:
  explicit fifo_reader(const fs::path& path)
      : fd_(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)), thread_([this] { read_all(); }) {}
  fifo_reader(const fifo_reader&) = delete;
  fifo_reader& operator=(const fifo_reader&) = delete;
  ~fifo_reader() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  /// Waits for the writer to close (or the deadline) and returns what it wrote.
  std::string take() {
    thread_.join();
    return data_;
  }

 private:
  static constexpr auto kDeadline = std::chrono::seconds(30);

  void read_all() {
    if (fd_ < 0) return;
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    char buf[4096];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      // Linux reports POLLHUP on a FIFO only once a writer has come and gone since our open.
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready <= 0) continue;
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n > 0) data_.append(buf, static_cast<std::size_t>(n));
      else if (n == 0) return;  // the writer closed
      else if (errno != EAGAIN && errno != EINTR) return;
    }
  }

  int fd_;
  std::string data_;
  std::thread thread_;
};

std::string run_line(const temp_dir& dir, const std::string& report) {
  return "run --no-progress --input " + sh_quote(dir / "chat.csv") + " --users-file " + sh_quote(dir / "users.csv") +
         " --output " + sh_quote(dir / "out.tar") + " --report " + sh_quote(report);
}

}  // namespace

TEST_CASE("report: a regular file is replaced by rename, a new path is created", "[run_report]") {
  temp_dir dir;
  const std::string expected = tixport::report_json(sample_report());
  REQUIRE(expected.rfind("{\"input\":\"chat.csv\",", 0) == 0);

  tixport::write_report_json(sample_report(), dir / "new.json");
  CHECK(read_file(dir / "new.json") == expected);

  write_file(dir / "old.json", "old report, longer than nothing");
  const ino_t old_inode = stat_of(dir / "old.json").st_ino;
  tixport::write_report_json(sample_report(), dir / "old.json");
  CHECK(read_file(dir / "old.json") == expected);
  CHECK(stat_of(dir / "old.json").st_ino != old_inode);  // a new file renamed into place
  CHECK(entries_starting_with(dir.path(), "old.json.tmp").empty());
}

TEST_CASE("report: /dev/null is written through and stays a character device", "[run_report]") {
  const struct stat before = stat_of("/dev/null");
  REQUIRE(S_ISCHR(before.st_mode));
  tixport::write_report_json(sample_report(), "/dev/null");
  const struct stat after = stat_of("/dev/null");
  CHECK(S_ISCHR(after.st_mode));
  CHECK(after.st_rdev == before.st_rdev);
  CHECK(after.st_ino == before.st_ino);
  CHECK(entries_starting_with("/dev", "null.tmp").empty());
}

TEST_CASE("report: /dev/full fails with the output error and stays a character device", "[run_report]") {
  const struct stat before = stat_of("/dev/full");
  REQUIRE(S_ISCHR(before.st_mode));
  try {
    tixport::write_report_json(sample_report(), "/dev/full");
    FAIL("writing to /dev/full succeeded");
  } catch (const tixport::fatal_error& e) {
    CHECK(e.code() == tixport::exit_code::output_error);
    CHECK(std::string(e.what()) == "report: write: /dev/full: No space left on device");
  }
  const struct stat after = stat_of("/dev/full");
  CHECK(S_ISCHR(after.st_mode));
  CHECK(after.st_rdev == before.st_rdev);
  CHECK(entries_starting_with("/dev", "full.tmp").empty());
}

TEST_CASE("report: a FIFO gets the JSON and stays a FIFO", "[run_report]") {
  temp_dir dir;
  const fs::path fifo = dir / "report.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  fifo_reader reader(fifo);
  tixport::write_report_json(sample_report(), fifo);
  CHECK(reader.take() == tixport::report_json(sample_report()));
  CHECK(fs::is_fifo(fs::symlink_status(fifo)));
  CHECK(entries_starting_with(dir.path(), "report.fifo.tmp").empty());
}

TEST_CASE("report: a symlink stays a link and its target gets the JSON", "[run_report]") {
  temp_dir dir;
  write_file(dir / "target.json", "old");
  fs::create_symlink(dir / "target.json", dir / "link.json");
  tixport::write_report_json(sample_report(), dir / "link.json");
  CHECK(fs::is_symlink(fs::symlink_status(dir / "link.json")));
  CHECK(fs::read_symlink(dir / "link.json") == dir / "target.json");
  CHECK(read_file(dir / "target.json") == tixport::report_json(sample_report()));
}

TEST_CASE("report: a directory is an output error and is left alone", "[run_report]") {
  temp_dir dir;
  fs::create_directory(dir / "report.json");
  try {
    tixport::write_report_json(sample_report(), dir / "report.json");
    FAIL("writing the report over a directory succeeded");
  } catch (const tixport::fatal_error& e) {
    CHECK(e.code() == tixport::exit_code::output_error);
    CHECK(std::string(e.what()) == "report: open: " + (dir / "report.json").string() + ": Is a directory");
  }
  CHECK(fs::is_directory(dir / "report.json"));
}

TEST_CASE("CLI --report /dev/stdout prints the JSON and leaves /dev/stdout as it was", "[run_report]") {
  temp_dir dir;
  write_file(dir / "chat.csv", kExport);
  write_file(dir / "users.csv", "id,email\n100,ann@x.org\n");
  // The CLI's stdout is a regular file here (run_command redirects it), which is the case the
  // old temp + rename got worst: stat() followed the link to a regular file and, as root,
  // the rename replaced the /dev/stdout link itself.
  REQUIRE(fs::read_symlink("/dev/stdout") == "/proc/self/fd/1");
  const auto r = run_tixport(run_line(dir, "/dev/stdout"), dir.path());
  CHECK(r.exit_code == 0);
  INFO(r.err);
  CHECK(r.out.rfind("{\"input\":" + std::string("\"") + (dir / "chat.csv").string() + "\",", 0) == 0);
  CHECK(r.out.find(R"("comments":2,"tickets":1,)") != std::string::npos);
  CHECK(r.out.find(R"("exit_code":0})") != std::string::npos);
  CHECK(r.out.back() == '\n');
  CHECK(fs::is_symlink(fs::symlink_status("/dev/stdout")));
  CHECK(fs::read_symlink("/dev/stdout") == "/proc/self/fd/1");
  CHECK(entries_starting_with("/dev", "stdout.tmp").empty());

  // With the CLI's stdout on a character device, /dev/stdout leads to that device and it
  // stays one (the JSON goes to /dev/null).
  const struct stat before = stat_of("/dev/null");
  const auto quiet = run_tixport(run_line(dir, "/dev/stdout") + " >/dev/null", dir.path());
  CHECK(quiet.exit_code == 0);
  CHECK(quiet.out.empty());
  const struct stat after = stat_of("/dev/null");
  CHECK(S_ISCHR(after.st_mode));
  CHECK(after.st_rdev == before.st_rdev);
  CHECK(after.st_ino == before.st_ino);
}

TEST_CASE("CLI --report FIFO: the reader gets the JSON", "[run_report]") {
  temp_dir dir;
  write_file(dir / "chat.csv", kExport);
  write_file(dir / "users.csv", "id,email\n100,ann@x.org\n");
  const fs::path fifo = dir / "report.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  fifo_reader reader(fifo);
  const auto r = run_tixport(run_line(dir, fifo.string()), dir.path());
  CHECK(r.exit_code == 0);
  INFO(r.err);
  const std::string json = reader.take();
  CHECK(json.rfind("{\"input\":", 0) == 0);
  CHECK(json.find(R"("users":{"total":2,"matched":1,"new":1},"comments":2,"tickets":1,)") != std::string::npos);
  CHECK(json.find(R"("exit_code":0})") != std::string::npos);
  CHECK(fs::is_fifo(fs::symlink_status(fifo)));
  CHECK(entries_starting_with(dir.path(), "report.fifo.tmp").empty());
}

TEST_CASE("CLI --report /dev/full: exit 3 with the write error, and no archive put in place", "[run_report]") {
  temp_dir dir;
  write_file(dir / "chat.csv", kExport);
  write_file(dir / "users.csv", "id,email\n100,ann@x.org\n");
  const auto r = run_tixport(run_line(dir, "/dev/full"), dir.path());
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("tixport: error: report: write: /dev/full: No space left on device\n") != std::string::npos);
  // Every output is complete before any is renamed: the report failed, so nothing changed.
  CHECK_FALSE(fs::exists(dir / "out.tar"));
  CHECK(S_ISCHR(stat_of("/dev/full").st_mode));
}
