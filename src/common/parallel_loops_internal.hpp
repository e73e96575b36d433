// File: parallel_loops_internal.hpp
//
// The oneTBB loops the stages use, with the ThreadSanitizer hand-off
// annotations that Debian's uninstrumented libtbb needs built in, so stage code
// holds no tsan:: calls for them (tsan_annotations_internal.hpp says why they
// are needed). They run in the caller's arena (tixport/common/parallelism.hpp).
//
//   parallel_for_ranges(0, rows.size(), 4096, [&](std::size_t b, std::size_t e) { ... });
//   parallel_sort_vector(rows, [](const row& a, const row& b) { return a.key < b.key; });
//   ordered_pipeline<batch>(tokens, make_next, encode, write_in_order);
#pragma once

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/parallel_sort.h>

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "common/tsan_annotations_internal.hpp"

namespace tixport {

/// body(b, e) for disjoint [b, e) covering [begin, end), in parallel; `grain`
/// is the smallest range split off. Everything the bodies wrote is visible
/// (also to ThreadSanitizer) when this returns. `body` captures by reference.
template <typename Body>
void parallel_for_ranges(std::size_t begin, std::size_t end, std::size_t grain, const Body& body) {
  const int join = 0;
  const tsan::acquire_on_exit all_done(&join);
  oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<std::size_t>(begin, end, grain),
                            tsan::body(&join, [&body](const oneapi::tbb::blocked_range<std::size_t>& range) {
                              body(range.begin(), range.end());
                            }));
}

/// oneTBB's parallel_sort of the whole span (not stable: `less` must order
/// every pair it may see apart, or the result depends on the schedule).
template <typename T, typename Less>
void parallel_sort_span(std::span<T> v, Less less) {
  if (v.size() < 2) return;  // nothing to order, and data() may be null: no sync address
  tsan::release(v.data());
  const tsan::acquire_on_exit sorted(v.data());
  oneapi::tbb::parallel_sort(v.begin(), v.end(), tsan::compare(v.data(), std::move(less)));
}

/// The same for a whole vector.
template <typename T, typename Less>
void parallel_sort_vector(std::vector<T>& v, Less less) {
  parallel_sort_span(std::span<T>(v), std::move(less));
}

namespace detail {

/// The first two filters of ordered_pipeline: `make` (serial, in order) and `work` (parallel).
/// `done` and `recycled` are the caller's TSan sync addresses (see ordered_pipeline).
template <typename Token, typename Make, typename Work>
oneapi::tbb::filter<void, Token*> made_and_worked(const Make& make, const Work& work, const int& done,
                                                  const int& recycled) {
  namespace tbb = oneapi::tbb;
  return tbb::make_filter<void, Token*>(tbb::filter_mode::serial_in_order,
                                        tsan::serial_body(&done, [&make, &recycled](tbb::flow_control& fc) -> Token* {
                                          tsan::acquire(&recycled);
                                          Token* token = make(fc);
                                          if (token != nullptr) tsan::release(token);
                                          return token;
                                        })) &
         tbb::make_filter<Token*, Token*>(tbb::filter_mode::parallel, tsan::body(&done, [&work](Token* token) {
                                            tsan::acquire(token);
                                            work(token);
                                            tsan::release(token);
                                            return token;
                                          }));
}

}  // namespace detail

/// oneTBB's parallel_pipeline of three stages over pointer tokens, at most `tokens` in flight:
///  - `make(flow_control&) -> Token*`, one call at a time in order (nullptr after fc.stop());
///  - `work(Token*)`, in parallel;
///  - `take(Token*)`, one call at a time, in the order the tokens were made.
/// Each token is handed from stage to stage so that ThreadSanitizer sees it, and `make` sees
/// every earlier `take` (so it may recycle a slot a finished token used). Raw pointers: oneTBB
/// passes them as they are, where it would move a unique_ptr through storage TSan cannot follow.
/// An exception from a stage ends the pipeline and leaves this call.
template <typename Token, typename Make, typename Work, typename Take>
void ordered_pipeline(std::size_t tokens, const Make& make, const Work& work, const Take& take) {
  namespace tbb = oneapi::tbb;
  const int done = 0;
  const int recycled = 0;
  const tsan::acquire_on_exit all_done(&done);
  tbb::parallel_pipeline(tokens, detail::made_and_worked<Token>(make, work, done, recycled) &
                                     tbb::make_filter<Token*, void>(tbb::filter_mode::serial_in_order,
                                                                    tsan::serial_body(&done, [&take, &recycled](Token* token) {
                                                                      tsan::acquire(token);
                                                                      take(token);
                                                                      tsan::release(&recycled);
                                                                    })));
}

/// ordered_pipeline with a fourth stage: `take(Token*)` (serial, in order) no longer ends a
/// token's way; `after(Token*)` does, in parallel, and owns the token from then on. For work
/// that needs the order only to be placed (a file offset handed out in order) and can then be
/// done by any thread (writing the bytes there).
template <typename Token, typename Make, typename Work, typename Take, typename After>
void ordered_pipeline(std::size_t tokens, const Make& make, const Work& work, const Take& take, const After& after) {
  namespace tbb = oneapi::tbb;
  const int done = 0;
  const int recycled = 0;
  const tsan::acquire_on_exit all_done(&done);
  tbb::parallel_pipeline(tokens, detail::made_and_worked<Token>(make, work, done, recycled) &
                                     tbb::make_filter<Token*, Token*>(tbb::filter_mode::serial_in_order,
                                                                      tsan::serial_body(&done, [&take](Token* token) {
                                                                        tsan::acquire(token);
                                                                        take(token);
                                                                        tsan::release(token);
                                                                        return token;
                                                                      })) &
                                     tbb::make_filter<Token*, void>(tbb::filter_mode::parallel,
                                                                    tsan::body(&done, [&after, &recycled](Token* token) {
                                                                      tsan::acquire(token);
                                                                      after(token);
                                                                      tsan::release(&recycled);
                                                                    })));
}

}  // namespace tixport
