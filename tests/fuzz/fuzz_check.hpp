// File: fuzz_check.hpp
//
// The one assertion the fuzz targets share: a failed oracle prints what broke
// and aborts, which libFuzzer reports as a crash and saves as a crash-* input.
// Unlike assert() it stays on in every build type.
//
//   FUZZ_CHECK(parallel.records == serial.records);
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "fuzz oracle failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (false)
