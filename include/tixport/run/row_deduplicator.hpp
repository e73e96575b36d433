// File: row_deduplicator.hpp
//
// Merges classified chunks, in any order and from many threads at once, into
// one winner per natural key (SPEC 2.1-2.4): the candidate with the smallest
// record offset, i.e. the first in file order. Because the winner is decided
// by offset and never by arrival, the result equals a serial run exactly.
// Every loser is counted (and sampled) as a duplicate.
//
//   row_deduplicator dedup(expected_rows);
//   parallel: dedup.absorb(std::move(classified));
//   auto comments = dedup.take_comments(id_of);  // sorted by offset
#pragma once

#include "tixport/run/pipeline_messages.hpp"
#include "tixport/run/reject_log.hpp"
#include "tixport/run/row_classifier.hpp"

#include <oneapi/tbb/concurrent_hash_map.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tixport {

/// Row totals summed over all chunks.
struct row_totals {
  std::uint64_t rows = 0;                 ///< well-formed records
  std::uint64_t valid_comment_rows = 0;   ///< valid comment rows (before deduplication)
  std::uint64_t valid_ticket_rows = 0;    ///< valid ticket rows
  std::uint64_t user_candidate_rows = 0;  ///< user candidate rows
};

/// COMMENT_PART_ID of a held comment, read again from its record (read_comment_id in
/// batch_serializer.hpp): the held candidates do not keep it.
using comment_id_reader = std::function<std::int64_t(const comment_candidate&)>;

class row_deduplicator {
 public:
  /// `expected_rows` sizes the maps up front (an estimate is fine).
  explicit row_deduplicator(std::uint64_t expected_rows);
  ~row_deduplicator();
  row_deduplicator(const row_deduplicator&) = delete;
  row_deduplicator& operator=(const row_deduplicator&) = delete;

  /// Merge one chunk's candidates; thread-safe. Each chunk_seq at most once (std::logic_error).
  void absorb(classified_chunk&& chunk);

  /// Winners sorted by offset. Call once, after every absorb() (take_comments also logs the
  /// duplicate comments, so read log() after it). `id_of` is asked only for the rows of chunks
  /// that a later-absorbed earlier chunk took an id from; a lost id it does not find there is a
  /// fatal_error (input_error: the export changed under the run). Once only: it empties the
  /// deduplicator's comment state, also when it throws.
  comment_candidates take_comments(const comment_id_reader& id_of);
  std::vector<ticket_candidate> take_tickets();
  std::vector<user_candidate> take_users();
  /// Chat id -> its first candidate row (email key, conflict flag), in no particular order.
  std::vector<std::pair<std::int64_t, author_candidate>> take_authors();

  /// Largest valid AUTHOR_ID / TICKET_REQUESTER_ID of any well-formed record.
  [[nodiscard]] std::optional<std::int64_t> max_id() const;
  [[nodiscard]] row_totals totals() const;
  /// Rejections and duplicates seen so far (a copy).
  [[nodiscard]] reject_log log() const;

 private:
#if defined(__SANITIZE_THREAD__)
  // oneTBB's scalable allocator recycles nodes inside the uninstrumented libtbb, which
  // ThreadSanitizer takes for races between a node and the memory's previous owner.
  template <typename Key, typename Value>
  using map = oneapi::tbb::concurrent_hash_map<Key, Value, oneapi::tbb::tbb_hash_compare<Key>,
                                               std::allocator<std::pair<const Key, Value>>>;
#else
  template <typename Key, typename Value>
  using map = oneapi::tbb::concurrent_hash_map<Key, Value>;
#endif
  using ticket_map = map<std::int64_t, ticket_candidate>;
  using user_map = map<std::string, user_candidate>;
  using author_map = map<std::int64_t, author_candidate>;

  // Millions of distinct comment ids: a sharded flat map id -> earliest chunk holding it
  // (see sharded_id_map_internal.hpp); each chunk's rows that did not lose at once wait in
  // its slot of comments_by_chunk_.
  struct comment_shards;
  std::unique_ptr<comment_shards> comments_;
  std::vector<std::vector<comment_candidate>> comments_by_chunk_;  // by chunk_seq; guarded by mutex_
  std::vector<bool> absorbed_;                                      // by chunk_seq; guarded by mutex_
  ticket_map tickets_;
  user_map users_;
  author_map authors_;
  mutable std::mutex mutex_;  // guards what follows (touched once per chunk)
  std::optional<std::int64_t> max_id_;
  reject_log log_;
  row_totals totals_;
};

}  // namespace tixport
