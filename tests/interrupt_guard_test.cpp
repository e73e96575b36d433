// File: interrupt_guard_test.cpp
//
// Signals change process-wide state (handlers, the sticky flag), so every case
// runs in a forked child that reports through its exit status.
//
//   ./tixport_tests "[interrupt_guard]"
#include "tixport/common/interrupt_guard.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <functional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tixport/index/email_index_client.hpp"
#include "tixport/index/user_index_csv.hpp"
#include "tixport/common/errors.hpp"

#include "support/test_support.hpp"

namespace fs = std::filesystem;
using tixport::exit_code;
using tixport::fatal_error;
using tixport::interrupt_guard;
using tixport::interrupt_requested;
using tixport::test::run_in_child;
using tixport::test::temp_dir;

namespace {

/// The handler currently installed for `signo`.
void (*current_handler(int signo))(int) {
  struct sigaction action {};
  sigaction(signo, nullptr, &action);
  return action.sa_handler;
}

}  // namespace

TEST_CASE("the first SIGINT or SIGTERM only sets the flag", "[interrupt_guard]") {
  for (const int signo : {SIGINT, SIGTERM}) {
    INFO("signal " << signo);
    const int status = run_in_child([signo] {
      interrupt_guard guard;
      if (interrupt_requested()) return 10;
      tixport::throw_if_interrupted();  // must not throw yet
      std::raise(signo);
      if (!interrupt_requested()) return 11;
      try {
        tixport::throw_if_interrupted();
        return 12;
      } catch (const fatal_error& error) {
        if (error.code() != exit_code::interrupted) return 13;
        if (std::string(error.what()) != "interrupted") return 14;
      }
      return 0;
    });
    CHECK(status == 0);
  }
}

TEST_CASE("a second signal unlinks the registered temp file and exits 130", "[interrupt_guard]") {
  temp_dir dir;
  const fs::path temp = dir.path() / ".out.tar.zst.tmp.1.abcd";
  const fs::path other = dir.path() / "keep.txt";
  std::ofstream(temp) << "partial";
  std::ofstream(other) << "keep";
  const int status = run_in_child([&] {
    interrupt_guard guard;
    tixport::register_temp_file(temp);
    std::raise(SIGINT);
    std::raise(SIGINT);  // does not return
    return 10;
  });
  CHECK(status == 130);
  CHECK_FALSE(fs::exists(temp));
  CHECK(fs::exists(other));
}

TEST_CASE("a second signal after unregister leaves the file alone", "[interrupt_guard]") {
  temp_dir dir;
  const fs::path temp = dir.path() / "renamed.tar";
  std::ofstream(temp) << "complete";
  const int status = run_in_child([&] {
    interrupt_guard guard;
    tixport::unregister_temp_file(tixport::register_temp_file(temp));
    std::raise(SIGTERM);
    std::raise(SIGTERM);
    return 10;
  });
  CHECK(status == 130);
  CHECK(fs::exists(temp));
}

TEST_CASE("save_index_csv after a signal: no cache file put in place, an old one kept, no temp file",
          "[interrupt_guard][email_index_client]") {
  temp_dir dir;
  const fs::path cache = dir.path() / "users.csv";
  const fs::path fresh = dir.path() / "fresh.csv";
  std::ofstream(cache) << "id,email\n1,old@example.org\n";
  const std::vector<tixport::raw_index_entry> entries = {{std::int64_t{7}, std::string("new@example.org")}};
  const int status = run_in_child([&] {
    interrupt_guard guard;
    tixport::save_index_csv(entries, fresh);  // no signal yet: written
    std::raise(SIGTERM);
    for (const fs::path& path : {cache, fresh}) {
      try {
        tixport::save_index_csv(entries, path);
        return 10;
      } catch (const fatal_error& error) {
        if (error.code() != exit_code::interrupted) return 11;
        if (std::string(error.what()) != "users csv: write " + path.string() + ": interrupted") return 12;
      }
    }
    return 0;
  });
  CHECK(status == 0);
  std::ifstream in(cache);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "id,email\n1,old@example.org\n");
  std::ifstream in_fresh(fresh);
  CHECK(std::string(std::istreambuf_iterator<char>(in_fresh), {}) == "id,email\n7,new@example.org\n");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path())) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"fresh.csv", "users.csv"});
}

TEST_CASE("the previous handlers come back, nested guards share one installation", "[interrupt_guard]") {
  const int status = run_in_child([] {
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_DFL);
    {
      interrupt_guard outer;
      const auto installed = current_handler(SIGINT);
      if (installed == SIG_IGN || installed == SIG_DFL) return 10;
      if (current_handler(SIGTERM) != installed) return 11;
      {
        interrupt_guard inner;
        if (current_handler(SIGINT) != installed) return 12;
      }
      // The inner guard's end must not uninstall the outer one's handlers.
      if (current_handler(SIGINT) != installed) return 13;
      std::raise(SIGTERM);
      if (!interrupt_requested()) return 14;
    }
    if (current_handler(SIGINT) != SIG_IGN) return 15;
    if (current_handler(SIGTERM) != SIG_DFL) return 16;
    // The flag outlives the guard so main() can still see why the run stopped...
    if (!interrupt_requested()) return 17;
    // ...and a new run starts clean.
    interrupt_guard next;
    return interrupt_requested() ? 18 : 0;
  });
  CHECK(status == 0);
}

TEST_CASE("without a guard the flag stays clear and signals keep their defaults", "[interrupt_guard]") {
  const int status = run_in_child([] {
    // Catch2 catches SIGTERM itself; start from the default a plain process has.
    std::signal(SIGTERM, SIG_DFL);
    if (interrupt_requested()) return 10;
    tixport::throw_if_interrupted();
    tixport::register_temp_file("/nonexistent/tixport-test");  // registering installs nothing
    if (current_handler(SIGTERM) != SIG_DFL) return 11;
    std::raise(SIGTERM);  // default action: the child dies here
    return 12;
  });
  CHECK(status == -SIGTERM);
}

TEST_CASE("every registered temp file is unlinked, an unregistered one is kept", "[interrupt_guard]") {
  temp_dir dir;
  const fs::path first = dir.path() / "first.tmp";
  const fs::path second = dir.path() / "second.tmp";
  const fs::path third = dir.path() / "third.tmp";
  std::ofstream(first) << "1";
  std::ofstream(second) << "2";
  std::ofstream(third) << "3";
  SECTION("both registered paths are unlinked, the withdrawn one stays") {
    const int status = run_in_child([&] {
      interrupt_guard guard;
      const int a = tixport::register_temp_file(first);
      const int b = tixport::register_temp_file(second);
      const int c = tixport::register_temp_file(third);
      if (a < 0 || b < 0 || c < 0 || a == b || b == c || a == c) return 11;
      tixport::unregister_temp_file(c);
      std::raise(SIGINT);
      std::raise(SIGINT);
      return 10;
    });
    CHECK(status == 130);
    CHECK_FALSE(fs::exists(first));
    CHECK_FALSE(fs::exists(second));
    CHECK(fs::exists(third));
  }
  SECTION("a path longer than PATH_MAX registers nothing") {
    const int status = run_in_child([&] {
      interrupt_guard guard;
      if (tixport::register_temp_file(dir.path() / std::string(PATH_MAX, 'x')) != -1) return 11;
      std::raise(SIGINT);
      std::raise(SIGINT);
      return 10;
    });
    CHECK(status == 130);
    CHECK(fs::exists(first));
    CHECK(fs::exists(second));
  }
  SECTION("slots are reused after unregistering") {
    for (int i = 0; i < 100; ++i) {
      const int handle = tixport::register_temp_file(first);
      REQUIRE(handle >= 0);
      tixport::unregister_temp_file(handle);
    }
  }
}

namespace {

/// Map the first `pages` pages of `path` read-only (MAP_PRIVATE, as mapped_file does).
const char* map_pages(const fs::path& path, std::size_t pages, std::size_t page) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  void* addr = ::mmap(nullptr, pages * page, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  return addr == MAP_FAILED ? nullptr : static_cast<const char*>(addr);
}

/// Run `body` in a child whose stderr goes to `err`; return its status as run_in_child does.
int run_in_child_capturing(const fs::path& err, const std::function<int()>& body) {
  return run_in_child([&] {
    const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ::dup2(fd, STDERR_FILENO) < 0) return 98;
    ::close(fd);
    return body();
  });
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("SIGBUS in a registered input mapping: message naming the file, temp file unlinked, exit 2",
          "[interrupt_guard]") {
  temp_dir dir;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const fs::path input = dir.path() / "export.csv";
  const fs::path temp = dir.path() / ".out.tar.tmp.1.abcd";
  const fs::path err = dir.path() / "stderr";
  std::ofstream(input) << std::string(3 * page, 'a');
  std::ofstream(temp) << "partial";
  const int status = run_in_child_capturing(err, [&] {
    interrupt_guard guard;
    tixport::register_temp_file(temp);
    const char* bytes = map_pages(input, 3, page);
    if (bytes == nullptr) return 10;
    if (tixport::register_mapped_input(bytes, 3 * page, input) < 0) return 11;
    if (bytes[2 * page] != 'a') return 12;   // readable while the file is whole
    fs::resize_file(input, page / 2);        // shrink under the mapping
    volatile char c = bytes[2 * page + 1];   // past the new end: SIGBUS
    static_cast<void>(c);
    return 13;
  });
  CHECK(status == 2);
  CHECK(slurp(err) == "tixport: error: input: " + input.string() +
                          ": the file was truncated or changed while being read\n");
  CHECK_FALSE(fs::exists(temp));
}

TEST_CASE("SIGBUS outside any registered mapping: temp file unlinked, then the default action",
          "[interrupt_guard]") {
  temp_dir dir;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const fs::path input = dir.path() / "other.bin";
  const fs::path temp = dir.path() / ".out.tar.tmp.2.abcd";
  const fs::path err = dir.path() / "stderr";
  std::ofstream(input) << std::string(2 * page, 'b');
  std::ofstream(temp) << "partial";
  SECTION("a registration that was withdrawn no longer counts") {
    const int status = run_in_child_capturing(err, [&] {
      ::signal(SIGBUS, SIG_DFL);
      ::prctl(PR_SET_DUMPABLE, 0);  // no core file for the deliberate crash
      interrupt_guard guard;
      tixport::register_temp_file(temp);
      const char* bytes = map_pages(input, 2, page);
      if (bytes == nullptr) return 10;
      tixport::unregister_mapped_input(tixport::register_mapped_input(bytes, 2 * page, input));
      fs::resize_file(input, 0);
      volatile char c = bytes[page];
      static_cast<void>(c);
      return 13;
    });
    CHECK(status == -SIGBUS);
  }
  SECTION("a SIGBUS sent by kill") {
    const int status = run_in_child_capturing(err, [&] {
      ::prctl(PR_SET_DUMPABLE, 0);
      interrupt_guard guard;
      tixport::register_temp_file(temp);
      ::kill(::getpid(), SIGBUS);
      return 13;
    });
    CHECK(status == -SIGBUS);
  }
  CHECK(slurp(err) == "tixport: error: bus error (SIGBUS) outside the mapped input\n");
  CHECK_FALSE(fs::exists(temp));
}

TEST_CASE("under a guard SIGXFSZ is ignored, so a file size limit is a write error (EFBIG)", "[interrupt_guard]") {
  temp_dir dir;
  const fs::path big = dir.path() / "big.bin";
  const int status = run_in_child([&] {
    ::signal(SIGXFSZ, SIG_DFL);
    const rlimit limit{4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
    const std::string block(8192, 'c');
    {
      interrupt_guard guard;
      if (current_handler(SIGXFSZ) != SIG_IGN) return 11;
      const int fd = ::open(big.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) return 12;
      if (::write(fd, block.data(), block.size()) != 4096) return 13;  // up to the limit
      errno = 0;
      if (::write(fd, block.data(), block.size()) != -1 || errno != EFBIG) return 14;
      ::close(fd);
    }
    // The old disposition is back once the guard ends.
    return current_handler(SIGXFSZ) == SIG_DFL ? 0 : 15;
  });
  CHECK(status == 0);
  CHECK(fs::file_size(big) == 4096);
}
