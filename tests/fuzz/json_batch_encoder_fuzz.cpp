// File: json_batch_encoder_fuzz.cpp
//
// libFuzzer target for the batch JSON serializer (json_batch_encoder.hpp).
// The input (through FuzzedDataProvider) becomes a batch of tickets, comments
// and users with arbitrary ids and UTF-8 strings (repaired first, as the
// pipeline does). Oracles:
//   1. simdjson parses the compact output back, with exactly SPEC 2.6's keys in
//      order, and every value equal to the input record;
//   2. the pretty output is byte for byte what Python's
//      json.dumps(obj, indent=2, ensure_ascii=False) prints for that document
//      (re-rendered here from the parsed tree), and minifies to the compact one;
//   3. append_json_string on the raw (even non-UTF-8) bytes equals a
//      byte-by-byte reference escaper, and parses back to the input when the
//      input is valid UTF-8.
//
//   build-fuzz/json_batch_encoder_fuzz tests/fuzz/corpus/json_batch_encoder -max_len=4096
#include "tixport/csv/field_parsers.hpp"
#include "tixport/run/json_batch_encoder.hpp"

#include "fuzz_check.hpp"

#include <fuzzer/FuzzedDataProvider.h>
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace tixport;
namespace dom = simdjson::dom;

constexpr std::size_t kMaxObjects = 8;  // per array: enough for separators, small enough to stay fast

// RFC 8259 escaping as json_batch_encoder.hpp documents it, one byte at a time.
std::string reference_escape(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[static_cast<unsigned char>(c) >> 4];
          out += kHex[static_cast<unsigned char>(c) & 0xF];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

// Python's json.dumps(indent=2, ensure_ascii=False) layout of a parsed tree.
void render_python(dom::element e, int depth, std::string& out) {
  const std::string indent(static_cast<std::size_t>(2 * (depth + 1)), ' ');
  const std::string closing(static_cast<std::size_t>(2 * depth), ' ');
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      const dom::object object = e.get_object().value_unsafe();
      if (object.size() == 0) {
        out += "{}";
        return;
      }
      out += "{\n";
      bool first = true;
      for (const dom::key_value_pair field : object) {
        if (!first) out += ",\n";
        first = false;
        out += indent + reference_escape(field.key) + ": ";
        render_python(field.value, depth + 1, out);
      }
      out += "\n" + closing + "}";
      return;
    }
    case dom::element_type::ARRAY: {
      const dom::array array = e.get_array().value_unsafe();
      if (array.size() == 0) {
        out += "[]";
        return;
      }
      out += "[\n";
      bool first = true;
      for (const dom::element item : array) {
        if (!first) out += ",\n";
        first = false;
        out += indent;
        render_python(item, depth + 1, out);
      }
      out += "\n" + closing + "]";
      return;
    }
    case dom::element_type::STRING:
      out += reference_escape(e.get_string().value_unsafe());
      return;
    case dom::element_type::INT64:
      out += std::to_string(e.get_int64().value_unsafe());
      return;
    case dom::element_type::BOOL:
      out += e.get_bool().value_unsafe() ? "true" : "false";
      return;
    default:
      FUZZ_CHECK(!"the encoder writes only objects, arrays, strings, int64 and booleans");
  }
}

// The object's keys, exactly and in this order; returns the values in that order.
std::vector<dom::element> expect_keys(dom::element e, std::initializer_list<std::string_view> keys) {
  FUZZ_CHECK(e.type() == dom::element_type::OBJECT);
  std::vector<dom::element> values;
  auto expected = keys.begin();
  const dom::object object = e.get_object().value_unsafe();  // a copy: the result object is a temporary
  for (const dom::key_value_pair field : object) {
    FUZZ_CHECK(expected != keys.end());
    FUZZ_CHECK(field.key == *expected);
    values.push_back(field.value);
    ++expected;
  }
  FUZZ_CHECK(expected == keys.end());
  return values;
}

std::vector<dom::element> expect_array(dom::element e, std::size_t size) {
  FUZZ_CHECK(e.type() == dom::element_type::ARRAY);
  std::vector<dom::element> items;
  const dom::array array = e.get_array().value_unsafe();
  for (const dom::element item : array) items.push_back(item);
  FUZZ_CHECK(items.size() == size);
  return items;
}

void expect_int(dom::element e, std::int64_t value) {
  FUZZ_CHECK(e.type() == dom::element_type::INT64);
  FUZZ_CHECK(e.get_int64().value_unsafe() == value);
}

void expect_string(dom::element e, std::string_view value) {
  FUZZ_CHECK(e.type() == dom::element_type::STRING);
  FUZZ_CHECK(e.get_string().value_unsafe() == value);
}

void expect_timestamp(dom::element e, std::int64_t seconds) {
  char text[kTimestampTextSize];
  format_timestamp(seconds, text);
  expect_string(e, std::string_view(text, kTimestampTextSize));
}

// A string from the input, made valid UTF-8 as the pipeline makes every field before encoding.
std::string_view utf8_string(FuzzedDataProvider& input, std::deque<std::string>& storage) {
  const std::string raw = input.ConsumeRandomLengthString(64);
  std::string& clean = storage.emplace_back();
  repair_utf8(raw, clean);
  return clean;
}

std::int64_t timestamp(FuzzedDataProvider& input) {
  return input.ConsumeIntegralInRange<std::int64_t>(kMinTimestamp, kMaxTimestamp);
}

void check_string_escaping(std::string_view raw, dom::parser& parser) {
  std::string out = "x";
  append_json_string(out, raw);
  FUZZ_CHECK(std::string_view(out).substr(1) == reference_escape(raw));
  // The same text given with its quotes doubled, as the export holds a quoted field.
  std::string doubled;
  for (const char c : raw) doubled.append(c == '"' ? 2 : 1, c);
  std::string from_pairs = "x";
  append_json_string_from_csv_pairs(from_pairs, doubled);
  FUZZ_CHECK(from_pairs == out);
  if (!is_valid_utf8(raw)) return;
  dom::element parsed;
  FUZZ_CHECK(parser.parse(out.data() + 1, out.size() - 1).get(parsed) == simdjson::SUCCESS);
  expect_string(parsed, raw);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static dom::parser parser;
  FuzzedDataProvider input(data, size);
  std::deque<std::string> storage;  // string_views in the records point here; a deque never moves them

  std::vector<ticket_record> tickets(input.ConsumeIntegralInRange<std::size_t>(0, kMaxObjects));
  std::vector<comment_record> comments(input.ConsumeIntegralInRange<std::size_t>(0, kMaxObjects));
  std::vector<user_record> users(input.ConsumeIntegralInRange<std::size_t>(0, kMaxObjects));
  for (ticket_record& t : tickets) {
    t = {timestamp(input), input.ConsumeIntegral<std::int64_t>(), input.ConsumeIntegral<std::int64_t>()};
  }
  for (comment_record& c : comments) {
    c.created_at = timestamp(input);
    c.ticket_id = input.ConsumeIntegral<std::int64_t>();
    c.id = input.ConsumeIntegral<std::int64_t>();
    c.is_public = input.ConsumeBool();
    c.html_body = utf8_string(input, storage);
    c.author_id = input.ConsumeIntegral<std::int64_t>();
  }
  for (user_record& u : users) {
    u.name = utf8_string(input, storage);
    u.id = input.ConsumeIntegral<std::int64_t>();
    u.email = utf8_string(input, storage);
  }
  const std::string raw_tail = input.ConsumeRemainingBytesAsString();

  // 1. Compact: parse back, exact keys, equal values.
  std::string compact = "junk before";  // encode_batch appends
  encode_batch(tickets, comments, users, json_style::compact, compact);
  FUZZ_CHECK(compact.starts_with("junk before"));
  compact.erase(0, 11);
  dom::element root;
  FUZZ_CHECK(parser.parse(compact).get(root) == simdjson::SUCCESS);
  const auto document = expect_keys(root, {"data"});
  const auto data_object = expect_keys(document[0], {"tickets"});
  const auto sections = expect_keys(data_object[0], {"data", "comments", "users", "organizations"});
  const auto ticket_items = expect_array(sections[0], tickets.size());
  for (std::size_t i = 0; i < tickets.size(); ++i) {
    const auto v = expect_keys(ticket_items[i], {"created_at", "requester_id", "id"});
    expect_timestamp(v[0], tickets[i].created_at);
    expect_int(v[1], tickets[i].requester_id);
    expect_int(v[2], tickets[i].id);
  }
  const auto comment_items = expect_array(sections[1], comments.size());
  for (std::size_t i = 0; i < comments.size(); ++i) {
    const auto v = expect_keys(comment_items[i], {"created_at", "ticket_id", "id", "public", "html_body", "author_id"});
    expect_timestamp(v[0], comments[i].created_at);
    expect_int(v[1], comments[i].ticket_id);
    expect_int(v[2], comments[i].id);
    FUZZ_CHECK(v[3].type() == dom::element_type::BOOL && v[3].get_bool().value_unsafe() == comments[i].is_public);
    expect_string(v[4], comments[i].html_body);
    expect_int(v[5], comments[i].author_id);
  }
  const auto user_items = expect_array(sections[2], users.size());
  for (std::size_t i = 0; i < users.size(); ++i) {
    const auto v = expect_keys(user_items[i], {"name", "id", "email"});
    expect_string(v[0], users[i].name);
    expect_int(v[1], users[i].id);
    expect_string(v[2], users[i].email);
  }
  expect_array(sections[3], 0);
  // Compact means no white space outside strings: minifying changes nothing.
  std::string minified(compact.size() + simdjson::SIMDJSON_PADDING, '\0');
  std::size_t minified_size = 0;
  FUZZ_CHECK(simdjson::minify(compact.data(), compact.size(), minified.data(), minified_size) == simdjson::SUCCESS);
  FUZZ_CHECK(std::string_view(minified).substr(0, minified_size) == compact);

  // 2. Pretty: Python's layout of the same document.
  std::string expected_pretty;
  render_python(root, 0, expected_pretty);
  std::string pretty;
  encode_batch(tickets, comments, users, json_style::pretty, pretty);
  FUZZ_CHECK(pretty == expected_pretty);
  std::string pretty_min(pretty.size() + simdjson::SIMDJSON_PADDING, '\0');
  FUZZ_CHECK(simdjson::minify(pretty.data(), pretty.size(), pretty_min.data(), minified_size) == simdjson::SUCCESS);
  FUZZ_CHECK(std::string_view(pretty_min).substr(0, minified_size) == compact);

  // 3. The string escaper alone, on raw bytes.
  check_string_escaping(raw_tail, parser);
  return 0;
}
