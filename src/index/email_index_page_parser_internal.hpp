// File: email_index_page_parser_internal.hpp
//
// The JSON page parser of the REST user-index client (email_index_page_parser.cpp,
// simdjson on-demand): one page body -> its users and paging fields (SPEC 1.3).
// Needs no network; exposed for the fetch session, the unit tests, the fuzz target
// and the benchmark. Not installed, not API.
//
//   tixport::detail::page_body page;
//   if (auto error = tixport::detail::parse_page_body(body, page)) ... // bad body, retried
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tixport/index/user_index.hpp"

namespace tixport::detail {

/// What the client reads from one page body (SPEC 1.3).
struct page_body {
  /// `next_page` as the page gave it.
  enum class next_kind { absent, null, url };

  std::vector<raw_index_entry> users;  ///< one entry per element of `users`, in order
  std::optional<std::uint64_t> count;  ///< `count` when a non-negative integer
  next_kind next_page = next_kind::absent;  ///< offset mode's end marker
  bool has_more = false;                ///< `meta.has_more` is true
  std::optional<std::string> links_next;///< `links.next` when a string
};

/// Parse a page body into `out`. Returns the reason when the body is not a JSON object with
/// a `users` array (a bad body, retried). `body` gets SIMDJSON_PADDING spare capacity.
std::optional<std::string> parse_page_body(std::string& body, page_body& out);

}  // namespace tixport::detail
