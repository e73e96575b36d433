// File: tsan_annotations_test.cpp
//
// The oneTBB hand-off annotations (src/tsan_annotations_internal.hpp) on each
// oneTBB construct tixport uses: the results must be right in every build, and
// under ThreadSanitizer (CI runs these with every report failing the step)
// they must produce no report, which is what the annotations are for.
#include <catch2/catch.hpp>

#include "../src/common/tsan_annotations_internal.hpp"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/parallel_sort.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace tsan = tixport::tsan;

namespace {
// Every core (oneTBB warns on stderr when an arena asks for more workers than that).
const int kThreads = oneapi::tbb::info::default_concurrency();
}  // namespace

TEST_CASE("tsan::body: parallel_for bodies see the caller's writes, the caller sees theirs",
          "[tsan_annotations][parallel]") {
  constexpr std::size_t kSize = 20000;
  std::vector<std::uint64_t> in(kSize);
  std::iota(in.begin(), in.end(), std::uint64_t{1});  // written here, read by the bodies
  std::vector<std::uint64_t> out(kSize, 0);
  const int join = 0;
  oneapi::tbb::task_arena(kThreads).execute([&] {
    oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<std::size_t>(0, kSize, 64),
                              tsan::body(&join, [&](const oneapi::tbb::blocked_range<std::size_t>& range) {
                                for (std::size_t i = range.begin(); i != range.end(); ++i) out[i] = in[i] * in[i];
                              }));
  });
  tsan::acquire(&join);
  CHECK(out[0] == 1);
  CHECK(out[1] == 4);
  CHECK(out[kSize - 1] == 400000000);
  // sum of k^2 for k = 1..n is n(n+1)(2n+1)/6
  CHECK(std::accumulate(out.begin(), out.end(), std::uint64_t{0}) == 2666866670000ULL);
}

TEST_CASE("tsan::serial_body: a pipeline's serial stages hand tokens and their own state on",
          "[tsan_annotations][parallel]") {
  constexpr int kTokens = 3000;
  struct item {
    int k = 0;
    std::string text;  // written by the parallel stage, read by the last
  };
  int next = 0;
  std::vector<std::string> seen;  // serial state of the last stage
  const int join = 0;
  oneapi::tbb::task_arena(kThreads).execute([&] {
    oneapi::tbb::parallel_pipeline(
        8,
        oneapi::tbb::make_filter<void, item*>(oneapi::tbb::filter_mode::serial_in_order,
                                              tsan::serial_body(&join, [&](oneapi::tbb::flow_control& fc) -> item* {
                                                if (next == kTokens) {
                                                  fc.stop();
                                                  return nullptr;
                                                }
                                                auto made = std::make_unique<item>();
                                                made->k = next++;
                                                tsan::release(made.get());
                                                return made.release();
                                              })) &
            oneapi::tbb::make_filter<item*, item*>(oneapi::tbb::filter_mode::parallel,
                                                   tsan::body(&join, [](item* token) {
                                                     tsan::acquire(token);
                                                     token->text = std::to_string(token->k * 7);
                                                     tsan::release(token);
                                                     return token;
                                                   })) &
            oneapi::tbb::make_filter<item*, void>(oneapi::tbb::filter_mode::serial_in_order,
                                                  tsan::serial_body(&join, [&](item* token) {
                                                    const std::unique_ptr<item> owned(token);
                                                    tsan::acquire(token);
                                                    seen.push_back(owned->text);
                                                  })));
  });
  tsan::acquire(&join);
  REQUIRE(seen.size() == kTokens);
  CHECK(seen[0] == "0");
  CHECK(seen[1] == "7");
  CHECK(seen[kTokens - 1] == "20993");
  CHECK(next == kTokens);
}

TEST_CASE("tsan::compare: parallel_sort's partitions and leaf sorts are visible to the caller",
          "[tsan_annotations][parallel]") {
  std::vector<std::uint32_t> v(50000);
  std::iota(v.begin(), v.end(), 0u);
  std::shuffle(v.begin(), v.end(), std::mt19937(20261126));
  tsan::release(&v);
  oneapi::tbb::task_arena(kThreads).execute([&] {
    oneapi::tbb::parallel_sort(v.begin(), v.end(), tsan::compare(&v, std::greater<std::uint32_t>()));
  });
  tsan::acquire(&v);
  CHECK(v.front() == 49999);
  CHECK(v[1] == 49998);
  CHECK(v.back() == 0);
  CHECK(std::is_sorted(v.begin(), v.end(), std::greater<std::uint32_t>()));
}

TEST_CASE("tsan::body in a flow graph: messages, a serial node's state, the join after wait_for_all",
          "[tsan_annotations][parallel]") {
  namespace flow = oneapi::tbb::flow;
  constexpr int kMessages = 2000;
  std::vector<int> squares(kMessages, -1);  // each written by one unlimited body
  std::int64_t sum = 0;                     // serial node state
  const int join = 0;
  oneapi::tbb::task_arena(kThreads).execute([&] {
    flow::graph graph;
    flow::function_node<int, int> square(graph, flow::unlimited, tsan::body(&join, [&](int k) {
                                           squares[static_cast<std::size_t>(k)] = k * k;
                                           return k;
                                         }));
    flow::function_node<int, flow::continue_msg> total(graph, flow::serial, tsan::serial_body(&join, [&](int k) {
                                                         sum += k;
                                                         return flow::continue_msg{};
                                                       }));
    flow::make_edge(square, total);
    const tsan::acquire_on_exit bodies_done(&join);
    for (int k = 0; k < kMessages; ++k) square.try_put(k);
    graph.wait_for_all();
  });
  CHECK(sum == std::int64_t{kMessages} * (kMessages - 1) / 2);
  CHECK(squares[0] == 0);
  CHECK(squares[3] == 9);
  CHECK(squares[kMessages - 1] == 3996001);
  CHECK(std::count(squares.begin(), squares.end(), -1) == 0);
}

TEST_CASE("tsan::body passes a mutable reference through and releases the join when the body throws",
          "[tsan_annotations][parallel]") {
  const int join = 0;
  const auto bump = tsan::body(&join, [](int& x) { x += 2; });
  int x = 40;
  bump(x);
  CHECK(x == 42);  // a reference to the caller's object, not a private copy

  std::vector<int> touched(1000, 0);
  const auto run = [&] {
    const tsan::acquire_on_exit bodies_done(&join);
    oneapi::tbb::task_arena(kThreads).execute([&] {
      oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<std::size_t>(0, touched.size(), 10),
                                tsan::body(&join, [&](const oneapi::tbb::blocked_range<std::size_t>& range) {
                                  for (std::size_t i = range.begin(); i != range.end(); ++i) {
                                    if (i == 500) throw std::runtime_error("stop at 500");
                                    touched[i] = 1;
                                  }
                                }));
    });
  };
  CHECK_THROWS_WITH(run(), "stop at 500");
  CHECK(touched[500] == 0);  // the body throws before writing it
}
