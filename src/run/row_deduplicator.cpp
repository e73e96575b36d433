// File: row_deduplicator.cpp
#include "tixport/run/row_deduplicator.hpp"

#include "tixport/common/errors.hpp"

#include "run/sharded_id_map_internal.hpp"
#include "common/parallel_loops_internal.hpp"
#include "common/tsan_annotations_internal.hpp"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/combinable.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_sort.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace tixport {

namespace {

// Rows per unique key in a typical export; only sizes the maps up front.
constexpr std::uint64_t kRowsPerTicket = 16;
constexpr std::uint64_t kRowsPerUser = 128;

// Keeps the candidate with the smaller offset in `slot`, logging the loser's line.
template <typename Candidate>
void keep_first(Candidate& slot, Candidate&& incoming, row_issue duplicate, reject_log& log) {
  if (incoming.offset < slot.offset) {
    log.add(duplicate, slot.line);
    slot = std::move(incoming);
  } else {
    log.add(duplicate, incoming.line);
  }
}

template <typename Candidate>
void sort_by_offset(std::vector<Candidate>& v) {
  parallel_sort_vector(v, [](const Candidate& a, const Candidate& b) { return a.offset < b.offset; });
}

template <typename Map, typename Candidate>
std::vector<Candidate> drain_sorted(Map& map) {
  std::vector<Candidate> out;
  out.reserve(map.size());
  for (auto& [key, value] : map) out.push_back(std::move(value));
  map.clear();
  sort_by_offset(out);
  return out;
}

}  // namespace

struct row_deduplicator::comment_shards : detail::sharded_first_map {};

row_deduplicator::row_deduplicator(std::uint64_t expected_rows)
    : comments_(std::make_unique<comment_shards>()),
      tickets_(static_cast<std::size_t>(expected_rows / kRowsPerTicket + 16)),
      users_(static_cast<std::size_t>(expected_rows / kRowsPerUser + 16)),
      authors_(static_cast<std::size_t>(expected_rows / kRowsPerUser + 16)) {}

row_deduplicator::~row_deduplicator() = default;

void row_deduplicator::absorb(classified_chunk&& chunk) {
  reject_log dup_log;
  {
    std::lock_guard lock(mutex_);
    if (comments_by_chunk_.size() <= chunk.chunk_seq) {
      comments_by_chunk_.resize(chunk.chunk_seq + 1);
      absorbed_.resize(chunk.chunk_seq + 1, false);
    }
    // The shared map records which chunk holds each id: a chunk number counts once (the CSV
    // reader guarantees it).
    if (absorbed_[chunk.chunk_seq]) {
      throw std::logic_error("row_deduplicator: chunk " + std::to_string(chunk.chunk_seq) + " absorbed twice");
    }
    absorbed_[chunk.chunk_seq] = true;
  }
  // The rows an earlier row holds the id of are dropped now; the others wait, in an
  // exact-size vector, for take_comments (which drops the few a later-absorbed earlier
  // chunk took the id from).
  const std::vector<comment_row>& rows = chunk.comments;
  thread_local std::vector<std::uint8_t> lost;
  lost.assign(rows.size(), 0);
  comments_->insert_all(chunk.chunk_seq, rows.size(), [&](std::size_t i) { return rows[i].id; }, lost);
  const auto kept = static_cast<std::size_t>(std::count(lost.begin(), lost.end(), std::uint8_t{0}));
  std::vector<comment_candidate> winners;
  winners.reserve(kept);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (lost[i] == 0) {
      winners.push_back(comment_candidate::of(rows[i]));
    } else {
      dup_log.add(row_issue::duplicate_comment, rows[i].line);
    }
  }
  std::vector<comment_row>().swap(chunk.comments);
  {
    std::lock_guard lock(mutex_);
    comments_by_chunk_[chunk.chunk_seq] = std::move(winners);
  }
  // Within a chunk comments were not deduplicated; tickets, users and authors were.
  for (auto& [id, t] : chunk.tickets) {
    ticket_map::accessor slot;
    if (tickets_.insert(slot, id)) {
      slot->second = t;
    } else {
      keep_first(slot->second, std::move(t), row_issue::duplicate_ticket, dup_log);
    }
  }
  for (auto& [key, u] : chunk.users) {
    user_map::accessor slot;
    if (users_.insert(slot, key)) {
      slot->second = std::move(u);
    } else {
      keep_first(slot->second, std::move(u), row_issue::duplicate_user_row, dup_log);
    }
  }
  for (auto& [id, a] : chunk.authors) {
    author_map::accessor slot;
    if (authors_.insert(slot, id)) {
      slot->second = std::move(a);
      continue;
    }
    author_candidate& held = slot->second;
    const bool conflict = held.conflict || a.conflict || held.email_key != a.email_key;
    if (a.offset < held.offset) held = std::move(a);
    held.conflict = conflict;
  }
  std::lock_guard lock(mutex_);
  log_.merge(chunk.log);
  log_.merge(dup_log);
  if (chunk.max_id && (!max_id_ || *chunk.max_id > *max_id_)) max_id_ = chunk.max_id;
  totals_.rows += chunk.rows;
  totals_.valid_comment_rows += chunk.valid_comment_rows;
  totals_.valid_ticket_rows += chunk.valid_ticket_rows;
  totals_.user_candidate_rows += chunk.user_candidate_rows;
}

comment_candidates row_deduplicator::take_comments(const comment_id_reader& id_of) {
  if (!id_of) throw std::invalid_argument("row_deduplicator::take_comments: no id reader");
  // Chunks are in file order and each chunk's candidates too, so keeping the candidates
  // no earlier chunk took the id from, chunk by chunk, gives the winners already sorted.
  const std::vector<detail::sharded_first_map::displaced> displaced = comments_->take_displaced();
  comments_->clear();
  std::vector<std::vector<comment_candidate>>& chunks = comments_by_chunk_;
  tsan::combinable<reject_log> logs;
  parallel_for_ranges(0, chunks.size(), 1, [&](std::size_t first, std::size_t last) {
    reject_log& local = logs.local();
    std::vector<std::int64_t> lost_ids;
    for (std::size_t c = first; c != last; ++c) {
      // This chunk's displaced ids (each names exactly one of its rows), sorted.
      const auto by_chunk = [](const detail::sharded_first_map::displaced& d, std::uint64_t seq) {
        return d.chunk_seq < seq;
      };
      auto it = std::lower_bound(displaced.begin(), displaced.end(), std::uint64_t{c}, by_chunk);
      if (it == displaced.end() || it->chunk_seq != c) continue;
      lost_ids.clear();
      for (; it != displaced.end() && it->chunk_seq == c; ++it) lost_ids.push_back(it->id);
      std::vector<comment_candidate>& v = chunks[c];
      // Ids are read again from the records, and only until every lost one is found.
      std::size_t kept = 0;
      std::size_t removed = 0;
      for (const comment_candidate& x : v) {
        if (removed == lost_ids.size() || !std::binary_search(lost_ids.begin(), lost_ids.end(), id_of(x))) {
          v[kept++] = x;
        } else {
          ++removed;
          local.add(row_issue::duplicate_comment, x.line);
        }
      }
      // Each lost id names one survivor of this chunk: a miss means the record read again no
      // longer holds the id it was parsed with.
      if (removed != lost_ids.size()) {
        throw fatal_error(exit_code::input_error,
                          "input: the export was changed while being read (a comment's record no longer holds the "
                          "COMMENT_PART_ID it was parsed with)");
      }
      v.resize(kept);
    }
  });
  logs.combine_each([&](const reject_log& local) { log_.merge(local); });

  // One copy, in parallel, chunk c to [first[c], first[c + 1]), each chunk freed once copied.
  // `out` is sized without being written (comment_candidates' allocator), so its pages
  // become resident only as the copies reach them: the resident total stays near one copy
  // of the winners, as it did when this copy was serial.
  std::vector<std::size_t> first(chunks.size() + 1, 0);
  for (std::size_t c = 0; c < chunks.size(); ++c) first[c + 1] = first[c] + chunks[c].size();
  comment_candidates out(first.back());
  parallel_for_ranges(0, chunks.size(), 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t c = begin; c != end; ++c) {
      std::copy(chunks[c].begin(), chunks[c].end(), out.begin() + static_cast<std::ptrdiff_t>(first[c]));
      std::vector<comment_candidate>().swap(chunks[c]);
    }
  });
  chunks.clear();
  return out;
}
std::vector<ticket_candidate> row_deduplicator::take_tickets() {
  return drain_sorted<ticket_map, ticket_candidate>(tickets_);
}
std::vector<user_candidate> row_deduplicator::take_users() {
  return drain_sorted<user_map, user_candidate>(users_);
}

std::vector<std::pair<std::int64_t, author_candidate>> row_deduplicator::take_authors() {
  std::vector<std::pair<std::int64_t, author_candidate>> out;
  out.reserve(authors_.size());
  for (auto& [id, a] : authors_) out.emplace_back(id, std::move(a));
  authors_.clear();
  return out;
}

std::optional<std::int64_t> row_deduplicator::max_id() const {
  std::lock_guard lock(mutex_);
  return max_id_;
}

row_totals row_deduplicator::totals() const {
  std::lock_guard lock(mutex_);
  return totals_;
}

reject_log row_deduplicator::log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

}  // namespace tixport

