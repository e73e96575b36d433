// File: interrupt_guard.hpp
//
// SIGINT / SIGTERM handling for a run (SPEC 2.6, 2.7): the first signal only sets
// a flag that long loops poll, so the run stops at the next entry, unwinds, lets
// the archive sink remove its temporary file and main() returns 130. A second
// signal while the flag is set means "stop now": the handler unlinks the
// registered temporary file (async-signal-safe) and calls _exit(130).
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

#include <filesystem>

namespace tixport {

/// Install SIGINT/SIGTERM handlers for the life of the object and restore the
/// previous ones after. Guards nest: the outermost one clears the flag on entry
/// and restores the original handlers on exit. Create and destroy guards on one
/// thread (main); the flag functions below may be called from any thread.
class interrupt_guard {
 public:
  interrupt_guard();
  ~interrupt_guard();
  interrupt_guard(const interrupt_guard&) = delete;
  interrupt_guard& operator=(const interrupt_guard&) = delete;
};

/// Return true once SIGINT or SIGTERM arrived under an interrupt_guard.
bool interrupt_requested() noexcept;

/// Throw fatal_error(exit_code::interrupted, "interrupted") when interrupt_requested().
void throw_if_interrupted();

/// Record the temporary file a second signal must unlink before _exit(130).
/// One path at a time (the archive sink's); a later call replaces it. Paths longer
/// than PATH_MAX are not recorded (the sink's destructor still removes the file).
void register_temp_file(const std::filesystem::path& path);

/// Forget the recorded temporary file.
void unregister_temp_file() noexcept;

}  // namespace tixport
