// File: field_parsers_bench.cpp
//
// Throughput of the per-field parsers on deterministic generated fields:
// ids, booleans, timestamps, emails, UTF-8 validation (against simdjson's
// validator as a yardstick) and UTF-8 repair.
//
//   ./tixport_bench --benchmark_filter=BM_fields_ --benchmark_min_time=1
#include "tixport/csv/field_parsers.hpp"

#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kFieldCount = 4096;

std::int64_t total_bytes(const std::vector<std::string>& fields) {
  std::int64_t n = 0;
  for (const std::string& f : fields) n += static_cast<std::int64_t>(f.size());
  return n;
}

std::vector<std::string> make_ids() {
  std::mt19937_64 rng(1);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    std::string s = std::to_string(rng() % 10'000'000'000ULL);
    if (i % 4 == 0) s += ".0";  // pandas-style float ids
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::string> make_timestamps() {
  std::mt19937_64 rng(2);
  std::uniform_int_distribution<std::int64_t> dist(946684800, 1893456000);  // 2000..2030
  std::vector<std::string> out;
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    char text[tixport::kTimestampTextSize];
    tixport::format_timestamp(dist(rng), text);
    std::string s(text, sizeof text);
    if (i % 3 == 0) s.replace(19, 1, ".123456+05:30");
    if (i % 3 == 1) s[10] = ' ';
    out.push_back(std::move(s));
  }
  return out;
}

/// Chat-message-like text: mostly ASCII, some accented words and emoji.
std::vector<std::string> make_bodies(bool with_errors) {
  std::mt19937_64 rng(3);
  static const char* const kWords[] = {"hello", "thanks", "order", "<p>", "</p>", "refund", "caf\xC3\xA9",
                                       "na\xC3\xAFve", "\xE2\x82\xAC" "20", "\xF0\x9F\x98\x80", "please",
                                       "\"quoted\"", "delivery", "tracking", "number"};
  std::vector<std::string> out;
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    std::string s;
    const std::size_t target = 20 + rng() % 380;
    while (s.size() < target) {
      s += kWords[rng() % std::size(kWords)];
      s += ' ';
    }
    if (with_errors) s[rng() % s.size()] = '\xFF';
    out.push_back(std::move(s));
  }
  return out;
}

void BM_fields_parse_id(benchmark::State& state) {
  const auto fields = make_ids();
  for (auto _ : state) {
    for (const std::string& f : fields) benchmark::DoNotOptimize(tixport::parse_id(f));
  }
  state.SetBytesProcessed(state.iterations() * total_bytes(fields));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(fields.size()));
}
BENCHMARK(BM_fields_parse_id);

void BM_fields_parse_bool(benchmark::State& state) {
  static const char* const kWords[] = {"true", "False", "t", "F", "yes", "No", "1", "0"};
  std::vector<std::string> fields;
  for (std::size_t i = 0; i < kFieldCount; ++i) fields.emplace_back(kWords[i % std::size(kWords)]);
  for (auto _ : state) {
    for (const std::string& f : fields) benchmark::DoNotOptimize(tixport::parse_bool(f));
  }
  state.SetBytesProcessed(state.iterations() * total_bytes(fields));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(fields.size()));
}
BENCHMARK(BM_fields_parse_bool);

void BM_fields_parse_timestamp(benchmark::State& state) {
  const auto fields = make_timestamps();
  for (auto _ : state) {
    for (const std::string& f : fields) benchmark::DoNotOptimize(tixport::parse_timestamp(f));
  }
  state.SetBytesProcessed(state.iterations() * total_bytes(fields));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(fields.size()));
}
BENCHMARK(BM_fields_parse_timestamp);

void BM_fields_format_timestamp(benchmark::State& state) {
  std::mt19937_64 rng(4);
  std::vector<std::int64_t> values;
  for (std::size_t i = 0; i < kFieldCount; ++i) values.push_back(static_cast<std::int64_t>(rng() % 4'000'000'000ULL));
  char text[tixport::kTimestampTextSize];
  for (auto _ : state) {
    for (std::int64_t v : values) {
      tixport::format_timestamp(v, text);
      benchmark::DoNotOptimize(text);
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(values.size() * sizeof text));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(values.size()));
}
BENCHMARK(BM_fields_format_timestamp);

/// The write's two ways to a comment's created_at text, on the same mix as parse_timestamp's
/// (a third with an offset, which copy_utc_timestamp leaves to the conversion):
/// arg 0 parse_timestamp + format_timestamp, arg 1 copy_utc_timestamp first.
void BM_fields_timestamp_to_text(benchmark::State& state) {
  const auto fields = make_timestamps();
  const bool copy = state.range(0) == 1;
  char text[tixport::kTimestampTextSize];
  for (auto _ : state) {
    for (const std::string& f : fields) {
      if (!copy || !tixport::copy_utc_timestamp(f, text)) tixport::format_timestamp(*tixport::parse_timestamp(f), text);
      benchmark::DoNotOptimize(text);
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(fields.size()));
}
BENCHMARK(BM_fields_timestamp_to_text)->Arg(0)->Arg(1);

void BM_fields_email(benchmark::State& state) {
  std::vector<std::string> fields;
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    fields.push_back("  Customer.Name" + std::to_string(i) + "@Example-Mail.COM ");
  }
  std::string key;
  for (auto _ : state) {
    for (const std::string& f : fields) {
      const std::string_view t = tixport::trim_ws(f);
      if (tixport::is_valid_email(t)) tixport::email_key(t, key);
      benchmark::DoNotOptimize(key.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * total_bytes(fields));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(fields.size()));
}
BENCHMARK(BM_fields_email);

void BM_fields_is_valid_utf8(benchmark::State& state) {
  const auto fields = make_bodies(false);
  for (auto _ : state) {
    for (const std::string& f : fields) benchmark::DoNotOptimize(tixport::is_valid_utf8(f));
  }
  state.SetBytesProcessed(state.iterations() * total_bytes(fields));
}
BENCHMARK(BM_fields_is_valid_utf8);

void BM_fields_is_valid_utf8_ascii(benchmark::State& state) {
  std::vector<std::string> fields;
  for (std::size_t i = 0; i < kFieldCount; ++i) fields.emplace_back(20 + i % 380, static_cast<char>('a' + i % 26));
  for (auto _ : state) {
    for (const std::string& f : fields) benchmark::DoNotOptimize(tixport::is_valid_utf8(f));
  }
  state.SetBytesProcessed(state.iterations() * total_bytes(fields));
}
BENCHMARK(BM_fields_is_valid_utf8_ascii);

/// Yardstick: simdjson's SIMD validator on the same text.
void BM_fields_simdjson_validate_utf8(benchmark::State& state) {
  const auto fields = make_bodies(false);
  for (auto _ : state) {
    for (const std::string& f : fields) benchmark::DoNotOptimize(simdjson::validate_utf8(f.data(), f.size()));
  }
  state.SetBytesProcessed(state.iterations() * total_bytes(fields));
}
BENCHMARK(BM_fields_simdjson_validate_utf8);

void BM_fields_repair_utf8(benchmark::State& state) {
  const auto fields = make_bodies(true);
  std::string out;
  for (auto _ : state) {
    for (const std::string& f : fields) {
      out.clear();
      benchmark::DoNotOptimize(tixport::repair_utf8(f, out));
    }
  }
  state.SetBytesProcessed(state.iterations() * total_bytes(fields));
}
BENCHMARK(BM_fields_repair_utf8);

}  // namespace
