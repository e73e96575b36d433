// File: field_parsers_test.cpp
//
// Tests of the SPEC 1.1 field rules: white space and null fields, ids, booleans,
// timestamps (checked against std::chrono's calendar), emails, and UTF-8
// validation and repair (checked against the Unicode Standard's examples,
// Python's bytes.decode("utf-8", "replace") and simdjson's validator).
#include "tixport/csv/field_parsers.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_view_literals;
using tixport::kTimestampTextSize;

namespace {

std::string formatted(std::int64_t seconds) {
  char text[kTimestampTextSize];
  tixport::format_timestamp(seconds, text);
  return std::string(text, sizeof text);
}

std::string repaired(std::string_view s) {
  std::string out;
  tixport::repair_utf8(s, out);
  return out;
}

/// Reference for the maximal-subpart rule, written from the definition rather
/// than like the implementation: at each position take the longest prefix of
/// the rest that is a prefix of some row of Table 3-7; a complete row is kept,
/// an incomplete one (or a lone byte fitting no row) becomes one U+FFFD.
std::string reference_repair(std::string_view s) {
  struct row {
    unsigned char lo[4];
    unsigned char hi[4];
    int length;
  };
  static constexpr row kTable37[] = {
      {{0x00}, {0x7F}, 1},
      {{0xC2, 0x80}, {0xDF, 0xBF}, 2},
      {{0xE0, 0xA0, 0x80}, {0xE0, 0xBF, 0xBF}, 3},
      {{0xE1, 0x80, 0x80}, {0xEC, 0xBF, 0xBF}, 3},
      {{0xED, 0x80, 0x80}, {0xED, 0x9F, 0xBF}, 3},
      {{0xEE, 0x80, 0x80}, {0xEF, 0xBF, 0xBF}, 3},
      {{0xF0, 0x90, 0x80, 0x80}, {0xF0, 0xBF, 0xBF, 0xBF}, 4},
      {{0xF1, 0x80, 0x80, 0x80}, {0xF3, 0xBF, 0xBF, 0xBF}, 4},
      {{0xF4, 0x80, 0x80, 0x80}, {0xF4, 0x8F, 0xBF, 0xBF}, 4},
  };
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    int best = 0;
    bool complete = false;
    for (const row& r : kTable37) {
      int k = 0;
      while (k < r.length && i + static_cast<std::size_t>(k) < s.size()) {
        const auto b = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
        if (b < r.lo[k] || b > r.hi[k]) break;
        ++k;
      }
      if (k > best || (k == best && k == r.length)) {
        best = k;
        complete = k == r.length;
      }
    }
    if (complete) {
      out.append(s.substr(i, static_cast<std::size_t>(best)));
    } else {
      out.append("\xEF\xBF\xBD");
    }
    i += static_cast<std::size_t>(best == 0 ? 1 : best);
  }
  return out;
}

/// Random bytes biased towards the interesting UTF-8 ranges.
std::string random_bytes(std::mt19937_64& rng, std::size_t max_len) {
  static constexpr unsigned char kPool[] = {'a', ' ', 0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                            0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE,
                                            0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
  std::uniform_int_distribution<std::size_t> len_dist(0, max_len);
  std::uniform_int_distribution<int> byte_dist(0, 255);
  std::uniform_int_distribution<std::size_t> pool_dist(0, sizeof kPool - 1);
  std::string s(len_dist(rng), '\0');
  for (char& c : s) {
    c = static_cast<char>((rng() & 1) != 0 ? kPool[pool_dist(rng)] : byte_dist(rng));
  }
  return s;
}

}  // namespace

TEST_CASE("trim_ws and is_null_field use ASCII space, tab, CR and LF only", "[field_parsers]") {
  CHECK(tixport::trim_ws("") == "");
  CHECK(tixport::trim_ws(" \t\r\n") == "");
  CHECK(tixport::trim_ws("  a b \r\n") == "a b");
  CHECK(tixport::trim_ws("\tx") == "x");
  CHECK(tixport::trim_ws("x\n") == "x");
  CHECK(tixport::trim_ws("\vx\f") == "\vx\f");                 // VT and FF are not white space
  CHECK(tixport::trim_ws("\xC2\xA0x\xC2\xA0") == "\xC2\xA0x\xC2\xA0");  // nor is NBSP
  CHECK(tixport::is_null_field(""));
  CHECK(tixport::is_null_field(" "));
  CHECK(tixport::is_null_field("\t\r\n "));
  CHECK_FALSE(tixport::is_null_field(" x "));
  CHECK_FALSE(tixport::is_null_field("\v"));
  CHECK_FALSE(tixport::is_null_field("\0"sv));
}

TEST_CASE("parse_id accepts [-]digits with an optional .0", "[field_parsers]") {
  using tixport::parse_id;
  CHECK(parse_id("0") == 0);
  CHECK(parse_id("76") == 76);
  CHECK(parse_id("00076") == 76);
  CHECK(parse_id(" 00076.0 ") == 76);
  CHECK(parse_id("\t42\r\n") == 42);
  CHECK(parse_id("42.0") == 42);
  CHECK(parse_id("-42") == -42);
  CHECK(parse_id("-42.0") == -42);
  CHECK(parse_id("-0") == 0);
  CHECK(parse_id("-0.0") == 0);
  CHECK(parse_id("9223372036854775807") == INT64_MAX);
  CHECK(parse_id("9223372036854775807.0") == INT64_MAX);
  CHECK(parse_id("-9223372036854775808") == INT64_MIN);
  CHECK(parse_id("-9223372036854775808.0") == INT64_MIN);
  CHECK(parse_id("0000000000000000000000009223372036854775807") == INT64_MAX);
  CHECK(parse_id("-0000000000000000000000009223372036854775808") == INT64_MIN);
  CHECK(parse_id("1000000000000000000") == 1000000000000000000);
}

TEST_CASE("parse_id rejects everything else", "[field_parsers]") {
  using tixport::parse_id;
  for (std::string_view bad :
       {""sv, " "sv, "-"sv, "-.0"sv, ".0"sv, "+5"sv, "1e3"sv, "1.5"sv, "1.00"sv, "12.00"sv,
        "1."sv, "1.0.0"sv, "0x10"sv, "1 2"sv, "- 1"sv, "--1"sv, "1-"sv, "abc"sv, "١"sv, "1,000"sv,
        "9223372036854775808"sv, "-9223372036854775809"sv, "18446744073709551616"sv,
        "99999999999999999999"sv, "9223372036854775808.0"sv, "\0"sv, "1\0"sv, "1.0 .0"sv,
        "1\v"sv}) {
    INFO("input: " << bad);
    CHECK_FALSE(parse_id(bad).has_value());
  }
}

TEST_CASE("parse_bool accepts the ten words in any ASCII case", "[field_parsers]") {
  using tixport::parse_bool;
  for (std::string_view yes : {"true"sv, "TRUE"sv, "True"sv, "tRuE"sv, "t"sv, "T"sv, "yes"sv, "YES"sv,
                               "Yes"sv, "y"sv, "Y"sv, "1"sv, " true "sv, "\tY\r\n"sv}) {
    INFO("input: " << yes);
    CHECK(parse_bool(yes) == true);
  }
  for (std::string_view no : {"false"sv, "FALSE"sv, "False"sv, "fAlSe"sv, "f"sv, "F"sv, "no"sv,
                              "NO"sv, "No"sv, "n"sv, "N"sv, "0"sv, " False "sv, "\n0\n"sv}) {
    INFO("input: " << no);
    CHECK(parse_bool(no) == false);
  }
  for (std::string_view bad : {""sv, " "sv, "2"sv, "00"sv, "01"sv, "tru"sv, "truee"sv, "falsey"sv,
                               "ye"sv, "on"sv, "off"sv, "nil"sv, "-1"sv, "1.0"sv, "t r"sv,
                               "\xC3\xBF"sv}) {
    INFO("input: " << bad);
    CHECK_FALSE(parse_bool(bad).has_value());
  }
}

TEST_CASE("parse_timestamp converts ISO 8601 to UTC seconds", "[field_parsers]") {
  using tixport::parse_timestamp;
  // Expected values from Python's datetime / calendar.timegm.
  CHECK(parse_timestamp("1970-01-01T00:00:00") == 0);
  CHECK(parse_timestamp("1970-01-01 00:00:00Z") == 0);
  CHECK(parse_timestamp("  1970-01-01T00:00:00+00:00\r\n") == 0);
  CHECK(parse_timestamp("1970-01-01T00:00:00-00:00") == 0);
  CHECK(parse_timestamp("2021-01-01 00:00:00.123456+05:30") == 1609439400);
  CHECK(parse_timestamp("2000-02-29T12:34:56Z") == 951827696);
  CHECK(parse_timestamp("2024-12-31T23:30:00-01:00") == 1735691400);  // crosses into 2025
  CHECK(parse_timestamp("2020-03-01T00:00:00+23:59") == 1582934460);  // back into Feb 29
  CHECK(parse_timestamp("1969-12-31T23:59:59.999") == -1);            // truncated, not rounded
  CHECK(parse_timestamp("1969-12-31T23:59:59.999999999999Z") == -1);
  CHECK(parse_timestamp("2038-01-19T03:14:08Z") == 2147483648);
  CHECK(parse_timestamp("1600-03-01T00:00:00Z") == -11670912000);
  CHECK(parse_timestamp("1900-03-01T00:00:00Z") == -2203891200);
  CHECK(parse_timestamp("2016-12-31T23:59:59Z") == 1483228799);
  CHECK(parse_timestamp("0001-01-01T00:00:00Z") == tixport::kMinTimestamp);
  CHECK(parse_timestamp("9999-12-31T23:59:59Z") == tixport::kMaxTimestamp);
  CHECK(parse_timestamp("9999-12-31T23:59:59.9") == tixport::kMaxTimestamp);
  // Year 0000 is parsed, and only the UTC result must be in range.
  CHECK(parse_timestamp("0000-12-31T23:00:00-01:00") == tixport::kMinTimestamp);
  CHECK(parse_timestamp("10000-01-01T00:00:00Z") == std::nullopt);
  CHECK(parse_timestamp("0001-01-01T00:30:00+01:00") == std::nullopt);  // 0000-12-31T23:30Z
  CHECK(parse_timestamp("0000-12-31T23:59:59Z") == std::nullopt);
  CHECK(parse_timestamp("9999-12-31T23:59:59-00:01") == std::nullopt);  // 10000-01-01T00:00:59Z
  CHECK(parse_timestamp("9999-12-31T23:00:00-00:59") == tixport::kMaxTimestamp - 59);  // 23:59:00Z
}

TEST_CASE("parse_timestamp validates the calendar and the syntax", "[field_parsers]") {
  using tixport::parse_timestamp;
  CHECK(parse_timestamp("2000-02-29T00:00:00").has_value());   // divisible by 400
  CHECK(parse_timestamp("2024-02-29T00:00:00").has_value());
  CHECK_FALSE(parse_timestamp("1900-02-29T00:00:00").has_value());  // divisible by 100
  CHECK_FALSE(parse_timestamp("2023-02-29T00:00:00").has_value());
  CHECK(parse_timestamp("2023-02-28T23:59:59").has_value());
  for (std::string_view bad : {
           ""sv, " "sv, "2021-01-01"sv, "2021-01-01T00:00"sv, "2021-1-01T00:00:00"sv,
           "21-01-01T00:00:00"sv, "2021-00-10T00:00:00"sv, "2021-13-10T00:00:00"sv,
           "2021-01-00T00:00:00"sv, "2021-01-32T00:00:00"sv, "2021-04-31T00:00:00"sv,
           "2021-06-31T00:00:00"sv, "2021-09-31T00:00:00"sv, "2021-11-31T00:00:00"sv,
           "2021-01-01T24:00:00"sv, "2021-01-01T23:60:00"sv, "2021-01-01T23:59:60"sv,
           "2021-01-01t00:00:00"sv, "2021-01-01_00:00:00"sv, "2021-01-01T00:00:00z"sv,
           "2021/01/01T00:00:00"sv, "2021-01-01T00-00-00"sv, "2021-01-01T00:00:00."sv,
           "2021-01-01T00:00:00.Z"sv, "2021-01-01T00:00:00.5.5"sv, "2021-01-01T00:00:00,5"sv,
           "2021-01-01T00:00:00+05"sv, "2021-01-01T00:00:00+0530"sv, "2021-01-01T00:00:00+5:30"sv,
           "2021-01-01T00:00:00+05:3"sv, "2021-01-01T00:00:00+24:00"sv, "2021-01-01T00:00:00+05:60"sv,
           "2021-01-01T00:00:00Z+01:00"sv, "2021-01-01T00:00:00+01:00Z"sv, "2021-01-01T00:00:00ZZ"sv,
           "2021-01-01T00:00:00 Z"sv, "2021-01-01T00:00:00+05:30 x"sv, "2021-01-01T00:00:00 x"sv,
           "2021-01-01 T00:00:00"sv, "+2021-01-01T00:00:00"sv, "2021-01-01T00:00:00x"sv,
           "2021-01-01T0a:00:00"sv, "202a-01-01T00:00:00"sv, "2021-01-01T00:00:00+0a:00"sv,
           "2021-01-01T00:00:00\0"sv, "2021-01-01T00:00:00.12a"sv, "2021-01-01T00:00:00-"sv}) {
    INFO("input: " << bad);
    CHECK_FALSE(parse_timestamp(bad).has_value());
  }
}

TEST_CASE("parse_timestamp rejects every byte out of place in the fixed part", "[field_parsers]") {
  // Each of the 19 bytes of a valid timestamp set to each of the 256 values: a byte that breaks
  // the shape (a digit where a digit goes, '-' / ':' exactly, 'T' or ' ' between date and time)
  // is refused; a digit that keeps the calendar valid (any last digit of the seconds) is not.
  const std::string base = "2021-06-15 12:34:56";
  const std::string digits_at = "dddd-dd-dd?dd:dd:dd";
  for (std::size_t at = 0; at < base.size(); ++at) {
    for (int value = 0; value < 256; ++value) {
      std::string s = base;
      const char c = static_cast<char>(value);
      s[at] = c;
      bool shape = false;
      if (digits_at[at] == 'd') {
        shape = c >= '0' && c <= '9';
      } else if (digits_at[at] == '?') {
        shape = c == 'T' || c == ' ';
      } else {
        shape = c == base[at];
      }
      INFO("byte " << at << " = " << value);
      if (!shape) CHECK_FALSE(tixport::parse_timestamp(s).has_value());
      // 2021-06-15 12:34:5X is 1623760490 + X seconds, with 'T' or ' ' between date and time.
      if (shape && at == 18) CHECK(tixport::parse_timestamp(s) == 1623760490 + (value - '0'));
      if (shape && at == 10) CHECK(tixport::parse_timestamp(s) == 1623760496);
    }
  }
}

TEST_CASE("format_timestamp writes YYYY-MM-DDTHH:MM:SSZ", "[field_parsers]") {
  CHECK(formatted(0) == "1970-01-01T00:00:00Z");
  CHECK(formatted(-1) == "1969-12-31T23:59:59Z");
  CHECK(formatted(-86400) == "1969-12-31T00:00:00Z");
  CHECK(formatted(-86401) == "1969-12-30T23:59:59Z");
  CHECK(formatted(1609439400) == "2020-12-31T18:30:00Z");
  CHECK(formatted(951827696) == "2000-02-29T12:34:56Z");
  CHECK(formatted(2147483648) == "2038-01-19T03:14:08Z");
  CHECK(formatted(tixport::kMinTimestamp) == "0001-01-01T00:00:00Z");
  CHECK(formatted(tixport::kMaxTimestamp) == "9999-12-31T23:59:59Z");
  // Out-of-range values are clamped rather than written as garbage.
  CHECK(formatted(INT64_MIN) == "0001-01-01T00:00:00Z");
  CHECK(formatted(INT64_MAX) == "9999-12-31T23:59:59Z");
  // The spec's example: fraction dropped, offset applied, day and year crossed.
  CHECK(formatted(*tixport::parse_timestamp("2021-01-01 00:00:00.123456+05:30")) ==
        "2020-12-31T18:30:00Z");
  CHECK(formatted(*tixport::parse_timestamp("2024-12-31T23:30:00-01:00")) == "2025-01-01T00:30:00Z");
}

TEST_CASE("timestamps agree with std::chrono's calendar across the whole range", "[field_parsers]") {
  using namespace std::chrono;
  // Mismatches are counted and asserted once: per-day assertions are slow under sanitizers.
  std::size_t checked = 0;
  std::size_t mismatches = 0;
  std::string first_mismatch;
  const auto check_day = [&](sys_days day) {
    const year_month_day ymd{day};
    const std::int64_t seconds = static_cast<std::int64_t>(day.time_since_epoch().count()) * 86400;
    char expected[32];
    std::snprintf(expected, sizeof expected, "%04d-%02u-%02uT13:07:59Z", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    const std::int64_t at = seconds + 13 * 3600 + 7 * 60 + 59;
    ++checked;
    if (formatted(at) != expected || tixport::parse_timestamp(expected) != at) {
      if (mismatches++ == 0) first_mismatch = expected;
    }
  };
  const sys_days first = year{1} / January / 1;
  const sys_days last = year{9999} / December / 31;
  // A stride of 13 days walks every day-of-month and month across all years,
  // and whole years around the century rules are checked day by day.
  for (sys_days d = first; d <= last; d += days{13}) check_day(d);
  for (int y : {1, 2, 4, 1600, 1899, 1900, 1969, 1970, 2000, 2100, 2400, 9999}) {
    for (sys_days d = year{y} / January / 1; d <= sys_days{year{y} / December / 31}; d += days{1}) {
      check_day(d);
    }
  }
  INFO("first mismatch: " << first_mismatch);
  CHECK(mismatches == 0);
  CHECK(checked == (3652059 + 12) / 13 + 365 * 12 + 4);  // leap: 4, 1600, 2000, 2400
}

TEST_CASE("format then parse gives back random seconds", "[field_parsers]") {
  std::mt19937_64 rng(20240229);
  std::uniform_int_distribution<std::int64_t> dist(tixport::kMinTimestamp, tixport::kMaxTimestamp);
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t s = dist(rng);
    REQUIRE(tixport::parse_timestamp(formatted(s)) == s);
  }
}

TEST_CASE("copy_utc_timestamp copies exactly what parsing and formatting would write", "[field_parsers]") {
  // Random texts around the valid shapes: every zone form (offsets of zero among them), a
  // fraction, white space, the first and last years, February 29th, and broken bytes.
  std::mt19937_64 rng(20261206);
  const auto pick = [&](std::initializer_list<const char*> options) {
    return std::string(*(options.begin() + static_cast<std::ptrdiff_t>(rng() % options.size())));
  };
  std::uint64_t copied = 0;
  std::uint64_t offset_zero = 0;
  for (int i = 0; i < 200000; ++i) {
    char date[32];
    std::snprintf(date, sizeof date, "%s-%02d-%02d", pick({"0000", "0001", "1970", "2019", "2024", "9999"}).c_str(),
                  static_cast<int>(rng() % 14), static_cast<int>(rng() % 32));
    char time[16];
    std::snprintf(time, sizeof time, "%02d:%02d:%02d", static_cast<int>(rng() % 25), static_cast<int>(rng() % 61),
                  static_cast<int>(rng() % 61));
    std::string text = pick({"", " ", "\t"}) + date + pick({"T", " ", "t", "_"}) + time +
                       pick({"", "", ".5", ".123456", "."}) +
                       pick({"", "", "Z", "+00:00", "-00:00", "+02:00", "-05:30", "+0000", "z", "Zx"}) +
                       pick({"", "", " ", "\r\n"});
    if (rng() % 50 == 0) text[rng() % text.size()] = static_cast<char>(rng());
    INFO("text \"" << text << "\"");
    char out[kTimestampTextSize];
    const std::optional<std::int64_t> seconds = tixport::parse_timestamp(text);
    if (tixport::copy_utc_timestamp(text, out)) {
      ++copied;
      REQUIRE(seconds.has_value());
      REQUIRE(std::string_view(out, sizeof out) == formatted(*seconds));
      offset_zero += text.find("00:00", 19) != std::string::npos ? 1 : 0;
    } else if (seconds) {
      // Only a non-zero offset is left to the conversion.
      REQUIRE((text.find('+', 19) != std::string::npos || text.find('-', 19) != std::string::npos));
      REQUIRE(text.find("+00:00") == std::string::npos);
      REQUIRE(text.find("-00:00") == std::string::npos);
    }
  }
  CHECK(copied > 10000);
  CHECK(offset_zero > 1000);
}

TEST_CASE("is_valid_email wants one @ with text on both sides and no white space", "[field_parsers]") {
  using tixport::is_valid_email;
  CHECK(is_valid_email("a@b"));
  CHECK(is_valid_email("Jane.Doe+tag@Example.ORG"));
  CHECK(is_valid_email("\xC3\xA9l\xC3\xA8ve@\xC3\xA9" "cole.fr"));
  CHECK(is_valid_email("x@y@"sv.substr(0, 3)));
  for (std::string_view bad : {""sv, "@"sv, "a@"sv, "@b"sv, "ab"sv, "a@@b"sv, "a@b@c"sv, "a b@c"sv,
                               "a@b c"sv, "a\t@b"sv, "a@b\r"sv, "a@\nb"sv, " a@b"sv}) {
    INFO("input: " << bad);
    CHECK_FALSE(is_valid_email(bad));
  }
}

TEST_CASE("email_key lower-cases ASCII only", "[field_parsers]") {
  std::string key = "stale contents that must go";
  tixport::email_key("Jane.DOE@Example.Org", key);
  CHECK(key == "jane.doe@example.org");
  tixport::email_key("\xC3\x89MILE@X.FR", key);  // É stays as its bytes
  CHECK(key == "\xC3\x89mile@x.fr");
  tixport::email_key("AZaz09@[]^_`{}", key);
  CHECK(key == "azaz09@[]^_`{}");
  tixport::email_key("", key);
  CHECK(key.empty());
}

TEST_CASE("repair_utf8 follows the maximal-subpart practice (Python's errors=replace)", "[field_parsers]") {
  struct repair_case {
    std::string_view input;
    std::string_view expected;
  };
  // Expected outputs are Python 3.11's bytes.decode("utf-8", "replace").encode().
  const repair_case cases[] = {
      {""sv, ""sv},
      {"plain ascii"sv, "plain ascii"sv},
      // The Unicode Standard, Table 3-8 example.
      {"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"sv,
       "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD" "d"sv},
      // Overlongs: C0, C1, E0 80..9F, F0 80..8F never start a sequence past the lead.
      {"\xC0\xAF"sv, "\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xC1\xBF"sv, "\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xE0\x80\xAF"sv, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xE0\x9F\xBF"sv, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xE0\xA0\x80"sv, "\xE0\xA0\x80"sv},
      {"\xF0\x80\x80\xAF"sv, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xF0\x8F\xBF\xBF"sv, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xF0\x90\x80\x80"sv, "\xF0\x90\x80\x80"sv},
      // Surrogates ED A0..BF.
      {"\xED\xA0\x80"sv, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xED\xBF\xBF"sv, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xED\x9F\xBF"sv, "\xED\x9F\xBF"sv},
      // Above U+10FFFF: F4 90.., F5..FF.
      {"\xF4\x8F\xBF\xBF"sv, "\xF4\x8F\xBF\xBF"sv},
      {"\xF4\x90\x80\x80"sv, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xF5\x80\x80\x80"sv, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xFF"sv, "\xEF\xBF\xBD"sv},
      {"\xFE\xFF"sv, "\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xF8\x88\x80\x80\x80"sv,
       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"\xFC\x84\x80\x80\x80\x80"sv,
       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      // Truncated sequences: one U+FFFD for the whole truncated prefix.
      {"\xE2\x82"sv, "\xEF\xBF\xBD"sv},
      {"\xE2\x82\xAC"sv, "\xE2\x82\xAC"sv},
      {"\xF0\x9F\x98"sv, "\xEF\xBF\xBD"sv},
      {"\xF0\x9F"sv, "\xEF\xBF\xBD"sv},
      {"\xF0"sv, "\xEF\xBF\xBD"sv},
      {"\xF0\x9F\x98\x80"sv, "\xF0\x9F\x98\x80"sv},
      {"\xC3"sv, "\xEF\xBF\xBD"sv},
      {"\xC3\xA9"sv, "\xC3\xA9"sv},
      {"\xC3("sv, "\xEF\xBF\xBD("sv},
      {"\xDF\xBF\xDF"sv, "\xDF\xBF\xEF\xBF\xBD"sv},
      {"\xE1\x80\xE1\x80\xE1\x80"sv, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      // Lone continuation bytes, one U+FFFD each.
      {"\x80\x80\x80"sv, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"sv},
      {"abc\xE2\x82\xAC" "def\xE2\x82xyz\xC3"sv,
       "abc\xE2\x82\xAC" "def\xEF\xBF\xBDxyz\xEF\xBF\xBD"sv},
      // An error after the 16-byte ASCII fast path.
      {"0123456789abcdef0123456789\xFF" "abcdef0123456789abcdef"sv,
       "0123456789abcdef0123456789\xEF\xBF\xBD" "abcdef0123456789abcdef"sv},
      // U+FFFD itself and NUL are valid.
      {"\xEF\xBF\xBD"sv, "\xEF\xBF\xBD"sv},
      {"a\0b"sv, "a\0b"sv},
  };
  for (const repair_case& c : cases) {
    INFO("case index " << (&c - cases));
    std::string out = "prefix:";
    const bool changed = tixport::repair_utf8(c.input, out);
    CHECK(out == "prefix:" + std::string(c.expected));
    CHECK(changed == (c.input != c.expected));
    CHECK(tixport::is_valid_utf8(c.input) == (c.input == c.expected));
    CHECK(tixport::is_valid_utf8(c.expected));
    CHECK(reference_repair(c.input) == c.expected);  // the reference itself matches Python
  }
}

namespace {

/// Counts the strings of one to three bytes (first byte any, later bytes from
/// `tail_bytes`) on which is_valid_utf8, simdjson's validator and repair_utf8
/// (its own decoder, which must leave valid input unchanged) disagree.
/// Counted in plain loops and asserted once by the caller: millions of
/// Catch2 assertions are slow under sanitizers.
struct utf8_sweep {
  std::size_t checked = 0;
  std::size_t mismatches = 0;
  unsigned long first_mismatch = 0;  // the bytes as a big-endian number, for the message
};

utf8_sweep sweep_short_strings(const std::vector<unsigned char>& tail_bytes) {
  utf8_sweep result;
  std::string scratch;
  char buf[3];
  const auto check = [&](std::size_t len) {
    ++result.checked;
    const std::string_view bytes(buf, len);
    scratch.clear();
    const bool repaired_any = tixport::repair_utf8(bytes, scratch);
    const bool valid = tixport::is_valid_utf8(bytes);
    if (valid != simdjson::validate_utf8(buf, len) || valid == repaired_any ||
        (!repaired_any && scratch != bytes)) {
      if (result.mismatches++ == 0) {
        for (std::size_t i = 0; i < len; ++i) {
          result.first_mismatch = result.first_mismatch << 8 | static_cast<unsigned char>(buf[i]);
        }
      }
    }
  };
  for (int a = 0; a < 256; ++a) {
    buf[0] = static_cast<char>(a);
    check(1);
    for (unsigned char b : tail_bytes) {
      buf[1] = static_cast<char>(b);
      check(2);
      for (unsigned char c : tail_bytes) {
        buf[2] = static_cast<char>(c);
        check(3);
      }
    }
  }
  return result;
}

std::vector<unsigned char> all_bytes() {
  std::vector<unsigned char> v;
  for (int b = 0; b < 256; ++b) v.push_back(static_cast<unsigned char>(b));
  return v;
}

}  // namespace

TEST_CASE("is_valid_utf8, repair_utf8 and simdjson agree on short strings", "[field_parsers]") {
  // Every first byte; later bytes at every range boundary of Table 3-7 and
  // around ASCII, plus all 2-byte strings in full.
  const std::vector<unsigned char> boundaries = {0x00, 0x09, 0x22, 0x41, 0x5C, 0x7F, 0x80, 0x81,
                                                 0x8E, 0x8F, 0x90, 0x91, 0x9E, 0x9F, 0xA0, 0xA1,
                                                 0xBE, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED,
                                                 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  const utf8_sweep boundary = sweep_short_strings(boundaries);
  INFO("first mismatch: 0x" << std::hex << boundary.first_mismatch);
  CHECK(boundary.mismatches == 0);
  CHECK(boundary.checked == 256 * (1 + boundaries.size() + boundaries.size() * boundaries.size()));

  std::string scratch;
  std::size_t two_byte_mismatches = 0;
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const char buf[2] = {static_cast<char>(a), static_cast<char>(b)};
      scratch.clear();
      const bool valid = tixport::is_valid_utf8({buf, 2});
      if (valid != simdjson::validate_utf8(buf, 2) || valid == tixport::repair_utf8({buf, 2}, scratch)) {
        ++two_byte_mismatches;
      }
    }
  }
  CHECK(two_byte_mismatches == 0);
}

TEST_CASE("is_valid_utf8, repair_utf8 and simdjson agree on every 3-byte string",
          "[.slow][field_parsers_exhaustive]") {
  const utf8_sweep all = sweep_short_strings(all_bytes());
  INFO("first mismatch: 0x" << std::hex << all.first_mismatch);
  CHECK(all.mismatches == 0);
  CHECK(all.checked == 256 + 256 * 256 + 256 * 256 * 256);
}

TEST_CASE("is_valid_utf8 checks every four-byte lead and boundary", "[field_parsers]") {
  static constexpr unsigned char kBytes[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                             0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF1, 0xF3,
                                             0xF4, 0xF5, 0xFF};
  std::size_t mismatches = 0;
  char buf[4];
  for (int lead = 0xF0; lead <= 0xFF; ++lead) {
    buf[0] = static_cast<char>(lead);
    for (unsigned char b : kBytes) {
      for (unsigned char c : kBytes) {
        for (unsigned char d : kBytes) {
          buf[1] = static_cast<char>(b);
          buf[2] = static_cast<char>(c);
          buf[3] = static_cast<char>(d);
          const std::string_view bytes(buf, 4);
          if (tixport::is_valid_utf8(bytes) != simdjson::validate_utf8(buf, 4) ||
              reference_repair(bytes) != repaired(bytes)) {
            ++mismatches;
          }
        }
      }
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("repair_utf8 matches the reference on random bytes", "[field_parsers]") {
  std::mt19937_64 rng(8259);
  for (int i = 0; i < 20000; ++i) {
    const std::string s = random_bytes(rng, 48);
    const std::string expected = reference_repair(s);
    std::string out;
    const bool changed = tixport::repair_utf8(s, out);
    INFO("iteration " << i);
    REQUIRE(out == expected);
    REQUIRE(changed == (expected != s));
    REQUIRE(tixport::is_valid_utf8(s) == simdjson::validate_utf8(s.data(), s.size()));
    REQUIRE(tixport::is_valid_utf8(s) == !changed);
    REQUIRE(tixport::is_valid_utf8(out));
  }
}

TEST_CASE("is_valid_utf8 finds an error at every offset of a long string", "[field_parsers]") {
  const std::string clean = "The quick brown fox \xE2\x80\x94 jumps over the lazy dog \xF0\x9F\x90\x95.";
  REQUIRE(tixport::is_valid_utf8(clean));
  for (std::size_t at = 0; at <= clean.size(); ++at) {
    std::string broken = clean;
    broken.insert(at, 1, '\xFF');
    INFO("offset " << at);
    CHECK_FALSE(tixport::is_valid_utf8(broken));
    std::string out;
    CHECK(tixport::repair_utf8(broken, out));
    CHECK(out == reference_repair(broken));
  }
}

TEST_CASE("parse_id equals a plain reference on random digit strings with stray bytes", "[field_parsers]") {
  // Reference: the rules of SPEC 1.1 spelled out digit by digit, with a division per digit.
  const auto reference = [](std::string_view s) -> std::optional<std::int64_t> {
    s = tixport::trim_ws(s);
    if (s.size() >= 2 && s.substr(s.size() - 2) == ".0") s.remove_suffix(2);
    const bool negative = !s.empty() && s[0] == '-';
    if (negative) s.remove_prefix(1);
    if (s.empty()) return std::nullopt;
    const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
    std::uint64_t v = 0;
    bool too_big = false;
    for (const char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      const auto d = static_cast<std::uint64_t>(c - '0');
      if (too_big || v > (limit - d) / 10) {
        too_big = true;
      } else {
        v = v * 10 + d;
      }
    }
    if (too_big) return std::nullopt;
    return negative ? static_cast<std::int64_t>(~v + 1) : static_cast<std::int64_t>(v);
  };
  std::mt19937_64 rng(76);
  constexpr std::string_view kStray = "/:a .-+\t\x80\xff";
  for (int i = 0; i < 200000; ++i) {
    std::string s;
    if (rng() % 4 == 0) s += '-';
    const std::size_t zeros = rng() % 3 == 0 ? rng() % 6 : 0;
    s.append(zeros, '0');
    const std::size_t digits = 1 + rng() % 21;
    for (std::size_t d = 0; d < digits; ++d) s += static_cast<char>('0' + rng() % 10);
    if (rng() % 5 == 0) s += ".0";
    if (rng() % 3 == 0) s[rng() % s.size()] = kStray[rng() % kStray.size()];
    INFO("input \"" << s << "\"");
    REQUIRE(tixport::parse_id(s) == reference(s));
  }
}
