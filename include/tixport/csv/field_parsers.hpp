// File: field_parsers.hpp
//
// The typed-field rules of SPEC 1.1: white space and null fields, ids,
// booleans, ISO 8601 timestamps, emails and their keys, and UTF-8 validation
// and repair. Every function is pure, locale-free and allocation-free on the
// valid path (email_key and repair_utf8 append to a caller-owned buffer), so
// the CSV stage can call them per field from many threads.
//
//   using namespace tixport;
//   std::optional<std::int64_t> id = parse_id(" 00076.0 ");        // 76
//   std::optional<bool> pub = parse_bool("False");                 // false
//   std::optional<std::int64_t> t = parse_timestamp("2021-01-01 00:00:00+05:30");
//   char text[kTimestampTextSize];
//   format_timestamp(*t, text);  // "2020-12-31T18:30:00Z" (not NUL-terminated)
//   std::string key;
//   if (is_valid_email(trim_ws(e))) email_key(trim_ws(e), key);
//   if (!is_valid_utf8(body)) repair_utf8(body, repaired);
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tixport {

/// Smallest timestamp accepted: 0001-01-01T00:00:00Z in seconds since the Unix epoch.
constexpr std::int64_t kMinTimestamp = -62135596800;
/// Largest timestamp accepted: 9999-12-31T23:59:59Z in seconds since the Unix epoch.
constexpr std::int64_t kMaxTimestamp = 253402300799;
/// Length of "YYYY-MM-DDTHH:MM:SSZ"; format_timestamp writes exactly this many bytes, no NUL.
constexpr std::size_t kTimestampTextSize = 20;

namespace detail {
constexpr bool is_ascii_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
}  // namespace detail

// The two below run several times per row of the export: inline, so the classifier's
// calls cost a few instructions instead of a call each.

/// Return `s` without ASCII space, tab, CR and LF at both ends.
inline std::string_view trim_ws(std::string_view s) noexcept {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && detail::is_ascii_ws(s[b])) ++b;
  while (e > b && detail::is_ascii_ws(s[e - 1])) --e;
  return s.substr(b, e - b);
}

/// Return true when `s` is empty or holds only space, tab, CR and LF (a *null* field).
inline bool is_null_field(std::string_view s) noexcept {
  for (const char c : s) {
    if (!detail::is_ascii_ws(c)) return false;
  }
  return true;
}

/// Parse an id: trimmed, `[-]digits` with an optional `.0` suffix, leading
/// zeros allowed, must fit int64 ("-0" is 0). Return nullopt when invalid
/// ("+5", "1e3", "1.5", "1.00", ".0", "-", "" are).
std::optional<std::int64_t> parse_id(std::string_view s) noexcept;

/// Parse a boolean: trimmed, ASCII case-insensitive true/false/t/f/yes/no/y/n/1/0.
std::optional<bool> parse_bool(std::string_view s) noexcept;

/// Parse a trimmed ISO 8601 timestamp
/// `YYYY-MM-DD('T'|' ')HH:MM:SS[.fraction][Z|+HH:MM|-HH:MM]` (no zone = UTC)
/// into seconds since 1970-01-01T00:00:00Z. The fraction (1+ digits) is
/// dropped before the offset is applied. The calendar is validated (leap
/// years), and the UTC result must lie in [kMinTimestamp, kMaxTimestamp].
std::optional<std::int64_t> parse_timestamp(std::string_view s) noexcept;

/// What format_timestamp(*parse_timestamp(s)) writes, without the conversion, when `s` says
/// its time in UTC already (no zone, 'Z', or an offset of +00:00 / -00:00): its date and time
/// digits, with 'T' and 'Z'. False when parse_timestamp rejects `s` or its offset is not zero.
bool copy_utc_timestamp(std::string_view s, char (&out)[kTimestampTextSize]) noexcept;

/// Write `seconds` (within [kMinTimestamp, kMaxTimestamp]) as
/// "YYYY-MM-DDTHH:MM:SSZ" into `out`; exactly kTimestampTextSize bytes, no NUL.
/// Values outside the range are clamped to it.
void format_timestamp(std::int64_t seconds, char (&out)[kTimestampTextSize]) noexcept;

/// Return true when the already trimmed `trimmed` has exactly one '@', at least
/// one byte on each side of it, and no space, tab, CR or LF anywhere.
bool is_valid_email(std::string_view trimmed) noexcept;

/// Replace `out` with the email key of `trimmed`: an ASCII lower-case copy
/// (bytes >= 0x80 unchanged). Reuses `out`'s capacity.
void email_key(std::string_view trimmed, std::string& out);

/// Return true when `s` is well-formed UTF-8 (no overlongs, surrogates or
/// code points above U+10FFFF, no truncated sequences).
bool is_valid_utf8(std::string_view s) noexcept;

/// Append `s` to `out`, replacing each maximal invalid subsequence by U+FFFD
/// (EF BF BD), as the Unicode Standard's "maximal subpart" practice and
/// Python's `bytes.decode("utf-8", "replace")` do. Return true when anything
/// was replaced.
bool repair_utf8(std::string_view s, std::string& out);

}  // namespace tixport
