// File: mapped_file_test.cpp
//
// Tests of mapped_file: regular files are mapped, empty files give an empty
// view without a mapping, FIFOs are read fully, moves transfer ownership, and
// open errors are input errors that name the path and the reason.
#include "tixport/common/mapped_file.hpp"

#include "support/test_support.hpp"
#include "tixport/common/errors.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>

using tixport::mapped_file;
using tixport::test::temp_dir;
using tixport::test::write_file;

namespace {

// The fatal_error of opening `path`, or an empty code when it opened.
std::pair<tixport::exit_code, std::string> open_error(const std::filesystem::path& path) {
  try {
    (void)mapped_file::open(path);
  } catch (const tixport::fatal_error& e) {
    return {e.code(), e.what()};
  }
  return {tixport::exit_code::ok, ""};
}

}  // namespace

TEST_CASE("a regular file is mapped with its bytes, size and mtime", "[mapped_file]") {
  temp_dir dir;
  const std::string bytes = std::string("a,b\r\n1,\"x\0y\"\n", 14) + std::string(10000, 'z');
  write_file(dir / "in.csv", bytes);
  struct stat st {};
  REQUIRE(::stat((dir / "in.csv").c_str(), &st) == 0);
  const mapped_file file = mapped_file::open(dir / "in.csv");
  CHECK(file.is_mapped());
  CHECK(file.size() == bytes.size());
  CHECK(file.bytes() == bytes);
  CHECK(file.mtime_seconds() == static_cast<std::int64_t>(st.st_mtime));
}

TEST_CASE("an empty file gives an empty view and no mapping", "[mapped_file]") {
  temp_dir dir;
  write_file(dir / "empty.csv", "");
  const mapped_file file = mapped_file::open(dir / "empty.csv");
  CHECK(file.size() == 0);
  CHECK(file.bytes().empty());
  CHECK_FALSE(file.is_mapped());
}

TEST_CASE("moving a mapped_file moves the mapping", "[mapped_file]") {
  temp_dir dir;
  write_file(dir / "a", "first");
  write_file(dir / "b", "second");
  mapped_file a = mapped_file::open(dir / "a");
  const char* where = a.bytes().data();
  mapped_file moved(std::move(a));
  CHECK(moved.bytes() == "first");
  CHECK(moved.bytes().data() == where);
  CHECK(a.bytes().empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified empty
  mapped_file b = mapped_file::open(dir / "b");
  b = std::move(moved);  // unmaps "second"
  CHECK(b.bytes() == "first");
}

TEST_CASE("a FIFO is read fully instead of mapped", "[mapped_file]") {
  temp_dir dir;
  const auto fifo = dir / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string payload = "h1,h2\n" + std::string(3u << 20, 'q') + "\n";  // larger than one read step
  std::thread writer([&] { write_file(fifo, payload); });
  const mapped_file file = mapped_file::open(fifo);
  writer.join();
  CHECK_FALSE(file.is_mapped());
  CHECK(file.size() == payload.size());
  CHECK(file.bytes() == payload);
}

TEST_CASE("open errors are input errors naming the path and the reason", "[mapped_file]") {
  temp_dir dir;
  const auto missing = dir / "missing.csv";
  const auto [code, message] = open_error(missing);
  CHECK(code == tixport::exit_code::input_error);
  CHECK(message == "input: open: " + missing.string() + ": No such file or directory");

  const auto [dir_code, dir_message] = open_error(dir.path());
  CHECK(dir_code == tixport::exit_code::input_error);
  CHECK(dir_message == "input: open: " + dir.path().string() + ": Is a directory");

  if (::geteuid() != 0) {  // root reads anything; the permission case only means something otherwise
    write_file(dir / "secret.csv", "x");
    std::filesystem::permissions(dir / "secret.csv", std::filesystem::perms::none);
    const auto [perm_code, perm_message] = open_error(dir / "secret.csv");
    CHECK(perm_code == tixport::exit_code::input_error);
    CHECK(perm_message == "input: open: " + (dir / "secret.csv").string() + ": Permission denied");
  }
}

TEST_CASE("changed_since_open: a rewrite in place or a size change is seen, a rename over the path is not",
          "[mapped_file]") {
  temp_dir dir;
  const auto path = dir / "in.csv";
  write_file(path, "a,b\n1,2\n");
  // An old mtime, so that the rewrites below change it whatever the clock's granularity.
  std::filesystem::last_write_time(path, std::filesystem::file_time_type::clock::now() - std::chrono::hours(24));
  SECTION("untouched") {
    const mapped_file file = mapped_file::open(path);
    CHECK_FALSE(file.changed_since_open());
  }
  SECTION("rewritten in place, same size") {
    const mapped_file file = mapped_file::open(path);
    {
      std::fstream out(path, std::ios::in | std::ios::out | std::ios::binary);
      out.seekp(4);
      out.write("9", 1);
    }
    CHECK(file.changed_since_open());
  }
  SECTION("extended") {
    const mapped_file file = mapped_file::open(path);
    std::filesystem::resize_file(path, 100);
    CHECK(file.changed_since_open());
  }
  SECTION("an empty file that gains bytes") {
    write_file(path, "");
    const mapped_file file = mapped_file::open(path);
    write_file(path, "a,b\n");
    CHECK(file.changed_since_open());
  }
  SECTION("replaced by rename: the open file is unchanged, and so is the mapping") {
    const mapped_file file = mapped_file::open(path);
    write_file(dir / "other.csv", "x,y\n");
    std::filesystem::rename(dir / "other.csv", path);
    CHECK_FALSE(file.changed_since_open());
    CHECK(file.bytes() == "a,b\n1,2\n");
  }
  SECTION("moved along with the mapping") {
    mapped_file file = mapped_file::open(path);
    const mapped_file moved(std::move(file));
    std::filesystem::resize_file(path, 3);
    CHECK(moved.changed_since_open());
    CHECK_FALSE(file.changed_since_open());  // NOLINT(bugprone-use-after-move): moved-from is empty
  }
}
