// File: interrupt_guard.cpp
//
// SIGINT/SIGTERM handlers that only touch lock-free atomics and a static path
// buffer, so everything they do is async-signal-safe: the first signal sets the
// flag, a second one unlinks the registered temporary file and _exit(130)s.
// A SIGBUS handler (SA_SIGINFO) looks the faulting address up in a fixed table of
// registered input mappings, reports the truncated file by name, unlinks the
// temporary file and _exit(2)s. SIGXFSZ is ignored while a guard lives.
//
//   interrupt_guard guard;        // install
//   throw_if_interrupted();       // poll in long loops
#include "tixport/common/interrupt_guard.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>

#include <unistd.h>

#include "tixport/common/errors.hpp"

namespace tixport {
namespace {

constexpr int kInterruptedStatus = static_cast<int>(exit_code::interrupted);
constexpr int kTruncatedInputStatus = static_cast<int>(exit_code::input_error);

// Lock-free atomics are the only shared state the handler may touch besides
// the path buffer (C++20 [support.signal]: lock-free atomic operations are
// signal-safe).
static_assert(std::atomic<bool>::is_always_lock_free);
static_assert(std::atomic<int>::is_always_lock_free);
std::atomic<bool> g_requested{false};
// Set while a command renames its completed outputs into place: a second signal then waits
// for the renames instead of unlinking temporary files half-way through them.
std::atomic<int> g_committing{0};

// Nesting depth and the handlers to restore; touched only by the thread that
// creates and destroys guards (main), never by the handler.
int g_depth = 0;
struct sigaction g_old_int;
struct sigaction g_old_term;
struct sigaction g_old_bus;
struct sigaction g_old_xfsz;

// Registered input mappings. A slot goes free -> filling -> ready under a CAS, so
// register/unregister may run on any thread; the handler reads only ready slots.
// Eight is plenty: a run maps the export and at most one index file at a time.
constexpr int kMappingSlots = 8;
constexpr int kSlotFree = 0;
constexpr int kSlotFilling = 1;
constexpr int kSlotReady = 2;
struct mapping_slot {
  std::atomic<int> state{kSlotFree};
  std::atomic<std::uintptr_t> begin{0};
  std::atomic<std::size_t> size{0};
  char path[PATH_MAX];  // NUL-terminated; empty when the path did not fit
};
static_assert(std::atomic<std::uintptr_t>::is_always_lock_free);
static_assert(std::atomic<std::size_t>::is_always_lock_free);
mapping_slot g_mappings[kMappingSlots];

// Registered temporary files (every output of a command is written to one before
// the commit renames them: archive, ledger, report, cache). Same free -> filling ->
// ready protocol as the mappings, so the handler never reads a half-written path.
constexpr int kTempSlots = 8;
struct temp_slot {
  std::atomic<int> state{kSlotFree};
  char path[PATH_MAX];
};
temp_slot g_temps[kTempSlots];

void write_stderr(const char* text) noexcept {
  // Best effort: nothing useful can be done in a signal handler if stderr fails.
  const ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  static_cast<void>(ignored);
}

void unlink_temp_file() noexcept {
  for (const temp_slot& slot : g_temps) {
    if (slot.state.load(std::memory_order_acquire) == kSlotReady) ::unlink(slot.path);
  }
}

// The registered mapping holding `address`, or nullptr.
const mapping_slot* find_mapping(std::uintptr_t address) noexcept {
  for (const mapping_slot& slot : g_mappings) {
    if (slot.state.load(std::memory_order_acquire) != kSlotReady) continue;
    const std::uintptr_t begin = slot.begin.load(std::memory_order_relaxed);
    if (address >= begin && address - begin < slot.size.load(std::memory_order_relaxed)) return &slot;
  }
  return nullptr;
}

extern "C" void on_bus_error(int signo, siginfo_t* info, void* /*context*/) {
  // A kernel-raised SIGBUS at an address inside a mapped input: the file shrank under
  // the mapping (truncated, or rewritten through O_TRUNC). Nothing read from it can be
  // trusted any more and the faulting thread cannot go on, so end the process here.
  const bool from_kernel = info != nullptr && info->si_code > 0;
  const mapping_slot* slot =
      from_kernel ? find_mapping(reinterpret_cast<std::uintptr_t>(info->si_addr)) : nullptr;
  unlink_temp_file();
  if (slot != nullptr) {
    write_stderr("tixport: error: input: ");
    if (slot->path[0] != '\0') {
      write_stderr(slot->path);
      write_stderr(": ");
    }
    write_stderr("the file was truncated or changed while being read\n");
    ::_exit(kTruncatedInputStatus);
  }
  // Not an input mapping: a bug, or a SIGBUS sent by someone. Say so, then let the
  // default action end the process (a core dump for the bug). The signal is blocked
  // while this handler runs, so the raise takes effect on return.
  write_stderr("tixport: error: bus error (SIGBUS) outside the mapped input\n");
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(signo, &fallback, nullptr);
  ::raise(signo);
}

extern "C" void on_interrupt(int /*signo*/) {
  const int saved_errno = errno;
  if (g_requested.exchange(true) && g_committing.load() == 0) {
    // Second signal: the run did not stop in time (or the user insists). Remove
    // the half-written archive ourselves, since no destructor will run after _exit.
    unlink_temp_file();
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

  // SIGBUS with siginfo for the faulting address. SA_ONSTACK is not needed: the fault
  // is a plain memory read, the stack is fine.
  struct sigaction bus {};
  bus.sa_sigaction = &on_bus_error;
  sigemptyset(&bus.sa_mask);
  sigaddset(&bus.sa_mask, SIGINT);
  sigaddset(&bus.sa_mask, SIGTERM);
  bus.sa_flags = SA_SIGINFO;
  sigaction(SIGBUS, &bus, &g_old_bus);

  // A file size limit must not kill the run with its temporary file left behind:
  // ignored, the write fails with EFBIG and the sink cleans up (exit 3).
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGXFSZ, &ignore, &g_old_xfsz);
}

interrupt_guard::~interrupt_guard() {
  if (--g_depth > 0) return;
  // The flag stays set so main() can still ask interrupt_requested() after the guard.
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGBUS, &g_old_bus, nullptr);
  sigaction(SIGXFSZ, &g_old_xfsz, nullptr);
}

commit_guard::commit_guard() noexcept { g_committing.fetch_add(1); }

commit_guard::~commit_guard() { g_committing.fetch_sub(1); }

bool interrupt_requested() noexcept { return g_requested.load(std::memory_order_relaxed); }

void stop_now_if_interrupted() noexcept {
  if (!g_requested.load() || g_committing.load() != 0) return;
  unlink_temp_file();
  write_stderr("tixport: error: interrupted\n");
  ::_exit(kInterruptedStatus);
}

void throw_if_interrupted() {
  if (interrupt_requested()) throw fatal_error(exit_code::interrupted, "interrupted");
}

int register_temp_file(const std::filesystem::path& path) noexcept {
  const std::string& native = path.native();
  if (native.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kTempSlots; ++i) {
    temp_slot& slot = g_temps[i];
    int expected = kSlotFree;
    if (!slot.state.compare_exchange_strong(expected, kSlotFilling, std::memory_order_acquire)) continue;
    std::memcpy(slot.path, native.c_str(), native.size() + 1);
    slot.state.store(kSlotReady, std::memory_order_release);
    return i;
  }
  return -1;
}

void unregister_temp_file(int handle) noexcept {
  if (handle < 0 || handle >= kTempSlots) return;
  g_temps[handle].state.store(kSlotFree, std::memory_order_release);
}

int register_mapped_input(const void* begin, std::size_t size, const std::filesystem::path& path) noexcept {
  for (int i = 0; i < kMappingSlots; ++i) {
    mapping_slot& slot = g_mappings[i];
    int expected = kSlotFree;
    if (!slot.state.compare_exchange_strong(expected, kSlotFilling, std::memory_order_acquire)) continue;
    const std::string& native = path.native();
    if (native.size() < sizeof slot.path) {
      std::memcpy(slot.path, native.c_str(), native.size() + 1);
    } else {
      slot.path[0] = '\0';  // the message then names no file, rather than a cut one
    }
    slot.begin.store(reinterpret_cast<std::uintptr_t>(begin), std::memory_order_relaxed);
    slot.size.store(size, std::memory_order_relaxed);
    slot.state.store(kSlotReady, std::memory_order_release);
    return i;
  }
  return -1;
}

void unregister_mapped_input(int handle) noexcept {
  if (handle < 0 || handle >= kMappingSlots) return;
  g_mappings[handle].state.store(kSlotFree, std::memory_order_release);
}

}  // namespace tixport
