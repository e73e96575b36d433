// File: sharded_id_map_internal.hpp
//
// Decides, for the one key that sees millions of distinct values
// (COMMENT_PART_ID), which row is the first in file order, while chunks arrive
// from many threads in any order. The map keeps, per id, only the number of the
// earliest chunk that holds it (12 bytes a slot: the id and the chunk number),
// never a pointer to a candidate, so a chunk's candidates can be
// compacted as soon as its ids are in:
//
//   - a row whose id an earlier chunk (or an earlier row of its own chunk) holds
//     loses at once: insert_all marks it, and the caller drops it;
//   - a row whose id only a later chunk holds takes the id over, and the later
//     chunk's row is recorded as displaced (chunk number, id): rare, it needs the
//     later chunk to have been absorbed first, and it is removed when the winners
//     are taken.
//
// So what waits until the end of the parse is one candidate per id (plus the few
// displaced), not one per row, and no candidate is copied into the table.
//
// tbb::concurrent_hash_map allocates a node and takes a bucket lock per insert;
// on a 2.5M-row export that cost about a third of the whole run. Here the key
// space is split into kShards shards, each an open-addressing table behind its
// own mutex, and a caller inserts a whole chunk's worth per shard under one lock.
//
//   sharded_first_map map;
//   map.insert_all(chunk_seq, ids, lost);   // many threads, once per chunk
//   ... all inserts done (happens-before: the parse's join) ...
//   for (auto [chunk_seq, id] : map.take_displaced()) ...   // drop those rows too
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tixport::detail {

class sharded_first_map {
 public:
  static constexpr unsigned kShardBits = 6;
  static constexpr std::size_t kShards = std::size_t{1} << kShardBits;

  /// A row of a later chunk that lost its id to an earlier chunk absorbed after it.
  struct displaced {
    std::uint64_t chunk_seq;
    std::int64_t id;
    friend bool operator<(const displaced& a, const displaced& b) noexcept {
      return a.chunk_seq != b.chunk_seq ? a.chunk_seq < b.chunk_seq : a.id < b.id;
    }
  };

  /// Take part in the contest for the ids of chunk `chunk_seq`'s rows, in file order:
  /// `id_of(i)` for i in [0, count). Sets lost[i] = 1 for each row an earlier row holds the id
  /// of (lost must hold `count` zeros). Each chunk_seq at most once. Thread-safe.
  template <typename IdOf>
  void insert_all(std::uint64_t chunk_seq, std::size_t count, IdOf id_of, std::span<std::uint8_t> lost) {
    if (chunk_seq >= kMaxChunks) {
      throw std::length_error("comment deduplication: more than " + std::to_string(kMaxChunks) +
                              " chunks; use a larger --chunk-size");
    }
    const auto tag = static_cast<std::uint32_t>(chunk_seq + 1);
    // Bucket by shard first so each shard's lock is taken once per call. The
    // buckets are per thread and reused: a chunk must not cost 64 allocations.
    thread_local std::vector<std::uint32_t> by_shard[kShards];
    for (std::vector<std::uint32_t>& bucket : by_shard) bucket.clear();  // after a throw mid-way
    for (std::size_t i = 0; i < count; ++i) by_shard[shard_of(id_of(i))].push_back(static_cast<std::uint32_t>(i));
    for (std::size_t s = 0; s < kShards; ++s) {
      std::vector<std::uint32_t>& bucket = by_shard[s];
      if (bucket.empty()) continue;
      shard& sh = shards_[s];
      {
        std::lock_guard lock(sh.mutex);
        sh.reserve(sh.size + bucket.size());
        for (const std::uint32_t i : bucket) {
          if (!sh.insert(id_of(i), tag)) lost[i] = 1;
        }
      }
      bucket.clear();
    }
  }

  /// Every displaced row, sorted by chunk and id. Call once all inserts are done.
  std::vector<displaced> take_displaced() {
    std::vector<displaced> out;
    for (shard& sh : shards_) {
      out.insert(out.end(), sh.displaced_rows.begin(), sh.displaced_rows.end());
      std::vector<displaced>().swap(sh.displaced_rows);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  /// Free every table. Not thread-safe.
  void clear() noexcept {
    for (shard& sh : shards_) {
      std::vector<slot>().swap(sh.slots);
      std::vector<displaced>().swap(sh.displaced_rows);
      sh.size = 0;
    }
  }

  /// Chunk numbers are kept in 32 bits (0 marks an empty slot).
  static constexpr std::uint64_t kMaxChunks = std::numeric_limits<std::uint32_t>::max() - 1;

 private:
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

  // One slot: the id (as two 32-bit halves, so the slot is 12 bytes with 4-byte alignment)
  // and chunk_seq + 1 of the earliest chunk holding it (0: empty slot).
  struct slot {
    std::uint32_t key_low;
    std::uint32_t key_high;
    std::uint32_t tag;
    [[nodiscard]] std::int64_t key() const noexcept {
      return static_cast<std::int64_t>((std::uint64_t{key_high} << 32) | key_low);
    }
    void set(std::int64_t id, std::uint32_t t) noexcept {
      const auto u = static_cast<std::uint64_t>(id);
      key_low = static_cast<std::uint32_t>(u);
      key_high = static_cast<std::uint32_t>(u >> 32);
      tag = t;
    }
  };
  static_assert(sizeof(slot) == 12);

  struct shard {
    // Open addressing with linear probing. The table grows by half (not doubling) and is kept
    // at most 60% full, so it is 40-60% full after the first growths: ~24 bytes per id (70% cost
    // the parse more probes on 27.7M rows for the same table size there).
    static constexpr std::size_t kMinSlots = 1024;
    static constexpr std::size_t kMaxLoadPercent = 60;

    std::mutex mutex;
    std::vector<slot> slots;
    std::size_t size = 0;
    std::vector<displaced> displaced_rows;

    // The slot an id's probe starts at: the mixed bits below the shard's (which are equal for
    // every id of a shard), scaled to the table's size by a multiply (Lemire's fastrange).
    static std::size_t home(std::int64_t id, std::size_t capacity) noexcept {
      __extension__ using wide = unsigned __int128;  // GCC and Clang; the high half of a 64x64 product
      const std::uint64_t bits = mix(id) << kShardBits;
      return static_cast<std::size_t>((static_cast<wide>(bits) * capacity) >> 64);
    }
    static bool fits(std::size_t entries, std::size_t capacity) noexcept {
      return entries * 100 <= capacity * kMaxLoadPercent;
    }

    void reserve(std::size_t entries) {
      if (fits(entries, slots.size())) return;
      std::size_t capacity = std::max(kMinSlots, slots.size());
      while (!fits(entries, capacity)) capacity += capacity / 2;
      std::vector<slot> bigger(capacity, slot{0, 0, 0});
      for (const slot& s : slots) {
        if (s.tag == 0) continue;
        std::size_t i = home(s.key(), capacity);
        while (bigger[i].tag != 0) i = i + 1 == capacity ? 0 : i + 1;
        bigger[i] = s;
      }
      slots = std::move(bigger);
    }

    // Requires a free slot (reserve() first). False: an earlier row holds `id` (a row of an
    // earlier chunk, or an earlier row of this chunk, inserted before it).
    bool insert(std::int64_t id, std::uint32_t tag) {
      const std::size_t capacity = slots.size();
      for (std::size_t i = home(id, capacity);; i = i + 1 == capacity ? 0 : i + 1) {
        slot& s = slots[i];
        if (s.tag == 0) {
          s.set(id, tag);
          ++size;
          return true;
        }
        if (s.key() == id) {
          if (s.tag <= tag) return false;
          displaced_rows.push_back({std::uint64_t{s.tag} - 1, id});
          s.tag = tag;
          return true;
        }
      }
    }
  };

  shard shards_[kShards];
};

}  // namespace tixport::detail
