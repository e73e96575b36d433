// File: sharded_id_map_internal.hpp
//
// Decides, for the one key that sees millions of distinct values
// (COMMENT_PART_ID), which candidate is the first in file order, while chunks
// arrive from many threads in any order. The candidates never move: they stay
// in their chunk's vector (in file order), and the map holds, per id, a pointer
// to the candidate with the smallest offset seen so far. When a second one
// comes, the one with the larger offset is marked `superseded` on the spot, so
// once every chunk is in, the winners are the unmarked candidates, read chunk by
// chunk in file order: no sort, no second lookup, no candidate copied into a table.
//
// tbb::concurrent_hash_map allocates a node and takes a bucket lock per insert;
// on a 2.5M-row export that cost about a third of the whole run. Here the key
// space is split into kShards shards, each an open-addressing table of 16-byte
// slots behind its own mutex, and a caller inserts a whole chunk's worth per
// shard under one lock, so locking is per chunk and per shard.
//
//   sharded_first_map<comment_candidate> map;
//   map.insert_all(stable_span);   // many threads, once per chunk; marks losers' `superseded`
//   ... all inserts done (happens-before: the parse's join) ...
//   for (auto& c : chunk) if (!c.superseded) keep(c);
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace tixport::detail {

/// Candidate needs `std::int64_t id`, `std::uint64_t offset` and `bool superseded`.
template <typename Candidate>
class sharded_first_map {
 public:
  static constexpr unsigned kShardBits = 6;
  static constexpr std::size_t kShards = std::size_t{1} << kShardBits;

  /// Take part in the contest for every item's id; of two candidates with one id the one
  /// with the larger offset gets superseded = true. `items` must stay where they are (and
  /// alive) until clear(); a superseded flag may be set on an item of an earlier call.
  /// Thread-safe.
  void insert_all(std::span<Candidate> items) {
    // Bucket by shard first so each shard's lock is taken once per call. The
    // buckets are per thread and reused: a chunk must not cost 64 allocations.
    thread_local std::vector<Candidate*> by_shard[kShards];
    for (std::vector<Candidate*>& bucket : by_shard) bucket.clear();  // after a throw mid-way
    for (Candidate& item : items) by_shard[shard_of(item.id)].push_back(&item);
    for (std::size_t s = 0; s < kShards; ++s) {
      std::vector<Candidate*>& bucket = by_shard[s];
      if (bucket.empty()) continue;
      shard& sh = shards_[s];
      {
        std::lock_guard lock(sh.mutex);
        sh.reserve(sh.size + bucket.size());
        for (Candidate* item : bucket) sh.insert(item);
      }
      bucket.clear();
    }
  }

  /// Free every table. Not thread-safe.
  void clear() noexcept {
    for (shard& sh : shards_) {
      std::vector<slot>().swap(sh.slots);
      sh.size = 0;
    }
  }

 private:
  struct slot {
    std::int64_t key = 0;
    Candidate* first = nullptr;  // nullptr: empty slot
  };

  static std::uint64_t mix(std::int64_t id) noexcept {
    // splitmix64's finaliser: ids are often sequential, the table needs them spread.
    auto x = static_cast<std::uint64_t>(id);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
  }
  // The top bits pick the shard, the low bits the slot: the two stay independent.
  static std::size_t shard_of(std::int64_t id) noexcept { return mix(id) >> (64 - kShardBits); }

  struct shard {
    std::mutex mutex;
    std::vector<slot> slots;  // power-of-two size, at most half full
    std::size_t size = 0;

    void reserve(std::size_t entries) {
      if (entries * 2 <= slots.size()) return;
      std::size_t capacity = slots.empty() ? 1024 : slots.size();
      while (entries * 2 > capacity) capacity *= 2;
      std::vector<slot> bigger(capacity);
      const std::size_t mask = capacity - 1;
      for (const slot& s : slots) {
        if (s.first == nullptr) continue;
        std::size_t i = mix(s.key) & mask;
        while (bigger[i].first != nullptr) i = (i + 1) & mask;
        bigger[i] = s;
      }
      slots = std::move(bigger);
    }

    // Requires a free slot (reserve() first).
    void insert(Candidate* item) noexcept {
      const std::size_t mask = slots.size() - 1;
      for (std::size_t i = mix(item->id) & mask;; i = (i + 1) & mask) {
        slot& s = slots[i];
        if (s.first == nullptr) {
          s = slot{item->id, item};
          ++size;
          return;
        }
        if (s.key == item->id) {
          if (item->offset < s.first->offset) {
            s.first->superseded = true;
            s.first = item;
          } else {
            item->superseded = true;
          }
          return;
        }
      }
    }
  };

  shard shards_[kShards];
};

}  // namespace tixport::detail
