// File: huge_page_new.cpp
//
// The replaceable global operator new ([new.delete.single]): memory from malloc, as the
// default's, but a large block's aligned interior is advised for transparent huge pages
// (madvise MADV_HUGEPAGE) before anything touches it.
//
// Why: main.cpp fixes glibc's mmap threshold at 256 KiB, so every large block (the dedup
// shards, the candidate vectors, the sorted comments, the ledger's objects) is a fresh
// mapping whose pages are first touched by tixport. On a virtual machine each 4 KiB first
// touch is a trapped page fault; at 2.5M rows those faults were ~15% of the run's CPU
// (perf/RESULTS.md, "Huge pages for large blocks"). With the advice, one fault maps 2 MiB.
// Kernels in THP mode "never" ignore the advice; "always" already does this.
//
// Every C++ allocation of the process goes through it (the executable exports operator new,
// so libtbb, simdjson and libstdc++ use it too); libarchive's and zstd's buffers come from
// malloc directly and are not advised. Left out of sanitizer builds, which replace operator
// new themselves, and off Linux (no MADV_HUGEPAGE).
#include "common/huge_page_new_internal.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <new>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <sys/mman.h>

namespace tixport {

void advise_huge_pages(void* data, std::size_t bytes) noexcept {
#if defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto first = reinterpret_cast<std::uintptr_t>(data);
  const auto begin = (first + kHuge - 1) & ~(kHuge - 1);
  const auto end = (first + bytes) & ~(kHuge - 1);
  if (end <= begin) return;
  // Advice only: a kernel without THP answers EINVAL, and the block works as before. errno is
  // kept, since operator new must not change it.
  const int saved = errno;
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  errno = saved;
#else
  (void)data;
  (void)bytes;
#endif
}

void return_free_heap_to_os() noexcept {
#if defined(__GLIBC__)
  const int saved = errno;
  ::malloc_trim(0);
  errno = saved;
#endif
}

}  // namespace tixport

#if TIXPORT_HUGE_PAGE_NEW

void* operator new(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  for (;;) {
    if (void* p = std::malloc(bytes)) {
      if (bytes >= tixport::kHugePageNewMinBytes) tixport::advise_huge_pages(p, bytes);
      return p;
    }
    // The standard's loop: a new_handler may free memory and let the allocation be retried.
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* operator new[](std::size_t bytes) { return ::operator new(bytes); }

void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

#endif
