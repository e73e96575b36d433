// File: sample_generator_bench.cpp
//
// Throughput of `tixport generate` (sample_generator): rows/s and MB/s of the
// export, on 1 thread and on all threads, written to a file under the system
// temp directory (so the figure includes the write; compare with /dev/shm by
// pointing TMPDIR there to see the pure generation cost).
//
//   build/tixport_bench --benchmark_filter=generate --benchmark_min_time=1
//   TMPDIR=/dev/shm build/tixport_bench --benchmark_filter=generate
#include <benchmark/benchmark.h>

#include "tixport/generate/sample_generator.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;

/// A directory under the temp dir, removed when the benchmark ends.
class bench_dir {
 public:
  bench_dir()
      : path_(fs::temp_directory_path() / ("tixport_gen_bench_" + std::to_string(::getpid()))) {
    fs::create_directories(path_);
  }
  bench_dir(const bench_dir&) = delete;
  bench_dir& operator=(const bench_dir&) = delete;
  ~bench_dir() {
    std::error_code ec;  // best effort: a leftover directory must not fail the run
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// Args: rows, threads (0 = all cores).
void BM_generate(benchmark::State& state) {
  bench_dir dir;
  tixport::generate_options options;
  options.rows = static_cast<std::uint64_t>(state.range(0));
  options.threads = static_cast<unsigned>(state.range(1));
  options.seed = 1;
  options.output = dir.path() / "chat.csv";
  options.users_output = dir.path() / "users.csv";
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    const tixport::generate_stats stats = tixport::generate_sample(options);
    bytes += stats.bytes;
    benchmark::DoNotOptimize(stats.rows);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(options.rows) * state.iterations());
  state.counters["rows_per_s"] = benchmark::Counter(
      static_cast<double>(options.rows) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

BENCHMARK(BM_generate)
    ->ArgNames({"rows", "threads"})
    ->Args({250'000, 1})
    ->Args({250'000, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The target: 2.5M rows (~0.9 GB) in a few seconds. One iteration is enough.
BENCHMARK(BM_generate)
    ->ArgNames({"rows", "threads"})
    ->Args({2'500'000, 0})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
