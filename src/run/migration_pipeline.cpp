// File: migration_pipeline.cpp
#include "tixport/run/migration_pipeline.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"
#include "tixport/common/mapped_file.hpp"
#include "tixport/common/parallelism.hpp"
#include "tixport/common/progress_meter.hpp"
#include "tixport/csv/csv_reader.hpp"
#include "tixport/csv/field_parsers.hpp"

#include "common/huge_page_new_internal.hpp"
#include "common/tsan_annotations_internal.hpp"
#include "run/run_stages_internal.hpp"

#include <oneapi/tbb/flow_graph.h>

#include <chrono>
#include <future>

namespace tixport {

namespace {

using clock_type = std::chrono::steady_clock;
// The address the run graph's stages hand their results over on (for ThreadSanitizer only).
const int kStageHandOff = 0;
// How often a wait for the archive's end looks for a signal.
constexpr auto kInterruptPoll = std::chrono::milliseconds(50);

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

}  // namespace

void run_outcome::commit() {
  if (archive) archive->commit();
  try {
    if (ledger) ledger->commit(false);
  } catch (const fatal_error& e) {
    // The archive is already in place: say so, or the user would import it and rerun on the
    // old ledger, which would then write its objects again.
    throw fatal_error(e.code(), std::string(e.what()) + "; the archive " + archive->output_path().string() +
                                    " IS in place but the ledger was not updated: do not import that archive, "
                                    "rerun with the same --since");
  }
  if (rejects) rejects->commit(false);
}

run_outcome run_migration(const run_options& options) {
  namespace flow = oneapi::tbb::flow;
  using namespace run_stages;
  const auto run_start = clock_type::now();
  parallelism arena(options.threads);  // the run's one arena; every stage runs inside it

  if (!options.dry_run && !archive_format_from_name(options.output.string())) {
    throw fatal_error(exit_code::input_error,
                      "output: " + options.output.string() + ": the name must end in .tar, .tar.gz, .tgz or .tar.zst");
  }
  run_outcome outcome;
  // --rejects: every log of this run keeps every line it counts, not only the samples.
  std::optional<reject_log::record_every_line> recording;
  if (options.rejects) recording.emplace();

  // The --since ledger and the user index load on their own threads from the start: the
  // ledger while the export's blocks are hashed, the index while the export is parsed. If the
  // run stops early, the index load is cancelled so that leaving does not wait for a slow
  // fetch (a future from std::async joins in its destructor).
  // Read before anything is written: a --ledger without --since that names an earlier run's
  // ledger replaces it and starts a new lineage (a warning; rerunning a first run is legitimate).
  const std::uint32_t replaced_ledger_run =
      options.ledger && !options.since && !options.dry_run ? ledger_run_of(*options.ledger).value_or(0) : 0;
  std::future<loaded_ledger> ledger_load;
  if (options.since) {
    ledger_load = std::async(std::launch::async, [path = *options.since] {
      const auto start = clock_type::now();
      loaded_ledger loaded{load_ledger(path)};
      loaded.seconds = seconds_since(start);
      return loaded;
    });
  }
  std::future<user_index> index_load = std::async(std::launch::async, [&load = options.load_index] {
    user_index index = load();
    // Loading frees as much as it keeps (the raw entries, the reader's chunks): small blocks
    // that malloc would otherwise hold through the parse, whose end is the run's peak.
    return_free_heap_to_os();
    return index;
  });
  struct cancel_on_exit {
    const std::function<void()>& cancel;
    std::future<user_index>& future;
    ~cancel_on_exit() {
      if (future.valid() && cancel) cancel();
    }
  } index_guard{options.cancel_index, index_load};

  mapped_file file = mapped_file::open(options.input);
  const std::string_view data = file.bytes();
  const std::optional<csv_header> header = read_csv_header(data);
  if (!header) {
    throw fatal_error(exit_code::input_error, "input: " + options.input.string() + ": empty file, no header record");
  }
  progress_meter progress(progress_meter::wanted(options.progress));
  const run_context context{options,
                            arena.threads(),
                            file,
                            data,
                            *header,
                            export_columns::resolve(*header, {"input", options.input.native(), data}),
                            options.ledger.has_value() && !options.dry_run,
                            progress,
                            options.since ? &ledger_load : nullptr,
                            &index_load};

  // Each stage writes only its own result; an edge is "needs the result of".
  prefix_result prefix;
  parse_result parse;
  export_hash_result hash;
  index_result index;
  resolve_result resolved;
  write_result written;
  ledger_result ledger;
  rejects_result rejects;
  // Two graphs, with the wait for the user index between them on this thread: a wait that
  // may last minutes (a slow REST API) is then a timed wait of the calling thread, which takes
  // a SIGINT/SIGTERM at once even under ThreadSanitizer (which delivers a signal only when its
  // thread reaches instrumented code; a thread parked inside libtbb's wait_for_all never does).
  // Each stage sees every stage before it (and the run's setup), and the results are seen
  // after the graph: hand-offs ThreadSanitizer cannot follow inside libtbb, marked on one
  // address (tsan_annotations_internal.hpp). No-ops without TSan.
  using stage = flow::continue_node<flow::continue_msg>;
  const auto body = [](auto fn) {
    return [fn](const flow::continue_msg&) {
      tsan::acquire(&kStageHandOff);
      const tsan::release_on_exit done(&kStageHandOff);
      fn();
    };
  };
  arena.execute([&] {
    flow::graph graph;
    stage prefix_check(graph, body([&] { prefix = check_prefix(context); }));
    stage parse_rows(graph, body([&] { parse = parse_export(context, prefix); }));
    flow::make_edge(prefix_check, parse_rows);
    // Destroyed before the nodes, also when wait_for_all() rethrows a stage's exception.
    const tsan::acquire_on_exit stages_done(&kStageHandOff);
    tsan::release(&kStageHandOff);
    prefix_check.try_put(flow::continue_msg{});
    graph.wait_for_all();
  });
  // The index is waited for only once the rows are parsed: a waiting worker would slow the parse.
  index = wait_for_index(context);
  arena.execute([&] {
    flow::graph graph;
    stage export_hash(graph, body([&] { hash = hash_export(context, prefix, parse); }));
    stage resolve_users(graph, body([&] { resolved = resolve(context, prefix, parse, index.index); }));
    stage write(graph, body([&] {
      written = options.dry_run ? check_archive(context, resolved) : write_archive(context, resolved, outcome);
    }));
    stage next_ledger(graph, body([&] { ledger = write_next_ledger(context, prefix, hash, resolved, written, outcome); }));
    stage rejects_file(graph, body([&] { rejects = write_rejects(context, prefix, resolved, outcome); }));

    flow::make_edge(resolve_users, write);
    flow::continue_node<flow::continue_msg>* last = &write;
    if (context.ledger_wanted) {
      // The export's fingerprint is hashed beside the resolve and the write.
      flow::make_edge(export_hash, next_ledger);
      flow::make_edge(write, next_ledger);
      last = &next_ledger;
    }
    // After the ledger, not beside it: with two failing outputs the same error shows every time.
    if (options.rejects) flow::make_edge(*last, rejects_file);

    // Destroyed before the nodes, also when wait_for_all() rethrows a stage's exception.
    const tsan::acquire_on_exit stages_done(&kStageHandOff);
    tsan::release(&kStageHandOff);
    if (context.ledger_wanted) export_hash.try_put(flow::continue_msg{});
    resolve_users.try_put(flow::continue_msg{});
    graph.wait_for_all();
  });

  // The report, from the stages' results.
  run_report& report = outcome.report;
  report.input = options.input.string();
  report.output = options.output.string();
  report.index_source = options.index_source;
  report.dry_run = options.dry_run;
  report.input_bytes = data.size();
  if (options.since) report.rerun.since = options.since->string();
  report.rerun.replaced_ledger_run = replaced_ledger_run;
  if (context.ledger_wanted) report.rerun.ledger = options.ledger->string();
  prefix.add_to(report, data.size());
  parse.add_to(report);
  if (context.ledger_wanted) hash.add_to(report);
  index.add_to(report);
  resolved.add_to(report);
  if (written.archive_done.valid()) {
    while (written.archive_done.wait_for(kInterruptPoll) != std::future_status::ready) stop_now_if_interrupted();
    report.archive_bytes = written.archive_done.get();
    written.seconds = seconds_since(written.started);  // the write ends with the archive's fsync
  }
  written.add_to(report);
  if (context.ledger_wanted) ledger.add_to(report);
  rejects.add_to(report);
  report.issues = std::move(resolved.log);
  progress.clear();
  report.seconds = seconds_since(run_start);
  report.exit_code = options.strict && strict_problems(report) ? static_cast<int>(exit_code::strict_failed) : 0;
  return outcome;
}

}  // namespace tixport
