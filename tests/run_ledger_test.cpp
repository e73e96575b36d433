// File: run_ledger_test.cpp
//
// The ledger file (round trip, determinism, every truncation and every bit
// flip refused, the version 2 columns' own checks, a version 1 file still
// read), export fingerprints (the appended-prefix check, extending a
// fingerprint equals hashing the whole), and the delta partition.
#include <catch2/catch.hpp>

#include "tixport/common/errors.hpp"
#include "tixport/ledger/ledger_delta.hpp"
#include "tixport/ledger/run_ledger.hpp"

#include <xxhash.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

namespace {

using namespace tixport;

run_ledger sample_ledger() {
  run_ledger l;
  l.run = 3;
  l.previous_checksum = 0x1234;
  l.max_id_seen = 4000000200;
  l.source = fingerprint_export("header\nrow\n", true, 2);
  l.users = {{500, "bob@x.org", user_origin::matched, 1}, {8, "ann@x.org", user_origin::new_id, 1},
             {4000000124, "cy,\"q\"@x.org", user_origin::fresh, 2}};
  l.identity = {{7, 4000000124, 2}, {8, 8, 1}, {9, 500, 0}};
  l.tickets = {{100, 11, 1, kInLastExport}, {200, 22, 2, 0}};
  l.comments = {{1, 33, 1, kInLastExport}, {2, 44, 1, kInLastExport}, {5, 55, 2, 0}};
  l.dangling = {{100, 7, 2, 20, ref_kind::ticket_requester}, {1, 7, 2, 20, ref_kind::comment_author}};
  l.changed = {{200, 9, object_kind::ticket}, {5, 12, object_kind::comment}};
  l.source.had_problems = true;
  return l;
}

bool same(const run_ledger& a, const run_ledger& b) {
  auto eq_obj = [](const std::vector<ledger_object>& x, const std::vector<ledger_object>& y) {
    return std::equal(x.begin(), x.end(), y.begin(), y.end(), [](const ledger_object& p, const ledger_object& q) {
      return p.id == q.id && p.fingerprint == q.fingerprint && p.run == q.run && p.flags == q.flags;
    });
  };
  if (a.run != b.run || a.previous_checksum != b.previous_checksum || a.max_id_seen != b.max_id_seen) return false;
  if (a.source.size != b.source.size || a.source.line_feeds != b.source.line_feeds ||
      a.source.block_hashes != b.source.block_hashes || a.source.ends_at_record != b.source.ends_at_record) {
    return false;
  }
  if (a.users.size() != b.users.size() || a.identity.size() != b.identity.size()) return false;
  for (std::size_t i = 0; i < a.users.size(); ++i) {
    if (a.users[i].id != b.users[i].id || a.users[i].email_key != b.users[i].email_key ||
        a.users[i].origin != b.users[i].origin || a.users[i].run != b.users[i].run) {
      return false;
    }
  }
  for (std::size_t i = 0; i < a.identity.size(); ++i) {
    if (a.identity[i].chat_id != b.identity[i].chat_id || a.identity[i].user_id != b.identity[i].user_id ||
        a.identity[i].user != b.identity[i].user) {
      return false;
    }
  }
  if (a.source.had_problems != b.source.had_problems || a.changed.size() != b.changed.size()) return false;
  for (std::size_t i = 0; i < a.changed.size(); ++i) {
    if (a.changed[i].object_id != b.changed[i].object_id || a.changed[i].line != b.changed[i].line ||
        a.changed[i].kind != b.changed[i].kind) {
      return false;
    }
  }
  if (a.dangling.size() != b.dangling.size()) return false;
  for (std::size_t i = 0; i < a.dangling.size(); ++i) {
    if (a.dangling[i].object_id != b.dangling[i].object_id || a.dangling[i].chat_id != b.dangling[i].chat_id ||
        a.dangling[i].line != b.dangling[i].line || a.dangling[i].offset != b.dangling[i].offset ||
        a.dangling[i].kind != b.dangling[i].kind) {
      return false;
    }
  }
  return eq_obj(a.tickets, b.tickets) && eq_obj(a.comments, b.comments);
}

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(TIXPORT_TEST_DATA_DIR) + "/" + name, std::ios::binary);
  REQUIRE(in);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

/// The checksum trailer made right again after an edit: only the semantic checks can refuse it.
std::string resealed(std::string bytes) {
  const std::uint64_t checksum = XXH3_64bits(bytes.data(), bytes.size() - 8);
  std::memcpy(bytes.data() + bytes.size() - 8, &checksum, 8);
  return bytes;
}

std::string ledger_error(std::string_view bytes) {
  try {
    parse_ledger(bytes, "L");
  } catch (const fatal_error& e) {
    CHECK(e.code() == exit_code::input_error);
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a ledger reads back as written, and the same ledger gives the same bytes", "[run_ledger]") {
  run_ledger l = sample_ledger();
  const std::string bytes = serialize_ledger(l);
  CHECK(bytes.size() % 8 == 0);
  CHECK(bytes[8] == kLedgerVersion);
  CHECK(l.format == 2);
  const run_ledger back = parse_ledger(bytes, "L");
  CHECK(back.format == 2);
  CHECK(same(l, back));
  CHECK(back.checksum == l.checksum);
  run_ledger again = back;
  CHECK(serialize_ledger(again) == bytes);
  run_ledger empty;
  empty.run = 1;
  const run_ledger empty_back = parse_ledger(serialize_ledger(empty), "L");
  CHECK(empty_back.users.empty());
  CHECK_FALSE(empty_back.max_id_seen);
}

TEST_CASE("every truncation and every flipped bit of a ledger is refused", "[run_ledger]") {
  run_ledger l = sample_ledger();
  const std::string bytes = serialize_ledger(l);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO("length " << n);
    const std::string message = ledger_error(bytes.substr(0, n));
    CHECK_FALSE(message.empty());
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      INFO("byte " << i << " bit " << bit);
      CHECK_FALSE(ledger_error(flipped).empty());
    }
  }
  CHECK(ledger_error(bytes + "x").find("after the ledger's end") != std::string::npos);
  CHECK(ledger_error("").find("empty file") != std::string::npos);
}

TEST_CASE("version 2 stores objects by column: any ids, runs and flags read back, ~9 bytes an object",
          "[run_ledger]") {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 40; ++round) {
    INFO("round " << round);
    run_ledger l;
    l.run = 1 + static_cast<std::uint32_t>(rng() % 5);
    std::int64_t id = round % 3 == 0 ? std::numeric_limits<std::int64_t>::min() : static_cast<std::int64_t>(rng() % 1000) - 500;
    const std::size_t n = round == 0 ? 1 : static_cast<std::size_t>(rng() % 3000);
    for (std::size_t i = 0; i < n; ++i) {
      ledger_object o{id, rng(), static_cast<std::uint32_t>(rng() % 3 == 0 ? rng() : 1 + rng() % 2),
                      static_cast<std::uint32_t>(rng() % 4 == 0 ? rng() : rng() % 2)};
      if (rng() % 50 == 0) o.run = std::numeric_limits<std::uint32_t>::max();
      l.comments.push_back(o);
      // Mostly dense ids, now and then a jump of any size the remaining room allows.
      const std::uint64_t room = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) -
                                 static_cast<std::uint64_t>(id);
      if (room == 0) break;
      const std::uint64_t step = rng() % 8 == 0 ? 1 + rng() % room : 1 + rng() % 3;
      id = static_cast<std::int64_t>(static_cast<std::uint64_t>(id) + std::min(step, room));
    }
    l.tickets.assign(l.comments.begin(), l.comments.begin() + static_cast<std::ptrdiff_t>(l.comments.size() / 3));
    const std::string bytes = serialize_ledger(l);
    CHECK(bytes.size() % 8 == 0);
    const run_ledger back = parse_ledger(bytes, "L");
    CHECK(same(l, back));
    run_ledger again = back;
    CHECK(serialize_ledger(again) == bytes);
  }
  // An export numbered densely, one run, all in the last export: fingerprint + ~1 byte.
  run_ledger dense;
  dense.run = 1;
  for (std::int64_t i = 0; i < 100000; ++i) dense.comments.push_back({5000000000 + i, rng(), 1, kInLastExport});
  const std::string bytes = serialize_ledger(dense);
  CHECK(bytes.size() < 100000 * 9 + 512);
  CHECK(same(parse_ledger(bytes, "L"), dense));
}

TEST_CASE("version 2 columns are checked after the checksum: order, runs, padding", "[run_ledger]") {
  // No users, identity or export blocks: the tickets section starts right after the 176-byte
  // header, fingerprints (2 x 8), then the id column {zigzag(10), 10} padded, then the runs.
  run_ledger l;
  l.run = 1;
  l.tickets = {{10, 0xAA, 1, kInLastExport}, {20, 0xBB, 1, kInLastExport}};
  const std::string good = serialize_ledger(l);
  constexpr std::size_t kIds = 176 + 16;
  constexpr std::size_t kRuns = kIds + 8;
  REQUIRE(static_cast<unsigned char>(good[kIds]) == 20);
  REQUIRE(static_cast<unsigned char>(good[kIds + 1]) == 10);
  REQUIRE(static_cast<unsigned char>(good[kRuns + 2]) == 2);  // run 1, flags 1, count 2
  CHECK(ledger_error(good).empty());
  std::string edited = good;
  edited[kIds + 1] = 0;  // ticket 20 becomes 10 again
  CHECK(ledger_error(resealed(edited)).find("corrupted: tickets not in id order") != std::string::npos);
  edited = good;
  edited[kIds + 1] = static_cast<char>(0x80);  // a varint that runs into the padding
  CHECK(ledger_error(resealed(edited)).find("corrupted: tickets: malformed id column") != std::string::npos);
  edited = good;
  edited[kRuns + 2] = 3;  // three objects in a run of a section of two
  CHECK(ledger_error(resealed(edited)).find("corrupted: tickets: malformed run column") != std::string::npos);
  edited = good;
  edited[kRuns + 2] = 0;  // an empty run
  CHECK(ledger_error(resealed(edited)).find("corrupted: tickets: malformed run column") != std::string::npos);
  edited = good;
  edited[kIds + 5] = 1;  // padding
  CHECK(ledger_error(resealed(edited)).find("corrupted: tickets: padding not zero") != std::string::npos);
  edited = good;
  edited[8] = 3;
  CHECK(ledger_error(edited) == "ledger: L: ledger format version 3; this tixport reads versions 1 to 2");
}

TEST_CASE("a ledger that holds one email key twice is refused", "[run_ledger]") {
  run_ledger l;
  l.run = 1;
  l.max_id_seen = 20;
  l.users = {{10, "ann@x.org", user_origin::matched, 1}, {20, "bob@x.org", user_origin::new_id, 1}};
  CHECK(ledger_error(serialize_ledger(l)).empty());
  l.users[1].email_key = "ann@x.org";
  CHECK(ledger_error(serialize_ledger(l)).find("corrupted: user 1 repeats an email key") != std::string::npos);
}

TEST_CASE("a version 1 ledger (written by the previous release) still reads, and is written again as version 2",
          "[run_ledger]") {
  // tests/data/ledger_v1_run2.ledger: run 2 of a chain over ledger_v1_export.csv (whose first
  // 19994 bytes were run 1), made by the release before version 2; _dump.csv is that release's
  // `ledger dump --what users, identity, tickets, comments` of it.
  const std::string v1 = fixture("ledger_v1_run2.ledger");
  REQUIRE(v1[8] == 1);
  run_ledger l = parse_ledger(v1, "v1");
  CHECK(l.format == 1);
  CHECK(l.run == 2);
  CHECK(l.source.size == fixture("ledger_v1_export.csv").size());
  std::string dump;
  for (const ledger_table t : {ledger_table::users, ledger_table::identity, ledger_table::tickets, ledger_table::comments}) {
    dump += ledger_csv(l, t);
  }
  CHECK(dump == fixture("ledger_v1_run2_dump.csv"));
  const std::uint64_t v1_checksum = l.checksum;
  const std::string v2 = serialize_ledger(l);
  CHECK(v2[8] == 2);
  CHECK(v2.size() < v1.size());
  CHECK(l.checksum != v1_checksum);
  const run_ledger back = parse_ledger(v2, "v2");
  CHECK(same(l, back));
  // The version 1 reader refuses what it always did: every truncation, every flipped bit.
  for (std::size_t n = 0; n < v1.size(); n += 7) CHECK_FALSE(ledger_error(v1.substr(0, n)).empty());
  for (std::size_t i = 0; i < v1.size(); ++i) {
    std::string flipped = v1;
    flipped[i] = static_cast<char>(flipped[i] ^ (1 << (i % 8)));
    INFO("byte " << i);
    CHECK_FALSE(ledger_error(flipped).empty());
  }
}

TEST_CASE("the appended-prefix check and extending a fingerprint", "[run_ledger]") {
  std::mt19937_64 rng(3);
  std::string old_export(static_cast<std::size_t>(2.5 * kLedgerBlockBytes), 'a');
  for (char& c : old_export) c = static_cast<char>('a' + rng() % 26);
  old_export.back() = '\n';
  const export_fingerprint old = fingerprint_export(old_export, true, 1);
  CHECK(old.block_hashes.size() == 3);

  const std::string appended = old_export + std::string(kLedgerBlockBytes, 'z');
  const prefix_match m = match_appended_prefix(old, appended);
  CHECK(m.appended);
  CHECK(m.matching_bytes == old_export.size());
  CHECK(m.bytes_hashed == old_export.size());
  std::uint64_t hashed = 0;
  const export_fingerprint extended = extend_fingerprint(old, appended, true, 1, hashed);
  CHECK(extended.block_hashes == fingerprint_export(appended, true, 1).block_hashes);
  CHECK(hashed == appended.size() - 2 * kLedgerBlockBytes);
  // With the full blocks the prefix check hashed, only the partial last block is read again;
  // the fingerprints are the same.
  const std::vector<std::uint64_t> full = hash_full_blocks(appended);
  REQUIRE(full.size() == 3);
  const export_fingerprint reused = extend_fingerprint(old, appended, true, 1, hashed, full);
  CHECK(reused.block_hashes == extended.block_hashes);
  CHECK(hashed == appended.size() - 3 * kLedgerBlockBytes);
  std::uint64_t whole_hashed = 0;
  CHECK(fingerprint_export(appended, true, 1, full, &whole_hashed).block_hashes == extended.block_hashes);
  CHECK(whole_hashed == appended.size() - 3 * kLedgerBlockBytes);
  CHECK(fingerprint_export(appended, true, 1, {}, &whole_hashed).block_hashes == extended.block_hashes);
  CHECK(whole_hashed == appended.size());
  // Fewer known blocks than the export has (a shorter list): the rest is hashed.
  CHECK(fingerprint_export(appended, true, 1, std::span(full).first(1), &whole_hashed).block_hashes ==
        extended.block_hashes);
  CHECK(whole_hashed == appended.size() - kLedgerBlockBytes);

  std::string edited = appended;
  edited[kLedgerBlockBytes + 5] ^= 1;  // in the second block
  const prefix_match e = match_appended_prefix(old, edited);
  CHECK_FALSE(e.appended);
  CHECK(e.matching_bytes == kLedgerBlockBytes);
  CHECK_FALSE(match_appended_prefix(old, old_export.substr(0, 100)).appended);  // shorter
  export_fingerprint unfinished = old;
  unfinished.ends_at_record = false;  // the old export ended inside a record: no continuing it
  CHECK_FALSE(match_appended_prefix(unfinished, appended).appended);
  CHECK(match_appended_prefix(old, old_export).appended);  // unchanged
}

TEST_CASE("partition_against_ledger: new, already imported, missing, and the appended path's old part",
          "[run_ledger]") {
  const std::vector<ledger_object> ledger = {
      {1, 10, 1, kInLastExport}, {3, 30, 1, kInLastExport}, {5, 50, 1, 0}, {7, 70, 1, kInLastExport}};
  const std::vector<std::int64_t> ids = {9, 3, 5, 2};
  const std::vector<std::uint64_t> lines = {2, 3, 4, 5};

  const object_delta full = partition_against_ledger(ids, lines, ledger, false);
  CHECK(full.written == std::vector<std::uint8_t>{1, 0, 0, 1});
  CHECK(full.written_count == 2);
  CHECK(full.skipped == 2);
  CHECK(full.missing == 2);  // 1 and 7
  REQUIRE(full.compare.size() == 2);
  CHECK(full.compare[0].object == 1);
  CHECK(full.compare[0].ledger == 1);
  CHECK(full.compare[1].line == 4);
  CHECK(full.in_export == std::vector<std::uint8_t>{0, 1, 1, 0});

  // Appended: 1, 3 and 7 are the old part's; a row of 3 is a duplicate of it, 5 came back.
  const object_delta appended = partition_against_ledger(ids, lines, ledger, true);
  CHECK(appended.written == std::vector<std::uint8_t>{1, 0, 0, 1});
  CHECK(appended.skipped == 4);
  CHECK(appended.missing == 0);
  REQUIRE(appended.compare.size() == 1);
  CHECK(appended.compare[0].ledger == 2);
}
