// File: test_support.hpp
//
// What the tests share, in one include: a temporary directory that removes itself
// (temp_dir.hpp), the export's header line (export_csv.hpp), running a command or the
// built CLI with its exit code and output captured (cli_runner.hpp); here: file I/O,
// reading an archive's entries back with libarchive, and running a body in a forked
// child (for cases that change process-wide state: signal handlers, limits, user ids).
// The Beast test server is test_index_server.hpp, included on its own (it needs the
// support library compiled from tests/support/*.cpp).
//
//   #include "support/test_support.hpp"
//   tixport::test::temp_dir dir;
//   tixport::test::write_file(dir / "chat.csv", tixport::test::export_csv(rows));
#pragma once

#include "cli_runner.hpp"
#include "export_csv.hpp"
#include "temp_dir.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <utility>
#include <vector>

namespace tixport::test {

/// Write `bytes` to `path`, replacing it.
inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

/// The bytes of `path` (empty if it cannot be read).
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// One archive entry as read back.
struct archive_entry_data {
  std::string name;
  std::string data;
  int mode = 0;
  long long uid = -1;
  long long gid = -1;
  long long mtime = 0;
};

/// Every entry of a tar / tar.gz / tar.zst, in archive order.
inline std::vector<archive_entry_data> read_archive(const std::filesystem::path& path) {
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, path.c_str(), 1 << 16) != ARCHIVE_OK) {
    std::string err = archive_error_string(a) ? archive_error_string(a) : "open failed";
    archive_read_free(a);
    throw std::runtime_error("read_archive: " + err);
  }
  std::vector<archive_entry_data> out;
  archive_entry* e = nullptr;
  int rc = 0;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    archive_entry_data d;
    d.name = archive_entry_pathname(e);
    d.mode = static_cast<int>(archive_entry_perm(e));
    d.uid = archive_entry_uid(e);
    d.gid = archive_entry_gid(e);
    d.mtime = archive_entry_mtime(e);
    char buf[1 << 15];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) d.data.append(buf, static_cast<std::size_t>(n));
    if (n < 0) break;
    out.push_back(std::move(d));
  }
  const bool ok = rc == ARCHIVE_EOF;
  std::string err = archive_error_string(a) ? archive_error_string(a) : "";
  archive_read_free(a);
  if (!ok) throw std::runtime_error("read_archive: " + err);
  return out;
}

/// Run `body` in a forked child and return its exit status (-signal if killed).
/// The child never returns into Catch: it _exits with body's result (99 on an exception).
inline int run_in_child(const std::function<int()>& body) {
  std::fflush(nullptr);  // else buffered output would be written twice
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 99;
    }
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

}  // namespace tixport::test
