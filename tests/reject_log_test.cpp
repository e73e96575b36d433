// File: reject_log_test.cpp
#include <catch2/catch.hpp>

#include "tixport/run/reject_log.hpp"

#include <algorithm>
#include <random>
#include <set>

using tixport::kMaxSampleLines;

using tixport::reject_log;
using tixport::row_issue;

TEST_CASE("reject_log counts and keeps the 20 smallest lines", "[reject_log]") {
  reject_log log;
  for (std::uint64_t line = 100; line > 0; --line) log.add(row_issue::comment_null_body, line);
  CHECK(log.count(row_issue::comment_null_body) == 100);
  const auto samples = log.samples(row_issue::comment_null_body);
  REQUIRE(samples.size() == tixport::kMaxSampleLines);
  for (std::size_t i = 0; i < samples.size(); ++i) CHECK(samples[i] == i + 1);
  CHECK(log.count(row_issue::orphan_comment) == 0);
  CHECK(log.samples(row_issue::orphan_comment).empty());
}

TEST_CASE("reject_log merge is independent of order", "[reject_log]") {
  std::mt19937_64 rng(7);
  std::vector<reject_log> parts(16);
  for (auto& part : parts) {
    for (int i = 0; i < 50; ++i) part.add(row_issue::duplicate_comment, rng() % 100000);
  }
  reject_log forward;
  for (const auto& part : parts) forward.merge(part);
  std::shuffle(parts.begin(), parts.end(), rng);
  reject_log shuffled;
  for (const auto& part : parts) shuffled.merge(part);
  CHECK(forward.count(row_issue::duplicate_comment) == 800);
  CHECK(forward.samples(row_issue::duplicate_comment) == shuffled.samples(row_issue::duplicate_comment));
}

TEST_CASE("reject_log names and strictness", "[reject_log]") {
  CHECK(tixport::row_issue_name(row_issue::malformed_record) == "malformed_record");
  CHECK(tixport::row_issue_name(row_issue::utf8_repaired_field) == "utf8_repaired_field");
  CHECK(tixport::row_issue_fails_strict(row_issue::malformed_record));
  CHECK(tixport::row_issue_fails_strict(row_issue::orphan_comment));
  CHECK(tixport::row_issue_fails_strict(row_issue::utf8_repaired_field));
  CHECK_FALSE(tixport::row_issue_fails_strict(row_issue::duplicate_comment));
  CHECK_FALSE(tixport::row_issue_fails_strict(row_issue::user_null_name));
}

TEST_CASE("reject_log: repeated lines never crowd out distinct ones", "[reject_log]") {
  // A row's NAME and EMAIL can both be repaired: one line, two adds. 25 such rows.
  reject_log log;
  for (std::uint64_t line = 2; line <= 26; ++line) {
    log.add(row_issue::utf8_repaired_field, line);
    log.add(row_issue::utf8_repaired_field, line);
  }
  CHECK(log.count(row_issue::utf8_repaired_field) == 50);
  std::vector<std::uint64_t> expected;
  for (std::uint64_t line = 2; line <= 21; ++line) expected.push_back(line);
  CHECK(log.samples(row_issue::utf8_repaired_field) == expected);

  // Random adds and merges with many repeats equal the plain "20 smallest distinct".
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    reject_log a;
    reject_log b;
    std::set<std::uint64_t> all;
    for (int i = 0; i < 300; ++i) {
      const std::uint64_t line = 1 + rng() % 60;
      (rng() % 2 == 0 ? a : b).add(row_issue::duplicate_ticket, line);
      all.insert(line);
    }
    a.merge(b);
    std::vector<std::uint64_t> smallest(all.begin(), all.end());
    if (smallest.size() > kMaxSampleLines) smallest.resize(kMaxSampleLines);
    REQUIRE(a.samples(row_issue::duplicate_ticket) == smallest);
  }
}
