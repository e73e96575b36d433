// File: interrupt_guard.cpp
//
// SIGINT/SIGTERM handlers that only touch lock-free atomics and a static path
// buffer, so everything they do is async-signal-safe: the first signal sets the
// flag, a second one unlinks the registered temporary file and _exit(130)s.
//
//   interrupt_guard guard;        // install
//   throw_if_interrupted();       // poll in long loops
#include "tixport/interrupt_guard.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <string>

#include <unistd.h>

#include "tixport/errors.hpp"

namespace tixport {
namespace {

constexpr int kInterruptedStatus = static_cast<int>(exit_code::interrupted);

// Lock-free atomics are the only shared state the handler may touch besides
// the path buffer (C++20 [support.signal]: lock-free atomic operations are
// signal-safe).
static_assert(std::atomic<bool>::is_always_lock_free);
static_assert(std::atomic<int>::is_always_lock_free);
constexpr int kNoTempFile = -1;
std::atomic<bool> g_requested{false};
// Two path buffers: register_temp_file() fills the one the handler cannot be
// reading and then publishes its index, so the handler never sees a half-written
// path and no fence is needed.
char g_temp_paths[2][PATH_MAX];
std::atomic<int> g_temp_index{kNoTempFile};

// Nesting depth and the handlers to restore; touched only by the thread that
// creates and destroys guards (main), never by the handler.
int g_depth = 0;
struct sigaction g_old_int;
struct sigaction g_old_term;

void write_stderr(const char* text) noexcept {
  // Best effort: nothing useful can be done in a signal handler if stderr fails.
  const ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  static_cast<void>(ignored);
}

extern "C" void on_interrupt(int /*signo*/) {
  const int saved_errno = errno;
  if (g_requested.exchange(true)) {
    // Second signal: the run did not stop in time (or the user insists). Remove
    // the half-written archive ourselves, since no destructor will run after _exit.
    const int index = g_temp_index.load(std::memory_order_acquire);
    if (index != kNoTempFile) ::unlink(g_temp_paths[index]);
    write_stderr("tixport: interrupted again, stopping now\n");
    ::_exit(kInterruptedStatus);
  }
  write_stderr("tixport: interrupt received, stopping (interrupt again to stop at once)\n");
  errno = saved_errno;
}

}  // namespace

interrupt_guard::interrupt_guard() {
  if (g_depth++ > 0) return;
  // A fresh run starts uninterrupted, even if an earlier guard in this process saw a signal.
  g_requested.store(false);
  struct sigaction action {};
  action.sa_handler = &on_interrupt;
  // Block the other signal while one handler runs so the two never interleave;
  // SA_RESTART keeps blocking reads/writes elsewhere from failing with EINTR.
  sigemptyset(&action.sa_mask);
  sigaddset(&action.sa_mask, SIGINT);
  sigaddset(&action.sa_mask, SIGTERM);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &g_old_int);
  sigaction(SIGTERM, &action, &g_old_term);
}

interrupt_guard::~interrupt_guard() {
  if (--g_depth > 0) return;
  // The flag stays set so main() can still ask interrupt_requested() after the guard.
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool interrupt_requested() noexcept { return g_requested.load(std::memory_order_relaxed); }

void throw_if_interrupted() {
  if (interrupt_requested()) throw fatal_error(exit_code::interrupted, "interrupted");
}

void register_temp_file(const std::filesystem::path& path) {
  const std::string& native = path.native();
  const int index = g_temp_index.load(std::memory_order_acquire) == 0 ? 1 : 0;
  if (native.size() >= sizeof g_temp_paths[index]) {
    g_temp_index.store(kNoTempFile, std::memory_order_release);
    return;
  }
  std::memcpy(g_temp_paths[index], native.c_str(), native.size() + 1);
  g_temp_index.store(index, std::memory_order_release);
}

void unregister_temp_file() noexcept { g_temp_index.store(kNoTempFile, std::memory_order_release); }

}  // namespace tixport
