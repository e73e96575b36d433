// File: row_classifier_bench.cpp
//
// The parse stage after the CSV reader, on one thread: classify_chunk (field
// typing, per-chunk local dedup) alone, and classify_chunk followed by
// row_deduplicator::absorb and take_comments (the shared maps and the final
// winner filter), on a 200k-row export from `tixport generate` (seed 1) read
// once into chunks. Rates in input bytes and rows per second. Stable under
// load when counted in instructions:
//
//   valgrind --tool=callgrind build/tixport_bench --benchmark_filter=BM_classify_chunks
//     --benchmark_min_time=0.01     (one line)
//   build/tixport_bench --benchmark_filter='BM_classify|BM_dedup' --benchmark_repetitions=5
#include "tixport/csv/csv_reader.hpp"
#include "tixport/common/mapped_file.hpp"
#include "tixport/run/batch_serializer.hpp"
#include "tixport/run/row_classifier.hpp"
#include "tixport/run/row_deduplicator.hpp"
#include "tixport/generate/sample_generator.hpp"

#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>
#include <vector>

namespace {

constexpr std::uint64_t kRows = 200000;

// The generated export, mapped, with its header and every chunk, built once per process.
struct export_fixture {
  std::filesystem::path dir;
  tixport::mapped_file file;
  std::optional<tixport::csv_header> header;
  tixport::export_columns columns;
  std::vector<tixport::csv_chunk> chunks;
  std::uint64_t rows = 0;

  static export_fixture& get() {
    static std::unique_ptr<export_fixture> fixture = [] {
      auto f = std::make_unique<export_fixture>();
      f->dir = std::filesystem::temp_directory_path() / "tixport_row_classifier_bench";
      std::filesystem::create_directories(f->dir);
      tixport::generate_options g;
      g.rows = kRows;
      g.output = f->dir / "chat.csv";
      g.users_output = f->dir / "users.csv";
      tixport::generate_sample(g);
      f->file = tixport::mapped_file::open(g.output);
      f->header = tixport::read_csv_header(f->file.bytes());
      f->columns = tixport::export_columns::resolve(*f->header);
      tixport::csv_read_options options;
      options.ordered = true;
      tixport::read_csv_records(f->file.bytes(), *f->header, options, [&](tixport::csv_chunk&& c) {
        f->rows += c.record_count();
        f->chunks.push_back(std::move(c));
      });
      return f;
    }();
    return *fixture;
  }
  ~export_fixture() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

void set_rates(benchmark::State& state, const export_fixture& f) {
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(f.file.bytes().size()));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(f.rows));
}

void BM_classify_chunks(benchmark::State& state) {
  export_fixture& f = export_fixture::get();
  for (auto _ : state) {
    std::size_t comments = 0;
    for (const tixport::csv_chunk& chunk : f.chunks) {
      tixport::classified_chunk out;
      tixport::classify_chunk(chunk, f.columns, out);
      comments += out.comments.size();
    }
    benchmark::DoNotOptimize(comments);
  }
  set_rates(state, f);
}
BENCHMARK(BM_classify_chunks)->Unit(benchmark::kMillisecond);

void BM_dedup_classify_absorb_take(benchmark::State& state) {
  export_fixture& f = export_fixture::get();
  for (auto _ : state) {
    tixport::row_deduplicator dedup(f.file.bytes().size() / 360);
    for (const tixport::csv_chunk& chunk : f.chunks) {
      tixport::classified_chunk out;
      tixport::classify_chunk(chunk, f.columns, out);
      dedup.absorb(std::move(out));
    }
    const auto source = tixport::comment_source::of(f.file.bytes(), f.header->fields.size(), f.columns);
    benchmark::DoNotOptimize(
        dedup.take_comments([&](const tixport::comment_candidate& c) { return tixport::read_comment_id(source, c); }));
    benchmark::DoNotOptimize(dedup.take_tickets());
    benchmark::DoNotOptimize(dedup.take_users());
  }
  set_rates(state, f);
}
BENCHMARK(BM_dedup_classify_absorb_take)->Unit(benchmark::kMillisecond);

}  // namespace
