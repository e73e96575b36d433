// File: sample_generator_test.cpp
//
// Tests of `tixport generate` (sample_generator): determinism (same seed, any
// thread count -> same bytes), exact row counts, the header, the statistical
// shape of the data on ~50K rows, and the mess the export must carry. The
// files are read back with a tiny CSV splitter written here (RFC 4180 quotes,
// LF / CRLF record ends, lone CR ordinary, empty lines skipped), independent of
// the project's reader.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"
#include "tixport/generate/sample_generator.hpp"

#include "support/test_support.hpp"

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

namespace fs = std::filesystem;

using tixport::test::kExportHeader;
using tixport::test::read_file;
using tixport::test::temp_dir;

constexpr std::uint64_t kPinnedBytes = 736071;
constexpr std::uint64_t kPinnedCsvHash = 0x763362D0D6FDE40CULL;
constexpr std::uint64_t kPinnedUsersHash = 0xC0EEEDFA1C441C31ULL;

enum col : std::size_t {
  kTicketCreatedAt, kRequesterId, kCommentPartId, kConversationId, kCommentPublic, kBody,
  kCommentCreatedAt, kAuthorId, kName, kEmail, kColumns,
};

struct record {
  std::vector<std::string> fields;
  std::uint64_t line = 0;  ///< physical line the record starts on
};

/// RFC 4180 split: quotes only at field start, `""` inside quotes, LF or CRLF
/// end a record outside quotes, a lone CR is data, empty lines are skipped.
std::vector<record> split_csv(std::string_view text) {
  std::vector<record> records;
  record rec;
  std::string field;
  bool in_quotes = false;
  bool field_quoted = false;
  std::uint64_t line = 1;
  rec.line = 1;
  auto end_field = [&] {
    rec.fields.push_back(field);
    field.clear();
    field_quoted = false;
  };
  auto end_record = [&](std::uint64_t next_line) {
    const bool empty_line = rec.fields.empty() && field.empty() && !field_quoted;
    if (!empty_line) {
      end_field();
      records.push_back(std::move(rec));
    }
    rec = record{};
    rec.line = next_line;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && field.empty() && !field_quoted) {
      in_quotes = true;
      field_quoted = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n') {
      end_record(line);
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      // CRLF: the LF ends the record on the next iteration.
    } else {
      field.push_back(c);
    }
  }
  if (!rec.fields.empty() || !field.empty() || field_quoted) end_record(line);
  return records;
}

std::string_view trim(std::string_view s) {
  const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

/// SPEC 1.1 ids: digits, optional leading '-', optional ".0", leading zeros allowed.
std::optional<std::int64_t> parse_id(std::string_view s) {
  s = trim(s);
  if (s.size() >= 2 && s.substr(s.size() - 2) == ".0") s.remove_suffix(2);
  if (s.empty()) return std::nullopt;
  std::int64_t v = 0;
  const auto res = std::from_chars(s.data(), s.data() + s.size(), v);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return std::nullopt;
  if (s.front() == '+') return std::nullopt;
  return v;
}

std::optional<std::string> email_key(std::string_view s) {
  s = trim(s);
  const auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == s.size()) return std::nullopt;
  if (s.find('@', at + 1) != std::string_view::npos) return std::nullopt;
  if (s.find_first_of(" \t\r\n") != std::string_view::npos) return std::nullopt;
  std::string key(s);
  for (char& c : key) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return key;
}

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

/// SPEC 1.1 timestamps -> epoch seconds (UTC), or nullopt.
std::optional<std::int64_t> parse_time(std::string_view s) {
  s = trim(s);
  auto num = [&](std::size_t pos, std::size_t len) -> std::optional<unsigned> {
    if (pos + len > s.size()) return std::nullopt;
    unsigned v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(s[i] - '0');
    }
    return v;
  };
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' ||
      s[16] != ':') {
    return std::nullopt;
  }
  const auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), se = num(17, 2);
  if (!y || !mo || !d || !h || !mi || !se || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 ||
      *mi > 59 || *se > 59) {
    return std::nullopt;
  }
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const std::size_t digits_start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == digits_start) return std::nullopt;
  }
  std::int64_t offset = 0;
  if (i < s.size() && s[i] == 'Z') {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const auto oh = num(i + 1, 2), om = num(i + 4, 2);
    if (!oh || !om || s[i + 3] != ':') return std::nullopt;
    offset = (s[i] == '-' ? -1 : 1) * static_cast<std::int64_t>(*oh * 3600 + *om * 60);
    i += 6;
  }
  if (i != s.size()) return std::nullopt;
  return days_from_civil(*y, *mo, *d) * 86400 + *h * 3600 + *mi * 60 + *se - offset;
}

bool valid_bool(std::string_view s) {
  std::string v(trim(s));
  for (char& c : v) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  static const std::set<std::string> ok{"true", "false", "t", "f", "yes", "no", "y", "n", "1", "0"};
  return ok.count(v) > 0;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
    else return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

tixport::generate_stats generate(const temp_dir& dir, std::uint64_t rows, std::uint64_t seed,
                                 unsigned threads, const std::string& stem = "chat") {
  tixport::generate_options o;
  o.rows = rows;
  o.seed = seed;
  o.threads = threads;
  o.output = dir / (stem + ".csv");
  o.users_output = dir / (stem + "_users.csv");
  return tixport::generate_sample(o);
}

}  // namespace

TEST_CASE("same seed gives the same bytes, whatever the thread count", "[sample_generator][parallel]") {
  temp_dir dir;
  // 40000 rows = 3 blocks (the last partial), so threads really work in parallel.
  const auto a = generate(dir, 40'000, 42, 1, "a");
  const auto b = generate(dir, 40'000, 42, 4, "b");
  const auto c = generate(dir, 40'000, 42, 0, "c");
  const std::string a_csv = read_file(dir / "a.csv");
  CHECK(a_csv == read_file(dir / "b.csv"));
  CHECK(a_csv == read_file(dir / "c.csv"));
  const std::string a_users = read_file(dir / "a_users.csv");
  CHECK(a_users == read_file(dir / "b_users.csv"));
  CHECK(a_users == read_file(dir / "c_users.csv"));
  CHECK(a.bytes == a_csv.size());
  CHECK(b.bytes == a.bytes);
  CHECK(c.bytes == a.bytes);
  CHECK(b.duplicate_rows == a.duplicate_rows);
  CHECK(b.chat_users == a.chat_users);
  CHECK(b.index_users == a.index_users);
  CHECK(b.conversations == a.conversations);
}

/// FNV-1a, 64-bit: a fingerprint of the generated bytes.
std::uint64_t fnv1a(std::string_view data) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (const char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ULL;
  }
  return h;
}

TEST_CASE("the bytes for a seed are pinned (any compiler, any machine)", "[sample_generator]") {
  // The generator uses integer-only sampling and its own PRNG, so these values
  // hold everywhere. They change only when the generator is changed on purpose:
  // then update them and say so in the commit message.
  temp_dir dir;
  const auto st = generate(dir, 2'000, 1, 2);
  const std::string csv = read_file(dir / "chat.csv");
  const std::string users = read_file(dir / "chat_users.csv");
  INFO("first bytes: " << csv.substr(kExportHeader.size(), 160));
  CHECK(st.bytes == kPinnedBytes);
  CHECK(fnv1a(csv) == kPinnedCsvHash);
  CHECK(fnv1a(users) == kPinnedUsersHash);
}

TEST_CASE("a different seed gives different bytes", "[sample_generator]") {
  temp_dir dir;
  generate(dir, 2'000, 1, 2, "s1");
  generate(dir, 2'000, 2, 2, "s2");
  CHECK(read_file(dir / "s1.csv") != read_file(dir / "s2.csv"));
  CHECK(read_file(dir / "s1_users.csv") != read_file(dir / "s2_users.csv"));
}

TEST_CASE("rows are exactly as asked, across block boundaries", "[sample_generator]") {
  temp_dir dir;
  for (const std::uint64_t rows : {1ULL, 2ULL, 27ULL, 16'383ULL, 16'384ULL, 16'385ULL, 32'775ULL}) {
    INFO("rows = " << rows);
    const auto st = generate(dir, rows, rows * 7 + 3, 2);
    const std::string text = read_file(dir / "chat.csv");
    const auto records = split_csv(text);
    REQUIRE(records.size() == rows + 1);
    CHECK(st.rows == rows);
    CHECK(st.bytes == text.size());
    CHECK(text.substr(0, kExportHeader.size()) == kExportHeader);
    CHECK(text.back() == '\n');
    CHECK(st.conversations >= 1);
    CHECK(st.conversations <= rows);
  }
}

TEST_CASE("rows = 0 writes the header only", "[sample_generator]") {
  temp_dir dir;
  const auto st = generate(dir, 0, 5, 0);
  CHECK(read_file(dir / "chat.csv") == kExportHeader);
  CHECK(read_file(dir / "chat_users.csv") == "id,email\n");
  CHECK(st.rows == 0);
  CHECK(st.bytes == kExportHeader.size());
  CHECK(st.conversations == 0);
  CHECK(st.chat_users == 0);
  CHECK(st.index_users == 0);
  CHECK(st.duplicate_rows == 0);
}

TEST_CASE("write errors are output errors and leave nothing behind", "[sample_generator]") {
  temp_dir dir;
  tixport::generate_options o;
  o.rows = 100;
  o.output = dir / "missing" / "chat.csv";
  o.users_output = dir / "users.csv";
  try {
    tixport::generate_sample(o);
    FAIL("no exception");
  } catch (const tixport::fatal_error& e) {
    CHECK(e.code() == tixport::exit_code::output_error);
    CHECK(std::string(e.what()).rfind("generate: ", 0) == 0);
  }
  // The index temp file was removed, and nothing was renamed into place.
  CHECK(fs::is_empty(dir.path()));

  o.output = dir / "same.csv";
  o.users_output = dir / "." / "same.csv";
  try {
    tixport::generate_sample(o);
    FAIL("no exception");
  } catch (const tixport::fatal_error& e) {
    CHECK(e.code() == tixport::exit_code::input_error);
  }
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("a write error in mid-stream stops the workers and removes the files",
          "[sample_generator][parallel]") {
  temp_dir dir;
  {
    std::ofstream(dir / "chat.csv") << "old";
  }
  // Files may not grow past 1 MB: write() fails with EFBIG (SIGXFSZ ignored).
  struct rlimit saved {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 1 << 20;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::optional<tixport::exit_code> code;
  std::string message;
  try {
    generate(dir, 100'000, 3, 4);  // ~36 MB
  } catch (const tixport::fatal_error& e) {
    code = e.code();
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  REQUIRE(code.has_value());
  CHECK(*code == tixport::exit_code::output_error);
  CHECK(message.rfind("generate: write: ", 0) == 0);
  CHECK(read_file(dir / "chat.csv") == "old");
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("an interrupt stops the run and removes the temporary files", "[sample_generator]") {
  temp_dir dir;
  {
    std::ofstream(dir / "chat.csv") << "old";
  }
  {
    tixport::interrupt_guard guard;
    REQUIRE(std::raise(SIGINT) == 0);  // the first signal only sets the flag
    try {
      generate(dir, 100'000, 3, 2);
      FAIL("no exception");
    } catch (const tixport::fatal_error& e) {
      CHECK(e.code() == tixport::exit_code::interrupted);
    }
  }
  // The flag outlives the guard; a new outermost guard clears it on entry, so
  // the tests that follow are not interrupted.
  { tixport::interrupt_guard reset; }
  CHECK_FALSE(tixport::interrupt_requested());
  CHECK(read_file(dir / "chat.csv") == "old");
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("an existing output is replaced only when complete", "[sample_generator]") {
  temp_dir dir;
  {
    std::ofstream(dir / "chat.csv") << "old";
    std::ofstream(dir / "chat_users.csv") << "old";
  }
  generate(dir, 10, 1, 1);
  CHECK(read_file(dir / "chat.csv").substr(0, kExportHeader.size()) == kExportHeader);
  CHECK(read_file(dir / "chat_users.csv").substr(0, 9) == "id,email\n");
  // Only the two outputs: no temporary file left over.
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 2);
}

/// One 50K-row export analysed once and shared by the shape tests below
/// (generating and splitting it takes ~0.5 s; Catch SECTIONs would redo it).
struct shape_analysis {
  static constexpr std::uint64_t kRows = 50'000;
  temp_dir dir;
  tixport::generate_stats st;
  std::string text;
  std::vector<record> index;
  std::uint64_t well_formed = 0, malformed = 0, repeats = 0;
  std::uint64_t empty_name = 0, empty_email = 0, empty_author = 0;
  std::uint64_t invalid_values = 0;
  std::unordered_set<std::int64_t> conversations, authors, comment_ids;
  std::unordered_map<std::int64_t, std::set<std::string>> emails_of_author;
  std::unordered_map<std::string, std::set<std::int64_t>> authors_of_email;
  std::set<std::string> chat_keys;
  std::set<std::string> public_spellings;
  std::uint64_t pandas_ids = 0, zero_ids = 0, iso_z = 0, offsets = 0, fractions = 0;
  std::uint64_t body_lf = 0, body_crlf = 0, body_quote = 0, body_comma = 0, body_non_ascii = 0;
  std::uint64_t body_lone_cr_ascii_rows = 0, body_bad_utf8 = 0, long_bodies = 0, body_in_range = 0;
  std::uint64_t bodies = 0, non_ascii_names = 0, padded_emails = 0, cased_emails = 0;
  std::uint64_t time_order_violations = 0;
  std::uint64_t requester_changes = 0;
  std::uint64_t record_count = 0;
  std::uint64_t exact_repeats = 0;    ///< repeats whose record equals the id's first record
  std::uint64_t variant_repeats = 0;  ///< repeats with the same id and other content

  shape_analysis() {
    st = generate(dir, kRows, 2024, 0);
    text = read_file(dir / "chat.csv");
    index = split_csv(read_file(dir / "chat_users.csv"));
    const auto records = split_csv(text);
    record_count = records.size();
    if (records.empty()) return;
    std::unordered_map<std::int64_t, std::int64_t> last_time_of_conversation;
    std::unordered_map<std::int64_t, std::int64_t> requester_of_conversation;
    std::unordered_map<std::int64_t, std::string> first_record;
    for (std::size_t i = 1; i < records.size(); ++i) {
      const auto& f = records[i].fields;
      if (f.size() != kColumns) {
        ++malformed;
        continue;
      }
      ++well_formed;
      const auto comment = parse_id(f[kCommentPartId]);
      const auto conv = parse_id(f[kConversationId]);
      const auto author = parse_id(f[kAuthorId]);
      const auto requester = parse_id(f[kRequesterId]);
      const auto created = parse_time(f[kCommentCreatedAt]);
      if (!comment || !conv || !requester || !parse_time(f[kTicketCreatedAt]) || !created ||
          !valid_bool(f[kCommentPublic]) || (!trim(f[kAuthorId]).empty() && !author) ||
          (!trim(f[kEmail]).empty() && !email_key(f[kEmail]))) {
        ++invalid_values;
      }
      if (comment) {
        const bool first_time = comment_ids.insert(*comment).second;
        std::string joined;
        for (const auto& field : f) joined.append(field).push_back('\x1F');
        if (first_time) {
          first_record.emplace(*comment, std::move(joined));
        } else {
          ++repeats;
          ++(first_record.at(*comment) == joined ? exact_repeats : variant_repeats);
        }
        // Comments are in time order within a conversation (first rows of each comment).
        if (first_time && conv && created) {
          auto [it, inserted] = last_time_of_conversation.emplace(*conv, *created);
          if (!inserted) {
            if (*created < it->second) ++time_order_violations;
            it->second = *created;
          }
        }
      }
      if (conv) conversations.insert(*conv);
      if (conv && requester) {
        auto [it, inserted] = requester_of_conversation.emplace(*conv, *requester);
        if (!inserted && it->second != *requester) ++requester_changes;
      }
      if (author) authors.insert(*author);
      if (trim(f[kName]).empty()) ++empty_name;
      if (trim(f[kEmail]).empty()) ++empty_email;
      if (trim(f[kAuthorId]).empty()) ++empty_author;
      if (const auto key = email_key(f[kEmail])) {
        chat_keys.insert(*key);
        if (author) {
          emails_of_author[*author].insert(*key);
          authors_of_email[*key].insert(*author);
        }
        if (trim(f[kEmail]) != f[kEmail]) ++padded_emails;
        if (std::string(trim(f[kEmail])) != *key) ++cased_emails;
      }
      public_spellings.insert(f[kCommentPublic]);
      for (const col c : {kRequesterId, kCommentPartId, kConversationId, kAuthorId}) {
        const std::string_view v = f[c];
        if (v.size() > 2 && v.substr(v.size() - 2) == ".0") ++pandas_ids;
        if (v.size() > 1 && v[0] == '0') ++zero_ids;
      }
      for (const col c : {kTicketCreatedAt, kCommentCreatedAt}) {
        const std::string_view v = f[c];
        if (v.size() > 19 && v.back() == 'Z') ++iso_z;
        if (v.size() == 25 && (v[19] == '+' || v[19] == '-')) ++offsets;
        if (v.size() > 19 && v[19] == '.') ++fractions;
      }
      const std::string& body = f[kBody];
      if (!trim(body).empty()) {
        ++bodies;
        if (body.size() >= 20 && body.size() <= 400) ++body_in_range;
        if (body.size() > 1000) ++long_bodies;
        if (body.find("\r\n") != std::string::npos) ++body_crlf;
        if (body.find('\n') != std::string::npos) ++body_lf;
        if (body.find('"') != std::string::npos) ++body_quote;
        if (body.find(',') != std::string::npos) ++body_comma;
        const bool ascii = std::all_of(body.begin(), body.end(),
                                       [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
        if (!ascii) ++body_non_ascii;
        if (!valid_utf8(body)) ++body_bad_utf8;
        const auto cr = body.find('\r');
        if (cr != std::string::npos && body.find('\n') == std::string::npos) {
          std::string row;
          for (const auto& field : f) row += field;
          if (std::all_of(row.begin(), row.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; })) {
            ++body_lone_cr_ascii_rows;
          }
        }
      }
      if (!std::all_of(f[kName].begin(), f[kName].end(),
                       [](char ch) { return static_cast<unsigned char>(ch) < 0x80; })) {
        ++non_ascii_names;
      }
    }
  }
};

const shape_analysis& shape() {
  static const shape_analysis analysis;
  return analysis;
}

TEST_CASE("shape: statistics returned match the file", "[sample_generator]") {
  const shape_analysis& a = shape();
  REQUIRE(a.record_count == shape_analysis::kRows + 1);
  CHECK(a.st.rows == shape_analysis::kRows);
  CHECK(a.st.bytes == a.text.size());
  CHECK(a.st.duplicate_rows == a.repeats);
  CHECK(a.st.chat_users == a.authors.size());
  CHECK(a.well_formed + a.malformed == shape_analysis::kRows);
  // A conversation disappears only if all its rows lost a valid CONVERSATION_ID.
  CHECK(a.conversations.size() <= a.st.conversations);
  CHECK(a.conversations.size() + 5 >= a.st.conversations);
}

TEST_CASE("shape: ~27 rows per conversation, 16% duplicates, a user per 190 rows", "[sample_generator]") {
  const shape_analysis& a = shape();
  const double rows = static_cast<double>(shape_analysis::kRows);
  const double per_conversation = rows / static_cast<double>(a.conversations.size());
  CHECK(per_conversation > 24.0);
  CHECK(per_conversation < 30.0);
  const double duplicate_share = static_cast<double>(a.repeats) / rows;
  CHECK(duplicate_share > 0.14);
  CHECK(duplicate_share < 0.18);
  const double rows_per_user = rows / static_cast<double>(a.authors.size());
  CHECK(rows_per_user > 170.0);
  CHECK(rows_per_user < 210.0);
  // ~0.36 KB per row on average (2.5M rows ~ 0.9 GB).
  const double bytes_per_row = static_cast<double>(a.text.size()) / rows;
  CHECK(bytes_per_row > 320.0);
  CHECK(bytes_per_row < 400.0);
}

TEST_CASE("shape: duplicates are mostly exact, some the same id with other content",
          "[sample_generator]") {
  const shape_analysis& a = shape();
  REQUIRE(a.repeats == a.exact_repeats + a.variant_repeats);
  const double variant_share = static_cast<double>(a.variant_repeats) / static_cast<double>(a.repeats);
  CHECK(variant_share > 0.08);  // 15% planned, plus repeats of rows with an invalid value
  CHECK(variant_share < 0.25);
}

TEST_CASE("shape: comments in time order, a conversation keeps its requester", "[sample_generator]") {
  const shape_analysis& a = shape();
  CHECK(a.time_order_violations == 0);
  CHECK(a.requester_changes == 0);
}

TEST_CASE("shape: a few % empty fields, ~0.1% invalid values, rare malformed records", "[sample_generator]") {
  const shape_analysis& a = shape();
  const double rows = static_cast<double>(shape_analysis::kRows);
  for (const std::uint64_t empty : {a.empty_name, a.empty_email, a.empty_author}) {
    CHECK(static_cast<double>(empty) / rows > 0.005);
    CHECK(static_cast<double>(empty) / rows < 0.08);
  }
  CHECK(a.invalid_values > 25);   // 0.05%
  CHECK(a.invalid_values < 150);  // 0.3%
  CHECK(a.malformed >= 1);
  CHECK(a.malformed < 25);
}

TEST_CASE("shape: the spellings SPEC 1.1 anticipates are all there", "[sample_generator]") {
  const shape_analysis& a = shape();
  for (const char* s : {"True", "False", "true", "false", "1", "0", "yes", "TRUE", "t"}) {
    INFO(s);
    CHECK(a.public_spellings.count(s) == 1);
  }
  CHECK(a.pandas_ids > 100);
  CHECK(a.zero_ids > 20);
  CHECK(a.iso_z > 100);
  CHECK(a.offsets > 100);
  CHECK(a.fractions > 100);
  CHECK(a.padded_emails > 100);
  CHECK(a.cased_emails > 100);
  CHECK(a.non_ascii_names > 1000);
}

TEST_CASE("shape: HTML bodies with commas, quotes, LF, CRLF, non-ASCII, mostly 20-400 bytes",
          "[sample_generator]") {
  const shape_analysis& a = shape();
  CHECK(a.body_comma > a.bodies / 2);
  CHECK(a.body_quote > a.bodies / 50);
  CHECK(a.body_lf > a.bodies / 20);
  CHECK(a.body_crlf > a.bodies / 50);
  CHECK(a.body_non_ascii > a.bodies / 10);
  CHECK(a.body_bad_utf8 >= 1);
  CHECK(a.body_bad_utf8 < 100);
  CHECK(a.body_lone_cr_ascii_rows >= 1);
  CHECK(static_cast<double>(a.body_in_range) / static_cast<double>(a.bodies) > 0.85);
  CHECK(a.long_bodies > 100);
}

TEST_CASE("shape: chat ids with two emails, emails with two chat ids", "[sample_generator]") {
  const shape_analysis& a = shape();
  const auto two_emails = std::count_if(a.emails_of_author.begin(), a.emails_of_author.end(),
                                        [](const auto& kv) { return kv.second.size() > 1; });
  const auto two_ids = std::count_if(a.authors_of_email.begin(), a.authors_of_email.end(),
                                     [](const auto& kv) { return kv.second.size() > 1; });
  CHECK(two_emails >= 2);
  CHECK(two_emails < 20);
  CHECK(two_ids >= 2);
  CHECK(two_ids < 20);
}

TEST_CASE("shape: the index is ~4.3x the chat users, holds ~40% of chat emails, has junk",
          "[sample_generator]") {
  const shape_analysis& a = shape();
  const auto& index = a.index;
  REQUIRE(!index.empty());
  CHECK(index[0].fields == std::vector<std::string>{"id", "email"});
  CHECK(index.size() - 1 == a.st.index_users);
  const double ratio = static_cast<double>(a.st.index_users) / static_cast<double>(a.st.chat_users);
  CHECK(ratio > 4.0);
  CHECK(ratio < 4.7);
  std::map<std::string, std::int64_t> id_of_key;
  std::set<std::int64_t> ids;
  std::uint64_t bad_ids = 0, no_email = 0, dup_email = 0, dup_id = 0, padded = 0;
  for (std::size_t i = 1; i < index.size(); ++i) {
    REQUIRE(index[i].fields.size() == 2);
    const auto id = parse_id(index[i].fields[0]);
    const auto key = email_key(index[i].fields[1]);
    if (!id) ++bad_ids;
    if (!key) ++no_email;
    if (index[i].fields[1] != trim(index[i].fields[1])) ++padded;
    if (id && !ids.insert(*id).second) ++dup_id;
    if (id && key && !id_of_key.emplace(*key, *id).second) ++dup_email;
  }
  CHECK(bad_ids >= 1);
  CHECK(no_email >= 1);
  CHECK(dup_email >= 1);
  CHECK(dup_id >= 1);
  CHECK(padded > 10);
  std::uint64_t present = 0, same_id = 0, other_case = 0;
  for (const auto& key : a.chat_keys) {
    const auto it = id_of_key.find(key);
    if (it == id_of_key.end()) continue;
    ++present;
    if (a.authors_of_email.count(key) > 0 && a.authors_of_email.at(key).count(it->second) > 0) ++same_id;
  }
  for (std::size_t i = 1; i < index.size(); ++i) {
    const auto key = email_key(index[i].fields[1]);
    if (key && a.chat_keys.count(*key) > 0 && std::string(trim(index[i].fields[1])) != *key) ++other_case;
  }
  const double share = static_cast<double>(present) / static_cast<double>(a.chat_keys.size());
  CHECK(share > 0.33);
  CHECK(share < 0.47);
  CHECK(same_id == 0);  // present under *another* id
  CHECK(other_case >= 5);
  // Some chat users not in the index carry an AUTHOR_ID the index already uses (SPEC 2.1).
  std::uint64_t colliding = 0;
  for (const auto& [author, keys] : a.emails_of_author) {
    const bool matched = std::any_of(keys.begin(), keys.end(),
                                     [&](const std::string& k) { return id_of_key.count(k) > 0; });
    if (!matched && ids.count(author) > 0) ++colliding;
  }
  CHECK(colliding >= 2);
}
