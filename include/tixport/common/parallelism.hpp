// File: parallelism.hpp
//
// The one place where `--threads` becomes a worker count, the oneTBB arena a
// command runs in. A command resolves
// its thread count once (resolve_threads), builds one `parallelism` and runs
// its stages inside it; a stage that is also called on its own (a test, a side
// command) asks for its width with in_arena(), which reuses the caller's arena
// when it already has that width and only otherwise opens one.
//
// The parallel loops the stages use live beside it, in
// src/common/parallel_loops_internal.hpp.
//
//   tixport::parallelism par(options.threads);      // 0 = every core we may use
//   par.execute([&] { run_the_stages(); });
#pragma once

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <utility>

namespace tixport {

/// The worker count for `--threads requested`: `requested` itself (capped at
/// kMaxThreads), or for 0 every core this process may use (oneTBB's default
/// concurrency, which honours the CPU affinity mask).
[[nodiscard]] unsigned resolve_threads(unsigned requested) noexcept;

/// The largest --threads any command accepts.
inline constexpr unsigned kMaxThreads = 4096;

/// A command's parallelism: its resolved thread count, the process-wide oneTBB
/// limit raised (or lowered) to it, and one arena of that width. `--threads`
/// above the core count is honoured on purpose: the archive's bytes are tested
/// to be the same at any width.
class parallelism {
 public:
  explicit parallelism(unsigned requested);
  parallelism(const parallelism&) = delete;
  parallelism& operator=(const parallelism&) = delete;

  [[nodiscard]] unsigned threads() const noexcept { return threads_; }

  /// Run `f` inside this arena (every oneTBB algorithm `f` starts runs on its workers).
  template <typename F>
  decltype(auto) execute(F&& f) {
    return arena_.execute(std::forward<F>(f));
  }

 private:
  unsigned threads_;
  oneapi::tbb::global_control limit_;
  oneapi::tbb::task_arena arena_;
};

/// Run `f` on `threads` workers (0 = resolve_threads(0)): in the current arena
/// when it has exactly that width, else in a new arena of that width.
template <typename F>
decltype(auto) in_arena(unsigned threads, F&& f) {
  const unsigned width = resolve_threads(threads);
  if (oneapi::tbb::this_task_arena::max_concurrency() == static_cast<int>(width)) return std::forward<F>(f)();
  oneapi::tbb::task_arena arena(static_cast<int>(width));
  return arena.execute(std::forward<F>(f));
}

}  // namespace tixport
