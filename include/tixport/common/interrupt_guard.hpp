// File: interrupt_guard.hpp
//
// SIGINT / SIGTERM handling for a run (SPEC 2.6, 2.7): the first signal only sets
// a flag that long loops poll, so the run stops at the next entry, unwinds, lets
// the archive sink remove its temporary file and main() returns 130. A second
// signal while the flag is set means "stop now": the handler unlinks the
// registered temporary files (async-signal-safe) and calls _exit(130).
//
// The guard also makes two faults of the whole CLI fail cleanly instead of killing
// the process with a signal:
// - SIGBUS inside a registered input mapping (the file was truncated while mapped;
//   touching a page past the new end raises SIGBUS): the handler writes
//   "tixport: error: input: <path>: the file was truncated or changed while being
//   read" with write(2), unlinks the registered temporary file and _exit(2). A SIGBUS
//   anywhere else is a bug: same clean-up and message, then the default action.
// - SIGXFSZ (a file size limit, `ulimit -f` / `prlimit --fsize`) is ignored, so the
//   write fails with EFBIG and the archive sink reports an output error (exit 3) and
//   removes its temporary file, as for a full disk.
//
//   int main(...) {
//     tixport::interrupt_guard guard;            // handlers installed
//     ...
//     for (auto& batch : batches) {
//       tixport::throw_if_interrupted();         // fatal_error(interrupted)
//       ...
//     }
//   }                                            // old handlers restored
#pragma once

#include <cstddef>
#include <filesystem>

namespace tixport {

/// Install SIGINT/SIGTERM and SIGBUS handlers and ignore SIGXFSZ for the life of the
/// object, and restore the previous dispositions after. Guards nest: the outermost one clears the flag on entry
/// and restores the original handlers on exit. Create and destroy guards on one
/// thread (main); the flag functions below may be called from any thread.
class interrupt_guard {
 public:
  interrupt_guard();
  ~interrupt_guard();
  interrupt_guard(const interrupt_guard&) = delete;
  interrupt_guard& operator=(const interrupt_guard&) = delete;
};

/// While alive, a second SIGINT/SIGTERM does not stop the process at once: the renames that
/// put a command's completed outputs in place (archive, then ledger, then report) either all
/// happen or, if the first fails, none of the later ones. The signal is still recorded.
class commit_guard {
 public:
  commit_guard() noexcept;
  ~commit_guard();
  commit_guard(const commit_guard&) = delete;
  commit_guard& operator=(const commit_guard&) = delete;
};

/// Return true once SIGINT or SIGTERM arrived under an interrupt_guard.
bool interrupt_requested() noexcept;

/// Throw fatal_error(exit_code::interrupted, "interrupted") when interrupt_requested().
void throw_if_interrupted();

/// For a wait on work that cannot be stopped half-way (zstd's workers finishing a frame at
/// level 19 can take a minute): when interrupt_requested() and no commit is under way, do
/// what a second signal does (unlink the registered temporary files, say "interrupted",
/// _exit(130)); else return. Nothing has been put in place before a commit, so nothing is lost.
void stop_now_if_interrupted() noexcept;

/// Record a temporary file that a second signal (and a SIGBUS) must unlink before _exit.
/// Several may be registered at once (each output of a command has its own); returns a
/// handle for unregister_temp_file(), or -1 when the path is longer than PATH_MAX or all
/// slots are taken (the owner's destructor still removes the file). Any thread.
int register_temp_file(const std::filesystem::path& path) noexcept;

/// Forget a temporary file recorded by register_temp_file(). -1 is a no-op.
void unregister_temp_file(int handle) noexcept;

/// Record [begin, begin + size) as the read-only mapping of input file `path`, so that a
/// SIGBUS inside it (under a guard) ends the run with exit 2 and a message naming `path`.
/// Returns a handle for unregister_mapped_input(), or -1 when all slots are taken (then a
/// SIGBUS there is reported as an unexpected bus error). Any thread; mapped_file calls it.
int register_mapped_input(const void* begin, std::size_t size, const std::filesystem::path& path) noexcept;

/// Forget a mapping recorded by register_mapped_input() (before it is unmapped). -1 is a no-op.
void unregister_mapped_input(int handle) noexcept;

}  // namespace tixport
