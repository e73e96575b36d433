// File: huge_page_new_internal.hpp
//
// Heap policy: transparent huge pages for large C++ allocations (see huge_page_new.cpp for
// why), and handing freed heap back to the kernel at the run's known turning points.
#pragma once

#include <cstddef>

// Sanitizers bring their own operator new; tixport's replacement is left out of those builds,
// and off Linux, where there is no transparent-huge-page advice to give.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(__SANITIZE_HWADDRESS__)
#define TIXPORT_HUGE_PAGE_NEW 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer) || \
    __has_feature(hwaddress_sanitizer)
#define TIXPORT_HUGE_PAGE_NEW 0
#endif
#endif
#if !defined(TIXPORT_HUGE_PAGE_NEW) && !defined(__linux__)
#define TIXPORT_HUGE_PAGE_NEW 0
#endif
#ifndef TIXPORT_HUGE_PAGE_NEW
#define TIXPORT_HUGE_PAGE_NEW 1
#endif

namespace tixport {

/// Blocks from operator new of at least this size are advised for huge pages: from 4 MiB on,
/// a block always holds a whole 2 MiB-aligned huge page.
inline constexpr std::size_t kHugePageNewMinBytes = std::size_t{4} << 20;

/// madvise(MADV_HUGEPAGE) on the 2 MiB-aligned pages inside [data, data + bytes). Advice only:
/// where the kernel has no THP the call fails and nothing changes.
void advise_huge_pages(void* data, std::size_t bytes) noexcept;

/// Give the kernel back the free pages glibc's malloc holds (malloc_trim): after a step that
/// freed many small blocks, so that they do not count towards the next step's peak. A no-op
/// without glibc.
void return_free_heap_to_os() noexcept;

}  // namespace tixport
