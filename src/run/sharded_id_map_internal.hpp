// File: sharded_id_map_internal.hpp
//
// Decides, for the one key that sees millions of distinct values
// (COMMENT_PART_ID), which row is the first in file order, while chunks arrive
// from many threads in any order. The map keeps, per id, only the number of the
// earliest chunk that holds it (8 bytes a slot when the id and the chunk number
// fit, else 12), never a pointer to a candidate, so a chunk's candidates can be
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
//   map.insert_all(chunk_seq, rows.size(), [&](std::size_t i) { return rows[i].id; }, lost);  // once per chunk
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
        // Each insert's first probe is a cache miss once the tables outgrow the cache (a
        // 27.7M-row export's are hundreds of MB): ask for the slot kPrefetchAhead rows early.
        const std::size_t n = bucket.size();
        for (std::size_t j = 0; j < std::min(n, kPrefetchAhead); ++j) sh.prefetch(id_of(bucket[j]));
        for (std::size_t j = 0; j < n; ++j) {
          if (j + kPrefetchAhead < n) sh.prefetch(id_of(bucket[j + kPrefetchAhead]));
          const std::uint32_t i = bucket[j];
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

  /// How far entries sit from the slot their probe starts at (0: at it), and how evenly the
  /// shards share them: what a hash that piles ids into one corner of a table or into one
  /// shard gets wrong while every answer stays right (only the time suffers). Not thread-safe.
  struct probe_stats {
    std::size_t entries = 0;
    std::size_t total_distance = 0;  ///< sum over entries of the slots between home and place
    std::size_t max_distance = 0;
    std::size_t largest_shard = 0;   ///< entries of the fullest shard
  };
  [[nodiscard]] probe_stats measure_probes() const {
    probe_stats stats;
    const auto walk = [&stats](const auto& slots) {
      const std::size_t capacity = slots.size();
      for (std::size_t i = 0; i < capacity; ++i) {
        if (slots[i].empty()) continue;
        const std::size_t home = table<narrow_slot>::home(slots[i].key(), capacity);
        const std::size_t distance = i >= home ? i - home : i + capacity - home;  // probes wrap around
        ++stats.entries;
        stats.total_distance += distance;
        stats.max_distance = std::max(stats.max_distance, distance);
      }
    };
    for (const shard& sh : shards_) {
      walk(sh.narrow.slots);
      walk(sh.wide.slots);
      stats.largest_shard = std::max(stats.largest_shard, sh.size);
    }
    return stats;
  }

  /// Free every table. Not thread-safe.
  void clear() noexcept {
    for (shard& sh : shards_) {
      std::vector<narrow_slot>().swap(sh.narrow.slots);
      std::vector<wide_slot>().swap(sh.wide.slots);
      sh.is_wide = false;
      sh.reserved = 0;
      std::vector<displaced>().swap(sh.displaced_rows);
      sh.size = 0;
    }
  }

  /// How many rows ahead insert_all prefetches a row's first slot.
  static constexpr std::size_t kPrefetchAhead = 8;

  /// Chunk numbers are kept in 32 bits (0 marks an empty slot).
  static constexpr std::uint64_t kMaxChunks = std::numeric_limits<std::uint32_t>::max() - 1;

 private:
  static std::uint64_t mix(std::int64_t id) noexcept {
    // splitmix64's finaliser: ids are often sequential, the table needs their groups spread.
    auto x = static_cast<std::uint64_t>(id);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
  }
  // Ids that differ only in their last kGroupBits bits (COMMENT_PART_IDs mostly count up by
  // one row after row) share a shard and a run of 8 slots, so that rows after rows hit the
  // same cache lines (64 bytes of narrow slots, one or two lines as glibc aligns the table).
  // Of the group's mix, the top 6 bits pick the shard, the bits below them the run
  // (table::home), and the lowest 3 bits rotate the id's place in the run.
  static constexpr unsigned kGroupBits = 3;
  static std::uint64_t group_mix(std::int64_t id) noexcept {
    return mix(static_cast<std::int64_t>(static_cast<std::uint64_t>(id) >> kGroupBits));
  }
  static std::size_t shard_of(std::int64_t id) noexcept { return group_mix(id) >> (64 - kShardBits); }

  // A wide slot: the id (as two 32-bit halves, so the slot is 12 bytes with 4-byte alignment)
  // and its tag, chunk_seq + 1 of the earliest chunk holding it (0: empty slot).
  struct wide_slot {
    std::uint32_t key_low;
    std::uint32_t key_high;
    std::uint32_t tag_value;
    [[nodiscard]] bool empty() const noexcept { return tag_value == 0; }
    [[nodiscard]] std::int64_t key() const noexcept {
      return static_cast<std::int64_t>((std::uint64_t{key_high} << 32) | key_low);
    }
    [[nodiscard]] std::uint32_t tag() const noexcept { return tag_value; }
    void set(std::int64_t id, std::uint32_t t) noexcept {
      const auto u = static_cast<std::uint64_t>(id);
      key_low = static_cast<std::uint32_t>(u);
      key_high = static_cast<std::uint32_t>(u >> 32);
      tag_value = t;
    }
    void set_tag(std::uint32_t t) noexcept { tag_value = t; }
  };
  static_assert(sizeof(wide_slot) == 12);

  // A narrow slot, 8 bytes: the tag in the top kNarrowTagBits bits, the id below (0: empty).
  // It holds ids in [0, 2^44) (sixteen trillion) of chunks before the millionth: every
  // export seen so far. A shard meeting anything else turns wide (narrow_fits).
  static constexpr unsigned kNarrowIdBits = 44;
  static constexpr unsigned kNarrowTagBits = 64 - kNarrowIdBits;
  static constexpr std::uint64_t kNarrowIdMask = (std::uint64_t{1} << kNarrowIdBits) - 1;
  static bool narrow_fits(std::int64_t id, std::uint32_t tag) noexcept {
    return id >= 0 && static_cast<std::uint64_t>(id) <= kNarrowIdMask && tag < (std::uint32_t{1} << kNarrowTagBits);
  }
  struct narrow_slot {
    std::uint64_t value;
    [[nodiscard]] bool empty() const noexcept { return value == 0; }
    [[nodiscard]] std::int64_t key() const noexcept { return static_cast<std::int64_t>(value & kNarrowIdMask); }
    [[nodiscard]] std::uint32_t tag() const noexcept { return static_cast<std::uint32_t>(value >> kNarrowIdBits); }
    void set(std::int64_t id, std::uint32_t t) noexcept {
      value = (std::uint64_t{t} << kNarrowIdBits) | static_cast<std::uint64_t>(id);
    }
    void set_tag(std::uint32_t t) noexcept { set(key(), t); }
  };
  static_assert(sizeof(narrow_slot) == 8);

  // Open addressing with linear probing. The table grows by half (not doubling) and is kept
  // at most 60% full, so it is 40-60% full after the first growths: ~16 bytes per id with
  // narrow slots (70% cost the parse more probes on 27.7M rows for the same table size there).
  template <typename Slot>
  struct table {
    static constexpr std::size_t kMinSlots = 1024;
    static constexpr std::size_t kMaxLoadPercent = 60;
    std::vector<Slot> slots;

    // The slot an id's probe starts at: its group's run, from the mixed bits below the shard's
    // (which are equal for every id of a shard) scaled to the table's size by a multiply
    // (Lemire's fastrange), then its place in the run: its last 3 bits plus the group's mix,
    // mod 8, so that ids that all end alike (multiples of 8, of 2^20) do not all start at a
    // run's first slot. capacity >= kMinSlots: reserve() comes before any insert or prefetch.
    static std::size_t home(std::int64_t id, std::size_t capacity) noexcept {
      __extension__ using wide = unsigned __int128;  // GCC and Clang; the high half of a 64x64 product
      constexpr std::size_t kGroup = std::size_t{1} << kGroupBits;
      const std::uint64_t mixed = group_mix(id);
      const auto run = static_cast<std::size_t>((static_cast<wide>(mixed << kShardBits) * (capacity / kGroup)) >> 64);
      return run * kGroup + (static_cast<std::size_t>(static_cast<std::uint64_t>(id) + mixed) & (kGroup - 1));
    }
    void prefetch(std::int64_t id) const noexcept {
      // Write intent (1), kept in every cache level (3): the insert follows a few rows later.
      __builtin_prefetch(slots.data() + home(id, slots.size()), 1, 3);
    }
    static bool fits(std::size_t entries, std::size_t capacity) noexcept {
      return entries * 100 <= capacity * kMaxLoadPercent;
    }

    // Room for `entries` at most 60% full.
    void reserve(std::size_t entries) {
      std::vector<Slot> nothing;
      reserve(entries, nothing);
    }

    // Room for `entries` at most 60% full, with every entry of `from` (any slot type) moved in.
    template <typename Other>
    void reserve(std::size_t entries, std::vector<Other>& from) {
      std::size_t capacity = std::max(kMinSlots, std::max(slots.size(), from.size()));
      while (!fits(entries, capacity)) capacity += capacity / 2;
      if (capacity == slots.size() && from.empty()) return;
      std::vector<Slot> bigger(capacity, Slot{});
      const auto move_in = [&](const auto& old) {
        for (const auto& s : old) {
          if (s.empty()) continue;
          std::size_t i = home(s.key(), capacity);
          while (!bigger[i].empty()) i = i + 1 == capacity ? 0 : i + 1;
          bigger[i].set(s.key(), s.tag());
        }
      };
      move_in(slots);
      move_in(from);
      std::vector<Other>().swap(from);
      slots = std::move(bigger);
    }

    // Requires a free slot (reserve() first). False: an earlier row holds `id` (a row of an
    // earlier chunk, or an earlier row of this chunk, inserted before it). `on_displaced(tag)`
    // when `id` moves to an earlier chunk from the one `tag` names.
    template <typename OnDisplaced>
    bool insert(std::int64_t id, std::uint32_t tag, std::size_t& size, OnDisplaced on_displaced) {
      const std::size_t capacity = slots.size();
      for (std::size_t i = home(id, capacity);; i = i + 1 == capacity ? 0 : i + 1) {
        Slot& s = slots[i];
        if (s.empty()) {
          s.set(id, tag);
          ++size;
          return true;
        }
        if (s.key() == id) {
          if (s.tag() <= tag) return false;
          on_displaced(s.tag());
          s.set_tag(tag);
          return true;
        }
      }
    }
  };

  struct shard {
    std::mutex mutex;
    // Narrow until an id or a chunk number does not fit 8 bytes; then wide for good.
    bool is_wide = false;
    table<narrow_slot> narrow;
    table<wide_slot> wide;
    std::size_t size = 0;
    std::size_t reserved = 0;  // entries the last reserve() made room for
    std::vector<displaced> displaced_rows;

    void reserve(std::size_t entries) {
      reserved = entries;
      if (is_wide) {
        wide.reserve(entries);
      } else {
        narrow.reserve(entries);
      }
    }

    void prefetch(std::int64_t id) const noexcept {
      if (is_wide) {
        wide.prefetch(id);
      } else {
        narrow.prefetch(id);
      }
    }

    // Requires reserve(size + 1) first.
    bool insert(std::int64_t id, std::uint32_t tag) {
      const auto displace = [&](std::uint32_t old_tag) { displaced_rows.push_back({std::uint64_t{old_tag} - 1, id}); };
      if (!is_wide && !narrow_fits(id, tag)) {
        is_wide = true;
        wide.reserve(std::max(reserved, size + 1), narrow.slots);  // moves the narrow entries in, frees them
      }
      return is_wide ? wide.insert(id, tag, size, displace) : narrow.insert(id, tag, size, displace);
    }
  };

  shard shards_[kShards];
};

}  // namespace tixport::detail
