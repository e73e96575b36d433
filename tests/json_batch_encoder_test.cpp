// File: json_batch_encoder_test.cpp
//
// Tests of the batch-file encoder (SPEC 2.6): exact compact and pretty bytes
// (the pretty text is Python's json.dumps(indent=2, ensure_ascii=False)
// output), RFC 8259 escaping of every control byte, pass-through of
// everything else, and a simdjson round trip on random strings.
#include "tixport/csv/csv_reader.hpp"
#include "tixport/run/batch_limits.hpp"
#include "tixport/run/json_batch_encoder.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <charconv>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_view_literals;
using tixport::comment_record;
using tixport::json_style;
using tixport::ticket_record;
using tixport::user_record;

namespace {

std::string json_quoted(std::string_view s) {
  std::string out;
  tixport::append_json_string(out, s);
  return out;
}

std::string encode(std::span<const ticket_record> t, std::span<const comment_record> c,
                   std::span<const user_record> u, json_style style) {
  std::string out;
  tixport::encode_batch(t, c, u, style, out);
  return out;
}

/// `"` + s + `"`, built by appends (operator+ chains trip GCC 12's -Wrestrict bug 105329).
std::string in_quotes(std::string_view s) {
  std::string r;
  r.reserve(s.size() + 2);
  r.push_back('"');
  r.append(s);
  r.push_back('"');
  return r;
}

void append_code_point(std::string& s, char32_t cp) {
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Random valid UTF-8 heavy in the bytes the escaper cares about.
std::string random_utf8(std::mt19937_64& rng, std::size_t max_code_points) {
  static constexpr char32_t kSpecial[] = {0x00, 0x01, 0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x1F, 0x20,
                                          '"', '\\', '/', 0x7F, 0x80, 0xE9, 0x7FF, 0x800, 0xFFFD,
                                          0xFEFF, 0x10000, 0x1F600, 0x10FFFF};
  std::uniform_int_distribution<std::size_t> len_dist(0, max_code_points);
  std::uniform_int_distribution<int> kind_dist(0, 9);
  std::uniform_int_distribution<std::size_t> special_dist(0, std::size(kSpecial) - 1);
  std::uniform_int_distribution<char32_t> ascii_dist(0x20, 0x7E);
  std::uniform_int_distribution<char32_t> any_dist(0x80, 0x10FFFF);
  std::string s;
  const std::size_t n = len_dist(rng);
  for (std::size_t i = 0; i < n; ++i) {
    const int kind = kind_dist(rng);
    char32_t cp;
    if (kind < 5) {
      cp = ascii_dist(rng);
    } else if (kind < 8) {
      cp = kSpecial[special_dist(rng)];
    } else {
      do {
        cp = any_dist(rng);
      } while (cp >= 0xD800 && cp <= 0xDFFF);  // surrogates are not scalar values
    }
    append_code_point(s, cp);
  }
  return s;
}

}  // namespace

TEST_CASE("append_json_string escapes quotes, backslashes and control bytes", "[json_batch_encoder]") {
  CHECK(json_quoted("") == R"("")");
  CHECK(json_quoted("plain text") == R"("plain text")");
  CHECK(json_quoted(R"(say "hi")") == R"("say \"hi\"")");
  CHECK(json_quoted(R"(C:\path\)") == R"("C:\\path\\")");
  CHECK(json_quoted(R"(\")") == R"("\\\"")");
  CHECK(json_quoted("\"\"\"") == R"("\"\"\"")");
  CHECK(json_quoted("a/b</p>") == R"("a/b</p>")");  // '/' is not escaped
  CHECK(json_quoted("del\x7F") == "\"del\x7F\"");     // nor is DEL
  CHECK(json_quoted("line1\nline2\r\n\tend") == R"("line1\nline2\r\n\tend")");
  // Appends: existing contents stay.
  std::string out = "x:";
  tixport::append_json_string(out, "y");
  CHECK(out == R"(x:"y")");
}

TEST_CASE("append_json_string escapes every control character", "[json_batch_encoder]") {
  // As Python's json.dumps writes them: five short forms, the rest \u00XX in lower case.
  const char* const kExpected[32] = {
      R"(\u0000)", R"(\u0001)", R"(\u0002)", R"(\u0003)", R"(\u0004)", R"(\u0005)", R"(\u0006)",
      R"(\u0007)", R"(\b)",     R"(\t)",     R"(\n)",     R"(\u000b)", R"(\f)",     R"(\r)",
      R"(\u000e)", R"(\u000f)", R"(\u0010)", R"(\u0011)", R"(\u0012)", R"(\u0013)", R"(\u0014)",
      R"(\u0015)", R"(\u0016)", R"(\u0017)", R"(\u0018)", R"(\u0019)", R"(\u001a)", R"(\u001b)",
      R"(\u001c)", R"(\u001d)", R"(\u001e)", R"(\u001f)"};
  std::string all;
  std::string expected_all = "\"";
  for (int c = 0; c < 32; ++c) {
    const char byte = static_cast<char>(c);
    INFO("control byte " << c);
    CHECK(json_quoted(std::string_view(&byte, 1)) == in_quotes(kExpected[c]));
    all.push_back(byte);
    expected_all += kExpected[c];
  }
  expected_all.push_back('"');
  CHECK(json_quoted(all) == expected_all);
  // One control byte at each position of a 40-byte run (crosses the 16- and 8-byte scans).
  const std::string base(40, 'a');
  for (std::size_t at = 0; at < base.size(); ++at) {
    std::string s = base;
    s[at] = '\x1b';
    std::string inner = base.substr(0, at);
    inner += R"(\u001b)";
    inner += base.substr(at + 1);
    const std::string expected = in_quotes(inner);
    INFO("offset " << at);
    CHECK(json_quoted(s) == expected);
  }
}

TEST_CASE("append_json_string passes non-ASCII bytes through", "[json_batch_encoder]") {
  const std::string_view text = "Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBB\xBF \xE2\x80\xA8 \xC2\x85"sv;
  CHECK(json_quoted(text) == in_quotes(text));
  // High bytes next to specials: 0xA2 and 0xDC must not look like '"' or '\\'.
  CHECK(json_quoted("\xA2\"\xDC\\\xE2\x80\x9C") == "\"\xA2\\\"\xDC\\\\\xE2\x80\x9C\"");
  // Bytes 0x80..0xFF, one each, all pass unchanged (the encoder does not validate).
  std::string high;
  for (int c = 0x80; c <= 0xFF; ++c) high.push_back(static_cast<char>(c));
  CHECK(json_quoted(high) == in_quotes(high));
  // Printable ASCII other than '"' and '\\' passes unchanged.
  std::string printable;
  for (char c = 0x20; c < 0x7F; ++c) {
    if (c != '"' && c != '\\') printable.push_back(c);
  }
  CHECK(json_quoted(printable) == in_quotes(printable));
}

TEST_CASE("encode_batch writes the exact compact batch", "[json_batch_encoder]") {
  const ticket_record tickets[] = {{1609439400, 7, 100}, {0, INT64_MIN, INT64_MAX}};
  const comment_record comments[] = {
      {951827696, 100, 5, true, "<p class=\"x\">Hi\n\xC3\xA9 \\ /</p>", 7},
      {951827696, 100, 6, false, "", 8}};
  const user_record users[] = {{"Zo\xC3\xAB \"Z\"", 7, "zoe@example.org"}};
  // Python: json.dumps(obj, ensure_ascii=False, separators=(",", ":")).
  const std::string_view expected =
      R"({"data":{"tickets":{"data":[{"created_at":"2020-12-31T18:30:00Z","requester_id":7,"id":100},)"
      R"({"created_at":"1970-01-01T00:00:00Z","requester_id":-9223372036854775808,"id":9223372036854775807}],)"
      R"("comments":[{"created_at":"2000-02-29T12:34:56Z","ticket_id":100,"id":5,"public":true,)"
      "\"html_body\":\"<p class=\\\"x\\\">Hi\\n\xC3\xA9 \\\\ /</p>\",\"author_id\":7},"
      R"({"created_at":"2000-02-29T12:34:56Z","ticket_id":100,"id":6,"public":false,"html_body":"","author_id":8}],)"
      "\"users\":[{\"name\":\"Zo\xC3\xAB \\\"Z\\\"\",\"id\":7,\"email\":\"zoe@example.org\"}],"
      R"("organizations":[]}}})";
  CHECK(encode(tickets, comments, users, json_style::compact) == expected);
  // encode_batch appends.
  std::string out = "prefix";
  tixport::encode_batch(tickets, comments, users, json_style::compact, out);
  CHECK(out == "prefix" + std::string(expected));
}

TEST_CASE("encode_batch writes the exact pretty batch", "[json_batch_encoder]") {
  const ticket_record tickets[] = {{1609439400, 7, 100}, {0, INT64_MIN, INT64_MAX}};
  const comment_record comments[] = {
      {951827696, 100, 5, true, "<p class=\"x\">Hi\n\xC3\xA9 \\ /</p>", 7},
      {951827696, 100, 6, false, "", 8}};
  const user_record users[] = {{"Zo\xC3\xAB \"Z\"", 7, "zoe@example.org"}};
  // Python: json.dumps(obj, indent=2, ensure_ascii=False), no trailing newline.
  const std::string_view expected = R"json({
  "data": {
    "tickets": {
      "data": [
        {
          "created_at": "2020-12-31T18:30:00Z",
          "requester_id": 7,
          "id": 100
        },
        {
          "created_at": "1970-01-01T00:00:00Z",
          "requester_id": -9223372036854775808,
          "id": 9223372036854775807
        }
      ],
      "comments": [
        {
          "created_at": "2000-02-29T12:34:56Z",
          "ticket_id": 100,
          "id": 5,
          "public": true,
          "html_body": "<p class=\"x\">Hi\né \\ /</p>",
          "author_id": 7
        },
        {
          "created_at": "2000-02-29T12:34:56Z",
          "ticket_id": 100,
          "id": 6,
          "public": false,
          "html_body": "",
          "author_id": 8
        }
      ],
      "users": [
        {
          "name": "Zoë \"Z\"",
          "id": 7,
          "email": "zoe@example.org"
        }
      ],
      "organizations": []
    }
  }
})json";
  CHECK(encode(tickets, comments, users, json_style::pretty) == expected);
}

TEST_CASE("encode_batch writes empty batches and empty lists as []", "[json_batch_encoder]") {
  CHECK(encode({}, {}, {}, json_style::compact) ==
        R"({"data":{"tickets":{"data":[],"comments":[],"users":[],"organizations":[]}}})");
  CHECK(encode({}, {}, {}, json_style::pretty) ==
        "{\n  \"data\": {\n    \"tickets\": {\n      \"data\": [],\n      \"comments\": [],\n"
        "      \"users\": [],\n      \"organizations\": []\n    }\n  }\n}");
  // Only users: tickets and comments stay [] (an exhausted list in a later batch).
  const user_record users[] = {{"A", 1, "a@x"}, {"B", -2, "b@x"}};
  CHECK(encode({}, {}, users, json_style::compact) ==
        R"({"data":{"tickets":{"data":[],"comments":[],"users":[{"name":"A","id":1,"email":"a@x"},)"
        R"({"name":"B","id":-2,"email":"b@x"}],"organizations":[]}}})");
  CHECK(encode({}, {}, users, json_style::pretty) ==
        "{\n  \"data\": {\n    \"tickets\": {\n      \"data\": [],\n      \"comments\": [],\n"
        "      \"users\": [\n        {\n          \"name\": \"A\",\n          \"id\": 1,\n"
        "          \"email\": \"a@x\"\n        },\n        {\n          \"name\": \"B\",\n"
        "          \"id\": -2,\n          \"email\": \"b@x\"\n        }\n      ],\n"
        "      \"organizations\": []\n    }\n  }\n}");
}

TEST_CASE("append_json_string round-trips random strings through simdjson", "[json_batch_encoder]") {
  std::mt19937_64 rng(4180);
  simdjson::dom::parser parser;
  for (int i = 0; i < 5000; ++i) {
    const std::string s = random_utf8(rng, 64);
    const std::string json = json_quoted(s);
    simdjson::dom::element doc;
    INFO("iteration " << i);
    REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
    std::string_view back;
    REQUIRE(doc.get_string().get(back) == simdjson::SUCCESS);
    REQUIRE(back == s);
  }
}

TEST_CASE("a body given with its CSV pairs is written as its text", "[json_batch_encoder]") {
  // The write hands the encoder a body still escaped as the export quoted it (each `"`
  // doubled): string and whole batch must be the bytes its unescaped text gives.
  std::mt19937_64 rng(4181);
  for (int i = 0; i < 5000; ++i) {
    std::string text = random_utf8(rng, 64);
    for (std::size_t q = rng() % 4; q != 0; --q) text.insert(rng() % (text.size() + 1), rng() % 2 == 0 ? "\"" : "\"\"");
    std::string csv;
    for (const char c : text) csv += c == '"' ? std::string("\"\"") : std::string(1, c);
    INFO("iteration " << i);
    REQUIRE(tixport::csv_unescape_pairs(csv) == text);
    std::string from_pairs = "x";
    tixport::append_json_string_from_csv_pairs(from_pairs, csv);
    REQUIRE(from_pairs == std::string("x").append(json_quoted(text)));
    comment_record plain{1'600'000'000, 7, 8, true, text, 9};
    comment_record pairs{1'600'000'000, 7, 8, true, csv, 9, true};
    for (json_style style : {json_style::compact, json_style::pretty}) {
      REQUIRE(encode({}, std::vector<comment_record>{pairs}, {}, style) ==
              encode({}, std::vector<comment_record>{plain}, {}, style));
    }
  }
}

TEST_CASE("a comment's created_at given as text is written as the seconds would be", "[json_batch_encoder]") {
  std::mt19937_64 rng(4182);
  std::uniform_int_distribution<std::int64_t> dist(tixport::kMinTimestamp, tixport::kMaxTimestamp);
  for (int i = 0; i < 2000; ++i) {
    const std::int64_t seconds = i == 0 ? tixport::kMinTimestamp : i == 1 ? tixport::kMaxTimestamp : dist(rng);
    comment_record from_seconds{seconds, 7, 8, false, "b", 9};
    comment_record from_text{0, 7, 8, false, "b", 9, false, true};
    tixport::format_timestamp(seconds, from_text.created_at_text);
    INFO("seconds " << seconds);
    for (json_style style : {json_style::compact, json_style::pretty}) {
      REQUIRE(encode({}, std::vector<comment_record>{from_text}, {}, style) ==
              encode({}, std::vector<comment_record>{from_seconds}, {}, style));
    }
    std::string object;
    tixport::encode_comment_object(from_text, object);
    REQUIRE(object.find(std::string(from_text.created_at_text, tixport::kTimestampTextSize)) != std::string::npos);
  }
}

TEST_CASE("encode_batch output parses back with simdjson, both styles", "[json_batch_encoder]") {
  std::mt19937_64 rng(2606);
  std::vector<std::string> bodies;
  std::vector<std::string> names;
  for (int i = 0; i < 100; ++i) {
    bodies.push_back(random_utf8(rng, 200));
    names.push_back(random_utf8(rng, 20));
  }
  std::vector<ticket_record> tickets;
  std::vector<comment_record> comments;
  std::vector<user_record> users;
  for (int i = 0; i < 100; ++i) {
    tickets.push_back({1'600'000'000 + i, -i, 1000 + i});
    comments.push_back({-62135596800 + i, 1000 + i, 5000 + i, i % 3 == 0, bodies[static_cast<std::size_t>(i)],
                        INT64_MAX - i});
    users.push_back({names[static_cast<std::size_t>(i)], INT64_MIN + i, "u@example.org"});
  }
  simdjson::dom::parser parser;
  for (json_style style : {json_style::compact, json_style::pretty}) {
    const std::string json = encode(tickets, comments, users, style);
    simdjson::dom::element doc;
    REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
    simdjson::dom::object root;
    REQUIRE(doc["data"]["tickets"].get(root) == simdjson::SUCCESS);
    simdjson::dom::array ticket_array, comment_array, user_array, org_array;
    REQUIRE(root["data"].get(ticket_array) == simdjson::SUCCESS);
    REQUIRE(root["comments"].get(comment_array) == simdjson::SUCCESS);
    REQUIRE(root["users"].get(user_array) == simdjson::SUCCESS);
    REQUIRE(root["organizations"].get(org_array) == simdjson::SUCCESS);
    CHECK(ticket_array.size() == 100);
    CHECK(org_array.size() == 0);
    std::size_t i = 0;
    for (simdjson::dom::element c : comment_array) {
      std::string_view body, created;
      std::int64_t id = 0, author = 0;
      bool pub = false;
      REQUIRE(c["html_body"].get(body) == simdjson::SUCCESS);
      REQUIRE(c["created_at"].get(created) == simdjson::SUCCESS);
      REQUIRE(c["id"].get(id) == simdjson::SUCCESS);
      REQUIRE(c["author_id"].get(author) == simdjson::SUCCESS);
      REQUIRE(c["public"].get(pub) == simdjson::SUCCESS);
      CHECK(body == bodies[i]);
      char expected_created[48];
      std::snprintf(expected_created, sizeof expected_created, "0001-01-01T00:%02zu:%02zuZ", i / 60, i % 60);
      CHECK(created == expected_created);
      CHECK(id == 5000 + static_cast<std::int64_t>(i));
      CHECK(author == INT64_MAX - static_cast<std::int64_t>(i));
      CHECK(pub == (i % 3 == 0));
      ++i;
    }
    CHECK(i == 100);
    i = 0;
    for (simdjson::dom::element u : user_array) {
      std::string_view name;
      std::int64_t id = 0;
      REQUIRE(u["name"].get(name) == simdjson::SUCCESS);
      REQUIRE(u["id"].get(id) == simdjson::SUCCESS);
      CHECK(name == names[i]);
      CHECK(id == INT64_MIN + static_cast<std::int64_t>(i));
      ++i;
    }
    CHECK(i == 100);
  }
}

TEST_CASE("json_string_bytes is the size append_json_string writes", "[json_batch_encoder]") {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 2000; ++i) {
    std::string text(rng() % 80, '\0');
    for (char& c : text) c = static_cast<char>(rng() % 2 ? rng() % 0x80 : rng() % 0x28);  // many escapes
    std::string out;
    tixport::append_json_string(out, text);
    CHECK(tixport::json_string_bytes(text) == out.size());
  }
  CHECK(tixport::json_string_bytes("") == 2);
  CHECK(tixport::json_string_bytes("\x01\"") == 10);
}

TEST_CASE("batch_limits.hpp bounds every batch: fixed parts at their widest, in both layouts",
          "[json_batch_encoder]") {
  constexpr std::int64_t kWidest = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kLatest = 253402300799;  // 9999-12-31T23:59:59Z
  const std::string body = "b\x01\"";
  const std::string name = "n\x02";
  const std::string email = "e@\\x";
  for (const json_style style : {json_style::compact, json_style::pretty}) {
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, tixport::kMaxObjectsPerArray}) {
      const std::vector<ticket_record> tickets(n, ticket_record{kLatest, kWidest, kWidest});
      const std::vector<comment_record> comments(n, comment_record{kLatest, kWidest, kWidest, false, body, kWidest});
      const std::vector<user_record> users(n, user_record{name, kWidest, email});
      std::string out;
      tixport::encode_batch(tickets, comments, users, style, out);
      const std::size_t texts =
          n * (tixport::json_string_bytes(body) + tixport::json_string_bytes(name) + tixport::json_string_bytes(email));
      const std::size_t bound =
          tixport::kMaxEnvelopeJsonBytes +
          n * (tixport::kMaxTicketJsonBytes + tixport::kMaxCommentFixedJsonBytes + tixport::kMaxUserFixedJsonBytes) +
          texts;
      INFO("style " << static_cast<int>(style) << ", " << n << " objects: " << out.size() << " bytes");
      CHECK(out.size() <= bound);
    }
  }
  // The entry limit verify had before the rule was shared (64 MiB) still holds every batch.
  STATIC_REQUIRE(tixport::kMaxBatchEntryBytes <= std::size_t{64} << 20);
  STATIC_REQUIRE(tixport::max_batch_entry_bytes(tixport::kMaxTextJsonBytes) == tixport::kMaxBatchEntryBytes);
}

TEST_CASE("integers are written as std::to_chars writes them: every digit count, both signs, the limits",
          "[json_batch_encoder]") {
  std::vector<std::int64_t> values = {0, 1, -1, 9, 10, 99, 100, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1};
  // Both sides of every power of ten, and of every power of two (where the digit count is guessed).
  for (std::uint64_t p = 1; p <= 1000000000000000000ULL; p *= 10) {
    for (const std::uint64_t n : {p - 1, p, p + 1}) {
      values.push_back(static_cast<std::int64_t>(n));
      values.push_back(-static_cast<std::int64_t>(n));
    }
  }
  for (int bit = 0; bit < 63; ++bit) {
    const std::int64_t p = std::int64_t{1} << bit;
    for (const std::int64_t n : {p - 1, p, p + 1}) {
      values.push_back(n);
      values.push_back(-n);
    }
  }
  std::mt19937_64 rng(64);
  for (int i = 0; i < 20000; ++i) {
    const int digits = 1 + static_cast<int>(rng() % 19);
    std::uint64_t limit = 1;
    for (int d = 0; d < digits; ++d) limit *= 10;
    values.push_back(static_cast<std::int64_t>(rng() % limit) * (rng() % 2 == 0 ? 1 : -1));
    values.push_back(static_cast<std::int64_t>(rng()));
  }
  for (const std::int64_t v : values) {
    char expected[24];
    const auto end = std::to_chars(expected, expected + sizeof expected, v).ptr;
    const std::string id(expected, end);
    std::string ticket;
    tixport::encode_ticket_object(ticket_record{0, v, v}, ticket);
    INFO("value " << v);
    CHECK(ticket == "{\"created_at\":\"1970-01-01T00:00:00Z\",\"requester_id\":" + id + ",\"id\":" + id + "}");
  }
}

TEST_CASE("a comment with every integer at its widest, both layouts", "[json_batch_encoder]") {
  // The longest run of members the compact writer builds on the stack: INT64_MIN ids, "false".
  const comment_record c{253402300799, INT64_MIN, INT64_MIN, false, "b", INT64_MIN};
  std::string compact;
  tixport::encode_comment_object(c, compact);
  CHECK(compact ==
        "{\"created_at\":\"9999-12-31T23:59:59Z\",\"ticket_id\":-9223372036854775808,\"id\":-9223372036854775808,"
        "\"public\":false,\"html_body\":\"b\",\"author_id\":-9223372036854775808}");
  const std::vector<comment_record> comments = {c};
  const std::string pretty = encode({}, comments, {}, json_style::pretty);
  CHECK(pretty.find("\"ticket_id\": -9223372036854775808,\n") != std::string::npos);
  CHECK(pretty.find("\"author_id\": -9223372036854775808\n") != std::string::npos);
  const std::string batch = encode({}, comments, {}, json_style::compact);
  CHECK(batch.find(compact) != std::string::npos);
}
