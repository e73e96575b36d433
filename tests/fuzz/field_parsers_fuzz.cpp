// File: field_parsers_fuzz.cpp
//
// libFuzzer target for the SPEC 1.1 field rules (field_parsers.hpp). The whole
// input is one CSV field; every parser runs on it and is compared with a
// reference written here independently from the SPEC (std::from_chars for ids,
// std::chrono's civil calendar for timestamps, a table-driven UTF-8 decoder
// for validation and repair, simdjson's validator as a third opinion), plus
// round trips (format_timestamp -> parse_timestamp, repair -> valid UTF-8).
//
//   build-fuzz/field_parsers_fuzz tests/fuzz/corpus/field_parsers -max_len=64
#include "tixport/csv/field_parsers.hpp"

#include "fuzz_check.hpp"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace {

using namespace tixport;

constexpr bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view reference_trim(std::string_view s) {
  const std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return s.substr(s.size());
  const std::size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// SPEC 1.1 ids: trimmed, `-?digits`, optionally `.0`, fits int64.
std::optional<std::int64_t> reference_id(std::string_view s) {
  s = reference_trim(s);
  if (s.ends_with(".0")) s.remove_suffix(2);
  const std::string_view digits = s.starts_with('-') ? s.substr(1) : s;
  if (!all_digits(digits)) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::optional<bool> reference_bool(std::string_view s) {
  s = reference_trim(s);
  std::string low;
  for (const char c : s) low.push_back(lower(c));
  for (const char* yes : {"true", "t", "yes", "y", "1"}) {
    if (low == yes) return true;
  }
  for (const char* no : {"false", "f", "no", "n", "0"}) {
    if (low == no) return false;
  }
  return std::nullopt;
}

// Reads `n` digits at s[pos]; -1 when any is missing or not a digit.
int digits_at(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_digit(s[pos + i])) return -1;
    v = v * 10 + (s[pos + i] - '0');
  }
  return v;
}

// SPEC 1.1 timestamps: YYYY-MM-DD[T| ]HH:MM:SS[.f+][Z|±HH:MM], calendar checked, the UTC
// result within year 1..9999.
std::optional<std::int64_t> reference_timestamp(std::string_view s) {
  using namespace std::chrono;
  s = reference_trim(s);
  const int y = digits_at(s, 0, 4);
  const int mo = digits_at(s, 5, 2);
  const int d = digits_at(s, 8, 2);
  const int h = digits_at(s, 11, 2);
  const int mi = digits_at(s, 14, 2);
  const int se = digits_at(s, 17, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || se < 0) return std::nullopt;
  if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!date.ok() || h > 23 || mi > 59 || se > 59) return std::nullopt;
  std::string_view rest = s.substr(19);
  if (rest.starts_with('.')) {
    std::size_t n = 1;
    while (n < rest.size() && is_digit(rest[n])) ++n;
    if (n == 1) return std::nullopt;
    rest.remove_prefix(n);
  }
  seconds offset{0};
  if (rest == "Z") {
    rest = {};
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    const int oh = digits_at(rest, 1, 2);
    const int om = digits_at(rest, 4, 2);
    if (oh < 0 || om < 0 || oh > 23 || om > 59) return std::nullopt;
    offset = hours{oh} + minutes{om};
    if (rest[0] == '-') offset = -offset;
    rest = {};
  }
  if (!rest.empty()) return std::nullopt;
  const sys_seconds local = sys_days{date} + hours{h} + minutes{mi} + seconds{se};
  const std::int64_t utc = (local - offset).time_since_epoch().count();
  if (utc < kMinTimestamp || utc > kMaxTimestamp) return std::nullopt;
  return utc;
}

// "YYYY-MM-DDTHH:MM:SSZ" of a timestamp in range, through std::chrono.
std::string reference_format(std::int64_t t) {
  using namespace std::chrono;
  const sys_seconds at{seconds{t}};
  const sys_days day_start = floor<days>(at);
  const year_month_day date{day_start};
  const hh_mm_ss<seconds> clock{at - day_start};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()));
  return buf;
}

bool reference_email(std::string_view t) {
  if (t.find_first_of(" \t\r\n") != std::string_view::npos) return false;
  const std::size_t at = t.find('@');
  return at != std::string_view::npos && at > 0 && at + 1 < t.size() && t.find('@', at + 1) == std::string_view::npos;
}

// Unicode Table 3-7: the allowed range of each byte after a lead byte.
struct byte_range {
  unsigned char lo;
  unsigned char hi;
};
struct lead_rule {
  std::size_t continuation_count;   // 0: never a lead byte
  std::array<byte_range, 3> next;   // ranges of the bytes after the lead
};
lead_rule rule_for(unsigned char lead) {
  constexpr byte_range kCont{0x80, 0xBF};
  if (lead >= 0xC2 && lead <= 0xDF) return {1, {kCont, kCont, kCont}};
  if (lead == 0xE0) return {2, {byte_range{0xA0, 0xBF}, kCont, kCont}};
  if (lead == 0xED) return {2, {byte_range{0x80, 0x9F}, kCont, kCont}};
  if (lead >= 0xE1 && lead <= 0xEF) return {2, {kCont, kCont, kCont}};
  if (lead == 0xF0) return {3, {byte_range{0x90, 0xBF}, kCont, kCont}};
  if (lead >= 0xF1 && lead <= 0xF3) return {3, {kCont, kCont, kCont}};
  if (lead == 0xF4) return {3, {byte_range{0x80, 0x8F}, kCont, kCont}};
  return {0, {kCont, kCont, kCont}};
}

// Python's bytes.decode("utf-8", "replace"), re-encoded: one U+FFFD per maximal subpart.
std::string reference_repair(std::string_view s, bool& replaced) {
  std::string out;
  replaced = false;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
      out.push_back(s[i++]);
      continue;
    }
    const lead_rule rule = rule_for(lead);
    std::size_t matched = 0;
    while (matched < rule.continuation_count && i + 1 + matched < s.size()) {
      const auto c = static_cast<unsigned char>(s[i + 1 + matched]);
      if (c < rule.next[matched].lo || c > rule.next[matched].hi) break;
      ++matched;
    }
    if (rule.continuation_count != 0 && matched == rule.continuation_count) {
      out.append(s.substr(i, 1 + matched));
    } else {
      out.append("\xEF\xBF\xBD");
      replaced = true;
    }
    i += 1 + matched;
  }
  return out;
}

void check_trim_and_null(std::string_view s) {
  const std::string_view t = trim_ws(s);
  FUZZ_CHECK(t == reference_trim(s));
  FUZZ_CHECK(t.empty() || (t.data() >= s.data() && t.data() + t.size() <= s.data() + s.size()));
  FUZZ_CHECK(is_null_field(s) == t.empty());
}

void check_id(std::string_view s) {
  const std::optional<std::int64_t> id = parse_id(s);
  FUZZ_CHECK(id == reference_id(s));
  if (id) {
    const std::string text = std::to_string(*id);
    FUZZ_CHECK(parse_id(text) == id);
    FUZZ_CHECK(parse_id(" " + text + ".0\t") == id);
  }
}

void check_timestamp(std::string_view s) {
  const std::optional<std::int64_t> t = parse_timestamp(s);
  FUZZ_CHECK(t == reference_timestamp(s));
  if (!t) return;
  FUZZ_CHECK(*t >= kMinTimestamp && *t <= kMaxTimestamp);
  char text[kTimestampTextSize];
  format_timestamp(*t, text);
  const std::string_view formatted(text, kTimestampTextSize);
  FUZZ_CHECK(formatted == reference_format(*t));
  FUZZ_CHECK(parse_timestamp(formatted) == t);
  // The write's shortcut: when it copies, it copies what formatting the seconds gives.
  char copied[kTimestampTextSize];
  if (copy_utc_timestamp(s, copied)) FUZZ_CHECK(std::string_view(copied, kTimestampTextSize) == formatted);
}

// Any int64 (from the first 8 bytes): clamped into range, then formatted like std::chrono.
void check_format(std::string_view s) {
  if (s.size() < sizeof(std::int64_t)) return;
  std::int64_t raw = 0;
  std::memcpy(&raw, s.data(), sizeof raw);
  const std::int64_t clamped = raw < kMinTimestamp ? kMinTimestamp : raw > kMaxTimestamp ? kMaxTimestamp : raw;
  char text[kTimestampTextSize];
  format_timestamp(raw, text);
  const std::string_view formatted(text, kTimestampTextSize);
  FUZZ_CHECK(formatted == reference_format(clamped));
  FUZZ_CHECK(parse_timestamp(formatted) == clamped);
}

void check_email(std::string_view s) {
  const std::string_view t = trim_ws(s);
  FUZZ_CHECK(is_valid_email(t) == reference_email(t));
  std::string key = "stale contents";
  email_key(t, key);
  FUZZ_CHECK(key.size() == t.size());
  for (std::size_t i = 0; i < t.size(); ++i) FUZZ_CHECK(key[i] == lower(t[i]));
}

void check_utf8(std::string_view s) {
  bool expect_replaced = false;
  const std::string expected = reference_repair(s, expect_replaced);
  const bool valid = is_valid_utf8(s);
  FUZZ_CHECK(valid == !expect_replaced);
  FUZZ_CHECK(valid == simdjson::validate_utf8(s.data(), s.size()));
  std::string out = "prefix:";
  const bool replaced = repair_utf8(s, out);
  FUZZ_CHECK(replaced == expect_replaced);
  FUZZ_CHECK(std::string_view(out).substr(0, 7) == "prefix:");
  FUZZ_CHECK(std::string_view(out).substr(7) == expected);
  const std::string_view repaired = std::string_view(out).substr(7);
  FUZZ_CHECK(is_valid_utf8(repaired));
  std::string again;
  FUZZ_CHECK(!repair_utf8(repaired, again));
  FUZZ_CHECK(again == repaired);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view field(reinterpret_cast<const char*>(data), size);
  check_trim_and_null(field);
  check_id(field);
  FUZZ_CHECK(parse_bool(field) == reference_bool(field));
  check_timestamp(field);
  check_format(field);
  check_email(field);
  check_utf8(field);
  return 0;
}
