// File: email_index_page_fuzz.cpp
//
// libFuzzer target for the users-page JSON parser of the REST index client
// (detail::parse_page_body, simdjson on-demand). The input is one response
// body. Oracle: simdjson's DOM parser, which validates the whole document,
// reads the same body independently:
//   - a well-formed JSON object whose first `users` member is an array must be
//     accepted, with one entry per element: `id` when the element's first
//     `id` is an integer that fits int64, `email` when its first `email` is a
//     string, nothing for non-objects; `count`, `next_page`, `links.next` and
//     `meta.has_more` as SPEC 1.3 reads them (checked when the key is unique);
//   - well-formed JSON that is not such an object must be refused (a bad body
//     is retried, never read as an empty page).
// Bodies that are not JSON at all may only be refused or read as above; the
// parser is lazy about members it skips, which costs nothing but a retry.
//
//   build-fuzz/email_index_page_fuzz tests/fuzz/corpus/email_index_page -max_len=2048
#include <utility>  // first: Boost 1.74's Asio coroutine headers need std::exchange

#include "../../src/index/email_index_page_parser_internal.hpp"
#include "fuzz_check.hpp"

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

using tixport::detail::page_body;
namespace dom = simdjson::dom;

/// The first member named `key` of `object`, and how many members have that name.
std::pair<std::optional<dom::element>, std::size_t> member(dom::object object, std::string_view key) {
  std::optional<dom::element> first;
  std::size_t count = 0;
  for (const dom::key_value_pair field : object) {
    if (field.key != key) continue;
    if (count++ == 0) first = field.value;
  }
  return {first, count};
}

void check_user(dom::element element, const tixport::raw_index_entry& entry) {
  std::optional<std::int64_t> id;
  std::optional<std::string> email;
  if (element.type() == dom::element_type::OBJECT) {
    const dom::object user = element.get_object().value_unsafe();
    if (const auto [value, n] = member(user, "id"); value && value->type() == dom::element_type::INT64) {
      id = value->get_int64().value_unsafe();
    }
    if (const auto [value, n] = member(user, "email"); value && value->type() == dom::element_type::STRING) {
      email = std::string(value->get_string().value_unsafe());
    }
  }
  FUZZ_CHECK(entry.id == id);
  FUZZ_CHECK(entry.email == email);
}

void check_against_dom(dom::object root, const page_body& page) {
  const auto [users, users_n] = member(root, "users");
  const dom::array array = users->get_array().value_unsafe();
  FUZZ_CHECK(page.users.size() == array.size());
  std::size_t i = 0;
  for (const dom::element element : array) check_user(element, page.users[i++]);

  if (const auto [count, n] = member(root, "count"); n == 1) {
    std::optional<std::uint64_t> expected;
    if (count->type() == dom::element_type::INT64 && count->get_int64().value_unsafe() >= 0) {
      expected = static_cast<std::uint64_t>(count->get_int64().value_unsafe());
    }
    FUZZ_CHECK(page.count == expected);
  }
  if (const auto [next, n] = member(root, "next_page"); n <= 1) {
    page_body::next_kind expected = page_body::next_kind::absent;
    if (next && next->type() == dom::element_type::NULL_VALUE) expected = page_body::next_kind::null;
    if (next && next->type() == dom::element_type::STRING) expected = page_body::next_kind::url;
    FUZZ_CHECK(page.next_page == expected);
  }
  if (const auto [links, n] = member(root, "links"); n <= 1) {
    std::optional<std::string> expected;
    if (links && links->type() == dom::element_type::OBJECT) {
      const auto [next, next_n] = member(links->get_object().value_unsafe(), "next");
      if (next_n == 1 && next->type() == dom::element_type::STRING) expected = std::string(next->get_string().value_unsafe());
      if (next_n <= 1) FUZZ_CHECK(page.links_next == expected);
    } else {
      FUZZ_CHECK(!page.links_next);
    }
  }
  if (const auto [meta, n] = member(root, "meta"); n <= 1) {
    bool expected = false;
    if (meta && meta->type() == dom::element_type::OBJECT) {
      const auto [more, more_n] = member(meta->get_object().value_unsafe(), "has_more");
      if (more_n == 1 && more->type() == dom::element_type::BOOL) expected = more->get_bool().value_unsafe();
      if (more_n <= 1) FUZZ_CHECK(page.has_more == expected);
    } else {
      FUZZ_CHECK(!page.has_more);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static dom::parser dom_parser;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string body(input);
  page_body page;
  page.users.resize(3);  // parse_page_body must start from an empty page
  const std::optional<std::string> problem = tixport::detail::parse_page_body(body, page);
  FUZZ_CHECK(body == input);  // padding is capacity, never content
  if (problem) FUZZ_CHECK(!problem->empty());

  dom::element root;
  if (dom_parser.parse(input.data(), input.size()).get(root) != simdjson::SUCCESS) return 0;
  bool expect_accept = false;
  if (root.type() == dom::element_type::OBJECT) {
    const auto [users, n] = member(root.get_object().value_unsafe(), "users");
    expect_accept = users && users->type() == dom::element_type::ARRAY;
  }
  if (!expect_accept) {
    FUZZ_CHECK(problem.has_value());
    return 0;
  }
  if (problem) std::fprintf(stderr, "refused a valid page: %s\n", problem->c_str());
  FUZZ_CHECK(!problem.has_value());
  check_against_dom(root.get_object().value_unsafe(), page);
  return 0;
}
