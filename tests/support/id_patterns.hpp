// File: id_patterns.hpp
//
// COMMENT_PART_ID patterns an export can have, and their insertion into the comment id map
// (sharded_first_map) in export-sized chunks: one definition for the map's benchmark
// (bench/sharded_id_map_bench.cpp) and its layout test (tests/row_deduplicator_test.cpp).
//
//   const std::vector<std::int64_t> ids = make_ids(id_pattern::counting_up, 3000000);
//   insert_in_chunks(map, ids, chunks_in_order(ids.size()), lost);
#pragma once

#include "run/sharded_id_map_internal.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace tixport::test {

/// Rows of a 4 MiB chunk of a generated export.
inline constexpr std::size_t kExportChunkRows = 11000;

enum class id_pattern {
  counting_up,
  counting_up_with_repeats,  ///< a quarter repeat one of the last 64
  random,                    ///< below 2^40
  multiples_of_8,
  multiples_of_2_20,
  counting_up_from_below_zero,  ///< negative ids: the map's wide slots
};
inline constexpr id_pattern kIdPatterns[] = {id_pattern::counting_up,       id_pattern::counting_up_with_repeats,
                                             id_pattern::random,            id_pattern::multiples_of_8,
                                             id_pattern::multiples_of_2_20, id_pattern::counting_up_from_below_zero};

inline const char* id_pattern_name(id_pattern p) {
  switch (p) {
    case id_pattern::counting_up:
      return "counting up";
    case id_pattern::counting_up_with_repeats:
      return "counting up with repeats";
    case id_pattern::random:
      return "random";
    case id_pattern::multiples_of_8:
      return "multiples of 8";
    case id_pattern::multiples_of_2_20:
      return "multiples of 2^20";
    case id_pattern::counting_up_from_below_zero:
      return "counting up from below zero (wide slots)";
  }
  return "?";
}

/// `count` ids of pattern `p`, the same every time.
inline std::vector<std::int64_t> make_ids(id_pattern p, std::size_t count) {
  std::vector<std::int64_t> ids(count);
  std::mt19937_64 rng(1);
  for (std::size_t i = 0; i < count; ++i) {
    const auto n = static_cast<std::int64_t>(i);
    switch (p) {
      case id_pattern::counting_up:
        ids[i] = 5000000000 + n;
        break;
      case id_pattern::counting_up_with_repeats:
        ids[i] = 5000000000 + n - (rng() % 4 == 0 ? static_cast<std::int64_t>(rng() % 64) : 0);
        break;
      case id_pattern::random:
        ids[i] = static_cast<std::int64_t>(rng() % (std::uint64_t{1} << 40));
        break;
      case id_pattern::multiples_of_8:
        ids[i] = 8 * (5000000 + n);
        break;
      case id_pattern::multiples_of_2_20:
        ids[i] = n << 20;
        break;
      case id_pattern::counting_up_from_below_zero:
        ids[i] = n - static_cast<std::int64_t>(count / 2);
        break;
    }
  }
  return ids;
}

/// The chunk numbers of `ids` ids cut into kExportChunkRows, in file order.
inline std::vector<std::size_t> chunks_in_order(std::size_t ids) {
  std::vector<std::size_t> chunks((ids + kExportChunkRows - 1) / kExportChunkRows);
  for (std::size_t c = 0; c < chunks.size(); ++c) chunks[c] = c;
  return chunks;
}

/// Insert `ids` into `map` chunk by chunk (chunk c: ids from c * kExportChunkRows, chunk number
/// c), in the order `chunks` lists them. `lost` is the insert's scratch.
inline void insert_in_chunks(detail::sharded_first_map& map, const std::vector<std::int64_t>& ids,
                             std::span<const std::size_t> chunks, std::vector<std::uint8_t>& lost) {
  for (const std::size_t c : chunks) {
    const std::size_t begin = std::min(ids.size(), c * kExportChunkRows);
    const std::size_t count = std::min(ids.size(), begin + kExportChunkRows) - begin;
    lost.assign(count, 0);
    map.insert_all(c, count, [&](std::size_t i) { return ids[begin + i]; }, lost);
  }
}

}  // namespace tixport::test
