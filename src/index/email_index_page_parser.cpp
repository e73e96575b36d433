// File: email_index_page_parser.cpp
//
// One page of the users API (SPEC 1.3) -> its entries and paging fields, with
// simdjson on-demand: `users[].id` / `users[].email`, `count`, `next_page`,
// `links.next`, `meta.has_more`. A body that is not a JSON object with a `users`
// array is a bad answer, retried by the fetch session like any other.
//
//   detail::page_body page;
//   if (auto error = detail::parse_page_body(body, page)) ... // bad body, retried
#include "index/email_index_page_parser_internal.hpp"

#include <simdjson.h>

#include <utility>

namespace tixport::detail {

namespace {

using simdjson::ondemand::json_type;
using simdjson::ondemand::number_type;

std::string json_error(simdjson::error_code error) {
  return std::string("invalid JSON: ") + simdjson::error_message(error);
}

/// `id`: a JSON integer that fits int64, else nullopt (strings, floats, null, too big).
std::optional<std::string> read_id(simdjson::ondemand::value& value,
                                   std::optional<std::int64_t>& id) {
  json_type type{};
  if (auto error = value.type().get(type)) return json_error(error);
  if (type != json_type::number) return std::nullopt;
  number_type kind{};
  if (auto error = value.get_number_type().get(kind)) return json_error(error);
  if (kind != number_type::signed_integer) return std::nullopt;
  std::int64_t number = 0;
  if (auto error = value.get_int64().get(number)) return json_error(error);
  id = number;
  return std::nullopt;
}

/// `email`: a string (kept untrimmed); null, missing or any other type give nullopt.
std::optional<std::string> read_email(simdjson::ondemand::value& value,
                                      std::optional<std::string>& email) {
  json_type type{};
  if (auto error = value.type().get(type)) return json_error(error);
  if (type != json_type::string) return std::nullopt;
  std::string_view text;
  if (auto error = value.get_string().get(text)) return json_error(error);
  email = std::string(text);
  return std::nullopt;
}

std::optional<std::string> read_users(simdjson::ondemand::value& value,
                                      std::vector<raw_index_entry>& users) {
  simdjson::ondemand::array array;
  if (value.get_array().get(array)) return "\"users\" is not an array";
  for (auto element_result : array) {
    simdjson::ondemand::value element;
    if (auto error = std::move(element_result).get(element)) return json_error(error);
    json_type type{};
    if (auto error = element.type().get(type)) return json_error(error);
    raw_index_entry entry;
    // An element that is not an object is an entry with neither id nor email: it is
    // counted as invalid downstream (SPEC 1.2), not a reason to refetch the page.
    if (type == json_type::object) {
      simdjson::ondemand::object user;
      if (auto error = element.get_object().get(user)) return json_error(error);
      bool saw_id = false;
      bool saw_email = false;
      for (auto field_result : user) {
        simdjson::ondemand::field field;
        if (auto error = std::move(field_result).get(field)) return json_error(error);
        std::string_view key;
        if (auto error = field.unescaped_key().get(key)) return json_error(error);
        // A repeated key: the first one counts, as in most JSON readers' "first wins" mode.
        if (key == "id" && !saw_id) {
          saw_id = true;
          if (auto problem = read_id(field.value(), entry.id)) return problem;
        } else if (key == "email" && !saw_email) {
          saw_email = true;
          if (auto problem = read_email(field.value(), entry.email)) return problem;
        }
      }
    }
    users.push_back(std::move(entry));
  }
  return std::nullopt;
}

std::optional<std::string> read_links(simdjson::ondemand::value& value, page_body& out) {
  json_type type{};
  if (auto error = value.type().get(type)) return json_error(error);
  if (type != json_type::object) return std::nullopt;
  simdjson::ondemand::object links;
  if (auto error = value.get_object().get(links)) return json_error(error);
  for (auto field_result : links) {
    simdjson::ondemand::field field;
    if (auto error = std::move(field_result).get(field)) return json_error(error);
    std::string_view key;
    if (auto error = field.unescaped_key().get(key)) return json_error(error);
    if (key != "next") continue;
    json_type next_type{};
    if (auto error = field.value().type().get(next_type)) return json_error(error);
    if (next_type == json_type::string) {
      std::string_view next;
      if (auto error = field.value().get_string().get(next)) return json_error(error);
      out.links_next = std::string(next);
    }
  }
  return std::nullopt;
}

std::optional<std::string> read_meta(simdjson::ondemand::value& value, page_body& out) {
  json_type type{};
  if (auto error = value.type().get(type)) return json_error(error);
  if (type != json_type::object) return std::nullopt;
  simdjson::ondemand::object meta;
  if (auto error = value.get_object().get(meta)) return json_error(error);
  for (auto field_result : meta) {
    simdjson::ondemand::field field;
    if (auto error = std::move(field_result).get(field)) return json_error(error);
    std::string_view key;
    if (auto error = field.unescaped_key().get(key)) return json_error(error);
    if (key != "has_more") continue;
    json_type more_type{};
    if (auto error = field.value().type().get(more_type)) return json_error(error);
    if (more_type == json_type::boolean) {
      bool more = false;
      if (auto error = field.value().get_bool().get(more)) return json_error(error);
      out.has_more = more;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> parse_page_body(std::string& body, page_body& out) {
  out = page_body{};
  body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  // One parser per thread keeps its buffers from page to page (the fetch runs on one thread).
  thread_local simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (auto error =
          parser.iterate(simdjson::padded_string_view(body.data(), body.size(), body.capacity()))
              .get(doc)) {
    return json_error(error);
  }
  simdjson::ondemand::object root;
  if (doc.get_object().get(root)) return "the body is not a JSON object";
  bool saw_users = false;
  for (auto field_result : root) {
    simdjson::ondemand::field field;
    if (auto error = std::move(field_result).get(field)) return json_error(error);
    std::string_view key;
    if (auto error = field.unescaped_key().get(key)) return json_error(error);
    simdjson::ondemand::value& value = field.value();
    if (key == "users" && !saw_users) {
      saw_users = true;
      if (auto problem = read_users(value, out.users)) return problem;
    } else if (key == "count") {
      json_type type{};
      if (auto error = value.type().get(type)) return json_error(error);
      number_type kind{};
      std::int64_t count = 0;
      // `count` is used only when it is a non-negative integer; anything else is ignored
      // and the pages are walked as if it were absent.
      if (type == json_type::number && !value.get_number_type().get(kind) &&
          kind == number_type::signed_integer && !value.get_int64().get(count) && count >= 0) {
        out.count = static_cast<std::uint64_t>(count);
      }
    } else if (key == "next_page") {
      json_type type{};
      if (auto error = value.type().get(type)) return json_error(error);
      if (type == json_type::null) {
        bool is_null = false;
        if (auto error = value.is_null().get(is_null)) return json_error(error);
        if (is_null) out.next_page = page_body::next_kind::null;
      } else if (type == json_type::string) {
        std::string_view next;
        if (auto error = value.get_string().get(next)) return json_error(error);
        out.next_page = page_body::next_kind::url;
      }
    } else if (key == "links") {
      if (auto problem = read_links(value, out)) return problem;
    } else if (key == "meta") {
      if (auto problem = read_meta(value, out)) return problem;
    }
  }
  // Truncation and trailing text after the root object are caught by simdjson itself: it
  // checks that the last structural character closes the root object, and iterating the
  // object to its end checks the structure in between.
  if (!saw_users) return "the body has no \"users\" array";
  return std::nullopt;
}

}  // namespace tixport::detail
