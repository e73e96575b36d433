// File: reject_log_test.cpp
#include <catch2/catch.hpp>

#include "tixport/reject_log.hpp"

#include <algorithm>
#include <random>

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
