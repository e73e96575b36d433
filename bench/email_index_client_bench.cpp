// File: email_index_client_bench.cpp
//
// The REST user-index fetch against the in-process test server
// (tests/support/test_index_server.hpp): 56,700 users in 567 pages of 100 with 50 ms latency
// per request, at concurrency 1, 4, 16 and 32, next to the ideal
// pages x latency / concurrency; the same at 16 with 5% of requests answered 500 and
// every 50th 429 (Retry-After: 1); over TLS at 16; and the page parser alone.
// Wall time is reported (UseRealTime). Counters: ideal_s, ratio = wall / ideal,
// requests, retries.
//
// The default run keeps concurrency 1 and 4 to 57 pages (about 3.5 s together); set
// TIXPORT_BENCH_FULL=1 for all 567 pages there too (about 37 s more):
//
//   TIXPORT_BENCH_FULL=1 ./tixport_bench --benchmark_filter=BM_index_
#include "../tests/support/test_index_server.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "../src/index/email_index_page_parser_internal.hpp"
#include "tixport/index/email_index_client.hpp"

namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kUsersPerPage = 100;
constexpr std::chrono::milliseconds kLatency{50};

bool full_run() {
  const char* full = std::getenv("TIXPORT_BENCH_FULL");
  return full != nullptr && std::string(full) == "1";
}

/// One fetch of `pages` pages at `concurrency`, with the server set up by `configure`.
template <class Configure>
void run_fetch(benchmark::State& state, std::uint64_t pages, unsigned concurrency, Configure configure) {
  tixport::test::index_server_config config;
  config.users = pages * kUsersPerPage;
  config.latency = kLatency;
  configure(config);
  tixport::test::index_server server(config);
  tixport::fetch_options options;
  options.users_url = server.url();
  options.concurrency = concurrency;
  options.jitter_seed = 1;
  if (config.tls) options.ca_file = server.ca_file();
  options.warn = [](std::string_view) {};
  tixport::fetch_stats stats;
  for (auto _ : state) {
    tixport::fetch_result result = tixport::fetch_user_index(options);
    if (result.entries.size() != config.users) state.SkipWithError("wrong number of users");
    stats = result.stats;
    benchmark::DoNotOptimize(result.entries.data());
  }
  const double ideal = static_cast<double>(pages) * std::chrono::duration<double>(kLatency).count() /
                       static_cast<double>(concurrency);
  state.counters["ideal_s"] = ideal;
  state.counters["wall_s"] = stats.seconds;
  state.counters["ratio"] = stats.seconds / ideal;
  state.counters["requests"] = static_cast<double>(stats.requests);
  state.counters["retries"] = static_cast<double>(stats.retries);
  state.counters["connections"] = server.connections();
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(stats.bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(config.users));
}

void BM_index_fetch(benchmark::State& state) {
  run_fetch(state, static_cast<std::uint64_t>(state.range(0)), static_cast<unsigned>(state.range(1)),
            [](tixport::test::index_server_config&) {});
}

void BM_index_fetch_faults(benchmark::State& state) {
  run_fetch(state, static_cast<std::uint64_t>(state.range(0)), static_cast<unsigned>(state.range(1)),
            [](tixport::test::index_server_config& config) {
              config.error_500_rate = 0.05;
              config.every_nth_429 = 50;
              // Moved in, not assigned from "1": GCC 12 at -O3 flags the inlined
              // string::assign with a false -Wrestrict (GCC bug 105329).
              config.retry_after = std::string(1, '1');
            });
}

void BM_index_fetch_tls(benchmark::State& state) {
  run_fetch(state, static_cast<std::uint64_t>(state.range(0)), static_cast<unsigned>(state.range(1)),
            [](tixport::test::index_server_config& config) { config.tls = true; });
}

/// The simdjson page parser alone, on a page of 100 generated users.
void BM_index_parse_page(benchmark::State& state) {
  std::string page = "{\"users\":[";
  for (std::uint64_t i = 0; i < kUsersPerPage; ++i) {
    if (i > 0) page += ',';
    page += "{\"id\":" + std::to_string(tixport::test::test_user_id(i) * 7919) +
            ",\"url\":\"https://example.zendesk.com/api/v2/users/" + std::to_string(i) +
            ".json\",\"name\":\"User Name " + std::to_string(i) + "\",\"email\":\"" +
            tixport::test::test_user_email(i) +
            "\",\"created_at\":\"2021-03-04T05:06:07Z\",\"role\":\"end-user\",\"verified\":true,"
            "\"tags\":[\"vip\",\"emea\"],\"user_fields\":{\"plan\":\"gold\"}}";
  }
  page += "],\"next_page\":\"https://example.zendesk.com/api/v2/users.json?page=2\",\"count\":56700}";
  std::string body;
  tixport::detail::page_body parsed;
  for (auto _ : state) {
    body = page;
    if (tixport::detail::parse_page_body(body, parsed)) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(parsed.users.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(page.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(kUsersPerPage));
}

constexpr std::int64_t kFullPages = 567;
constexpr std::int64_t kShortPages = 57;

const bool kRegistered = [] {
  const std::int64_t slow_pages = full_run() ? kFullPages : kShortPages;
  for (const std::int64_t concurrency : {1, 4, 16, 32}) {
    benchmark::RegisterBenchmark("BM_index_fetch", BM_index_fetch)
        ->Args({concurrency <= 4 ? slow_pages : kFullPages, concurrency})
        ->ArgNames({"pages", "concurrency"})
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("BM_index_fetch_faults", BM_index_fetch_faults)
      ->Args({kFullPages, 16})
      ->ArgNames({"pages", "concurrency"})
      ->Iterations(1)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_index_fetch_tls", BM_index_fetch_tls)
      ->Args({kFullPages, 16})
      ->ArgNames({"pages", "concurrency"})
      ->Iterations(1)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_index_parse_page", BM_index_parse_page);
  return true;
}();

}  // namespace
