// File: batch_serializer.cpp
#include "tixport/run/batch_serializer.hpp"

#include "tixport/csv/field_parsers.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"
#include "tixport/ledger/run_ledger.hpp"

#include "csv/csv_reader_internal.hpp"
#include "common/parallel_loops_internal.hpp"
#include "common/thread_scratch_internal.hpp"
#include "common/tsan_annotations_internal.hpp"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace tixport {

std::uint64_t batch_count(std::uint64_t tickets, std::uint64_t comments, std::uint64_t users,
                          unsigned batch_size) noexcept {
  const auto ceil_div = [batch_size](std::uint64_t n) { return (n + batch_size - 1) / batch_size; };
  return std::max({ceil_div(tickets), ceil_div(comments), ceil_div(users)});
}

std::string batch_entry_name(std::uint64_t k, unsigned batch_size, batch_name_style style) {
  const std::uint64_t number = style == batch_name_style::offset ? k * batch_size : k;
  return "backup_tickets_" + std::to_string(number) + ".json";
}

void reread_field(std::string_view data, std::uint64_t offset, std::size_t field, std::string& out) {
  // The reader's own exact parser, so the re-read bytes are the ones the parse saw.
  csv_internal::read_record_field(data, offset, field, out);
}

comment_fields read_comment_fields(const comment_source& source, const comment_candidate& c, std::string& raw,
                                   comment_read mode) {
  // The other fields are slices of the input unless they were quoted with "" inside: short
  // texts, so per-thread buffers are enough for them.
  thread_local std::string id_raw;
  thread_local std::string created_raw;
  thread_local std::string ticket_raw;
  thread_local std::string author_raw;
  const std::size_t wanted[5] = {source.body_field, source.id_field, source.created_at_field, source.ticket_id_field,
                                 source.author_id_field};
  std::string_view views[5];
  std::string* const owned[5] = {&raw, &id_raw, &created_raw, &ticket_raw, &author_raw};
  const bool for_encoder = mode == comment_read::for_encoder;
  const bool escaped = csv_internal::read_record_fields(source.file_bytes, c.offset, wanted, views, owned,
                                                        for_encoder ? source.body_field : csv_read_options::kNoColumn);
  comment_fields fields{};
  fields.body = views[0];
  fields.body_csv_pairs = escaped;
  const char* const begin = source.file_bytes.data();
  fields.body_in_place =
      fields.body.data() >= begin && fields.body.data() + fields.body.size() <= begin + source.file_bytes.size();
  // The parse found all four valid (row_classifier): the same parsers give the same values.
  fields.id = parse_id(views[1]).value_or(0);
  fields.created_at_is_text = for_encoder && copy_utc_timestamp(views[2], fields.created_at_text);
  if (!fields.created_at_is_text) fields.created_at = parse_timestamp(views[2]).value_or(0);
  fields.ticket_id = parse_id(views[3]).value_or(0);
  fields.author_id = parse_id(views[4]).value_or(0);
  return fields;
}

namespace {

/// read_comment_fields with the author mapped (and counted into `log` / listed into `dangling`
/// when set) through `references`: the one way a comment is read for writing, fingerprinting
/// and checking, so that all three see the same JSON.
comment_fields read_mapped_comment(const comment_source& source, const comment_candidate& c,
                                   const comment_references& references, std::string& raw, reject_log* log,
                                   std::vector<ledger_dangling>* dangling = nullptr,
                                   comment_read mode = comment_read::plain) {
  comment_fields f = read_comment_fields(source, c, raw, mode);
  references.map(c, f.id, f.ticket_id, f.author_id, log, dangling);
  return f;
}

}  // namespace

std::int64_t read_comment_id(const comment_source& source, const comment_candidate& c) {
  thread_local std::string id_text;
  csv_internal::read_record_field(source.file_bytes, c.offset, source.id_field, id_text);
  const std::optional<std::int64_t> id = parse_id(id_text);
  // The deduplication and the --since partition rest on it: never a stand-in value.
  if (!id) {
    throw fatal_error(exit_code::input_error,
                      "input: the export was changed while being read (a comment's record no longer holds a valid "
                      "COMMENT_PART_ID)");
  }
  return *id;
}

std::vector<std::int64_t> read_comment_ids(const comment_source& source, std::span<const comment_candidate> comments) {
  std::vector<std::int64_t> ids(comments.size());
  parallel_for_ranges(0, comments.size(), 4096, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i != end; ++i) ids[i] = read_comment_id(source, comments[i]);
  });
  return ids;
}

void check_comments(const comment_source& source, std::span<const comment_candidate> comments,
                    const comment_references& references, reject_log& log) {
  tsan::combinable<reject_log> logs;
  parallel_for_ranges(0, comments.size(), 4096, [&](std::size_t begin, std::size_t end) {
    reject_log& local = logs.local();
    std::string raw;
    for (std::size_t i = begin; i != end; ++i) {
      const comment_candidate& c = comments[i];
      if (!is_valid_utf8(read_mapped_comment(source, c, references, raw, &local).body)) {
        local.add(row_issue::utf8_repaired_field, c.line);
      }
    }
  });
  logs.combine_each([&](const reject_log& local) { log.merge(local); });
}

void list_unwritten_dangling(const comment_source& source, std::span<const comment_candidate> comments,
                             const std::vector<std::uint8_t>& written, const comment_references& references,
                             std::vector<ledger_dangling>& dangling) {
  tsan::combinable<std::vector<ledger_dangling>> unmapped;
  parallel_for_ranges(0, comments.size(), 4096, [&](std::size_t begin, std::size_t end) {
    std::string raw;
    for (std::size_t i = begin; i != end; ++i) {
      if (written[i] != 0) continue;
      (void)read_mapped_comment(source, comments[i], references, raw, nullptr, &unmapped.local());
    }
  });
  unmapped.combine_each([&](const std::vector<ledger_dangling>& local) {
    dangling.insert(dangling.end(), local.begin(), local.end());
  });
}

std::uint64_t ticket_fingerprint(const ticket_candidate& t, std::string& scratch) {
  scratch.clear();
  encode_ticket_object(ticket_record{t.created_at, t.requester_id, t.id}, scratch);
  return fingerprint_bytes(scratch);
}

std::uint64_t comment_fingerprint(const comment_source& source, const comment_candidate& c,
                                  const comment_references& references, std::string& raw, std::string& scratch) {
  const comment_fields f = read_mapped_comment(source, c, references, raw, nullptr);
  scratch.clear();
  if (!is_valid_utf8(f.body)) {
    // Repaired behind the JSON object's place in scratch: encode after the repaired body.
    repair_utf8(f.body, scratch);
    const std::size_t body_size = scratch.size();
    raw.clear();  // the re-read body, if any, is no longer needed
    encode_comment_object(comment_record{f.created_at, f.ticket_id, f.id, c.is_public,
                                         std::string_view(scratch).substr(0, body_size), f.author_id},
                          raw);
    return fingerprint_bytes(raw);
  }
  encode_comment_object(comment_record{f.created_at, f.ticket_id, f.id, c.is_public, f.body, f.author_id}, scratch);
  return fingerprint_bytes(scratch);
}

namespace {

// What one encoder thread reuses from batch to batch.
struct encode_scratch {
  struct copied_body {
    std::size_t comment;  // index in comments
    std::size_t begin;    // its bytes in arena
    std::size_t size;
  };
  std::vector<ticket_record> tickets;
  std::vector<comment_record> comments;
  std::vector<user_record> users;
  std::string arena;                // bodies that needed a copy, back to back
  std::vector<copied_body> copied;  // which comments' bodies are in arena
  std::string raw;                  // one re-read body
  std::string object;               // one object's compact JSON, for its fingerprint
  batch_object_spans spans;         // where the objects went in a compact batch

  /// Point the comments whose bodies are in the arena at them (once it stops growing).
  void point_copied_bodies() noexcept {
    for (const copied_body& b : copied) comments[b.comment].html_body = std::string_view(arena).substr(b.begin, b.size);
  }

  void reset() {
    // A huge body (hundreds of MB) must not stay pinned to a worker thread.
    release_if_huge(arena);
    release_if_huge(raw);
    release_if_huge(object);
    tickets.clear();
    comments.clear();
    users.clear();
    arena.clear();
    copied.clear();
  }
};

// Fingerprints of `objects` into out[first...] (nothing when `out` is empty): hashed in
// place from `json` where `spans` says each object's compact bytes are, else encoded
// again into `scratch`.
template <class Record, void (*Encode)(const Record&, std::string&)>
void fingerprint_objects(const std::vector<Record>& objects,
                         const std::vector<std::pair<std::size_t, std::size_t>>* spans, std::string_view json,
                         std::string& scratch, std::span<written_object> out, std::size_t first) {
  if (out.empty()) return;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    written_object& w = out[first + i];
    w.id = objects[i].id;
    if (spans != nullptr) {
      const auto [begin, end] = (*spans)[i];
      w.fingerprint = fingerprint_bytes(json.substr(begin, end - begin));
      continue;
    }
    scratch.clear();
    Encode(objects[i], scratch);
    w.fingerprint = fingerprint_bytes(scratch);
  }
}

// Repair the comment bodies of a batch that are not valid UTF-8 (into the arena, each counted
// as utf8_repaired_field at its comment's line, in comment order); `candidates` are the batch's
// comments in the order of scratch.comments. False when every body was valid (a user's name
// or email made the batch invalid: it is written as it is, as before).
bool repair_invalid_bodies(std::span<const comment_candidate> candidates, encode_scratch& scratch, reject_log& log) {
  // Found first, while every view is good: repairing appends to the arena, which moves it.
  std::vector<std::size_t> invalid;
  for (std::size_t i = 0; i < scratch.comments.size(); ++i) {
    if (!is_valid_utf8(scratch.comments[i].html_body)) invalid.push_back(i);
  }
  for (const std::size_t i : invalid) {
    const auto copied = std::find_if(scratch.copied.begin(), scratch.copied.end(),
                                     [i](const encode_scratch::copied_body& b) { return b.comment == i; });
    // A body in the arena is read at its offset; one in the input (mapped) stays put. One left
    // escaped is unescaped first (its pairs are ASCII: it is as valid as its text).
    comment_record& comment = scratch.comments[i];
    if (comment.html_body_csv_pairs) {
      scratch.raw = csv_unescape_pairs(comment.html_body);
      comment.html_body_csv_pairs = false;
    } else {
      scratch.raw.assign(copied != scratch.copied.end()
                             ? std::string_view(scratch.arena).substr(copied->begin, copied->size)
                             : comment.html_body);
    }
    const std::size_t begin = scratch.arena.size();
    repair_utf8(scratch.raw, scratch.arena);
    const encode_scratch::copied_body repaired{i, begin, scratch.arena.size() - begin};
    if (copied != scratch.copied.end()) {
      *copied = repaired;
    } else {
      scratch.copied.push_back(repaired);
    }
    log.add(row_issue::utf8_repaired_field, candidates[i].line);
  }
  scratch.point_copied_bodies();
  return !invalid.empty();
}

// One batch travelling through the pipeline.
struct encoded_batch {
  std::uint64_t k = 0;                     // 1-based batch number
  // The batch file's tar entry: kHeaderBytes for its header, its JSON, then (when framed)
  // the padding. Unframed, only the JSON goes to the sink (add_entry).
  std::string entry;
  std::size_t json_size = 0;               // the batch file's bytes, after the header's place
  bool framed = false;                     // entry is whole: header, JSON, padding
  std::optional<std::uint64_t> offset;     // .tar: where the entry goes in the file
  reject_log log;                          // references and repairs counted while encoding
  std::vector<ledger_dangling> dangling;   // comment authors left unmapped (when listed)

  static constexpr std::size_t kHeaderBytes = tar_archive_sink::kTarBlockBytes;
  [[nodiscard]] std::string_view json() const noexcept {
    return std::string_view(entry).substr(kHeaderBytes, json_size);
  }
};

}  // namespace

serialize_stats write_batches(const comment_source& source, std::span<const ticket_candidate> tickets,
                              std::span<const comment_candidate> comments,
                              std::span<const resolved_user> users, const comment_references& references,
                              const batch_options& options, tar_archive_sink& sink, reject_log& log,
                              const object_fingerprints& fingerprints, std::vector<ledger_dangling>* dangling) {
  const unsigned b = options.batch_size;
  const std::uint64_t total = batch_count(tickets.size(), comments.size(), users.size(), b);
  serialize_stats stats;
  stats.batches = total;
  if (total == 0) return stats;

  const std::size_t in_flight =
      options.max_batches_in_flight != 0
          ? options.max_batches_in_flight
          : 4 * static_cast<std::size_t>(oneapi::tbb::this_task_arena::max_concurrency());
  const auto slice = [b](auto span, std::uint64_t k) {
    const std::size_t begin = std::min<std::size_t>(span.size(), (k - 1) * b);
    const std::size_t end = std::min<std::size_t>(span.size(), k * b);
    return span.subspan(begin, end - begin);
  };

  std::uint64_t next_k = 1;
  // The first error (a full disk, an interrupt, bad_alloc) is kept here instead of escaping a
  // filter: an exception would cancel the pipeline and leak the batches in flight between
  // filters (oneTBB does not destroy them). Later items drain and are destroyed normally.
  std::atomic<bool> failed{false};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const auto keep_failure = [&] {
    std::lock_guard lock(failure_mutex);
    if (!failure) failure = std::current_exception();
    failed.store(true);
  };
  // Tokens are raw pointers, each owned by the stage holding it (ordered_pipeline says why).
  const auto make = [&](oneapi::tbb::flow_control& fc) -> encoded_batch* {
    if (next_k > total || interrupt_requested() || failed.load()) {
      fc.stop();
      return nullptr;
    }
    try {
      auto batch = std::make_unique<encoded_batch>();
      batch->k = next_k++;
      return batch.release();
    } catch (...) {
      keep_failure();
      fc.stop();
      return nullptr;
    }
  };
  const auto encode = [&](encoded_batch* batch) {
    if (failed.load()) return;
    try {
      const auto t = slice(tickets, batch->k);
      const auto c = slice(comments, batch->k);
      const auto u = slice(users, batch->k);
      // Per-thread scratch: after the first batches a batch allocates nothing
      // but its JSON buffer.
      thread_local encode_scratch scratch;
      scratch.reset();
      std::vector<ticket_record>& ticket_out = scratch.tickets;
      for (const ticket_candidate& x : t) ticket_out.push_back({x.created_at, x.requester_id, x.id});
      std::vector<comment_record>& comment_out = scratch.comments;
      for (const comment_candidate& x : c) {
        // A body with "" stays escaped in the input (the encoder halves its pairs as it writes),
        // and a created_at in UTC stays text: neither is converted only to be converted back.
        const comment_fields f = read_mapped_comment(source, x, references, scratch.raw, &batch->log,
                                                     dangling != nullptr ? &batch->dangling : nullptr,
                                                     comment_read::for_encoder);
        std::string_view body = f.body;
        if (!f.body_in_place) {
          // Re-read for "": into the arena; its view is made once the arena stops growing.
          scratch.copied.push_back({comment_out.size(), scratch.arena.size(), body.size()});
          scratch.arena.append(body);
          body = {};
        }
        comment_record& out = comment_out.emplace_back();
        out = {f.created_at, f.ticket_id, f.id, x.is_public, body, f.author_id, f.body_csv_pairs, f.created_at_is_text};
        if (f.created_at_is_text) std::memcpy(out.created_at_text, f.created_at_text, sizeof out.created_at_text);
      }
      scratch.point_copied_bodies();
      std::vector<user_record>& user_out = scratch.users;
      for (const resolved_user& x : u) user_out.push_back({x.name, x.id, x.email});
      const bool fingerprinting = !fingerprints.tickets.empty() || !fingerprints.comments.empty();
      // Compact: each object's bytes in the batch are its canonical JSON, hashed in place.
      const bool in_place = fingerprinting && options.style == json_style::compact;
      std::string& entry = batch->entry;
      entry.assign(encoded_batch::kHeaderBytes, '\0');  // the header's place: framed below
      encode_batch(ticket_out, comment_out, user_out, options.style, entry, in_place ? &scratch.spans : nullptr);
      // The bodies' UTF-8 is checked in one pass over the whole batch: JSON escaping passes
      // bytes >= 0x80 through and writes only ASCII around them, so the batch is valid UTF-8
      // exactly when every string in it is (a body cut inside a character is followed by an
      // ASCII quote, which makes the batch invalid too). Only a batch that fails is encoded
      // again, with its invalid bodies repaired.
      if (!is_valid_utf8(std::string_view(entry).substr(encoded_batch::kHeaderBytes))) {
        if (repair_invalid_bodies(c, scratch, batch->log)) {
          entry.resize(encoded_batch::kHeaderBytes);
          encode_batch(ticket_out, comment_out, user_out, options.style, entry, in_place ? &scratch.spans : nullptr);
        }
      }
      batch->json_size = entry.size() - encoded_batch::kHeaderBytes;
      // Each object's compact JSON, as the ledger fingerprints it (SPEC 4.1).
      const std::size_t first = (batch->k - 1) * b;
      const auto json = std::string_view(entry);  // the spans count from the entry's start
      fingerprint_objects<ticket_record, encode_ticket_object>(
          ticket_out, in_place ? &scratch.spans.tickets : nullptr, json, scratch.object, fingerprints.tickets, first);
      fingerprint_objects<comment_record, encode_comment_object>(
          comment_out, in_place ? &scratch.spans.comments : nullptr, json, scratch.object, fingerprints.comments,
          first);
      // The tar entry is made here, in parallel: the ordered stage then only appends it
      // (perf/SCALING.md: that stage was the first to stop scaling).
      if (sink.frame_header(batch_entry_name(batch->k, b, options.name_style), batch->json_size, entry.data())) {
        entry.append(tar_archive_sink::padding_after(batch->json_size), '\0');
        batch->framed = true;
      }
    } catch (...) {
      keep_failure();
    }
  };
  const auto write_in_order = [&](encoded_batch* batch) {
    if (failed.load()) return;
    try {
      if (batch->framed) {
        batch->offset = sink.add_framed_entry(batch->entry);
      } else {
        sink.add_entry(batch_entry_name(batch->k, b, options.name_style), batch->json());
      }
      stats.json_bytes += batch->json_size;
      log.merge(batch->log);
      if (dangling != nullptr) dangling->insert(dangling->end(), batch->dangling.begin(), batch->dangling.end());
      if (options.progress) options.progress(batch->k, total);
    } catch (...) {
      keep_failure();
    }
  };
  // .tar: the entry's bytes go to the place write_in_order reserved, from any thread.
  const auto place = [&](encoded_batch* token) {
    const std::unique_ptr<encoded_batch> batch(token);
    if (failed.load() || !batch->offset) return;
    try {
      sink.write_framed_at(*batch->offset, batch->entry);
    } catch (...) {
      keep_failure();
    }
  };
  ordered_pipeline<encoded_batch>(in_flight, make, encode, write_in_order, place);
  std::exception_ptr error;
  {
    std::lock_guard lock(failure_mutex);  // the pipeline has ended; the lock only shows TSan the order
    error = failure;
  }
  if (error) std::rethrow_exception(error);
  throw_if_interrupted();
  return stats;
}

}  // namespace tixport
