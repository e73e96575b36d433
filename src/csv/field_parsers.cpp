// File: field_parsers.cpp
//
// Implements the SPEC 1.1 field rules declared in field_parsers.hpp. All
// parsers work on fixed positions or single passes over the bytes: no locale,
// no regex, no iostreams, no allocation and no exceptions on the valid path.
//
//   auto id = tixport::parse_id("-00042.0");   // -42
#include "tixport/csv/field_parsers.hpp"

#include <simdjson.h>

#include <bit>
#include <cstring>
#include <initializer_list>

namespace tixport {
namespace {

constexpr std::int64_t kSecondsPerDay = 86400;
constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
constexpr std::size_t kWordSize = sizeof(std::uint64_t);
constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD in UTF-8
constexpr std::size_t kReplacementSize = 3;

constexpr bool is_ws(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// When the eight bytes of `w` (memory order, little-endian) are all ASCII digits, store
/// their value in `out` (SWAR, as simdjson's parse_eight_digits_unrolled does).
inline bool parse_eight_digit_word(std::uint64_t w, std::uint64_t& out) noexcept {
  if constexpr (std::endian::native != std::endian::little) {
    return false;  // the scalar loop handles everything
  } else {
    const std::uint64_t high = w & 0xF0F0F0F0F0F0F0F0ULL;
    const std::uint64_t carry = ((w + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4;
    if ((high | carry) != 0x3333333333333333ULL) return false;
    w = ((w & 0x0F0F0F0F0F0F0F0FULL) * 2561) >> 8;
    w = ((w & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
    out = ((w & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32;
    return true;
  }
}

/// When p[0..8) are all ASCII digits, store their value in `out` (ids are 8-19 digits: this
/// halves their cost).
inline bool parse_eight_digits(const char* p, std::uint64_t& out) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return parse_eight_digit_word(w, out);
}

/// When p[0..k), 1 <= k <= 7, are all ASCII digits, store their value in `out`. Reads p[0..8):
/// the caller guarantees those bytes exist. The k digits are moved to the word's last bytes
/// behind '0's, which parse as eight digits with the same value.
inline bool parse_leading_digits(const char* p, std::size_t k, std::uint64_t& out) noexcept {
  if constexpr (std::endian::native != std::endian::little) return false;  // the shifts assume it
  constexpr std::uint64_t kZeros = 0x3030303030303030ULL;  // "00000000"
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  const auto shift = static_cast<unsigned>(8 * (kWordSize - k));  // 8..56
  return parse_eight_digit_word((w << shift) | (kZeros >> (64 - shift)), out);
}

constexpr char to_lower_ascii(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::uint64_t load_word(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

/// Reads exactly `count` decimal digits at `p`; false when any is not a digit.
bool read_fixed_digits(const char* p, int count, int& value) noexcept {
  int v = 0;
  for (int i = 0; i < count; ++i) {
    if (!is_digit(p[i])) return false;
    v = v * 10 + (p[i] - '0');
  }
  value = v;
  return true;
}

/// The 14 digits of "YYYY-MM-DD?HH:MM:SS" at p[0..19) (? is 'T' or ' '); false when a digit or a
/// separator is not there. Three overlapping 8-byte words, each checked at once (SWAR): this runs
/// three times per comment (two dates on the parse, COMMENT_CREATED_AT again at write time).
bool read_timestamp_fixed(const char* p, int& year, int& month, int& day, int& hour, int& minute,
                          int& second) noexcept {
  if constexpr (std::endian::native != std::endian::little) {
    return read_fixed_digits(p, 4, year) && p[4] == '-' && read_fixed_digits(p + 5, 2, month) && p[7] == '-' &&
           read_fixed_digits(p + 8, 2, day) && (p[10] == 'T' || p[10] == ' ') &&
           read_fixed_digits(p + 11, 2, hour) && p[13] == ':' && read_fixed_digits(p + 14, 2, minute) &&
           p[16] == ':' && read_fixed_digits(p + 17, 2, second);
  } else {
    // Per word: the expected bytes ('0' where a digit goes), which bytes are separators (must
    // be equal) and which are digits. XOR with '0' maps exactly the bytes '0'..'9' to 0..9.
    constexpr auto bytes_at = [](std::initializer_list<int> positions) {
      std::uint64_t mask = 0;
      for (const int k : positions) mask |= std::uint64_t{0xFF} << (8 * k);
      return mask;
    };
    constexpr auto text_word = [](const char (&text)[9]) {
      std::uint64_t w = 0;
      for (int i = 7; i >= 0; --i) w = (w << 8) | static_cast<unsigned char>(text[i]);
      return w;
    };
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    const auto check = [](std::uint64_t got, std::uint64_t expected, std::uint64_t separators, std::uint64_t digits,
                          std::uint64_t& values) {
      const std::uint64_t x = got ^ expected;
      values = x & digits;
      // A byte of 0..9 stays below 0x80 after + 0x76; 0x0A..0x7F crosses it; 0x80.. has it.
      return (x & separators) == 0 && (((values + kOnes * 0x76) | values) & kHighBits) == 0;
    };
    constexpr std::uint64_t kDateText = text_word("0000-00-");  // p[0..8)
    constexpr std::uint64_t kDayText = text_word("00000000");   // p[8..16): only DD is read here
    constexpr std::uint64_t kTimeText = text_word("00:00:00");  // p[11..19)
    std::uint64_t date, days, time;
    // && (not &: Clang's -Wbitwise-instead-of-logical stopped the fuzz build on it).
    const bool ok = check(load_word(p), kDateText, bytes_at({4, 7}), bytes_at({0, 1, 2, 3, 5, 6}), date) &&
                    check(load_word(p + 8), kDayText, 0, bytes_at({0, 1}), days) &&
                    check(load_word(p + 11), kTimeText, bytes_at({2, 5}), bytes_at({0, 1, 3, 4, 6, 7}), time) &&
                    (p[10] == 'T' || p[10] == ' ');
    if (!ok) return false;
    const auto at = [](std::uint64_t digits, int k) { return static_cast<int>((digits >> (8 * k)) & 0xFF); };
    year = at(date, 0) * 1000 + at(date, 1) * 100 + at(date, 2) * 10 + at(date, 3);
    month = at(date, 5) * 10 + at(date, 6);
    day = at(days, 0) * 10 + at(days, 1);
    hour = at(time, 0) * 10 + at(time, 1);
    minute = at(time, 3) * 10 + at(time, 4);
    second = at(time, 6) * 10 + at(time, 7);
    return true;
  }
}

constexpr bool is_leap_year(int y) noexcept {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

constexpr int days_in_month(int y, int m) noexcept {
  constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && is_leap_year(y)) ? 29 : kDays[m - 1];
}

/// Howard Hinnant's days_from_civil: days since 1970-01-01 of y-m-d
/// (proleptic Gregorian). https://howardhinnant.github.io/date_algorithms.html
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);                 // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           // [0, 146096]
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct civil_date {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

/// Howard Hinnant's civil_from_days, the inverse of days_from_civil.
constexpr civil_date civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                    // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                       // [0, 11]
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;               // [1, 31]
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;                  // [1, 12]
  return {y + (m <= 2 ? 1 : 0), m, d};
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(1, 1, 1) * kSecondsPerDay == kMinTimestamp);
static_assert(days_from_civil(9999, 12, 31) * kSecondsPerDay + kSecondsPerDay - 1 == kMaxTimestamp);

/// Outcome of looking at one UTF-8 sequence starting at a byte >= 0x80.
struct utf8_step {
  std::size_t length;  ///< bytes of the valid sequence, or of the maximal invalid subpart
  bool valid;          ///< whether those bytes form a well-formed code point
};

/// Classifies the sequence at p[0] (a byte >= 0x80) per the Unicode Standard's
/// Table 3-7 (well-formed byte sequences). When it is ill-formed, `length` is
/// the maximal subpart: the longest prefix that could still start a
/// well-formed sequence (at least 1), so each such prefix becomes one U+FFFD.
utf8_step classify_utf8(const unsigned char* p, std::size_t avail) noexcept {
  const unsigned char lead = p[0];
  std::size_t need;                        // continuation bytes required
  unsigned char lo = 0x80, hi = 0xBF;      // range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) lo = 0xA0;           // no overlongs
    if (lead == 0xED) hi = 0x9F;           // no surrogates U+D800..U+DFFF
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) lo = 0x90;           // no overlongs
    if (lead == 0xF4) hi = 0x8F;           // nothing above U+10FFFF
  } else {
    return {1, false};                     // 80..C1 and F5..FF never start a sequence
  }
  // 1. The second byte has the lead-specific range.
  if (avail < 2 || p[1] < lo || p[1] > hi) return {1, false};
  // 2. Later bytes are plain continuations; stop at the first that is not.
  for (std::size_t k = 2; k <= need; ++k) {
    if (k >= avail || p[k] < 0x80 || p[k] > 0xBF) return {k, false};
  }
  return {need + 1, true};
}

/// Index of the first byte >= 0x80 in [begin, end) or `end`, 16 then 8 bytes at a time.
const char* skip_ascii(const char* p, const char* end) noexcept {
  while (end - p >= static_cast<std::ptrdiff_t>(2 * kWordSize)) {
    if (((load_word(p) | load_word(p + kWordSize)) & kHighBits) != 0) break;
    p += 2 * kWordSize;
  }
  while (end - p >= static_cast<std::ptrdiff_t>(kWordSize)) {
    if ((load_word(p) & kHighBits) != 0) break;
    p += kWordSize;
  }
  while (p != end && static_cast<unsigned char>(*p) < 0x80) ++p;
  return p;
}

}  // namespace

std::optional<std::int64_t> parse_id(std::string_view s) noexcept {
  // The common case first: 8 to 16 bytes, all digits (exports number their objects with 8-10
  // digits), read as two SWAR words without a loop. Such a text has the same value under the
  // full rules below, which take every other text.
  if constexpr (std::endian::native == std::endian::little) {
    if (s.size() >= kWordSize && s.size() <= 2 * kWordSize) {
      std::uint64_t low = 0;
      std::uint64_t high = 0;
      const std::size_t k = s.size() - kWordSize;  // leading digits before the last eight
      if (parse_eight_digits(s.data() + k, low) &&
          (k == 0 || (k == kWordSize ? parse_eight_digits(s.data(), high) : parse_leading_digits(s.data(), k, high)))) {
        return static_cast<std::int64_t>(high * 100000000 + low);
      }
    }
  }
  s = trim_ws(s);
  // 1. Optional ".0" suffix, as pandas writes integer columns with gaps.
  if (s.size() >= 2 && s[s.size() - 2] == '.' && s.back() == '0') s.remove_suffix(2);
  // 2. Optional minus sign; a plus sign is invalid.
  const bool negative = !s.empty() && s.front() == '-';
  if (negative) s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  // 3. Digits only, accumulated in unsigned so INT64_MIN's magnitude fits. Past the
  //    leading zeros, 19 digits at most: they cannot wrap a uint64 (< 1.9e19), so one
  //    comparison with the limit at the end replaces a division per digit.
  std::size_t i = 0;
  while (i + 1 < s.size() && s[i] == '0') ++i;
  if (s.size() - i > 19) return std::nullopt;  // more than 19 significant digits, or not digits at all
  std::uint64_t value = 0;
  for (std::uint64_t eight = 0; s.size() - i >= 8 && parse_eight_digits(s.data() + i, eight); i += 8) {
    value = value * 100000000 + eight;
  }
  for (; i < s.size(); ++i) {
    if (!is_digit(s[i])) return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(s[i] - '0');
  }
  const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
  if (value > limit) return std::nullopt;
  if (!negative) return static_cast<std::int64_t>(value);
  // Negate in unsigned arithmetic: 2^63 maps to INT64_MIN without overflow.
  return static_cast<std::int64_t>(~value + 1);
}

std::optional<bool> parse_bool(std::string_view s) noexcept {
  s = trim_ws(s);
  constexpr std::size_t kLongest = 5;  // "false"
  if (s.empty() || s.size() > kLongest) return std::nullopt;
  char buf[kLongest];
  for (std::size_t i = 0; i < s.size(); ++i) buf[i] = to_lower_ascii(s[i]);
  const std::string_view low(buf, s.size());
  if (low == "true" || low == "t" || low == "yes" || low == "y" || low == "1") return true;
  if (low == "false" || low == "f" || low == "no" || low == "n" || low == "0") return false;
  return std::nullopt;
}

namespace {

/// A timestamp's fields as parse_timestamp reads them, validated except for the final range.
struct timestamp_parts {
  const char* digits;  // the trimmed text: YYYY-MM-DD?HH:MM:SS at its start
  int year, month, day, hour, minute, second;
  std::int64_t offset;  // seconds east of UTC
};

std::optional<timestamp_parts> read_timestamp(std::string_view s) noexcept {
  s = trim_ws(s);
  // Fixed part: YYYY-MM-DD?HH:MM:SS, 19 bytes.
  constexpr std::size_t kFixed = 19;
  if (s.size() < kFixed) return std::nullopt;
  const char* p = s.data();
  timestamp_parts t{p, 0, 0, 0, 0, 0, 0, 0};
  if (!read_timestamp_fixed(p, t.year, t.month, t.day, t.hour, t.minute, t.second)) return std::nullopt;
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > days_in_month(t.year, t.month) || t.hour > 23 ||
      t.minute > 59 || t.second > 59) {
    return std::nullopt;
  }
  std::size_t pos = kFixed;
  // 1. Optional fraction: '.' and at least one digit, dropped (truncation).
  if (pos < s.size() && s[pos] == '.') {
    const std::size_t digits_begin = ++pos;
    while (pos < s.size() && is_digit(s[pos])) ++pos;
    if (pos == digits_begin) return std::nullopt;
  }
  // 2. Optional zone: 'Z' or +HH:MM / -HH:MM; nothing may follow it.
  if (pos < s.size()) {
    const char sign = s[pos];
    if (sign == 'Z') {
      ++pos;
    } else if (sign == '+' || sign == '-') {
      constexpr std::size_t kZoneSize = 6;  // +HH:MM
      if (s.size() - pos != kZoneSize) return std::nullopt;
      int zone_hour, zone_minute;
      if (!read_fixed_digits(p + pos + 1, 2, zone_hour) || p[pos + 3] != ':' ||
          !read_fixed_digits(p + pos + 4, 2, zone_minute) || zone_hour > 23 || zone_minute > 59) {
        return std::nullopt;
      }
      t.offset = (zone_hour * 3600 + zone_minute * 60) * (sign == '-' ? -1 : 1);
      pos += kZoneSize;
    } else {
      return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
  }
  return t;
}

}  // namespace

std::optional<std::int64_t> parse_timestamp(std::string_view s) noexcept {
  const std::optional<timestamp_parts> t = read_timestamp(s);
  if (!t) return std::nullopt;
  // Local time minus its offset is UTC.
  const std::int64_t days = days_from_civil(t->year, static_cast<unsigned>(t->month), static_cast<unsigned>(t->day));
  const std::int64_t seconds = days * kSecondsPerDay + t->hour * 3600 + t->minute * 60 + t->second - t->offset;
  if (seconds < kMinTimestamp || seconds > kMaxTimestamp) return std::nullopt;
  return seconds;
}

bool copy_utc_timestamp(std::string_view s, char (&out)[kTimestampTextSize]) noexcept {
  const std::optional<timestamp_parts> t = read_timestamp(s);
  // In UTC, years 0001..9999 are exactly [kMinTimestamp, kMaxTimestamp], and format_timestamp
  // writes back the fields it was given: the digits can be copied.
  if (!t || t->offset != 0 || t->year < 1) return false;
  std::memcpy(out, t->digits, kTimestampTextSize - 1);
  out[10] = 'T';
  out[kTimestampTextSize - 1] = 'Z';
  return true;
}

void format_timestamp(std::int64_t seconds, char (&out)[kTimestampTextSize]) noexcept {
  if (seconds < kMinTimestamp) seconds = kMinTimestamp;
  if (seconds > kMaxTimestamp) seconds = kMaxTimestamp;
  // Floor division: seconds before 1970 belong to the previous day.
  std::int64_t days = seconds / kSecondsPerDay;
  std::int64_t rem = seconds % kSecondsPerDay;
  if (rem < 0) {
    rem += kSecondsPerDay;
    --days;
  }
  const civil_date date = civil_from_days(days);
  const auto put2 = [&out](std::size_t at, unsigned v) {
    out[at] = static_cast<char>('0' + v / 10);
    out[at + 1] = static_cast<char>('0' + v % 10);
  };
  const auto year = static_cast<unsigned>(date.year);  // 1..9999 after clamping
  put2(0, year / 100);
  put2(2, year % 100);
  out[4] = '-';
  put2(5, date.month);
  out[7] = '-';
  put2(8, date.day);
  out[10] = 'T';
  put2(11, static_cast<unsigned>(rem / 3600));
  out[13] = ':';
  put2(14, static_cast<unsigned>(rem / 60 % 60));
  out[16] = ':';
  put2(17, static_cast<unsigned>(rem % 60));
  out[19] = 'Z';
}

bool is_valid_email(std::string_view trimmed) noexcept {
  std::size_t at_count = 0;
  std::size_t at_pos = 0;
  for (std::size_t i = 0; i < trimmed.size(); ++i) {
    const char c = trimmed[i];
    if (is_ws(c)) return false;
    if (c == '@') {
      ++at_count;
      at_pos = i;
    }
  }
  return at_count == 1 && at_pos > 0 && at_pos + 1 < trimmed.size();
}

void email_key(std::string_view trimmed, std::string& out) {
  out.assign(trimmed);
  for (char& c : out) c = to_lower_ascii(c);
}

bool is_valid_utf8(std::string_view s) noexcept {
  // Most fields (ids, emails, names, most bodies) are pure ASCII and never
  // leave this word loop. From the first byte >= 0x80 on (a character
  // boundary, since everything before it is ASCII), simdjson's SIMD validator
  // checks the rest: on mixed text it is several times faster than decoding
  // sequence by sequence, and it rejects exactly what classify_utf8 rejects.
  const char* const end = s.data() + s.size();
  const char* const first_high = skip_ascii(s.data(), end);
  if (first_high == end) return true;
  return simdjson::validate_utf8(first_high, static_cast<std::size_t>(end - first_high));
}

bool repair_utf8(std::string_view s, std::string& out) {
  const char* p = s.data();
  const char* const end = p + s.size();
  const char* run = p;  // start of bytes not yet copied; valid runs are copied whole
  bool replaced = false;
  out.reserve(out.size() + s.size());
  for (;;) {
    p = skip_ascii(p, end);
    if (p == end) break;
    const utf8_step step = classify_utf8(reinterpret_cast<const unsigned char*>(p),
                                         static_cast<std::size_t>(end - p));
    if (!step.valid) {
      out.append(run, p);
      out.append(kReplacement, kReplacementSize);
      replaced = true;
      run = p + step.length;
    }
    p += step.length;
  }
  out.append(run, end);
  return replaced;
}

}  // namespace tixport
