// File: test_support.hpp
//
// Small helpers shared by the tests: a temporary directory that removes itself,
// file I/O, reading an archive's entries back with libarchive, running the built
// CLI with its exit code and output captured, and running a body in a forked child
// (for cases that change process-wide state: signal handlers, limits, user ids).
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <utility>
#include <vector>

namespace tixport::test {

/// A fresh directory under the system temp dir, removed on destruction.
class temp_dir {
 public:
  temp_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("tixport-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ignored;  // best effort: a test failure must not turn into a throw here
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ignored);
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

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

/// Result of running a command.
struct command_result {
  int exit_code = -1;
  std::string out;   ///< stdout
  std::string err;   ///< stderr
};

/// Run `command` with /bin/sh, capturing stdout and stderr into files under `dir`.
inline command_result run_command(const std::string& command, const std::filesystem::path& dir) {
  const auto out_path = dir / "cmd.stdout";
  const auto err_path = dir / "cmd.stderr";
  // The group makes the redirections apply to a whole pipeline, not its last command.
  const std::string full = "{ " + command + " ; } >" + out_path.string() + " 2>" + err_path.string() + " </dev/null";
  const int status = std::system(full.c_str());
  command_result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return r;
}

/// Run the built tixport CLI with `args` (already shell-quoted as needed).
inline command_result run_tixport(const std::string& args, const std::filesystem::path& dir) {
  return run_command(std::string("'") + TIXPORT_CLI_PATH + "' " + args, dir);
}

/// Quote `s` for /bin/sh.
inline std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
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
