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
#include "../tests/support/id_patterns.hpp"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

namespace {

using tixport::test::id_pattern;

constexpr std::size_t kIds = 3000000;

void BM_id_map(benchmark::State& state) {
  const std::vector<std::int64_t> ids = tixport::test::make_ids(static_cast<id_pattern>(state.range(0)), kIds);
  const std::vector<std::size_t> chunks = tixport::test::chunks_in_order(ids.size());
  std::vector<std::uint8_t> lost;
  for (auto _ : state) {
    tixport::detail::sharded_first_map map;
    tixport::test::insert_in_chunks(map, ids, chunks, lost);
    benchmark::DoNotOptimize(lost.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ids.size()));
}
BENCHMARK(BM_id_map)
    ->ArgName("pattern")  // 0 counting up, 1 with repeats, 2 random, 3 multiples of 8, 4 of 2^20
    ->DenseRange(0, 4)
    ->Unit(benchmark::kMillisecond);

}  // namespace
