// File: tar_archive_sink_bench.cpp
//
// Throughput of tar_archive_sink (add_entry for every batch + finish, which
// includes fsync and rename) per format, with one compression worker and with
// all cores, and for gzip also at levels 1 and 9. Input: ~100 MB of generated,
// deterministic JSON batches shaped like SPEC 2.6's files (100 tickets, comments
// and users each), so the compression ratio is realistic. Bytes processed = entry
// bytes (uncompressed). Besides MB/s (real time) each case reports cpu_MB/s, the
// same bytes per second of process CPU time (all threads), and cores = CPU time /
// real time: on a shared machine cpu_MB/s is the steadier figure of the encoder's cost.
//
//   ./tixport_bench --benchmark_filter=tar_archive_sink --benchmark_repetitions=3
#include "tixport/archive/tar_archive_sink.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using tixport::archive_format;

constexpr std::size_t kTargetBytes = 100'000'000;
constexpr int kItemsPerList = 100;
constexpr std::int64_t kMtime = 1700000000;

/// One batch file: {"data":{"tickets":{"data":[…],"comments":[…],"users":[…],"organizations":[]}}}.
std::string make_batch(std::mt19937_64& rng, std::uint64_t batch_idx) {
  static constexpr const char* kWords[] = {"hello",  "order",   "refund", "please",  "thanks",  "delivery",
                                           "broken", "account", "login",  "invoice", "package", "tracking",
                                           "late",   "support", "agent",  "issue",   "resolved", "asap"};
  static constexpr const char* kNames[] = {"Anna Schmidt", "João Silva", "Li Wei",      "Fatima Khan",
                                           "Olivia Brown", "Lukas Weber", "Mia Müller", "Noah Martin"};
  const auto sentence = [&](std::size_t max_words) {
    std::string text;
    const std::size_t words = 2 + rng() % max_words;
    for (std::size_t w = 0; w < words; ++w) {
      if (w != 0) text += ' ';
      text += kWords[rng() % std::size(kWords)];
    }
    return text;
  };
  const auto timestamp = [&] {
    return "\"20" + std::to_string(18 + rng() % 6) + "-0" + std::to_string(1 + rng() % 9) + "-1" +
           std::to_string(rng() % 10) + "T1" + std::to_string(rng() % 10) + ":2" + std::to_string(rng() % 10) +
           ":0" + std::to_string(rng() % 10) + "Z\"";
  };
  const std::uint64_t base = batch_idx * kItemsPerList;
  std::string json = R"({"data":{"tickets":{"data":[)";
  for (int i = 0; i < kItemsPerList; ++i) {
    if (i != 0) json += ',';
    json += R"({"id":)" + std::to_string(base + i + 1) + R"(,"subject":")" + sentence(6) +
            R"(","requester_id":)" + std::to_string(100000 + rng() % 50000) + R"(,"created_at":)" + timestamp() +
            R"(,"status":"closed","tags":["chat","migrated"]})";
  }
  json += R"(],"comments":[)";
  for (int i = 0; i < kItemsPerList; ++i) {
    if (i != 0) json += ',';
    json += R"({"id":)" + std::to_string(base * 7 + i + 1) + R"(,"ticket_id":)" +
            std::to_string(base + rng() % kItemsPerList + 1) + R"(,"author_id":)" +
            std::to_string(100000 + rng() % 50000) + R"(,"body":")" + sentence(60) + R"(","created_at":)" +
            timestamp() + R"(,"public":true})";
  }
  json += R"(],"users":[)";
  for (int i = 0; i < kItemsPerList; ++i) {
    if (i != 0) json += ',';
    const std::uint64_t user_id = 100000 + base + i;
    json += R"({"name":")" + std::string(kNames[rng() % std::size(kNames)]) + R"(","id":)" +
            std::to_string(user_id) + R"(,"email":"user)" + std::to_string(user_id) + R"(@example.org"})";
  }
  json += R"(],"organizations":[]}}})";
  return json;
}

struct batch_set {
  std::vector<std::string> names;    ///< backup_tickets_{k*100}.json
  std::vector<std::string> batches;  ///< the JSON files
  std::uint64_t bytes = 0;           ///< total entry bytes
};

const batch_set& batches() {
  static const batch_set kSet = [] {
    batch_set set;
    std::mt19937_64 rng(20240601);
    for (std::uint64_t k = 0; set.bytes < kTargetBytes; ++k) {
      set.batches.push_back(make_batch(rng, k));
      set.names.push_back("backup_tickets_" + std::to_string((k + 1) * kItemsPerList) + ".json");
      set.bytes += set.batches.back().size();
    }
    return set;
  }();
  return kSet;
}

/// CPU time of the whole process (every thread), in seconds.
double process_cpu_seconds() {
  timespec now{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

/// Write every batch into one archive per iteration; sets the rate counters.
void run_sink(benchmark::State& state, archive_format format, unsigned threads, int gzip_level) {
  const batch_set& set = batches();
  const fs::path dir = fs::temp_directory_path() / ("tixport_sink_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path output = dir / "bench.tar.out";
  std::uint64_t archive_bytes = 0;
  double cpu_seconds = 0;
  double real_seconds = 0;
  for (auto _ : state) {
    const double cpu_start = process_cpu_seconds();
    const auto real_start = std::chrono::steady_clock::now();
    tixport::archive_options options;
    options.format = format;
    options.mtime = kMtime;
    options.threads = threads;
    options.gzip_level = gzip_level;
    tixport::tar_archive_sink sink(output, options);
    for (std::size_t i = 0; i < set.batches.size(); ++i) sink.add_entry(set.names[i], set.batches[i]);
    archive_bytes = sink.finish();
    cpu_seconds += process_cpu_seconds() - cpu_start;
    real_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - real_start).count();
  }
  const double total_bytes = static_cast<double>(state.iterations()) * static_cast<double>(set.bytes);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * set.bytes));
  state.counters["cpu_MB/s"] = total_bytes / 1e6 / cpu_seconds;
  state.counters["cores"] = cpu_seconds / real_seconds;
  state.counters["ratio"] = static_cast<double>(set.bytes) / static_cast<double>(archive_bytes);
  state.counters["entries"] = static_cast<double>(set.batches.size());
  std::error_code ignored;  // best effort cleanup of the scratch directory
  fs::remove_all(dir, ignored);
}

/// args: format, threads (0 = all cores).
void bm_tar_archive_sink(benchmark::State& state) {
  run_sink(state, static_cast<archive_format>(state.range(0)), static_cast<unsigned>(state.range(1)),
           tixport::archive_options{}.gzip_level);
}

/// .tar.gz only; args: gzip level, threads (0 = all cores).
void bm_tar_archive_sink_gzip_level(benchmark::State& state) {
  run_sink(state, archive_format::tar_gz, static_cast<unsigned>(state.range(1)), static_cast<int>(state.range(0)));
}

void sink_args(benchmark::internal::Benchmark* bench) {
  for (const archive_format format : {archive_format::tar, archive_format::tar_gz, archive_format::tar_zst}) {
    for (const int threads : {1, 0}) bench->Args({static_cast<std::int64_t>(format), threads});
  }
  bench->ArgNames({"format", "threads"});
}

// Real time for MB/s; process CPU time so the CPU column includes zstd's worker threads.
BENCHMARK(bm_tar_archive_sink)
    ->Apply(sink_args)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

BENCHMARK(bm_tar_archive_sink_gzip_level)
    ->ArgsProduct({{1, 9}, {1, 0}})
    ->ArgNames({"level", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

}  // namespace
