// File: csv_reader_bench.cpp
//
// Throughput of the CSV reader on a generated chat export (the 10 SPEC
// columns; HTML bodies of 20-400 bytes with commas, `""`, LF and CRLF inside):
// pass-1 counting, boundary finding per SIMD kernel, and read_csv_records on
// 1 thread and on all threads. Deterministic input (~128 MB, built once per
// process); rates in bytes per second. A 32 MB variant with a stray quote in
// one record of ten measures the worst case for speculation.
//
//   build/tixport_bench --benchmark_filter=csv --benchmark_min_time=1
#include "tixport/csv/csv_reader.hpp"

#include "../src/csv/csv_reader_internal.hpp"
#include "../src/csv/csv_scan_internal.hpp"

#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

namespace {

constexpr std::size_t kTargetBytes = 128u << 20;

// A small deterministic generator (splitmix64), so the input is the same everywhere.
struct rng {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) noexcept { return static_cast<std::size_t>(next() % n); }
};

void append_timestamp(std::string& out, rng& r) {
  char text[32];
  const int n = std::snprintf(text, sizeof text, "2023-%02zu-%02zu %02zu:%02zu:%02zu", 1 + r.below(12),
                              1 + r.below(28), r.below(24), r.below(60), r.below(60));
  out.append(text, static_cast<std::size_t>(n));
}

// An HTML body of 20-400 bytes; often quoted because it holds commas, quotes or line ends.
void append_body(std::string& out, rng& r) {
  static constexpr std::array<std::string_view, 12> kWords = {
      "<p>",   "</p>",    "hello", "order", "refund,",     "<a href=\"\"https://shop.test/x\"\">", "</a>",
      "thanks", "please", "\n",    "\r\n",  "it's \"\"ok\"\""};
  const std::size_t target = 20 + r.below(381);
  std::string body;
  while (body.size() < target) {
    body += kWords[r.below(kWords.size())];
    body += ' ';
  }
  const bool needs_quotes = body.find_first_of(",\"\r\n") != std::string::npos;
  if (needs_quotes) out += '"';
  out += body;
  if (needs_quotes) out += '"';
}

// The export: ~target_bytes of records. stray_every > 0: every stray_every-th record has an
// unquoted NAME holding a stray quote (`5'10" tall`), which pandas reads as an ordinary byte
// but which flips quote parity: the worst case for speculation.
std::string make_export(std::size_t target_bytes, std::size_t stray_every) {
  std::string s =
      "TICKET_CREATED_AT,TICKET_REQUESTER_ID,COMMENT_PART_ID,CONVERSATION_ID,COMMENT_PUBLIC,BODY,"
      "COMMENT_CREATED_AT,AUTHOR_ID,NAME,EMAIL\n";
  s.reserve(target_bytes + 4096);
  rng r{42};
  std::uint64_t part = 1000000;
  while (s.size() < target_bytes) {
    const std::uint64_t conversation = 500000 + r.below(200000);
    const std::uint64_t author = 10000 + r.below(50000);
    append_timestamp(s, r);
    s += ',' + std::to_string(author) + ',' + std::to_string(part++) + ',' + std::to_string(conversation) + ',';
    s += r.below(2) == 0 ? "True," : "False,";
    append_body(s, r);
    s += ',';
    append_timestamp(s, r);
    if (stray_every != 0 && part % stray_every == 0) {
      s += ',' + std::to_string(author) + ",Name 5'10\" tall,user" + std::to_string(author) + "@example.org";
    } else {
      s += ',' + std::to_string(author) + ",\"Name " + std::to_string(author) + ", Jr\",user" +
           std::to_string(author) + "@example.org";
    }
    s += r.below(4) == 0 ? "\r\n" : "\n";
  }
  return s;
}

const std::string& export_csv() {
  static const std::string data = make_export(kTargetBytes, 0);
  return data;
}

const std::string& stray_quote_csv() {
  static const std::string data = make_export(kTargetBytes / 4, 10);
  return data;
}

const tixport::csv_header& export_header() {
  static const tixport::csv_header header = *tixport::read_csv_header(export_csv());
  return header;
}

void BM_csv_count_quotes_lfs(benchmark::State& state) {
  const std::string& data = export_csv();
  for (auto _ : state) {
    benchmark::DoNotOptimize(tixport::csv_internal::count_quotes_and_lfs(data, 0, data.size()));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_csv_count_quotes_lfs)->Unit(benchmark::kMillisecond);

// Record boundary finding on one core with kernel `level` (0 portable, 1 sse2, 2 avx2).
void BM_csv_boundaries(benchmark::State& state) {
  using namespace tixport::csv_internal;
  const auto level = static_cast<simd_level>(state.range(0));
  if (level > best_simd_level()) {
    state.SkipWithError("kernel not supported on this CPU");
    return;
  }
  const simd_level saved = active_simd_level();
  set_simd_level(level);
  const std::string& data = export_csv();
  const auto& header = export_header();
  boundary_stats stats;
  for (auto _ : state) {
    stats = scan_record_boundaries(data, header.data_offset, header.data_first_line,
                                   static_cast<std::uint32_t>(header.fields.size()));
    benchmark::DoNotOptimize(stats);
  }
  set_simd_level(saved);
  state.SetLabel(simd_level_name(level));
  state.counters["records"] = static_cast<double>(stats.records);
  state.counters["fallbacks"] = static_cast<double>(stats.fallbacks);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_csv_boundaries)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

// read_csv_records end to end: both passes, the flow graph, unordered delivery.
void BM_csv_read_records(benchmark::State& state) {
  const std::string& data = export_csv();
  const auto& header = export_header();
  tixport::csv_read_options options;
  options.threads = static_cast<std::size_t>(state.range(0));
  std::uint64_t records = 0;
  for (auto _ : state) {
    const auto stats = tixport::read_csv_records(data, header, options, [](tixport::csv_chunk&& chunk) {
      benchmark::DoNotOptimize(chunk.fields.data());
    });
    records = stats.records;
  }
  state.counters["records"] = static_cast<double>(records);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_csv_read_records)
    ->Arg(1)
    ->Arg(static_cast<std::int64_t>(std::thread::hardware_concurrency()))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The batch serializer's re-read of a comment's record (BODY, COMMENT_PART_ID, COMMENT_CREATED_AT,
// CONVERSATION_ID, AUTHOR_ID) for every record of the export, on one thread. Arg 0: the exact
// parser alone (how read_record_fields read before 2026-12-06); 1: read_record_fields (the
// active SIMD walker, the exact parser only where it cannot take a record).
void BM_csv_reread_comment_fields(benchmark::State& state) {
  using namespace tixport::csv_internal;
  const std::string& data = export_csv();
  const auto& header = export_header();
  static const tixport::csv_chunk records =
      parse_range(data, header.data_offset, header.data_first_line, data.size(),
                  static_cast<std::uint32_t>(header.fields.size()), parse_mode::fast);
  const std::size_t wanted[5] = {5, 2, 6, 3, 7};
  std::string_view views[5];
  std::string raw[5];
  std::string* const owned[5] = {&raw[0], &raw[1], &raw[2], &raw[3], &raw[4]};
  std::string scratch;
  for (auto _ : state) {
    for (const std::uint64_t offset : records.record_offsets) {
      if (state.range(0) == 0) {
        wanted_fields_sink sink{wanted, views, owned, &scratch};
        sink.last = 7;
        for (std::string_view& v : views) v = {};
        scratch.clear();
        parse_record_exact(data.data(), data.size(), {offset, 0}, sink, scratch);
      } else {
        read_record_fields(data, offset, wanted, views, owned);
      }
      benchmark::DoNotOptimize(views[0].data());
    }
  }
  state.counters["records"] = static_cast<double>(records.record_offsets.size());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_csv_reread_comment_fields)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

// The same on an export where one record in ten has a stray quote: the fast path falls back to
// the exact parser for those records and the ordered merge re-parses chunks whose parity broke.
void BM_csv_read_records_stray_quotes(benchmark::State& state) {
  const std::string& data = stray_quote_csv();
  const auto header = *tixport::read_csv_header(data);
  tixport::csv_read_options options;
  options.threads = static_cast<std::size_t>(state.range(0));
  tixport::csv_read_stats stats;
  for (auto _ : state) {
    stats = tixport::read_csv_records(data, header, options, [](tixport::csv_chunk&& chunk) {
      benchmark::DoNotOptimize(chunk.fields.data());
    });
  }
  state.counters["records"] = static_cast<double>(stats.records);
  state.counters["reparsed"] = static_cast<double>(stats.reparsed_chunks);
  state.counters["chunks"] = static_cast<double>(stats.chunks);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_csv_read_records_stray_quotes)
    ->Arg(1)
    ->Arg(static_cast<std::int64_t>(std::thread::hardware_concurrency()))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
