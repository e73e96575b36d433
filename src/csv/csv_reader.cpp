// File: csv_reader.cpp
//
// The chunk reader (see csv_reader.hpp for the record rules and the design):
// read_csv_records in two passes, pass 1 (parallel quote/LF counts per planned
// chunk), pass 2 (a flow graph: speculative parse of each chunk from its quote
// parity, ordered verify/repair, delivery). The scanner it runs is in
// csv_scan_internal.hpp; the header and column checks in csv_header.cpp.
#include "tixport/csv/csv_reader.hpp"

#include "csv/csv_scan_internal.hpp"
#include "common/tsan_annotations_internal.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/csv/field_parsers.hpp"
#include "tixport/common/parallelism.hpp"

#include <oneapi/tbb/concurrent_queue.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cassert>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>

namespace tixport {

using csv_internal::parse_mode;

namespace {

// ThreadSanitizer cannot see oneTBB's hand-offs between threads (Debian's libtbb is not
// instrumented), so each place where one graph stage passes data to the next says so: the
// writer releases the object, the reader acquires it. No-ops without TSan.
inline void handoff_release(const void* object) noexcept { tsan::release(object); }
inline void handoff_acquire(const void* object) noexcept { tsan::acquire(object); }

// What travels along the graph edges: a chunk number and the slot holding its work.
struct chunk_token {
  std::uint64_t seq = 0;   // planned chunk index
  std::uint32_t slot = 0;  // index into the slot pool (assigned by the parse node)
};

// One chunk's speculative parse, owned by a token between the parse and delivery nodes.
struct chunk_slot {
  csv_chunk chunk;                  // records as parsed (speculatively, then verified)
  bool owns_nothing = false;        // parity found no record start in [b, e)
  csv_internal::position start{};   // where the speculative parse began
  csv_internal::position end{};     // first record start at or after e (or EOF)
};

// A slot's vectors serve chunk after chunk. Chunks of one export differ in their field and line
// counts by a few percent, so growing to the exact need would reallocate again and again, each
// time a fresh block whose every page faults (and, for fields, is zeroed) once more.
template <typename Vector>
void reserve_with_headroom(Vector& v, std::size_t needed) {
  if (v.capacity() < needed) v.reserve(needed + needed / 4);
}

}  // namespace

csv_read_stats read_csv_records(std::string_view data, const csv_header& header, const csv_read_options& options,
                                const std::function<void(csv_chunk&&)>& on_chunk) {
  namespace flow = oneapi::tbb::flow;
  using csv_internal::position;

  const char* bytes = data.data();
  const std::uint64_t size = data.size();
  const std::uint64_t begin = std::min<std::uint64_t>(header.data_offset, size);
  const std::uint64_t chunk_bytes = std::max<std::uint64_t>(1, options.chunk_bytes);
  const std::uint64_t chunk_count = (size - begin + chunk_bytes - 1) / chunk_bytes;
  // More arena slots than TBB may run only earn a warning on stderr; the process-wide limit
  // (hardware threads, or a tbb::global_control set by the caller) caps them.
  const auto tbb_limit = oneapi::tbb::global_control::active_value(oneapi::tbb::global_control::max_allowed_parallelism);
  const std::size_t threads = std::min(tbb_limit, std::size_t{resolve_threads(static_cast<unsigned>(std::min<std::size_t>(options.threads, kMaxThreads)))});
  const std::size_t in_flight = options.max_chunks_in_flight != 0 ? options.max_chunks_in_flight : 2 * threads;
  const auto num_fields = static_cast<std::uint32_t>(header.fields.size());
  const csv_internal::scan_kernels& kernels = csv_internal::active_kernels();

  const auto chunk_begin = [&](std::uint64_t seq) { return begin + seq * chunk_bytes; };
  const auto chunk_end = [&](std::uint64_t seq) { return std::min(size, begin + (seq + 1) * chunk_bytes); };

  csv_read_stats stats;
  stats.bytes = size - begin;
  stats.chunks = chunk_count;

  in_arena(static_cast<unsigned>(threads), [&] {
    // Pass 1: quote parity and LF count per planned chunk, then the exclusive scans: entry_parity[j]
    // = quote parity before chunk j, first_line[j] = physical line of its first byte. The separator
    // count sizes the chunk's vectors up front (no regrowth, fewer page faults).
    std::vector<std::uint8_t> entry_parity(chunk_count);
    std::vector<std::uint64_t> first_line(chunk_count);
    std::vector<std::uint32_t> separators(chunk_count);
    // tsan::body: oneTBB copies the body into each task it splits off, on the splitting thread.
    oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<std::uint64_t>(0, chunk_count),
                              tsan::body(&entry_parity, [&](const oneapi::tbb::blocked_range<std::uint64_t>& range) {
                                for (std::uint64_t j = range.begin(); j != range.end(); ++j) {
                                  const auto counts = kernels.count_range(bytes, chunk_begin(j), chunk_end(j));
                                  entry_parity[j] = static_cast<std::uint8_t>(counts.quotes & 1);
                                  first_line[j] = counts.lfs;
                                  // Bounded so a chunk of quoted commas cannot reserve 16 bytes a byte.
                                  separators[j] = static_cast<std::uint32_t>(std::min<std::uint64_t>(
                                      {counts.commas + counts.lfs, (chunk_end(j) - chunk_begin(j)) / 4,
                                       std::numeric_limits<std::uint32_t>::max()}));
                                }
                              }));
    handoff_acquire(&entry_parity);
    std::uint8_t parity = 0;
    std::uint64_t line = header.data_first_line;
    for (std::uint64_t j = 0; j < chunk_count; ++j) {
      const std::uint8_t chunk_parity = entry_parity[j];
      entry_parity[j] = parity;
      parity ^= chunk_parity;
      const std::uint64_t lfs = first_line[j];
      first_line[j] = line;
      line += lfs;
    }
    stats.lines = (line - 1) + ((size != 0 && bytes[size - 1] != '\n') ? 1 : 0);
    if (chunk_count == 0) {
      handoff_release(&stats);
      return;
    }

    // Pass 2. Slots hold the chunks in flight; the limiter guarantees a free one at each parse.
    std::vector<chunk_slot> slots(in_flight);
    oneapi::tbb::concurrent_queue<std::uint32_t> free_slots;
    for (std::size_t s = 0; s < in_flight; ++s) free_slots.push(static_cast<std::uint32_t>(s));
    // Quote parity seen at the last verified record start that needed repair: a stray quote
    // flips the parity of everything after it, so later chunks correct their entry state by it.
    std::atomic<std::uint8_t> parity_fix{0};
    std::uint64_t next_seq = 0;
    position expected{begin, header.data_first_line};  // verify node: the true next record start

    // A slot's chunk was handed to on_chunk by rvalue reference; whatever the consumer left
    // in it (usually all of it) is reused here, only after on_chunk has returned.
    const auto fresh_chunk = [&](csv_chunk& chunk, std::uint64_t seq) {
      csv_internal::chunk_access::recycle(chunk, seq, num_fields);
    };
    const auto raw_parity_at = [&](std::uint64_t offset) -> std::uint8_t {
      const std::uint64_t j = (offset - begin) / chunk_bytes;
      const auto counts = kernels.count_range(bytes, chunk_begin(j), offset);
      return static_cast<std::uint8_t>(entry_parity[j] ^ (counts.quotes & 1));
    };

    // Every node body releases bodies_done when it returns (or throws): see the end.
    const int bodies_done = 0;
    flow::graph graph;
    flow::input_node<chunk_token> source(
        graph, tsan::serial_body(&bodies_done, [&](oneapi::tbb::flow_control& control) -> chunk_token {
      handoff_acquire(&graph);
      handoff_acquire(&next_seq);  // a serial body, but not always on the same thread
      const chunk_token token{next_seq, 0};
      if (next_seq == chunk_count) {
        control.stop();
      } else {
        ++next_seq;
      }
      handoff_release(&next_seq);
      return token;
    }));
    flow::limiter_node<chunk_token> limiter(graph, in_flight);
    flow::function_node<chunk_token, chunk_token> parse(
        graph, flow::unlimited, tsan::body(&bodies_done, [&](chunk_token token) {
      handoff_acquire(&graph);
      const bool popped = free_slots.try_pop(token.slot);
      assert(popped && "limiter admits no more chunks than slots");
      (void)popped;
      chunk_slot& slot = slots[token.slot];
      handoff_acquire(&slot);  // from the last delivery that used it
      fresh_chunk(slot.chunk, token.seq);
      reserve_with_headroom(slot.chunk.fields, separators[token.seq] + num_fields);
      const std::uint64_t lfs = (token.seq + 1 < chunk_count ? first_line[token.seq + 1] : line) - first_line[token.seq];
      reserve_with_headroom(slot.chunk.record_offsets, lfs + 1);
      reserve_with_headroom(slot.chunk.record_lines, lfs + 1);
      const std::uint64_t b = chunk_begin(token.seq);
      const std::uint64_t e = chunk_end(token.seq);
      const bool in_quote = (entry_parity[token.seq] ^ parity_fix.load(std::memory_order_relaxed)) != 0;
      const auto start = kernels.find_record_start(bytes, b, e, begin, in_quote);
      slot.owns_nothing = !start.has_value();
      if (start) {
        slot.start = {start->offset, first_line[token.seq] + start->lfs};
        csv_internal::chunk_sink sink{slot.chunk, options.keep_escaped_field};
        slot.end = csv_internal::parse_records(bytes, size, slot.start, e, sink, parse_mode::fast);
      }
      handoff_release(&slot);
      return token;
    }));
    flow::sequencer_node<chunk_token> in_order(graph, [](const chunk_token& token) { return token.seq; });
    flow::function_node<chunk_token, chunk_token> verify(
        graph, flow::serial, tsan::serial_body(&bodies_done, [&](chunk_token token) {
      handoff_acquire(&graph);
      handoff_acquire(&expected);  // serial state: the previous verify may have run elsewhere
      chunk_slot& slot = slots[token.slot];
      handoff_acquire(&slot);
      const std::uint64_t e = chunk_end(token.seq);
      if (expected.offset >= e) {
        // Case 1: the previous chunk's last record swallowed this whole chunk: it owns nothing.
        if (!slot.owns_nothing) {
          fresh_chunk(slot.chunk, token.seq);
          ++stats.reparsed_chunks;
        }
      } else if (!slot.owns_nothing && slot.start.offset == expected.offset) {
        // Case 2: the speculative start is the true one, so the whole parse is exact.
        assert(slot.start.line == expected.line);
        expected = slot.end;
      } else {
        // Case 3: parity misled the speculation (a stray quote before or in this chunk):
        // re-parse from the true position and re-anchor the parity for later chunks.
        fresh_chunk(slot.chunk, token.seq);
        csv_internal::chunk_sink sink{slot.chunk, options.keep_escaped_field};
        expected = csv_internal::parse_records(bytes, size, expected, e, sink, parse_mode::fast);
        ++stats.reparsed_chunks;
        if (expected.offset < size) parity_fix.store(raw_parity_at(expected.offset), std::memory_order_relaxed);
      }
      stats.records += slot.chunk.record_count();
      stats.malformed += slot.chunk.malformed.size();
      stats.blank_lines += slot.chunk.blank_lines;
      handoff_release(&slot);
      handoff_release(&expected);
      return token;
    }));
    // In ordered mode the delivery order is enforced here, not left to the graph: oneTBB
    // does not promise that a serial node runs messages in the order a sequencer released
    // them when the puts come from different threads (seen once in ~10^5 chunks under
    // TSan's scheduling). Early tokens wait in `early` (their slots stay taken), and each
    // delivered chunk, not each call, gives the limiter one token back, so the number of
    // slots in use never exceeds the limiter's count.
    using deliver_node = flow::multifunction_node<chunk_token, std::tuple<flow::continue_msg>>;
    std::map<std::uint64_t, chunk_token> early;  // ordered only: seq -> token that came too soon
    std::uint64_t next_delivery = 0;             // ordered only: the seq on_chunk takes next
    deliver_node deliver(
        graph, options.ordered ? flow::serial : flow::unlimited,
        tsan::body_fn(&bodies_done, options.ordered, [&](const chunk_token& token, deliver_node::output_ports_type& ports) {
          handoff_acquire(&graph);
          const auto hand_over = [&](const chunk_token& t) {
            chunk_slot& slot = slots[t.slot];
            handoff_acquire(&slot);
            on_chunk(std::move(slot.chunk));
            handoff_release(&slot);
            free_slots.push(t.slot);
            std::get<0>(ports).try_put(flow::continue_msg{});
          };
          if (!options.ordered) {
            hand_over(token);
            return;
          }
          handoff_acquire(&on_chunk);  // ordered deliveries follow each other
          if (token.seq != next_delivery) {
            early.emplace(token.seq, token);
          } else {
            hand_over(token);
            ++next_delivery;
            for (auto it = early.find(next_delivery); it != early.end(); it = early.find(next_delivery)) {
              hand_over(it->second);
              early.erase(it);
              ++next_delivery;
            }
          }
          handoff_release(&on_chunk);  // ... and all of them precede our return
        }));

    // A serial node may emit its outputs out of order (oneTBB spawns its next queued body before
    // forwarding the current result), so ordered delivery gets a sequencer of its own.
    flow::sequencer_node<chunk_token> delivery_order(graph, [](const chunk_token& token) { return token.seq; });

    flow::make_edge(source, limiter);
    flow::make_edge(limiter, parse);
    flow::make_edge(parse, in_order);
    flow::make_edge(in_order, verify);
    if (options.ordered) {
      flow::make_edge(verify, delivery_order);
      flow::make_edge(delivery_order, deliver);
    } else {
      flow::make_edge(verify, deliver);
    }
    flow::make_edge(flow::output_port<0>(deliver), limiter.decrementer());
    handoff_release(&graph);
    // Destroyed first when wait_for_all() rethrows a body's exception, before the nodes and slots.
    const tsan::acquire_on_exit all_bodies_done(&bodies_done);
    source.activate();
    graph.wait_for_all();
    handoff_acquire(&on_chunk);
    handoff_acquire(&expected);
    handoff_acquire(&next_seq);
    handoff_release(&stats);
  });
  handoff_acquire(&stats);
  return stats;
}

std::string csv_unescape_pairs(std::string_view escaped) {
  std::string text;
  text.reserve(escaped.size());
  for (std::size_t i = 0; i < escaped.size(); ++i) {
    text += escaped[i];
    if (escaped[i] == '"' && i + 1 < escaped.size() && escaped[i + 1] == '"') ++i;
  }
  return text;
}

void append_csv_field(std::string& out, std::string_view field) {
  constexpr std::string_view kWhiteSpace = " \t\r\n";
  const bool edge_space = !field.empty() && (kWhiteSpace.find(field.front()) != std::string_view::npos ||
                                             kWhiteSpace.find(field.back()) != std::string_view::npos);
  if (!edge_space && field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += field;
    return;
  }
  out += '"';
  for (const char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

}  // namespace tixport
