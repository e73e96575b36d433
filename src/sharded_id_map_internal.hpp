// File: sharded_id_map_internal.hpp
//
// A concurrent map int64 id -> the smallest record offset seen for it, for the
// one key that sees millions of distinct values (COMMENT_PART_ID). The comment
// candidates themselves never enter the map: they stay in their chunk's vector
// (already in file order), and once every chunk is in, a candidate is the
// winner for its id exactly when its offset is the one the map kept. So the
// winners come out in file order by walking the chunks in order, with no sort
// and no 64-byte candidate moved into a hash table.
//
// tbb::concurrent_hash_map allocates a node and takes a bucket lock per insert;
// on a 2.5M-row export that cost about a third of the whole run. Here the key
// space is split into kShards shards, each an open-addressing table of 16-byte
// slots behind its own mutex, and a caller inserts a whole chunk's worth per
// shard under one lock, so locking is per chunk and per shard.
//
//   sharded_first_offset_map map;
//   map.insert_all(std::span<const comment_candidate>(chunk.comments));  // many threads, once per chunk
//   ... all inserts done (happens-before: the parse's join) ...
//   bool first = map.first_offset(id) == offset; // any thread, read-only
#pragma once

#include <cstdint>
#include <limits>
#include <mutex>
#include <span>
#include <vector>

namespace tixport::detail {

class sharded_first_offset_map {
 public:
  static constexpr unsigned kShardBits = 6;
  static constexpr std::size_t kShards = std::size_t{1} << kShardBits;
  /// Never a real offset: marks an empty slot.
  static constexpr std::uint64_t kNoOffset = std::numeric_limits<std::uint64_t>::max();

  /// Record (item.id, item.offset) for every item, keeping the smallest offset per id. Thread-safe.
  template <typename Candidate>
  void insert_all(std::span<const Candidate> items) {
    // Bucket by shard first so each shard's lock is taken once per call. The
    // buckets are per thread and reused: a chunk must not cost 64 allocations.
    thread_local std::vector<std::size_t> by_shard[kShards];
    for (std::vector<std::size_t>& bucket : by_shard) bucket.clear();  // after a throw mid-way
    for (std::size_t i = 0; i < items.size(); ++i) by_shard[shard_of(items[i].id)].push_back(i);
    for (std::size_t s = 0; s < kShards; ++s) {
      std::vector<std::size_t>& bucket = by_shard[s];
      if (bucket.empty()) continue;
      shard& sh = shards_[s];
      {
        std::lock_guard lock(sh.mutex);
        sh.reserve(sh.size + bucket.size());
        for (const std::size_t i : bucket) sh.insert_min(items[i].id, items[i].offset);
      }
      bucket.clear();
    }
  }

  /// The smallest offset recorded for `id`, or kNoOffset. Read-only: call only after every
  /// insert_all has returned (and is visible to this thread).
  [[nodiscard]] std::uint64_t first_offset(std::int64_t id) const noexcept {
    const shard& sh = shards_[shard_of(id)];
    if (sh.slots.empty()) return kNoOffset;
    const std::size_t mask = sh.slots.size() - 1;
    for (std::size_t i = mix(id) & mask;; i = (i + 1) & mask) {
      const slot& s = sh.slots[i];
      if (s.offset == kNoOffset || s.key == id) return s.offset;
    }
  }

  /// Distinct ids recorded. Not thread-safe.
  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t total = 0;
    for (const shard& sh : shards_) total += sh.size;
    return total;
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
    std::uint64_t offset = kNoOffset;
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
        if (s.offset == kNoOffset) continue;
        std::size_t i = mix(s.key) & mask;
        while (bigger[i].offset != kNoOffset) i = (i + 1) & mask;
        bigger[i] = s;
      }
      slots = std::move(bigger);
    }

    // Requires a free slot (reserve() first).
    void insert_min(std::int64_t key, std::uint64_t offset) noexcept {
      const std::size_t mask = slots.size() - 1;
      for (std::size_t i = mix(key) & mask;; i = (i + 1) & mask) {
        slot& s = slots[i];
        if (s.offset == kNoOffset) {
          s = slot{key, offset};
          ++size;
          return;
        }
        if (s.key == key) {
          if (offset < s.offset) s.offset = offset;
          return;
        }
      }
    }
  };

  shard shards_[kShards];
};

}  // namespace tixport::detail
