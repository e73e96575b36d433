// File: user_index_test.cpp
#include <catch2/catch.hpp>

#include "tixport/index/user_index.hpp"

#include <vector>

using tixport::raw_index_entry;
using tixport::user_index;

TEST_CASE("user_index: first entry wins per email key and per id, every valid id is taken (SPEC 1.2)",
          "[user_index]") {
  const std::vector<raw_index_entry> entries = {
      {1, " Ann@Example.COM "},   // kept: key ann@example.com
      {2, "ann@example.com"},     // duplicate email
      {1, "other@example.com"},   // duplicate id
      {std::nullopt, "x@y.z"},    // invalid id
      {3, std::nullopt},          // null email: id 3 still taken
      {4, "not-an-email"},        // invalid email: id 4 still taken
      {5, "a b@c.d"},             // white space: invalid
      {900, "zed@example.com"},   // kept
  };
  const user_index index = user_index::build(entries);
  CHECK(index.find("ann@example.com") == std::optional<std::int64_t>(1));
  CHECK(index.find("zed@example.com") == std::optional<std::int64_t>(900));
  CHECK_FALSE(index.find("other@example.com"));
  CHECK_FALSE(index.find("x@y.z"));
  for (std::int64_t id : {1, 2, 3, 4, 5, 900}) CHECK(index.has_id(id));
  CHECK_FALSE(index.has_id(6));
  CHECK(index.max_id() == std::optional<std::int64_t>(900));
  const auto& s = index.stats();
  CHECK(s.entries == 8);
  CHECK(s.kept == 2);
  CHECK(s.duplicate_email == 1);
  CHECK(s.duplicate_id == 1);
  CHECK(s.invalid_id == 1);
  CHECK(s.invalid_email == 3);
  CHECK(index.size() == 2);
}

TEST_CASE("user_index: empty", "[user_index]") {
  const user_index index = user_index::build({});
  CHECK_FALSE(index.max_id());
  CHECK(index.size() == 0);
}
