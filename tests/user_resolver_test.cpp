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

TEST_CASE("remap_references: map, dangle, orphan (SPEC 2.2, 2.5)", "[user_resolver][parallel]") {
  std::vector<comment_candidate> comments;
  for (std::uint64_t i = 0; i < 10000; ++i) {
    comments.push_back(comment_candidate{i, i + 2, true, static_cast<std::int64_t>(i), static_cast<std::int64_t>(i % 3),
                                         static_cast<std::int64_t>(i % 4)});
  }
  std::vector<ticket_candidate> tickets = {{0, 1, 0, 1, 0}, {1, 2, 1, 5, 0}};  // ticket 2 missing
  const std::unordered_map<std::int64_t, std::int64_t> identity = {{0, 100}, {1, 101}, {2, 102}};
  reject_log log;
  remap_references(comments, tickets, identity, log);
  CHECK(comments[0].author_id == 100);
  CHECK(comments[3].author_id == 3);  // dangling, unchanged
  CHECK(log.count(row_issue::dangling_author_ref) == 2500);
  CHECK(log.samples(row_issue::dangling_author_ref).front() == 5);  // i = 3 -> line 5
  CHECK(log.count(row_issue::orphan_comment) == 3333);
  CHECK(tickets[0].requester_id == 101);
  CHECK(tickets[1].requester_id == 5);
  CHECK(log.count(row_issue::dangling_requester_ref) == 1);
}
