// File: interrupt_guard_test.cpp
//
// Signals change process-wide state (handlers, the sticky flag), so every case
// runs in a forked child that reports through its exit status.
//
//   ./tixport_tests "[interrupt_guard]"
#include "tixport/interrupt_guard.hpp"

#include <catch2/catch.hpp>

#include <climits>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <system_error>

#include <sys/wait.h>
#include <unistd.h>

#include "tixport/errors.hpp"

namespace fs = std::filesystem;
using tixport::exit_code;
using tixport::fatal_error;
using tixport::interrupt_guard;
using tixport::interrupt_requested;

namespace {

/// Run `body` in a forked child; return its exit status, or -signal when a signal killed it.
int run_in_child(const std::function<int()>& body) {
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

/// The handler currently installed for `signo`.
void (*current_handler(int signo))(int) {
  struct sigaction action {};
  sigaction(signo, nullptr, &action);
  return action.sa_handler;
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::random_device entropy;
    path = fs::temp_directory_path() /
           ("tixport_guard_test_" + std::to_string(::getpid()) + "_" + std::to_string(entropy()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ignored;  // best effort: a failed cleanup must not fail the test
    fs::remove_all(path, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

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
  const fs::path temp = dir.path / ".out.tar.zst.tmp.1.abcd";
  const fs::path other = dir.path / "keep.txt";
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
  const fs::path temp = dir.path / "renamed.tar";
  std::ofstream(temp) << "complete";
  const int status = run_in_child([&] {
    interrupt_guard guard;
    tixport::register_temp_file(temp);
    tixport::unregister_temp_file();
    std::raise(SIGTERM);
    std::raise(SIGTERM);
    return 10;
  });
  CHECK(status == 130);
  CHECK(fs::exists(temp));
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

TEST_CASE("a later registration replaces the earlier one", "[interrupt_guard]") {
  temp_dir dir;
  const fs::path first = dir.path / "first.tmp";
  const fs::path second = dir.path / "second.tmp";
  std::ofstream(first) << "1";
  std::ofstream(second) << "2";
  SECTION("the newest path is unlinked") {
    const int status = run_in_child([&] {
      interrupt_guard guard;
      tixport::register_temp_file(first);
      tixport::register_temp_file(second);
      std::raise(SIGINT);
      std::raise(SIGINT);
      return 10;
    });
    CHECK(status == 130);
    CHECK(fs::exists(first));
    CHECK_FALSE(fs::exists(second));
  }
  SECTION("a path longer than PATH_MAX registers nothing") {
    const int status = run_in_child([&] {
      interrupt_guard guard;
      tixport::register_temp_file(first);
      tixport::register_temp_file(dir.path / std::string(PATH_MAX, 'x'));
      std::raise(SIGINT);
      std::raise(SIGINT);
      return 10;
    });
    CHECK(status == 130);
    CHECK(fs::exists(first));
    CHECK(fs::exists(second));
  }
}
