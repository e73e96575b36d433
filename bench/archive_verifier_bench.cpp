// File: archive_verifier_bench.cpp
//
// Throughput of `tixport verify` (verify_archive) on a generated, valid
// archive of ~50 MB of JSON batches (B = 100, chat-like bodies with escapes
// and non-ASCII text), written once as .tar, .tar.gz and .tar.zst into a temp
// directory. Bytes processed = uncompressed entry bytes, so the rates of the
// three formats compare directly. The argument is --threads (0 = all cores).
//
//   ./tixport_bench --benchmark_filter=BM_verify --benchmark_min_time=1
#include "tixport/archive/archive_verifier.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kTargetBytes = std::size_t{50} << 20;
constexpr int kBatchSize = 100;
constexpr int kUsersPerBatch = 20;

/// Deterministic chat-like batches: ids ascending, every reference resolvable.
std::vector<std::string> make_batches() {
  std::mt19937_64 rng(42);
  static const char* const kWords[] = {"hello",  "thanks", "order", "<p>",      "</p>",   "refund",
                                       "caf\xC3\xA9", "na\xC3\xAFve", "\xE2\x82\xAC" "20", "\xF0\x9F\x98\x80",
                                       "please", "\\\"quoted\\\"", "line\\nbreak", "tracking", "number"};
  std::vector<std::string> batches;
  std::size_t total = 0;
  long long next_user = 1000;
  for (int k = 1; total < kTargetBytes; ++k) {
    std::string doc = R"({"data":{"tickets":{"data":[)";
    const long long first_user = next_user;
    for (int i = 0; i < kBatchSize; ++i) {
      const long long id = static_cast<long long>(k) * kBatchSize + i;
      if (i > 0) doc += ',';
      doc += R"({"created_at":"2024-03-1)" + std::to_string(i % 10) + R"(T12:34:56Z","requester_id":)" +
             std::to_string(first_user + static_cast<long long>(rng() % kUsersPerBatch)) + R"(,"id":)" +
             std::to_string(id) + "}";
    }
    doc += R"(],"comments":[)";
    for (int i = 0; i < kBatchSize; ++i) {
      const long long id = static_cast<long long>(k) * kBatchSize + i;
      if (i > 0) doc += ',';
      std::string body;
      const std::size_t words = 10 + rng() % 150;
      for (std::size_t w = 0; w < words; ++w) {
        if (w > 0) body += ' ';
        body += kWords[rng() % std::size(kWords)];
      }
      doc += R"({"created_at":"2024-03-12T12:35:)" + std::to_string(10 + i % 50) + R"(Z","ticket_id":)" +
             std::to_string(id) + R"(,"id":)" + std::to_string(id) + R"(,"public":)" +
             (i % 3 == 0 ? "false" : "true") + R"(,"html_body":")" + body + R"(","author_id":)" +
             std::to_string(first_user + static_cast<long long>(rng() % kUsersPerBatch)) + "}";
    }
    doc += R"(],"users":[)";
    for (int i = 0; i < kUsersPerBatch; ++i) {
      if (i > 0) doc += ',';
      const std::string id = std::to_string(next_user++);
      doc += R"({"name":"User )" + id + R"(","id":)" + id + R"(,"email":"user)" + id + R"(@example.org"})";
    }
    doc += R"(],"organizations":[]}}})";
    total += doc.size();
    batches.push_back(std::move(doc));
  }
  return batches;
}

void write_archive(const fs::path& path, const char* filter, const std::vector<std::string>& batches) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (filter != nullptr && archive_write_add_filter_by_name(a, filter) != ARCHIVE_OK) {
    throw std::runtime_error(archive_error_string(a));
  }
  if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK) throw std::runtime_error(archive_error_string(a));
  for (std::size_t k = 0; k < batches.size(); ++k) {
    archive_entry* e = archive_entry_new();
    const std::string name = "backup_tickets_" + std::to_string((k + 1) * kBatchSize) + ".json";
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(batches[k].size()));
    archive_write_header(a, e);
    archive_write_data(a, batches[k].data(), batches[k].size());
    archive_entry_free(e);
  }
  if (archive_write_close(a) != ARCHIVE_OK) throw std::runtime_error(archive_error_string(a));
  archive_write_free(a);
}

/// The three archives, generated on first use and removed at exit.
class fixture {
 public:
  static const fixture& get() {
    static const fixture instance;
    return instance;
  }
  [[nodiscard]] fs::path path(const std::string& name) const { return dir_ / name; }
  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

 private:
  fixture() : dir_(fs::temp_directory_path() / ("tixport_verify_bench_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
    const std::vector<std::string> batches = make_batches();
    write_archive(dir_ / "a.tar", nullptr, batches);
    write_archive(dir_ / "a.tar.gz", "gzip", batches);
    write_archive(dir_ / "a.tar.zst", "zstd", batches);
  }
  ~fixture() {
    std::error_code ignored;  // best effort at exit
    fs::remove_all(dir_, ignored);
  }
  fs::path dir_;
};

void run_verify(benchmark::State& state, const std::string& name) {
  tixport::verify_options options;
  options.archive = fixture::get().path(name);
  options.threads = static_cast<unsigned>(state.range(0));
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    const tixport::verify_result r = tixport::verify_archive(options);
    if (!r.valid) state.SkipWithError("generated archive did not verify");
    bytes += r.bytes;
    benchmark::DoNotOptimize(r.tickets);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

void BM_verify_tar(benchmark::State& state) { run_verify(state, "a.tar"); }
void BM_verify_tar_gz(benchmark::State& state) { run_verify(state, "a.tar.gz"); }
void BM_verify_tar_zst(benchmark::State& state) { run_verify(state, "a.tar.zst"); }

BENCHMARK(BM_verify_tar)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_verify_tar_gz)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_verify_tar_zst)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
