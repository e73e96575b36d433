// File: csv_header.cpp
//
// The export's columns by name (SPEC 1.1), and when they are not there, a message that
// says what the file holds instead: every missing column, the columns found, and why
// when the bytes tell (compressed, binary, UTF-16, another separator).
#include "tixport/csv/csv_reader.hpp"

#include "csv/csv_scan_internal.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/csv/field_parsers.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace tixport {

namespace {

// --- header diagnosis: what a file whose header lacks columns holds instead -----------

constexpr std::size_t kSniffBytes = 64u << 10;     // enough to tell text from binary
constexpr std::size_t kShownColumns = 30;          // columns listed in the message at most
constexpr std::size_t kShownColumnBytes = 40;      // bytes of one column name shown at most
constexpr std::size_t kBinaryControlPercent = 2;   // more C0 control bytes than this: not text...
constexpr std::size_t kBinaryMinControls = 4;      // ...when there are at least this many (short headers)

// A header field as shown in a message: trimmed, quoted, control and non-ASCII bytes of a
// binary file escaped (valid UTF-8 names are shown as they are), long names cut.
std::string show_column(std::string_view field) {
  field = trim_ws(field);
  const bool utf8 = is_valid_utf8(field);
  std::string out = "\"";
  std::size_t shown = 0;
  for (const char c : field) {
    const auto byte = static_cast<unsigned char>(c);
    const bool continuation = utf8 && (byte & 0xc0) == 0x80;  // never cut a character in two
    if (shown >= kShownColumnBytes && !continuation) {
      out += "...";
      break;
    }
    if (byte < 0x20 || byte == 0x7f || c == '"' || c == '\\' || (byte >= 0x80 && !utf8)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", byte);
      out += buf;
    } else {
      out += c;
    }
    ++shown;
  }
  return out + '"';
}

// Why the bytes are not a comma-separated text header, or "" when they look like one.
std::string content_hint(std::string_view data) {
  const auto starts = [&](std::string_view magic) { return data.starts_with(magic); };
  using namespace std::string_view_literals;
  // 1. Compressed files and archives, by their magic bytes.
  if (starts("\x1f\x8b"sv)) return "the file is gzip-compressed (it starts with 1f 8b): decompress it first (gunzip)";
  if (starts("\x28\xb5\x2f\xfd"sv)) {
    return "the file is zstd-compressed (it starts with 28 b5 2f fd): decompress it first (zstd -d)";
  }
  if (starts("PK\x03\x04"sv) || starts("PK\x05\x06"sv) || starts("PK\x07\x08"sv)) {
    return "the file is a zip archive (it starts with PK): extract the CSV first (unzip)";
  }
  if (starts("\xfd" "7zXZ\x00"sv)) return "the file is xz-compressed: decompress it first (xz -d)";
  if (data.size() >= 4 && starts("BZh") && data[3] >= '1' && data[3] <= '9') {
    return "the file is bzip2-compressed: decompress it first (bunzip2)";
  }
  if (data.size() >= 262 && data.substr(257, 5) == "ustar") {
    return "the file is a tar archive: extract the CSV first (tar -xf)";
  }
  // 2. UTF-16 text (its ASCII letters come with NUL bytes, so before the binary check).
  if (starts("\xff\xfe"sv) || starts("\xfe\xff"sv)) {
    return "the file is UTF-16 text: convert it to UTF-8 first (iconv -f UTF-16 -t UTF-8)";
  }
  // 3. Binary data: any NUL, or more control bytes than text ever holds.
  const std::string_view sample = data.substr(0, kSniffBytes);
  std::size_t controls = 0;
  for (const char c : sample) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == 0) return "the file holds binary data (NUL bytes), not CSV text";
    if ((byte < 0x20 && c != '\t' && c != '\n' && c != '\r') || byte == 0x7f) ++controls;
  }
  if (controls >= kBinaryMinControls && controls * 100 > sample.size() * kBinaryControlPercent) {
    return "the file holds binary data (control bytes), not CSV text";
  }
  return {};
}

// True when `name` (trimmed, any case) is one of `required`.
bool is_required_name(std::string_view name, std::span<const std::string_view> required) {
  name = trim_ws(name);
  return std::any_of(required.begin(), required.end(), [&](std::string_view wanted) {
    return csv_internal::iequals_ascii(name, trim_ws(wanted));
  });
}

// A one-column header that splits at another separator into required names: which one.
std::string separator_hint(const csv_header& header, std::span<const std::string_view> required) {
  if (header.fields.size() != 1) return {};
  struct candidate {
    char separator;       // the byte to split at
    const char* display;  // how the message shows it
  };
  constexpr std::array<candidate, 3> kCandidates = {{{';', "';'"}, {'\t', "tab"}, {'|', "'|'"}}};
  const std::string_view field = header.fields[0];
  for (const candidate& c : kCandidates) {
    std::size_t hits = 0;
    std::size_t begin = 0;
    while (begin <= field.size()) {
      const std::size_t end = std::min(field.find(c.separator, begin), field.size());
      if (end == field.size() && begin == 0) break;  // the separator does not occur at all
      if (is_required_name(field.substr(begin, end - begin), required)) ++hits;
      begin = end + 1;
    }
    if (hits > 0) {
      return std::string("the header looks ") + c.display + "-separated (" + std::to_string(hits) + " of the " +
             std::to_string(required.size()) + " required names appear when it is split at " + c.display +
             "): tixport reads comma-separated CSV (RFC 4180); export the file again with ',' as the separator";
    }
  }
  return {};
}

std::string join_names(const std::vector<std::string_view>& names) {
  std::string out;
  for (const std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

std::vector<std::size_t> resolve_columns(const csv_header& header, std::span<const std::string_view> required,
                                         const csv_source& source) {
  const std::size_t none = header.fields.size();
  std::vector<std::size_t> indices;
  indices.reserve(required.size());
  std::vector<std::string_view> missing;
  std::vector<std::string> problems;  // "missing columns ...", "repeated column ..."
  for (const std::string_view name : required) {
    const std::string_view wanted = trim_ws(name);
    std::vector<std::size_t> at;
    for (std::size_t i = 0; i < header.fields.size(); ++i) {
      if (csv_internal::iequals_ascii(trim_ws(header.fields[i]), wanted)) at.push_back(i);
    }
    if (at.empty()) missing.push_back(wanted);
    if (at.size() > 1) {
      std::string where;
      for (const std::size_t i : at) where += (where.empty() ? "" : ", ") + std::to_string(i + 1);
      problems.push_back("repeated column " + std::string(wanted) + " (columns " + where + ")");
    }
    indices.push_back(at.empty() ? none : at.front());
  }
  if (!missing.empty()) {
    problems.insert(problems.begin(), (missing.size() == 1 ? "missing column " : "missing columns ") +
                                          join_names(missing) + " (" + std::to_string(missing.size()) + " of " +
                                          std::to_string(required.size()) + " required)");
  }
  if (problems.empty()) return indices;

  // Every bad column at once, what the header holds instead, and why when the bytes say so.
  std::string message(source.what);
  if (!source.path.empty()) message += ": " + std::string(source.path);
  message += ": header: ";
  for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
  message += "; found " + std::to_string(header.fields.size()) +
             (header.fields.size() == 1 ? " column: " : " columns: ");
  for (std::size_t i = 0; i < header.fields.size() && i < kShownColumns; ++i) {
    if (i) message += ", ";
    message += show_column(header.fields[i]);
  }
  if (header.fields.size() > kShownColumns) {
    message += ", ... (" + std::to_string(header.fields.size() - kShownColumns) + " more)";
  }
  std::string hint = content_hint(source.data);
  if (hint.empty()) hint = separator_hint(header, required);
  if (!hint.empty()) message += "; " + hint;
  throw fatal_error(exit_code::input_error, message);
}

}  // namespace tixport
