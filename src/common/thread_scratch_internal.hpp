// File: thread_scratch_internal.hpp
//
// The rule for buffers a thread keeps from task to task (thread_local or per-worker
// scratch): reuse them, so that steady work allocates nothing, but never keep one that
// a huge field (hundreds of MB) has grown, or it stays pinned to that thread for the
// rest of the run. Never installed.
//
//   thread_local std::string scratch;
//   tixport::release_if_huge(scratch);
//   scratch.clear();
#pragma once

#include <cstddef>
#include <string>

namespace tixport {

/// Capacity above which a reused per-thread buffer is given back instead of kept.
inline constexpr std::size_t kMaxKeptScratchBytes = std::size_t{16} << 20;

/// Free `buffer`'s storage when it has grown over kMaxKeptScratchBytes (its contents go too).
inline void release_if_huge(std::string& buffer) noexcept {
  if (buffer.capacity() > kMaxKeptScratchBytes) std::string().swap(buffer);
}

}  // namespace tixport
