// File: huge_page_new_test.cpp
//
// Tests of the global operator new replacement (src/common/huge_page_new.cpp): a large block
// from new is advised for transparent huge pages (the kernel lists its mapping with the "hg"
// VmFlag in /proc/self/smaps), is usable end to end, and a small one is not advised. In
// sanitizer builds the replacement is left out and the large block must not be advised.
#include "common/huge_page_new_internal.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <sys/mman.h>

namespace {

// The VmFlags of the mapping that holds `address`, or nullopt when no mapping does.
std::optional<std::string> vm_flags_at(const void* address) {
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t begin = 0;
    std::uintptr_t end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> begin >> dash >> end && dash == '-' && line.find(':') > line.find(' ')) {
      inside = begin <= a && a < end;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line.substr(8) + " ";
  }
  return std::nullopt;
}

bool has_flag(const std::string& flags, const std::string& flag) { return flags.find(" " + flag + " ") != std::string::npos; }

bool kernel_has_thp() { return std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good(); }

}  // namespace

TEST_CASE("a large block from operator new is advised for huge pages", "[huge_pages]") {
  constexpr std::size_t kBytes = std::size_t{16} << 20;
  const auto block = std::make_unique_for_overwrite<std::byte[]>(kBytes);
  // Usable end to end: first and last byte, and a 2 MiB-aligned page inside.
  block[0] = std::byte{1};
  block[kBytes - 1] = std::byte{2};
  const std::byte* middle = block.get() + kBytes / 2;
  const auto flags = vm_flags_at(middle);
  REQUIRE(flags);
  if (TIXPORT_HUGE_PAGE_NEW && kernel_has_thp()) {
    CHECK(has_flag(*flags, "hg"));
  } else {
    CHECK_FALSE(has_flag(*flags, "hg"));
  }
  CHECK(block[0] == std::byte{1});
  CHECK(block[kBytes - 1] == std::byte{2});
}

TEST_CASE("advise_huge_pages advises only whole aligned huge pages inside the range", "[huge_pages]") {
  if (!kernel_has_thp()) {
    WARN("this kernel has no transparent huge pages: the advice is a no-op and nothing can be observed");
    return;
  }
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  // 8 MiB of fresh address space; the range given starts 4 KiB past a 2 MiB boundary and ends
  // 4 KiB past the next-but-one: only the one whole huge page between may be advised.
  void* region = ::mmap(nullptr, 4 * kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(region != MAP_FAILED);
  const auto aligned = (reinterpret_cast<std::uintptr_t>(region) + kHuge - 1) & ~(kHuge - 1);
  auto* const first = reinterpret_cast<std::byte*>(aligned) + 4096;
  tixport::advise_huge_pages(first, 2 * kHuge);
  const std::byte* page = reinterpret_cast<std::byte*>(aligned) + kHuge;
  const auto head = vm_flags_at(first);
  const auto inside = vm_flags_at(page);
  const auto tail = vm_flags_at(page + kHuge);
  REQUIRE(head);
  REQUIRE(inside);
  REQUIRE(tail);
  CHECK_FALSE(has_flag(*head, "hg"));
  CHECK(has_flag(*inside, "hg"));
  CHECK_FALSE(has_flag(*tail, "hg"));
  ::munmap(region, 4 * kHuge);
}

TEST_CASE("return_free_heap_to_os gives freed small blocks back to the kernel", "[huge_pages]") {
#if !defined(__GLIBC__) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitizers bring their own allocator, and without glibc there is nothing to trim: the
  // call must only be harmless.
  CHECK_NOTHROW(tixport::return_free_heap_to_os());
#else
  // 64 MiB in 1 KiB blocks, all freed but the last, which pins the heap's top: only a trim
  // of the free pages inside the heap can give the memory back.
  const auto rss_anon_kib = [] {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("RssAnon:", 0) == 0) return std::stol(line.substr(8));
    }
    return 0L;
  };
  constexpr std::size_t kBlocks = 64 * 1024;
  std::vector<std::unique_ptr<char[]>> blocks(kBlocks);
  for (auto& b : blocks) {
    b = std::make_unique_for_overwrite<char[]>(1000);
    b[0] = 1;
    b[999] = 1;  // touched: resident
  }
  for (std::size_t i = 0; i + 1 < kBlocks; ++i) blocks[i].reset();
  const long before = rss_anon_kib();
  tixport::return_free_heap_to_os();
  const long after = rss_anon_kib();
  INFO("RssAnon " << before << " KiB -> " << after << " KiB");
  CHECK(before - after > 32 * 1024);
#endif
}
