// File: rerun_property_test.cpp
//
// Property tests of SPEC 4 (reruns) on random exports: for an export A and a
// refresh B (A plus appended rows, or A edited: rows changed, removed,
// reordered, and new rows), run(A) plus run(B since ledger(A)) writes every
// object a full run(B) writes, each exactly once, users keeping their first
// ids; the appended path and the full compare give the same archive and
// ledger bytes; and neither depends on --threads or the chunk size.
#include <catch2/catch.hpp>

#include "support/test_support.hpp"
#include "tixport/csv/field_parsers.hpp"
#include "tixport/index/user_index_csv.hpp"
#include "tixport/run/migration_pipeline.hpp"
#include "tixport/ledger/run_ledger.hpp"

#include <simdjson.h>

#include <map>
#include <random>
#include <set>

namespace {

using namespace tixport;
namespace fs = std::filesystem;

using tixport::test::kExportHeader;

/// One random export row (a record with its line end). Small id pools make keys collide.
std::string random_row(std::mt19937_64& rng, std::size_t pool) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const char* bodies[] = {"plain", "\"with, comma\"", "\"multi\nline\"", "", "\"bad \xff utf8\"", "caf\xc3\xa9"};
  const char* times[] = {"2021-01-01 00:00:00", "2021-02-03T04:05:06Z", "2020-12-31T23:30:00-01:00", "nope"};
  const char* names[] = {"Ann", "Bob", "", "Zo\xc3\xab", "Cy", "Di"};
  const char* emails[] = {"ann@x.org", "ANN@x.org", "bob@x.org", "", "cy@x.org", "di@x.org", "ed@x.org", "bad"};
  if (pick(40) == 0) return "short,row\n";
  std::string row;
  row += times[pick(4)];
  row += ',' + std::to_string(pick(9));                 // requester
  row += ',' + std::to_string(pick(pool * 3 + 1));      // comment id
  row += ',' + std::to_string(100 + pick(pool / 2 + 1));  // conversation
  row += pick(2) ? ",true," : ",no,";
  row += bodies[pick(6)];
  row += ',';
  row += times[pick(4)];
  row += ',' + std::to_string(pick(12));                // author
  row += ',';
  row += names[pick(6)];
  row += ',';
  row += emails[pick(8)];
  row += pick(4) == 0 ? "\r\n" : "\n";
  return row;
}

std::string random_index(std::mt19937_64& rng) {
  const char* emails[] = {"ann@x.org", "Cy@X.org", "zed@x.org", "bad", "di@x.org"};
  std::string csv = "id,email\n";
  for (std::size_t i = 0, n = rng() % 5; i < n; ++i) csv += std::to_string(rng() % 15) + "," + emails[rng() % 5] + "\n";
  return csv;
}

/// What an archive holds, by id; references as "u:<email key>" when they name a user of the
/// same set of archives, else "raw:<id>" (so runs whose users got other ids compare).
struct archive_objects {
  std::map<std::int64_t, std::string> tickets;   ///< id -> canonical JSON
  std::map<std::int64_t, std::string> comments;  ///< id -> canonical JSON
  std::map<std::string, std::int64_t> users;     ///< email key -> id
  std::size_t ticket_count = 0, comment_count = 0, user_count = 0;  ///< with repeats
};

void read_objects(const fs::path& archive, archive_objects& into,
                  std::vector<std::pair<std::string, simdjson::padded_string>>& raw) {
  const std::size_t first = raw.size();
  for (const auto& entry : tixport::test::read_archive(archive)) raw.emplace_back(entry.name, simdjson::padded_string(entry.data));
  simdjson::dom::parser parser;
  for (std::size_t i = first; i < raw.size(); ++i) {
    const simdjson::padded_string& json = raw[i].second;
    const simdjson::dom::element doc = parser.parse(json);
    for (simdjson::dom::element u : doc["data"]["tickets"]["users"].get_array()) {
      std::string key;
      email_key(std::string_view(u["email"].get_string()), key);
      into.users.emplace(key, int64_t(u["id"]));
      ++into.user_count;
    }
  }
}

/// Canonical objects of `archives` (read in order), references named by user email key.
archive_objects collect(const std::vector<fs::path>& archives) {
  archive_objects out;
  std::vector<std::pair<std::string, simdjson::padded_string>> raw;
  for (const auto& a : archives) read_objects(a, out, raw);
  std::map<std::int64_t, std::string> key_of_id;
  for (const auto& [key, id] : out.users) key_of_id[id] = key;
  const auto ref = [&](std::int64_t id) {
    const auto it = key_of_id.find(id);
    return it == key_of_id.end() ? "raw:" + std::to_string(id) : "u:" + it->second;
  };
  simdjson::dom::parser parser;
  for (const auto& [name, json] : raw) {
    const simdjson::dom::element doc = parser.parse(json);
    for (simdjson::dom::element t : doc["data"]["tickets"]["data"].get_array()) {
      const std::int64_t id = t["id"];
      out.tickets[id] = std::string(std::string_view(t["created_at"])) + "|" + ref(t["requester_id"]);
      ++out.ticket_count;
    }
    for (simdjson::dom::element c : doc["data"]["tickets"]["comments"].get_array()) {
      const std::int64_t id = c["id"];
      out.comments[id] = std::string(std::string_view(c["created_at"])) + "|" + std::to_string(int64_t(c["ticket_id"])) +
                         "|" + (bool(c["public"]) ? "t" : "f") + "|" + std::string(std::string_view(c["html_body"])) +
                         "|" + ref(c["author_id"]);
      ++out.comment_count;
    }
  }
  return out;
}

struct run_args {
  fs::path input, output, index;
  std::optional<fs::path> since, ledger;
  bool full_compare = false;
  unsigned threads = 2;
  std::size_t chunk = 4u << 20;
};

run_report run(const run_args& a) {
  run_options opt;
  opt.input = a.input;
  opt.output = a.output;
  opt.since = a.since;
  opt.ledger = a.ledger;
  opt.full_compare = a.full_compare;
  opt.threads = a.threads;
  opt.chunk_bytes = a.chunk;
  opt.mtime = 0;
  const fs::path index = a.index;
  opt.load_index = [index] { return user_index::build(read_index_csv(index, 1)); };
  run_outcome outcome = run_migration(opt);
  outcome.commit();
  return outcome.report;
}

/// A refresh of `a` made of its records: some edited, removed or moved, then new rows.
std::string edited_refresh(std::mt19937_64& rng, const std::string& a, std::size_t pool) {
  std::vector<std::string> rows;
  std::size_t pos = kExportHeader.size();
  while (pos < a.size()) {
    // Records here hold a LF only inside the one quoted body "multi\nline".
    std::size_t end = pos;
    bool quoted = false;
    while (end < a.size() && (quoted || a[end] != '\n')) {
      if (a[end] == '"') quoted = !quoted;
      ++end;
    }
    rows.push_back(a.substr(pos, end + 1 - pos));
    pos = end + 1;
  }
  std::vector<std::string> out;
  for (auto& r : rows) {
    switch (rng() % 10) {
      case 0: break;                                      // removed
      case 1: out.push_back(random_row(rng, pool)); break;  // replaced by another row (an edit)
      default: out.push_back(r);
    }
  }
  if (out.size() > 2) std::swap(out[rng() % out.size()], out[rng() % out.size()]);  // a reorder
  std::string b(kExportHeader);
  for (const auto& r : out) b += r;
  for (std::size_t i = 0, n = rng() % 30; i < n; ++i) b += random_row(rng, pool + 20);
  return b;
}

}  // namespace

TEST_CASE("reruns compose: run(A) + run(B since A) = run(B), on both paths and any threads",
          "[rerun][parallel]") {
  std::mt19937_64 rng(20261204);
  tixport::test::temp_dir dir;
  for (int iteration = 0; iteration < 60; ++iteration) {
    const std::size_t pool = 5 + rng() % 40;
    std::string a(kExportHeader);
    for (std::size_t i = 0, n = rng() % 80; i < n; ++i) a += random_row(rng, pool);
    const bool appended = iteration % 2 == 0;
    std::string b;
    if (appended) {
      b = a;
      for (std::size_t i = 0, n = rng() % 40; i < n; ++i) b += random_row(rng, pool + 15);
    } else {
      b = edited_refresh(rng, a, pool);
    }
    tixport::test::write_file(dir / "a.csv", a);
    tixport::test::write_file(dir / "b.csv", b);
    tixport::test::write_file(dir / "index.csv", random_index(rng));
    INFO("iteration " << iteration << (appended ? " appended" : " edited") << "\nA:\n" << a << "\nB:\n" << b);

    const run_report ra = run({dir / "a.csv", dir / "a.tar", dir / "index.csv", {}, dir / "a.ledger"});
    const run_report full = run({dir / "b.csv", dir / "full.tar", dir / "index.csv", {}, {}});
    run_args delta{dir / "b.csv", dir / "d.tar", dir / "index.csv", dir / "a.ledger", dir / "d.ledger"};
    delta.threads = 1 + static_cast<unsigned>(rng() % 6);
    delta.chunk = 1 + rng() % 200;
    const run_report rd = run(delta);
    // An edited refresh can come out as A plus rows by chance: then it is appended, rightly.
    CHECK(rd.rerun.path == (b.compare(0, a.size(), a) == 0 ? "appended" : "full_compare"));

    // The other path, other threads and chunks: the same archive and ledger bytes.
    run_args other = delta;
    other.output = dir / "d2.tar";
    other.ledger = dir / "d2.ledger";
    other.full_compare = true;
    other.threads = 1 + static_cast<unsigned>(rng() % 6);
    other.chunk = 1 + rng() % 5000;
    const run_report rd2 = run(other);
    CHECK(rd2.rerun.path == "full_compare");
    CHECK(tixport::test::read_file(dir / "d.tar") == tixport::test::read_file(dir / "d2.tar"));
    CHECK(tixport::test::read_file(dir / "d.ledger") == tixport::test::read_file(dir / "d2.ledger"));
    CHECK(rd.rerun.changed_tickets.count == rd2.rerun.changed_tickets.count);
    CHECK(rd.rerun.changed_comments.count == rd2.rerun.changed_comments.count);
    CHECK(rd.rerun.changed_comments.lines == rd2.rerun.changed_comments.lines);
    CHECK(rd.rerun.missing_tickets == rd2.rerun.missing_tickets);
    CHECK(rd.rerun.missing_comments == rd2.rerun.missing_comments);
    CHECK(rd.rerun.skipped_tickets == rd2.rerun.skipped_tickets);
    CHECK(rd.rerun.skipped_comments == rd2.rerun.skipped_comments);

    // Composition: every object of the full run exactly once; users keep their first ids.
    const archive_objects composed = collect({dir / "a.tar", dir / "d.tar"});
    const archive_objects whole = collect({dir / "full.tar"});
    std::set<std::int64_t> composed_tickets, whole_tickets, composed_comments, whole_comments;
    for (const auto& [id, json] : composed.tickets) composed_tickets.insert(id);
    for (const auto& [id, json] : whole.tickets) whole_tickets.insert(id);
    for (const auto& [id, json] : composed.comments) composed_comments.insert(id);
    for (const auto& [id, json] : whole.comments) whole_comments.insert(id);
    const archive_objects only_a = collect({dir / "a.tar"});
    // Objects of A that B lost are the missing ones; the rest is B's.
    std::set<std::int64_t> a_not_b_tickets, a_not_b_comments;
    for (const auto& [id, json] : only_a.tickets) if (!whole.tickets.contains(id)) a_not_b_tickets.insert(id);
    for (const auto& [id, json] : only_a.comments) if (!whole.comments.contains(id)) a_not_b_comments.insert(id);
    CHECK(composed.ticket_count == composed.tickets.size());    // each exactly once
    CHECK(composed.comment_count == composed.comments.size());
    CHECK(composed.user_count == composed.users.size());
    for (std::int64_t id : a_not_b_tickets) composed_tickets.erase(id);
    for (std::int64_t id : a_not_b_comments) composed_comments.erase(id);
    CHECK(composed_tickets == whole_tickets);
    CHECK(composed_comments == whole_comments);
    CHECK(rd.rerun.missing_tickets == a_not_b_tickets.size());
    CHECK(rd.rerun.missing_comments == a_not_b_comments.size());
    std::set<std::string> composed_keys, whole_keys;
    for (const auto& [key, id] : composed.users) composed_keys.insert(key);
    for (const auto& [key, id] : whole.users) whole_keys.insert(key);
    for (const auto& [key, id] : only_a.users) {
      CHECK(composed.users.at(key) == id);  // users keep the ids first given to them
      whole_keys.insert(key);               // and stay on the platform when B lost them
    }
    CHECK(composed_keys == whole_keys);
    CHECK(ra.users + rd.users == composed.users.size());

    if (appended) {
      // Same rows, same winners: an object's JSON differs from the full run's only where the
      // ledger counted it as changed (a reference written unmapped that B now maps).
      std::uint64_t differing_tickets = 0, differing_comments = 0;
      for (const auto& [id, json] : whole.tickets) differing_tickets += composed.tickets.at(id) != json;
      for (const auto& [id, json] : whole.comments) differing_comments += composed.comments.at(id) != json;
      CHECK(differing_tickets == rd.rerun.changed_tickets.count);
      CHECK(differing_comments == rd.rerun.changed_comments.count);
      CHECK(rd.rerun.missing_tickets == 0);
      CHECK(rd.rerun.missing_comments == 0);
    }
    CHECK(full.tickets == whole.tickets.size());
  }
}

TEST_CASE("an unchanged export reruns to an empty archive and a ledger one run on", "[rerun]") {
  tixport::test::temp_dir dir;
  std::mt19937_64 rng(7);
  std::string a(kExportHeader);
  for (int i = 0; i < 50; ++i) a += random_row(rng, 30);
  tixport::test::write_file(dir / "a.csv", a);
  tixport::test::write_file(dir / "index.csv", "id,email\n");
  run({dir / "a.csv", dir / "a.tar", dir / "index.csv", {}, dir / "l"});
  const run_ledger first = load_ledger(dir / "l");
  for (bool full_compare : {false, true}) {
    run_args again{dir / "a.csv", dir / "again.tar", dir / "index.csv", dir / "l", dir / "l2"};
    again.full_compare = full_compare;
    const run_report r = run(again);
    CHECK(r.batches == 0);
    CHECK(r.tickets == 0);
    CHECK(r.comments == 0);
    CHECK(r.users == 0);
    CHECK(tixport::test::read_archive(dir / "again.tar").empty());
    const run_ledger second = load_ledger(dir / "l2");
    CHECK(second.run == 2);
    CHECK(second.previous_checksum == first.checksum);
    CHECK(second.tickets.size() == first.tickets.size());
    CHECK(second.comments.size() == first.comments.size());
    CHECK(second.users.size() == first.users.size());
  }
  CHECK(tixport::test::read_file(dir / "l2").size() == tixport::test::read_file(dir / "l").size());
}

TEST_CASE("three-run chains: an edited middle export, then an appended one, both paths agree", "[rerun][parallel]") {
  std::mt19937_64 rng(4242);
  tixport::test::temp_dir dir;
  for (int iteration = 0; iteration < 40; ++iteration) {
    const std::size_t pool = 5 + rng() % 30;
    std::string z(kExportHeader);
    for (std::size_t i = 0, n = 1 + rng() % 60; i < n; ++i) z += random_row(rng, pool);
    const std::string a = edited_refresh(rng, z, pool);  // edits, removals, new rows
    std::string b = a;
    for (std::size_t i = 0, n = rng() % 20; i < n; ++i) b += random_row(rng, pool + 10);
    tixport::test::write_file(dir / "z.csv", z);
    tixport::test::write_file(dir / "a.csv", a);
    tixport::test::write_file(dir / "b.csv", b);
    tixport::test::write_file(dir / "index.csv", random_index(rng));
    INFO("iteration " << iteration << "\nZ:\n" << z << "\nA:\n" << a << "\nB:\n" << b);
    run({dir / "z.csv", dir / "z.tar", dir / "index.csv", {}, dir / "z.ledger"});
    run({dir / "a.csv", dir / "a.tar", dir / "index.csv", dir / "z.ledger", dir / "a.ledger"});
    run_args appended{dir / "b.csv", dir / "b1.tar", dir / "index.csv", dir / "a.ledger", dir / "b1.ledger"};
    appended.threads = 1 + static_cast<unsigned>(rng() % 4);
    run_args full = appended;
    full.output = dir / "b2.tar";
    full.ledger = dir / "b2.ledger";
    full.full_compare = true;
    full.chunk = 1 + rng() % 100;
    const run_report r1 = run(appended);
    const run_report r2 = run(full);
    CHECK(r1.rerun.path == "appended");
    CHECK(tixport::test::read_file(dir / "b1.tar") == tixport::test::read_file(dir / "b2.tar"));
    CHECK(tixport::test::read_file(dir / "b1.ledger") == tixport::test::read_file(dir / "b2.ledger"));
    CHECK(r1.rerun.changed_tickets.count == r2.rerun.changed_tickets.count);
    CHECK(r1.rerun.changed_tickets.lines == r2.rerun.changed_tickets.lines);
    CHECK(r1.rerun.changed_comments.count == r2.rerun.changed_comments.count);
    CHECK(r1.rerun.changed_comments.lines == r2.rerun.changed_comments.lines);
    CHECK(strict_problems(r1) == strict_problems(r2));  // the --strict verdict, whatever the path
  }
}
