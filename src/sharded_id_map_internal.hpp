// File: sharded_id_map_internal.hpp
//
// A concurrent map int64 id -> candidate for the one key that sees millions of
// distinct values (COMMENT_PART_ID). tbb::concurrent_hash_map allocates a node
// and takes a bucket lock per insert; on a 2.5M-row export that cost about a
// third of the whole run. Here the key space is split into kShards shards,
// each an open-addressing table behind its own mutex, and a caller inserts a
// whole chunk's worth per shard under one lock, so locking is per chunk and
// per shard, and an insert is a probe into a flat array.
//
//   sharded_id_map<comment_candidate> map;
//   map.insert_all(chunk.comments, [&](comment_candidate& kept, comment_candidate&& loser) {...});
//   std::vector<comment_candidate> all = map.take();    // unordered
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace tixport::detail {

template <typename Candidate>
class sharded_id_map {
 public:
  static constexpr unsigned kShardBits = 6;
  static constexpr std::size_t kShards = std::size_t{1} << kShardBits;

  /// Insert every candidate (keyed by .id). On a key already present, `collide(held, incoming)`
  /// decides what stays in `held`. Thread-safe.
  template <typename Collide>
  void insert_all(std::vector<Candidate>& items, Collide&& collide) {
    // Bucket by shard first so each shard's lock is taken once per call.
    std::vector<std::vector<Candidate*>> by_shard(kShards);
    for (Candidate& item : items) by_shard[shard_of(item.id)].push_back(&item);
    for (std::size_t s = 0; s < kShards; ++s) {
      if (by_shard[s].empty()) continue;
      shard& sh = shards_[s];
      std::lock_guard lock(sh.mutex);
      for (Candidate* item : by_shard[s]) sh.insert(std::move(*item), collide);
    }
  }

  /// Every value, in no particular order; the map is empty afterwards. Not thread-safe.
  std::vector<Candidate> take() {
    std::size_t total = 0;
    for (const shard& sh : shards_) total += sh.values.size();
    std::vector<Candidate> out;
    out.reserve(total);
    for (shard& sh : shards_) {
      for (Candidate& v : sh.values) out.push_back(std::move(v));
      sh = shard_state{};
    }
    return out;
  }

 private:
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;

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
  static std::size_t shard_of(std::int64_t id) noexcept { return mix(id) >> (64 - kShardBits); }

  struct shard_state {
    std::vector<std::int64_t> keys;     // slot -> key (valid where slots[i] != kEmpty)
    std::vector<std::uint32_t> slots;   // slot -> index into values, or kEmpty
    std::vector<Candidate> values;      // insertion order within the shard
  };

  struct shard : shard_state {
    std::mutex mutex;
    shard& operator=(shard_state&& state) {
      static_cast<shard_state&>(*this) = std::move(state);
      return *this;
    }

    template <typename Collide>
    void insert(Candidate&& item, Collide& collide) {
      if ((this->values.size() + 1) * 2 > this->slots.size()) grow();
      const std::size_t mask = this->slots.size() - 1;
      for (std::size_t i = mix(item.id) & mask;; i = (i + 1) & mask) {
        const std::uint32_t at = this->slots[i];
        if (at == kEmpty) {
          this->slots[i] = static_cast<std::uint32_t>(this->values.size());
          this->keys[i] = item.id;
          this->values.push_back(std::move(item));
          return;
        }
        if (this->keys[i] == item.id) {
          collide(this->values[at], std::move(item));
          return;
        }
      }
    }

    void grow() {
      const std::size_t size = this->slots.empty() ? 1024 : this->slots.size() * 2;
      std::vector<std::int64_t> keys(size);
      std::vector<std::uint32_t> slots(size, kEmpty);
      const std::size_t mask = size - 1;
      for (std::uint32_t v = 0; v < this->values.size(); ++v) {
        const std::int64_t key = this->values[v].id;
        std::size_t i = mix(key) & mask;
        while (slots[i] != kEmpty) i = (i + 1) & mask;
        slots[i] = v;
        keys[i] = key;
      }
      this->keys = std::move(keys);
      this->slots = std::move(slots);
    }
  };

  shard shards_[kShards];
};

}  // namespace tixport::detail
