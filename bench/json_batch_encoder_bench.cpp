// File: json_batch_encoder_bench.cpp
//
// Throughput of encode_batch on realistic full batches (100 tickets, 100
// comments with 20-400 byte HTML bodies holding quotes and newlines, 100
// users), compact and pretty, and of append_json_string alone. Bytes counted
// are the bytes written.
//
//   ./tixport_bench --benchmark_filter=BM_json_ --benchmark_min_time=1
#include "tixport/run/json_batch_encoder.hpp"

#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kBatchSize = 100;

struct batch_input {
  std::vector<std::string> bodies;
  std::vector<std::string> names;
  std::vector<std::string> emails;
  std::vector<tixport::ticket_record> tickets;
  std::vector<tixport::comment_record> comments;
  std::vector<tixport::user_record> users;
};

std::string make_body(std::mt19937_64& rng) {
  static const char* const kPieces[] = {
      "<p>", "</p>", "Hello, ", "thanks for reaching out", "<a href=\"https://example.com/help\">help</a>",
      "\n", "\r\n", "your order #12345", " has shipped", "\"quoted reply\"", " caf\xC3\xA9",
      " \xF0\x9F\x98\x80", "<br/>", "\t", "C:\\Users\\file.txt", " please check", " the tracking number"};
  const std::size_t target = 20 + rng() % 381;
  std::string s;
  while (s.size() < target) s += kPieces[rng() % std::size(kPieces)];
  s.resize(target);
  // Never cut a multi-byte character in half: the encoder is fed clean UTF-8.
  while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0x80) != 0) s.pop_back();
  return s;
}

batch_input make_batch() {
  std::mt19937_64 rng(2606);
  batch_input b;
  for (std::size_t i = 0; i < kBatchSize; ++i) {
    b.bodies.push_back(make_body(rng));
    b.names.push_back("Customer " + std::to_string(rng() % 100000));
    b.emails.push_back("customer" + std::to_string(rng() % 100000) + "@example.org");
  }
  for (std::size_t i = 0; i < kBatchSize; ++i) {
    const auto id = static_cast<std::int64_t>(rng() % 1'000'000'000ULL);
    const std::int64_t ts = 1'500'000'000 + static_cast<std::int64_t>(rng() % 300'000'000ULL);
    b.tickets.push_back({ts, id + 7, id});
    b.comments.push_back({ts, id, id * 3 + 1, (rng() & 1) != 0, b.bodies[i], id + 7});
    b.users.push_back({b.names[i], id + 7, b.emails[i]});
  }
  return b;
}

void run_encode(benchmark::State& state, tixport::json_style style) {
  const batch_input b = make_batch();
  std::string out;
  std::size_t written = 0;
  for (auto _ : state) {
    out.clear();
    tixport::encode_batch(b.tickets, b.comments, b.users, style, out);
    written = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(written));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(3 * kBatchSize));
  state.counters["batch_bytes"] = static_cast<double>(written);
}

void BM_json_encode_batch_compact(benchmark::State& state) { run_encode(state, tixport::json_style::compact); }
BENCHMARK(BM_json_encode_batch_compact);

void BM_json_encode_batch_pretty(benchmark::State& state) { run_encode(state, tixport::json_style::pretty); }
BENCHMARK(BM_json_encode_batch_pretty);

/// A fresh std::string per batch, as a pipeline that hands each buffer on would do.
void BM_json_encode_batch_fresh_buffer(benchmark::State& state) {
  const batch_input b = make_batch();
  std::size_t written = 0;
  for (auto _ : state) {
    std::string out;
    tixport::encode_batch(b.tickets, b.comments, b.users, tixport::json_style::compact, out);
    written = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(written));
}
BENCHMARK(BM_json_encode_batch_fresh_buffer);

void BM_json_append_string(benchmark::State& state) {
  const batch_input b = make_batch();
  std::int64_t input_bytes = 0;
  for (const std::string& s : b.bodies) input_bytes += static_cast<std::int64_t>(s.size());
  std::string out;
  for (auto _ : state) {
    out.clear();
    for (const std::string& s : b.bodies) tixport::append_json_string(out, s);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * input_bytes);
}
BENCHMARK(BM_json_append_string);

/// Bodies like the generated exports' (perf/data): ~230 bytes of HTML with one byte to escape
/// every ~100 (a quoted attribute, a newline), unlike make_body's dense mix.
void BM_json_append_string_export_like(benchmark::State& state) {
  static const char* const kSentences[] = {
      "I was charged twice for the same order, can you refund one of them? ",
      "I've applied a 10% discount to your next order. ",
      "I'm sorry to hear that, let me check this for you. ",
      "See <a href=\"https://help.shopnow.example/articles/360784011\">this article</a> for details. ",
      "Merci beaucoup, \xC3\xA7" "a marche maintenant ! ",
      "The discount code SPRING20 doesn't apply at checkout.</p>\n<p>",
      "I ordered the blue jacket last week, but it still hasn't shipped. ",
      "Can I talk to a human, please? "};
  std::mt19937_64 rng(2612);
  std::vector<std::string> bodies;
  std::int64_t input_bytes = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string body = "<p>";
    const std::size_t target = 60 + rng() % 340;
    while (body.size() < target) body += kSentences[rng() % std::size(kSentences)];
    body += "</p>";
    input_bytes += static_cast<std::int64_t>(body.size());
    bodies.push_back(std::move(body));
  }
  std::string out;
  for (auto _ : state) {
    out.clear();
    for (const std::string& s : bodies) tixport::append_json_string(out, s);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * input_bytes);
}
BENCHMARK(BM_json_append_string_export_like);

void BM_json_append_string_clean(benchmark::State& state) {
  // Long runs without any byte to escape: the 16-byte scan's best case.
  const std::string text(4096, 'x');
  std::string out;
  for (auto _ : state) {
    out.clear();
    tixport::append_json_string(out, text);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}
BENCHMARK(BM_json_append_string_clean);

}  // namespace
