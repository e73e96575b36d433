// File: row_deduplicator_test.cpp
//
// The deduplicator against a serial reference: random candidates split into
// random chunks, absorbed from many threads in a shuffled order, must give the
// same winners (smallest offset per key, in file order), the same duplicate
// counts and the same sample lines as one pass over the rows in file order.
#include <catch2/catch.hpp>

#include "tixport/run/row_deduplicator.hpp"
#include "tixport/common/errors.hpp"

#include "../src/common/tsan_annotations_internal.hpp"
#include "support/id_patterns.hpp"

#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <limits>
#include <map>
#include <atomic>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

using namespace tixport;

namespace {

// The held comments keep no id (take_comments reads it again from the record); these tests'
// rows have unique offsets, so an offset names its id.
struct comment_ids {
  std::unordered_map<std::uint64_t, std::int64_t> by_offset;
  void add(const classified_chunk& c) {
    for (const comment_row& r : c.comments) by_offset.emplace(r.offset, r.id);
  }
  std::int64_t of(const comment_candidate& c) const { return by_offset.at(c.offset); }
  [[nodiscard]] comment_id_reader reader() const {
    return [this](const comment_candidate& c) { return of(c); };
  }
};

struct row {
  std::uint64_t offset;
  std::int64_t comment_id;  // < 0: no valid comment on this row
  std::int64_t ticket_id;   // < 0: no valid ticket
  std::int64_t author_id;   // < 0: no user candidate
  std::string email_key;
};

std::vector<row> random_rows(std::mt19937_64& rng, std::size_t n) {
  std::vector<row> rows;
  std::uniform_int_distribution<std::int64_t> comment(0, static_cast<std::int64_t>(n));  // ~1/3 repeat
  std::uniform_int_distribution<std::int64_t> ticket(0, static_cast<std::int64_t>(n / 8 + 1));
  std::uniform_int_distribution<std::int64_t> author(0, 40);
  std::uniform_int_distribution<int> email(0, 30);
  std::uniform_int_distribution<int> percent(0, 99);
  std::uint64_t offset = 7;
  for (std::size_t i = 0; i < n; ++i) {
    offset += 1 + rng() % 300;
    std::string key = "u";  // built in steps: GCC 12 warns falsely (-Wrestrict) on "u" + s + "@x.org"
    key += std::to_string(email(rng));
    key += "@x.org";
    rows.push_back(row{offset, percent(rng) < 90 ? comment(rng) : -1, percent(rng) < 85 ? ticket(rng) : -1,
                       percent(rng) < 80 ? author(rng) : -1, std::move(key)});
  }
  return rows;
}

// What classify_chunk hands over for rows [begin, end): every comment, the first ticket /
// user / author per key within the chunk, in-chunk duplicates already logged.
classified_chunk make_chunk(const std::vector<row>& rows, std::size_t begin, std::size_t end, std::uint64_t seq) {
  classified_chunk c;
  c.chunk_seq = seq;
  for (std::size_t i = begin; i < end; ++i) {
    const row& r = rows[i];
    const std::uint64_t line = r.offset;  // unique and increasing, like a line number
    ++c.rows;
    if (r.comment_id >= 0) {
      c.comments.push_back(comment_row{r.offset, line, true, r.comment_id});
      ++c.valid_comment_rows;
    }
    if (r.ticket_id >= 0) {
      ++c.valid_ticket_rows;
      if (!c.tickets.try_emplace(r.ticket_id, ticket_candidate{r.offset, line, r.ticket_id, 1, 0}).second) {
        c.log.add(row_issue::duplicate_ticket, line);
      }
    }
    if (r.author_id >= 0) {
      ++c.user_candidate_rows;
      if (c.users.count(r.email_key) != 0) {
        c.log.add(row_issue::duplicate_user_row, line);
      } else {
        c.users.emplace(r.email_key, user_candidate{r.offset, line, r.author_id, "N", r.email_key, false, false});
      }
      if (auto it = c.authors.find(r.author_id); it == c.authors.end()) {
        c.authors.emplace(r.author_id, author_candidate{r.offset, line, r.email_key, false});
      } else if (it->second.email_key != r.email_key) {
        it->second.conflict = true;
      }
    }
  }
  return c;
}

struct reference {
  std::vector<std::uint64_t> comment_offsets, ticket_offsets, user_offsets;
  std::map<std::int64_t, std::pair<std::string, bool>> authors;  // chat id -> (first key, conflict)
  reject_log log;
};

reference serial_reference(const std::vector<row>& rows) {
  reference ref;
  std::map<std::int64_t, bool> comments, tickets;
  std::map<std::string, bool> users;
  for (const row& r : rows) {
    const std::uint64_t line = r.offset;
    if (r.comment_id >= 0) {
      if (comments.emplace(r.comment_id, true).second) {
        ref.comment_offsets.push_back(r.offset);
      } else {
        ref.log.add(row_issue::duplicate_comment, line);
      }
    }
    if (r.ticket_id >= 0) {
      if (tickets.emplace(r.ticket_id, true).second) {
        ref.ticket_offsets.push_back(r.offset);
      } else {
        ref.log.add(row_issue::duplicate_ticket, line);
      }
    }
    if (r.author_id >= 0) {
      if (users.emplace(r.email_key, true).second) {
        ref.user_offsets.push_back(r.offset);
      } else {
        ref.log.add(row_issue::duplicate_user_row, line);
      }
      auto [it, inserted] = ref.authors.try_emplace(r.author_id, r.email_key, false);
      if (!inserted && it->second.first != r.email_key) it->second.second = true;
    }
  }
  return ref;
}

template <typename T>
std::vector<std::uint64_t> offsets_of(const T& v) {
  std::vector<std::uint64_t> out;
  for (const auto& x : v) out.push_back(x.offset);
  return out;
}

// The comment rows of `ids`, in file order, cut into chunks numbered from `first_seq`, each of
// min_rows + rng() % spread rows (the last may be shorter); offsets (and lines) grow by 1-50.
std::vector<classified_chunk> chunks_of(const std::vector<std::int64_t>& ids, std::mt19937_64& rng,
                                        std::size_t min_rows, std::size_t spread, std::uint64_t first_seq = 0) {
  std::vector<classified_chunk> chunks;
  std::uint64_t offset = 100;
  for (std::size_t begin = 0, seq = first_seq; begin < ids.size(); ++seq) {
    const std::size_t end = std::min(ids.size(), begin + min_rows + rng() % spread);
    classified_chunk c;
    c.chunk_seq = seq;
    for (std::size_t i = begin; i < end; ++i) {
      offset += 1 + rng() % 50;
      c.comments.push_back(comment_row{offset, offset, true, ids[i]});
    }
    chunks.push_back(std::move(c));
    begin = end;
  }
  return chunks;
}

// The serial pass over chunks in file order: the offset of each comment id's first row, and
// how many rows repeat an id.
struct first_rows {
  std::vector<std::uint64_t> offsets;
  std::size_t duplicates = 0;
};
first_rows first_comment_rows(const std::vector<classified_chunk>& chunks) {
  first_rows out;
  std::unordered_map<std::int64_t, bool> seen;
  for (const classified_chunk& c : chunks) {
    for (const comment_row& x : c.comments) {
      if (seen.emplace(x.id, true).second) {
        out.offsets.push_back(x.offset);
      } else {
        ++out.duplicates;
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("row_deduplicator: parallel absorb in any order equals a serial pass (SPEC 2.1-2.4)",
          "[row_deduplicator][parallel]") {
  std::mt19937_64 rng(20261126);
  for (int round = 0; round < 40; ++round) {
    const std::size_t n = 1 + rng() % 3000;
    const std::vector<row> rows = random_rows(rng, n);
    // Random chunk boundaries, including empty chunks.
    std::vector<classified_chunk> chunks;
    for (std::size_t begin = 0, seq = 0; begin < n || seq == 0; ++seq) {
      const std::size_t end = std::min(n, begin + rng() % 400);
      chunks.push_back(make_chunk(rows, begin, end, seq));
      begin = end;
    }
    comment_ids ids;
    for (const classified_chunk& c : chunks) ids.add(c);
    std::shuffle(chunks.begin(), chunks.end(), rng);
    const int threads = 1 + static_cast<int>(rng() % 8);
    row_deduplicator dedup(rng() % 2 == 0 ? 0 : n * 360);
    oneapi::tbb::task_arena(threads).execute([&] {
      oneapi::tbb::parallel_for(std::size_t{0}, chunks.size(),
                                tsan::body(&dedup, [&](std::size_t i) { dedup.absorb(std::move(chunks[i])); }));
    });
    tsan::acquire(&dedup);  // libtbb's join, which ThreadSanitizer cannot see
    const reference ref = serial_reference(rows);
    INFO("round " << round << ", " << n << " rows, " << chunks.size() << " chunks, " << threads << " threads");

    const tixport::comment_candidates comments = dedup.take_comments(ids.reader());
    CHECK(offsets_of(comments) == ref.comment_offsets);
    CHECK(offsets_of(dedup.take_tickets()) == ref.ticket_offsets);
    CHECK(offsets_of(dedup.take_users()) == ref.user_offsets);
    std::map<std::int64_t, std::pair<std::string, bool>> authors;
    for (auto& [id, a] : dedup.take_authors()) authors.emplace(id, std::pair{a.email_key, a.conflict});
    CHECK(authors == ref.authors);

    const reject_log log = dedup.log();
    for (const row_issue issue : {row_issue::duplicate_comment, row_issue::duplicate_ticket,
                                  row_issue::duplicate_user_row}) {
      INFO("issue " << row_issue_name(issue) << " count " << log.count(issue));
      CHECK(log.count(issue) == ref.log.count(issue));
      CHECK(log.samples(issue) == ref.log.samples(issue));
    }
    const row_totals totals = dedup.totals();
    CHECK(totals.rows == n);
  }
}

TEST_CASE("row_deduplicator: an invalid or later row never replaces the first valid comment (SPEC 2.3)",
          "[row_deduplicator]") {
  row_deduplicator dedup(0);
  classified_chunk late;
  late.chunk_seq = 1;
  late.comments.push_back(comment_row{500, 9, false, 42});
  late.comments.push_back(comment_row{600, 10, true, 43});
  classified_chunk early;
  early.chunk_seq = 0;
  early.comments.push_back(comment_row{100, 3, true, 42});
  early.comments.push_back(comment_row{200, 4, true, 42});  // same id, same chunk
  comment_ids ids;
  ids.add(late);
  ids.add(early);
  dedup.absorb(std::move(late));  // the later chunk arrives first
  dedup.absorb(std::move(early));
  const tixport::comment_candidates comments = dedup.take_comments(ids.reader());
  REQUIRE(comments.size() == 2);
  CHECK(comments[0].offset == 100);
  CHECK(ids.of(comments[0]) == 42);
  CHECK(comments[1].offset == 600);
  CHECK(comments[1].is_public);
  CHECK(ids.of(comments[1]) == 43);
  CHECK(dedup.log().count(row_issue::duplicate_comment) == 2);
  CHECK(dedup.log().samples(row_issue::duplicate_comment) == std::vector<std::uint64_t>{4, 9});
}

TEST_CASE("row_deduplicator: earlier chunks absorbed later take an id over, one after another",
          "[row_deduplicator]") {
  // Id 42 in chunks 5, 3, 4 and 1, absorbed in that order: chunk 3 takes it from 5, chunk 4
  // loses at once, chunk 1 takes it from 3. Only chunk 1's row is kept; the others are counted.
  row_deduplicator dedup(0);
  comment_ids ids;
  for (const std::uint64_t seq : {5, 3, 4, 1}) {
    classified_chunk c;
    c.chunk_seq = seq;
    c.comments.push_back(comment_row{seq * 100, seq * 10, true, 42});
    c.comments.push_back(comment_row{seq * 100 + 1, seq * 10 + 1, true, static_cast<std::int64_t>(seq)});
    ids.add(c);
    dedup.absorb(std::move(c));
  }
  // Ids are read again only in chunks 5 and 3 (each lost id 42 to an earlier chunk), and only
  // until that id is found: their first row.
  std::size_t reads = 0;
  const tixport::comment_candidates comments = dedup.take_comments([&](const comment_candidate& c) {
    ++reads;
    return ids.of(c);
  });
  CHECK(reads == 2);
  REQUIRE(comments.size() == 5);
  CHECK(comments[0].offset == 100);
  CHECK(ids.of(comments[0]) == 42);
  for (std::size_t i = 1; i < comments.size(); ++i) CHECK(ids.of(comments[i]) != 42);
  CHECK(dedup.log().count(row_issue::duplicate_comment) == 3);
  CHECK(dedup.log().samples(row_issue::duplicate_comment) == std::vector<std::uint64_t>{30, 40, 50});
}

TEST_CASE("row_deduplicator: ids and chunk numbers too wide for 8-byte slots turn their shards wide mid-way",
          "[row_deduplicator][parallel]") {
  // A shard keeps 8-byte slots while every id is in [0, 2^44) and every chunk number is below
  // 2^20 - 1; the first id or chunk that does not fit moves the shard's entries to 12-byte
  // slots. Ids from both sides of those limits, chunks numbered across 2^20, any order.
  constexpr std::int64_t kNarrowLimit = std::int64_t{1} << 44;
  const std::vector<std::int64_t> edges = {0,
                                           1,
                                           kNarrowLimit - 1,
                                           kNarrowLimit,
                                           kNarrowLimit + 1,
                                           -1,
                                           std::numeric_limits<std::int64_t>::min(),
                                           std::numeric_limits<std::int64_t>::max(),
                                           std::numeric_limits<std::int64_t>::max() - 1};
  std::mt19937_64 rng(44);
  for (int round = 0; round < 30; ++round) {
    const std::size_t n = 1 + rng() % 4000;
    std::vector<std::int64_t> ids;
    for (std::size_t i = 0; i < n; ++i) {
      const auto pick = rng() % 10;
      if (pick == 0) {
        ids.push_back(edges[rng() % edges.size()]);
      } else if (pick == 1) {
        ids.push_back(static_cast<std::int64_t>(rng()));  // anywhere in int64
      } else {
        ids.push_back(static_cast<std::int64_t>(rng() % (n / 2 + 1)));  // small, often repeated
      }
    }
    // Chunk numbers start just below 2^20, some rounds far below it.
    const std::uint64_t first_seq = round % 3 == 0 ? 0 : (std::uint64_t{1} << 20) - 1 - rng() % 8;
    std::vector<classified_chunk> chunks = chunks_of(ids, rng, 1, 300, first_seq);
    // The serial reference: the first row of each id in file order.
    std::vector<std::uint64_t> want;
    std::vector<std::uint64_t> duplicate_lines;
    {
      std::map<std::int64_t, bool> seen;
      for (const classified_chunk& c : chunks) {
        for (const comment_row& x : c.comments) {
          (seen.emplace(x.id, true).second ? want : duplicate_lines).push_back(x.offset);
        }
      }
    }
    comment_ids held;
    for (const classified_chunk& c : chunks) held.add(c);
    std::shuffle(chunks.begin(), chunks.end(), rng);
    row_deduplicator dedup(0);
    oneapi::tbb::task_arena(1 + static_cast<int>(rng() % 4)).execute([&] {
      oneapi::tbb::parallel_for(std::size_t{0}, chunks.size(),
                                tsan::body(&dedup, [&](std::size_t i) { dedup.absorb(std::move(chunks[i])); }));
    });
    tsan::acquire(&dedup);
    INFO("round " << round << ", " << n << " rows");
    CHECK(offsets_of(dedup.take_comments(held.reader())) == want);
    CHECK(dedup.log().count(row_issue::duplicate_comment) == duplicate_lines.size());
  }
}

TEST_CASE("row_deduplicator: ids in runs and ids with equal low bits, as exports number them",
          "[row_deduplicator][parallel]") {
  // The id map keeps ids that differ only in their last bits in one run of slots (so that
  // COMMENT_PART_IDs counting up hit one cache line), and mixes the rest: dense runs, ids that
  // all share their low bits (each rotated by its group), strides, runs across the
  // 8-byte slots' limit and negative runs must give the serial pass's winners all the same.
  constexpr std::int64_t kNarrowLimit = std::int64_t{1} << 44;
  std::mt19937_64 rng(8);
  for (int round = 0; round < 24; ++round) {
    const std::size_t n = 1000 + rng() % 40000;
    const int pattern = round % 6;
    std::vector<std::int64_t> ids;
    std::int64_t next = static_cast<std::int64_t>(rng() % 1000000);
    if (pattern == 3) next = kNarrowLimit - static_cast<std::int64_t>(n / 2);
    if (pattern == 4) next = -static_cast<std::int64_t>(n);
    for (std::size_t i = 0; i < n; ++i) {
      switch (pattern) {
        case 0:  // counting up, with repeats and jumps back (duplicates of earlier rows)
        case 3:  // ... across 2^44
        case 4: {  // ... below zero
          const auto step = rng() % 20;
          if (step < 14) ++next;
          if (step == 18) next -= static_cast<std::int64_t>(rng() % 64);
          if (step == 19) next += static_cast<std::int64_t>(rng() % 3000);
          ids.push_back(next);
          break;
        }
        case 1:  // every id a multiple of 8: one place of each run
          ids.push_back(8 * static_cast<std::int64_t>(rng() % (n + 1)));
          break;
        case 2:  // a large power-of-two stride
          ids.push_back(static_cast<std::int64_t>(rng() % (n / 2 + 1)) << 20);
          break;
        default:  // runs of 8 at random places, some repeated
          if (i % 8 == 0) next = static_cast<std::int64_t>(rng() % (4 * n)) * 8;
          ids.push_back(next + static_cast<std::int64_t>(i % 8));
          break;
      }
    }
    std::vector<classified_chunk> chunks = chunks_of(ids, rng, 1, 3000);
    const first_rows want = first_comment_rows(chunks);
    comment_ids held;
    for (const classified_chunk& c : chunks) held.add(c);
    std::shuffle(chunks.begin(), chunks.end(), rng);
    row_deduplicator dedup(rng() % 2 == 0 ? 0 : n * 360);
    oneapi::tbb::task_arena(1 + static_cast<int>(rng() % 4)).execute([&] {
      oneapi::tbb::parallel_for(std::size_t{0}, chunks.size(),
                                tsan::body(&dedup, [&](std::size_t i) { dedup.absorb(std::move(chunks[i])); }));
    });
    tsan::acquire(&dedup);
    INFO("round " << round << ", pattern " << pattern << ", " << n << " rows");
    CHECK(offsets_of(dedup.take_comments(held.reader())) == want.offsets);
    CHECK(dedup.log().count(row_issue::duplicate_comment) == want.duplicates);
  }
}

TEST_CASE("row_deduplicator: 800k ids counting up grow every shard past sizes that are not multiples of 8",
          "[row_deduplicator]") {
  // A shard's table grows 1024, 1536, ... 26244 slots (the first size that is not a multiple
  // of 8, where the last run's slots end before the table does) and on: ~12.5k ids a shard.
  // Runs counting up from below zero, from under 2^44 across it, and from 5e9, with repeats,
  // absorbed in a shuffled order, against the serial pass.
  std::mt19937_64 rng(26244);
  std::vector<std::int64_t> ids;
  for (const std::int64_t start : {std::int64_t{-200000}, (std::int64_t{1} << 44) - 150000, std::int64_t{5000000000}}) {
    std::int64_t next = start;
    for (int i = 0; i < 270000; ++i) {
      if (rng() % 4 != 0) ++next;
      ids.push_back(rng() % 16 == 0 ? next - static_cast<std::int64_t>(rng() % 100) : next);
    }
  }
  std::vector<classified_chunk> chunks = chunks_of(ids, rng, 5000, 10000);
  const first_rows want = first_comment_rows(chunks);
  comment_ids held;
  for (const classified_chunk& c : chunks) held.add(c);
  std::shuffle(chunks.begin(), chunks.end(), rng);
  row_deduplicator dedup(0);
  for (classified_chunk& c : chunks) dedup.absorb(std::move(c));
  CHECK(offsets_of(dedup.take_comments(held.reader())) == want.offsets);
  CHECK(dedup.log().count(row_issue::duplicate_comment) == want.duplicates);
}

TEST_CASE("row_deduplicator: tables grow past 100k ids while plain threads absorb (TSan sees them)",
          "[row_deduplicator][parallel]") {
  // 160k rows, ~120k distinct comment ids: every shard's table rehashes several times while
  // other threads keep inserting and marking. std::thread rather than oneTBB, so that
  // ThreadSanitizer sees every hand-off.
  std::mt19937_64 rng(99);
  std::vector<row> rows;
  std::uint64_t offset = 10;
  for (std::size_t i = 0; i < 160000; ++i) {
    offset += 1 + rng() % 50;
    rows.push_back(row{offset, static_cast<std::int64_t>(rng() % 120000) * 7919, -1, -1, {}});
  }
  constexpr std::size_t kChunkRows = 997;
  std::vector<classified_chunk> chunks;
  for (std::size_t begin = 0, seq = 0; begin < rows.size(); begin += kChunkRows, ++seq) {
    chunks.push_back(make_chunk(rows, begin, std::min(rows.size(), begin + kChunkRows), seq));
  }
  comment_ids ids;
  for (const classified_chunk& c : chunks) ids.add(c);
  std::shuffle(chunks.begin(), chunks.end(), rng);
  row_deduplicator dedup(0);
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      for (std::size_t i = next++; i < chunks.size(); i = next++) dedup.absorb(std::move(chunks[i]));
    });
  }
  for (std::thread& w : workers) w.join();
  const reference ref = serial_reference(rows);
  CHECK(offsets_of(dedup.take_comments(ids.reader())) == ref.comment_offsets);
  CHECK(dedup.log().count(row_issue::duplicate_comment) == ref.log.count(row_issue::duplicate_comment));
  CHECK(dedup.log().samples(row_issue::duplicate_comment) == ref.log.samples(row_issue::duplicate_comment));
}

TEST_CASE("row_deduplicator: a displaced id its record no longer holds is an input error", "[row_deduplicator]") {
  // The export changed under the run: the id read again is not the one the row was parsed with.
  row_deduplicator dedup(0);
  classified_chunk late;
  late.chunk_seq = 1;
  late.comments.push_back(comment_row{500, 9, true, 42});
  classified_chunk early;
  early.chunk_seq = 0;
  early.comments.push_back(comment_row{100, 3, true, 42});
  dedup.absorb(std::move(late));
  dedup.absorb(std::move(early));
  try {
    (void)dedup.take_comments([](const comment_candidate&) { return std::int64_t{7}; });
    FAIL("no error");
  } catch (const tixport::fatal_error& e) {
    CHECK(e.code() == tixport::exit_code::input_error);
    CHECK(std::string(e.what()).find("changed while being read") != std::string::npos);
  }
}

TEST_CASE("row_deduplicator: a chunk number absorbed twice is refused", "[row_deduplicator]") {
  row_deduplicator dedup(0);
  classified_chunk first;
  first.chunk_seq = 3;
  first.comments.push_back(comment_row{100, 3, true, 42});
  comment_ids ids;
  ids.add(first);
  dedup.absorb(std::move(first));
  classified_chunk again;
  again.chunk_seq = 3;
  CHECK_THROWS_AS(dedup.absorb(std::move(again)), std::logic_error);
  CHECK(dedup.take_comments(ids.reader()).size() == 1);
}

TEST_CASE("row_deduplicator: the id map's probes stay short and its shards even, for every id pattern",
          "[row_deduplicator]") {
  // The answers above would stay right with a hash that sends every id to one run of one
  // shard; only the time would suffer, and no timed test may catch that (CI machines differ).
  // So the map's layout is measured instead: how far each id sits from the slot its probe
  // starts at, and the fullest shard. Random ids sit 0.5 slots away on average (max 55 with
  // libstdc++'s shuffle); ids counting up move in groups of 8 that take a whole run, so a
  // group whose run is taken moves on by runs: 3-4 slots on average, at most 255 (345 in wide
  // slots), still the next cache lines. A hash that sent every id of a shard to one run would
  // put them thousands of slots away. The bounds leave room for any standard library's order.
  using map_type = detail::sharded_first_map;
  for (const test::id_pattern pattern : test::kIdPatterns) {
    const std::vector<std::int64_t> ids = test::make_ids(pattern, 300000);
    // Chunks of an export, absorbed in a shuffled order.
    std::vector<std::size_t> chunks = test::chunks_in_order(ids.size());
    std::mt19937_64 rng(4096);
    std::shuffle(chunks.begin(), chunks.end(), rng);
    map_type map;
    std::vector<std::uint8_t> lost;
    test::insert_in_chunks(map, ids, chunks, lost);
    std::vector<std::int64_t> distinct = ids;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());

    const map_type::probe_stats stats = map.measure_probes();
    INFO(test::id_pattern_name(pattern)
         << ": " << stats.entries << " entries, mean distance "
         << static_cast<double>(stats.total_distance) / static_cast<double>(stats.entries) << ", max "
         << stats.max_distance << ", fullest shard " << stats.largest_shard);
    REQUIRE(stats.entries == distinct.size());
    CHECK(stats.total_distance <= 8 * stats.entries);  // mean <= 8 slots: one run, one cache line
    CHECK(stats.max_distance <= 1024);
    // 64 shards: the fullest holds at most twice its share.
    CHECK(stats.largest_shard <= 2 * distinct.size() / map_type::kShards);
  }
}
