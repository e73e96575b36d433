// File: sharded_id_map_bench.cpp
//
// The comment deduplication's id map (sharded_first_map) alone, one thread: 3M ids inserted
// in chunks of 11,000 rows (a 4 MiB chunk of an export), for the id patterns an export can
// have. Its tables outgrow the cache, so the time is mostly where each insert's first probe
// lands: ids counting up share cache lines (the map keeps runs of 8 ids together), random ids
// and ids that all end alike (multiples of 8, of 2^20) miss on every insert. Rates in ids per
// second:
//
//   build/tixport_bench --benchmark_filter=BM_id_map --benchmark_repetitions=5
#include "run/sharded_id_map_internal.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace {

constexpr std::size_t kIds = 3000000;
constexpr std::size_t kChunkRows = 11000;

enum class pattern { counting_up, counting_up_with_repeats, random, multiples_of_8, multiples_of_2_20 };

std::vector<std::int64_t> make_ids(pattern p) {
  std::vector<std::int64_t> ids(kIds);
  std::mt19937_64 rng(1);
  for (std::size_t i = 0; i < kIds; ++i) {
    const auto n = static_cast<std::int64_t>(i);
    switch (p) {
      case pattern::counting_up:
        ids[i] = 5000000000 + n;
        break;
      case pattern::counting_up_with_repeats:  // a quarter repeat one of the last 64
        ids[i] = 5000000000 + n - (rng() % 4 == 0 ? static_cast<std::int64_t>(rng() % 64) : 0);
        break;
      case pattern::random:
        ids[i] = static_cast<std::int64_t>(rng() % (std::uint64_t{1} << 40));
        break;
      case pattern::multiples_of_8:
        ids[i] = 8 * (5000000 + n);
        break;
      case pattern::multiples_of_2_20:
        ids[i] = n << 20;
        break;
    }
  }
  return ids;
}

void BM_id_map(benchmark::State& state) {
  const std::vector<std::int64_t> ids = make_ids(static_cast<pattern>(state.range(0)));
  std::vector<std::uint8_t> lost;
  for (auto _ : state) {
    tixport::detail::sharded_first_map map;
    for (std::size_t begin = 0, seq = 0; begin < ids.size(); begin += kChunkRows, ++seq) {
      const std::size_t count = std::min(kChunkRows, ids.size() - begin);
      lost.assign(count, 0);
      map.insert_all(seq, count, [&](std::size_t i) { return ids[begin + i]; }, lost);
    }
    benchmark::DoNotOptimize(lost.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ids.size()));
}
BENCHMARK(BM_id_map)
    ->ArgName("pattern")  // 0 counting up, 1 with repeats, 2 random, 3 multiples of 8, 4 of 2^20
    ->DenseRange(0, 4)
    ->Unit(benchmark::kMillisecond);

}  // namespace
