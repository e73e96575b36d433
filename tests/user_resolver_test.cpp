// File: user_resolver_test.cpp
#include <catch2/catch.hpp>

#include "tixport/common/errors.hpp"
#include "tixport/run/user_resolver.hpp"

#include <limits>

using namespace tixport;

namespace {

user_candidate user(std::uint64_t offset, std::int64_t author, std::string name, std::string email) {
  return user_candidate{offset, offset, author, std::move(name), std::move(email), false, false};
}

}  // namespace

TEST_CASE("resolve_users: matched keep index id, new keep AUTHOR_ID unless taken (SPEC 2.1)", "[user_resolver]") {
  const user_index index = user_index::build(std::vector<raw_index_entry>{{500, "ann@x.org"}, {8, "else@x.org"}});
  std::vector<user_candidate> users;
  users.push_back(user(2, 7, "Ann", "ANN@x.org"));  // matched -> 500
  users.push_back(user(3, 8, "Bob", "bob@x.org"));  // 8 is an index id -> fresh
  users.push_back(user(4, 9, "Cy", "cy@x.org"));    // new, keeps 9
  users.push_back(user(5, 9, "Di", "di@x.org"));    // 9 taken by Cy -> fresh
  std::vector<std::pair<std::int64_t, author_candidate>> authors;
  authors.push_back({7, author_candidate{2, 2, "ann@x.org", false}});
  authors.push_back({8, author_candidate{3, 3, "bob@x.org", false}});
  authors.push_back({9, author_candidate{4, 4, "cy@x.org", true}});
  authors.push_back({70, author_candidate{6, 6, "ann@x.org", false}});
  reject_log log;
  const resolved_users r = resolve_users(std::move(users), std::move(authors), index, 600, log);
  REQUIRE(r.users.size() == 4);
  CHECK(r.users[0].id == 500);
  CHECK(r.users[0].matched);
  CHECK(r.users[0].email == "ANN@x.org");
  CHECK(r.users[1].id == 601);
  CHECK(r.users[2].id == 9);
  CHECK(r.users[3].id == 602);
  CHECK(r.matched == 1);
  CHECK(r.created == 3);
  CHECK(r.identity.at(7) == 500);
  CHECK(r.identity.at(70) == 500);
  CHECK(r.identity.at(8) == 601);
  CHECK(r.identity.at(9) == 9);
  CHECK(log.count(row_issue::id_conflict) == 2);
  CHECK(log.samples(row_issue::id_conflict) == std::vector<std::uint64_t>{3, 5});
  CHECK(log.count(row_issue::author_email_conflict) == 1);
}

TEST_CASE("resolve_users: fresh ids past int64 stop the run (SPEC 2.1)", "[user_resolver]") {
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  const user_index index = user_index::build(std::vector<raw_index_entry>{{max, "a@x.org"}, {5, "b@x.org"}});
  std::vector<user_candidate> users;
  users.push_back(user(2, 5, "C", "c@x.org"));
  reject_log log;
  try {
    resolve_users(std::move(users), {}, index, 5, log);
    FAIL("expected a fatal_error");
  } catch (const fatal_error& e) {
    CHECK(e.code() == exit_code::input_error);
  }
}

TEST_CASE("remap_ticket_references: map and dangle (SPEC 2.2, 2.5)", "[user_resolver][parallel]") {
  std::vector<ticket_candidate> tickets;
  for (std::uint64_t i = 0; i < 10000; ++i) {
    tickets.push_back(ticket_candidate{i, i + 2, static_cast<std::int64_t>(i), static_cast<std::int64_t>(i % 4), 0});
  }
  const std::unordered_map<std::int64_t, std::int64_t> identity = {{0, 100}, {1, 101}, {2, 102}};
  std::vector<std::uint8_t> written(tickets.size(), 1);
  written[7] = 0;  // requester 3, not counted but listed
  std::vector<ledger_dangling> dangling;
  reject_log log;
  remap_ticket_references(tickets, identity, log, remap_scope{&written, &dangling});
  CHECK(tickets[0].requester_id == 100);
  CHECK(tickets[2].requester_id == 102);
  CHECK(tickets[3].requester_id == 3);  // dangling, unchanged
  CHECK(log.count(row_issue::dangling_requester_ref) == 2499);
  CHECK(log.samples(row_issue::dangling_requester_ref).front() == 5);  // i = 3 -> line 5
  REQUIRE(dangling.size() == 2500);
  CHECK(std::is_sorted(dangling.begin(), dangling.end(),
                       [](const ledger_dangling& x, const ledger_dangling& y) { return x.object_id < y.object_id; }));
  CHECK(dangling[1].object_id == 7);
  CHECK(dangling[1].chat_id == 3);
  CHECK(dangling[1].line == 9);
  CHECK(dangling[1].kind == ref_kind::ticket_requester);
}

TEST_CASE("comment_references: map, dangle, orphan (SPEC 2.2, 2.5)", "[user_resolver]") {
  const std::vector<ticket_candidate> tickets = {{0, 1, 20, 1, 0}, {1, 2, 10, 5, 0}};
  const std::vector<std::int64_t> ticket_ids = sorted_ticket_ids(tickets);
  CHECK(ticket_ids == std::vector<std::int64_t>{10, 20});
  const std::vector<ledger_object> ledger_tickets = {{30, 0, 0, 0}};  // imported by an earlier run
  const std::unordered_map<std::int64_t, std::int64_t> identity = {{5, 100}};
  const comment_references refs(identity, ticket_ids, ledger_tickets);
  const comment_candidate c{1000, 7, true};
  reject_log log;
  std::vector<ledger_dangling> dangling;

  std::int64_t author = 5;
  refs.map(c, 42, 10, author, &log, &dangling);
  CHECK(author == 100);
  refs.map(c, 42, 30, author = 5, &log, &dangling);  // a ledger ticket: no orphan
  CHECK(log.count(row_issue::orphan_comment) == 0);
  CHECK(dangling.empty());

  refs.map(c, 42, 11, author = 6, &log, &dangling);  // no such ticket, no such author
  CHECK(author == 6);
  CHECK(log.count(row_issue::dangling_author_ref) == 1);
  CHECK(log.count(row_issue::orphan_comment) == 1);
  CHECK(log.samples(row_issue::orphan_comment) == std::vector<std::uint64_t>{7});
  REQUIRE(dangling.size() == 1);
  CHECK(dangling[0].object_id == 42);
  CHECK(dangling[0].chat_id == 6);
  CHECK(dangling[0].line == 7);
  CHECK(dangling[0].offset == 1000);
  CHECK(dangling[0].kind == ref_kind::comment_author);

  // Not written by this archive (a --since ledger has it): mapped, listed, not counted.
  refs.map(c, 42, 11, author = 6, nullptr, &dangling);
  CHECK(log.count(row_issue::dangling_author_ref) == 1);
  CHECK(dangling.size() == 2);

  // Maps nothing, knows no ticket.
  reject_log none;
  comment_references{}.map(c, 42, 10, author = 5, &none);
  CHECK(author == 5);
  CHECK(none.count(row_issue::dangling_author_ref) == 1);
  CHECK(none.count(row_issue::orphan_comment) == 1);
}
