// File: json_batch_encoder.cpp
//
// Writes batch files (SPEC 2.6) straight into a byte buffer: fixed key
// literals, integers through a two-digits-per-step writer, timestamps through
// format_timestamp, and strings through an escaper that scans 16 bytes at a
// time for the bytes RFC 8259 requires to be escaped and copies clean runs
// whole. The output buffer is reserved once per batch from an upper bound on
// the unescaped size.
//
//   std::string out;
//   tixport::append_json_string(out, "say \"hi\"\n");  // "say \"hi\"\n" quoted and escaped
#include "tixport/run/json_batch_encoder.hpp"

#include "tixport/csv/field_parsers.hpp"

#include <bit>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tixport {
namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
constexpr std::size_t kWordSize = sizeof(std::uint64_t);
/// Longest decimal int64, "-9223372036854775808".
constexpr std::size_t kMaxIntChars = std::numeric_limits<std::int64_t>::digits10 + 2;

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big);

/// Bit 7 of each byte of the result is set for bytes of `w` that need escaping
/// ('"', '\\', < 0x20). Carries can set false bits only above a true one, so the
/// lowest set bit is exact; that is all the caller uses.
constexpr std::uint64_t special_bytes(std::uint64_t w) noexcept {
  const std::uint64_t control = (w - kOnes * 0x20) & ~w;
  const std::uint64_t q = w ^ (kOnes * '"');
  const std::uint64_t quote = (q - kOnes) & ~q;
  const std::uint64_t b = w ^ (kOnes * '\\');
  const std::uint64_t backslash = (b - kOnes) & ~b;
  return (control | quote | backslash) & kHighBits;
}

/// Byte index (in memory order) of the first flagged byte of a non-zero mask.
inline std::size_t first_flagged(std::uint64_t mask) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    return static_cast<std::size_t>(std::countr_zero(mask)) / 8;
  } else {
    return static_cast<std::size_t>(std::countl_zero(mask)) / 8;
  }
}

inline std::uint64_t load_word(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

constexpr bool needs_escape(unsigned char c) noexcept { return c < 0x20 || c == '"' || c == '\\'; }

/// Pointer to the first byte in [p, end) that needs escaping, or `end`.
const char* find_special(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  // 16 bytes per step with SSE2 (every x86-64 has it): a tenth of the SWAR loop's
  // instructions on HTML bodies, which are mostly clean runs of a few hundred bytes.
  constexpr std::ptrdiff_t kVector = 16;
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i last_control = _mm_set1_epi8(0x1F);
  while (end - p >= kVector) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // max(v, 0x1F) == 0x1F exactly for the unsigned bytes 0x00..0x1F.
    const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, last_control), last_control);
    const __m128i hits = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), control);
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(hits));
    if (mask != 0) return p + std::countr_zero(mask);
    p += kVector;
  }
#endif
  while (end - p >= static_cast<std::ptrdiff_t>(2 * kWordSize)) {
    const std::uint64_t m0 = special_bytes(load_word(p));
    const std::uint64_t m1 = special_bytes(load_word(p + kWordSize));
    if ((m0 | m1) != 0) return m0 != 0 ? p + first_flagged(m0) : p + kWordSize + first_flagged(m1);
    p += 2 * kWordSize;
  }
  if (end - p >= static_cast<std::ptrdiff_t>(kWordSize)) {
    const std::uint64_t m = special_bytes(load_word(p));
    if (m != 0) return p + first_flagged(m);
    p += kWordSize;
  }
  while (p != end && !needs_escape(static_cast<unsigned char>(*p))) ++p;
  return p;
}

/// The escape of a byte that needs one: the short forms where JSON has them.
[[gnu::always_inline]] inline void append_escape(std::string& out, unsigned char c) {
  constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"': out.append("\\\"", 2); return;
    case '\\': out.append("\\\\", 2); return;
    case '\b': out.append("\\b", 2); return;
    case '\f': out.append("\\f", 2); return;
    case '\n': out.append("\\n", 2); return;
    case '\r': out.append("\\r", 2); return;
    case '\t': out.append("\\t", 2); return;
    default: {
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(u, sizeof u);
      return;
    }
  }
}

/// Decimal digits of `n` (1 for 0): the bit length gives the count up to one, and one
/// comparison with a power of ten settles it (no division loop).
inline int decimal_digits(std::uint64_t n) noexcept {
  static constexpr std::uint64_t kPowers[20] = {1ULL,
                                                10ULL,
                                                100ULL,
                                                1000ULL,
                                                10000ULL,
                                                100000ULL,
                                                1000000ULL,
                                                10000000ULL,
                                                100000000ULL,
                                                1000000000ULL,
                                                10000000000ULL,
                                                100000000000ULL,
                                                1000000000000ULL,
                                                10000000000000ULL,
                                                100000000000000ULL,
                                                1000000000000000ULL,
                                                10000000000000000ULL,
                                                100000000000000000ULL,
                                                1000000000000000000ULL,
                                                10000000000000000000ULL};
  // n | 1 has as many digits as n (an even n + 1 is never a power of ten) and at least one bit.
  // floor(bits * log10(2)), log10(2) ~ 1233 / 4096, is the digit count or one less.
  const std::uint64_t m = n | 1;
  const int guess = (64 - std::countl_zero(m)) * 1233 >> 12;
  return guess + (m >= kPowers[guess] ? 1 : 0);
}

/// `v` in decimal at `p` (what std::to_chars writes); returns the end. Two digits per step
/// from a table, written from the end back, after counting the digits once.
char* write_decimal(char* p, std::int64_t v) noexcept {
  static constexpr char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  auto n = static_cast<std::uint64_t>(v);
  if (v < 0) {
    *p++ = '-';
    n = ~n + 1;  // INT64_MIN's magnitude fits in unsigned
  }
  char* const end = p + decimal_digits(n);
  char* q = end;
  while (n >= 100) {
    const std::uint64_t pair = n % 100;
    n /= 100;
    q -= 2;
    std::memcpy(q, kPairs + 2 * pair, 2);
  }
  if (n >= 10) {
    std::memcpy(q - 2, kPairs + 2 * n, 2);
  } else {
    q[-1] = static_cast<char>('0' + n);
  }
  return end;
}

void append_int(std::string& out, std::int64_t v) {
  char buf[kMaxIntChars];
  out.append(buf, write_decimal(buf, v));
}

void append_timestamp_text(std::string& out, const char (&text)[kTimestampTextSize]) {
  out.push_back('"');
  out.append(text, sizeof text);
  out.push_back('"');
}

void append_timestamp(std::string& out, std::int64_t seconds) {
  char text[kTimestampTextSize];
  format_timestamp(seconds, text);
  append_timestamp_text(out, text);
}

/// Emits the structural bytes of one layout. Compact writes none of the
/// white space; pretty reproduces json.dumps(indent=2): a newline plus two
/// spaces per level before each item and before a closing bracket of a
/// non-empty container, ", " never appears (items end in ",\n").
class writer {
 public:
  writer(std::string& out, json_style style) : out_(out), pretty_(style == json_style::pretty) {}

  /// Opens an object or array ('{' or '[') that will hold at least one item.
  void open(char bracket) {
    out_.push_back(bracket);
    ++depth_;
    first_ = true;
  }

  /// Closes a non-empty object or array.
  void close(char bracket) {
    --depth_;
    newline();
    out_.push_back(bracket);
    first_ = false;
  }

  /// Starts an item: the separator from the previous one, then the indent.
  void item() {
    if (!first_) out_.push_back(',');
    first_ = false;
    newline();
  }

  /// Starts a member: item() plus `"key":` and, when pretty, one space.
  /// `quoted_key` is the key with its quotes, e.g. "\"id\"".
  void key(std::string_view quoted_key) {
    constexpr std::size_t kMaxKey = 32;  // every key of SPEC 2.6 is shorter
    if (pretty_ || quoted_key.size() > kMaxKey) {
      item();
      out_.append(quoted_key);
      out_.push_back(':');
      if (pretty_) out_.push_back(' ');
      return;
    }
    // Compact: the separator, the key and its colon in one append (six keys per comment).
    char text[kMaxKey + 2];
    std::size_t n = 0;
    if (!first_) text[n++] = ',';
    first_ = false;
    std::memcpy(text + n, quoted_key.data(), quoted_key.size());
    n += quoted_key.size();
    text[n++] = ':';
    out_.append(text, n);
  }

  [[nodiscard]] bool compact() const noexcept { return !pretty_; }

  /// Members were written straight into out() (compact only): the next item needs its comma.
  void wrote_members() noexcept { first_ = false; }

  /// Writes an empty array: "[]" in both layouts.
  void empty_array() {
    out_.append("[]", 2);
    first_ = false;
  }

  std::string& out() { return out_; }

 private:
  void newline() {
    if (!pretty_) return;
    out_.push_back('\n');
    out_.append(static_cast<std::size_t>(depth_) * 2, ' ');
  }

  std::string& out_;
  bool pretty_;
  int depth_ = 0;     // nesting of the container being filled
  bool first_ = true; // no item yet in that container
};

template <typename Record, typename WriteFields>
void write_array(writer& w, std::span<const Record> records, WriteFields write_fields,
                 std::vector<std::pair<std::size_t, std::size_t>>* spans = nullptr) {
  if (records.empty()) {
    w.empty_array();
    return;
  }
  w.open('[');
  for (const Record& r : records) {
    w.item();
    const std::size_t begin = w.out().size();
    w.open('{');
    write_fields(r);
    w.close('}');
    if (spans != nullptr) spans->emplace_back(begin, w.out().size());
  }
  w.close(']');
}

/// A compact object's members between two strings, built on the stack and appended to the
/// output at once: a std::string append costs more than the dozen bytes each of these pieces
/// is (keys, numbers, punctuation), and a comment had fifteen of them.
class stack_text {
 public:
  // The longest run built: a comment's first five members, with its integers at their widest.
  static constexpr std::size_t kCapacity = 160;
  static_assert(kCapacity >= std::string_view("\"created_at\":,\"ticket_id\":,\"id\":,\"public\":false,\"html_body\":").size() +
                                 (kTimestampTextSize + 2) + 2 * kMaxIntChars);
  static_assert(kCapacity >= std::string_view("\"created_at\":,\"requester_id\":,\"id\":").size() +
                                 (kTimestampTextSize + 2) + 2 * kMaxIntChars);

  void literal(std::string_view text) noexcept {
    std::memcpy(end_, text.data(), text.size());
    end_ += text.size();
  }
  void integer(std::int64_t v) noexcept { end_ = write_decimal(end_, v); }
  void timestamp(std::int64_t seconds) noexcept {
    char text[kTimestampTextSize];
    format_timestamp(seconds, text);
    timestamp_text(text);
  }
  void timestamp_text(const char (&text)[kTimestampTextSize]) noexcept {
    *end_++ = '"';
    std::memcpy(end_, text, sizeof text);
    end_ += sizeof text;
    *end_++ = '"';
  }
  /// Appends what was built to `out` and starts again.
  void flush(std::string& out) {
    out.append(text_, end_);
    end_ = text_;
  }

 private:
  char text_[kCapacity];
  char* end_ = text_;
};

void write_ticket_fields(writer& w, const ticket_record& t) {
  if (w.compact()) {
    stack_text text;
    text.literal("\"created_at\":");
    text.timestamp(t.created_at);
    text.literal(",\"requester_id\":");
    text.integer(t.requester_id);
    text.literal(",\"id\":");
    text.integer(t.id);
    text.flush(w.out());
    w.wrote_members();
    return;
  }
  w.key("\"created_at\"");
  append_timestamp(w.out(), t.created_at);
  w.key("\"requester_id\"");
  append_int(w.out(), t.requester_id);
  w.key("\"id\"");
  append_int(w.out(), t.id);
}

void append_body(std::string& out, const comment_record& c) {
  if (c.html_body_csv_pairs) {
    append_json_string_from_csv_pairs(out, c.html_body);
  } else {
    append_json_string(out, c.html_body);
  }
}

/// A comment's created_at as format_timestamp writes it: given, or formatted here.
void comment_timestamp(const comment_record& c, char (&text)[kTimestampTextSize]) noexcept {
  if (c.created_at_is_text) {
    std::memcpy(text, c.created_at_text, sizeof text);
  } else {
    format_timestamp(c.created_at, text);
  }
}

void write_comment_fields(writer& w, const comment_record& c) {
  char created_at[kTimestampTextSize];
  comment_timestamp(c, created_at);
  if (w.compact()) {
    stack_text text;
    text.literal("\"created_at\":");
    text.timestamp_text(created_at);
    text.literal(",\"ticket_id\":");
    text.integer(c.ticket_id);
    text.literal(",\"id\":");
    text.integer(c.id);
    text.literal(c.is_public ? std::string_view(",\"public\":true") : std::string_view(",\"public\":false"));
    text.literal(",\"html_body\":");
    text.flush(w.out());
    append_body(w.out(), c);
    text.literal(",\"author_id\":");
    text.integer(c.author_id);
    text.flush(w.out());
    w.wrote_members();
    return;
  }
  w.key("\"created_at\"");
  append_timestamp_text(w.out(), created_at);
  w.key("\"ticket_id\"");
  append_int(w.out(), c.ticket_id);
  w.key("\"id\"");
  append_int(w.out(), c.id);
  w.key("\"public\"");
  if (c.is_public) {
    w.out().append("true", 4);
  } else {
    w.out().append("false", 5);
  }
  w.key("\"html_body\"");
  append_body(w.out(), c);
  w.key("\"author_id\"");
  append_int(w.out(), c.author_id);
}

/// Upper bound of the bytes of a batch before string escaping grows it.
std::size_t estimate_size(std::span<const ticket_record> tickets,
                          std::span<const comment_record> comments,
                          std::span<const user_record> users, json_style style) {
  // Compact sizes with every integer at its widest; pretty adds indentation
  // (at most 12 spaces + newline per line, one line per member).
  constexpr std::size_t kEnvelope = 160;
  constexpr std::size_t kTicket = 110;
  constexpr std::size_t kComment = 210;
  constexpr std::size_t kUser = 80;
  constexpr std::size_t kPrettyPerMember = 14;
  const bool pretty = style == json_style::pretty;
  std::size_t size = kEnvelope * (pretty ? 2 : 1);
  size += tickets.size() * (kTicket + (pretty ? 5 * kPrettyPerMember : 0));
  size += comments.size() * (kComment + (pretty ? 8 * kPrettyPerMember : 0));
  size += users.size() * (kUser + (pretty ? 5 * kPrettyPerMember : 0));
  for (const comment_record& c : comments) size += c.html_body.size();
  for (const user_record& u : users) size += u.name.size() + u.email.size();
  // Room for a few escapes (newlines and quotes are common in HTML bodies).
  return size + size / 16;
}

/// append_json_string's loop; with kCsvPairs, the second quote of each `""` is skipped.
template <bool kCsvPairs>
void append_quoted(std::string& out, std::string_view text) {
  const char* p = text.data();
  const char* const end = p + text.size();
  out.push_back('"');
  for (;;) {
    const char* special = find_special(p, end);
    out.append(p, special);
    if (special == end) break;
    append_escape(out, static_cast<unsigned char>(*special));
    p = special + 1;
    // The second quote of a pair is the one the CSV added. (The reader checked that every
    // quote is paired; a lone one, were it there, would be written as it is.)
    if (kCsvPairs && *special == '"' && p != end && *p == '"') ++p;
  }
  out.push_back('"');
}

}  // namespace

void append_json_string(std::string& out, std::string_view utf8) { append_quoted<false>(out, utf8); }

void append_json_string_from_csv_pairs(std::string& out, std::string_view csv_pairs) {
  append_quoted<true>(out, csv_pairs);
}

std::size_t json_string_bytes(std::string_view utf8) noexcept {
  constexpr std::size_t kQuotes = 2;
  constexpr std::size_t kShortEscapeExtra = 1;    // \" \\ \b \f \n \r \t: 2 bytes for 1
  constexpr std::size_t kUnicodeEscapeExtra = 5;  // \u00XX: 6 bytes for 1
  const char* p = utf8.data();
  const char* const end = p + utf8.size();
  std::size_t size = utf8.size() + kQuotes;
  for (;;) {
    const char* special = find_special(p, end);
    if (special == end) return size;
    switch (*special) {
      case '"': case '\\': case '\b': case '\f': case '\n': case '\r': case '\t':
        size += kShortEscapeExtra;
        break;
      default:
        size += kUnicodeEscapeExtra;
    }
    p = special + 1;
  }
}

void encode_batch(std::span<const ticket_record> tickets,
                  std::span<const comment_record> comments,
                  std::span<const user_record> users, json_style style,
                  std::string& out, batch_object_spans* spans) {
  if (spans != nullptr) {
    spans->tickets.clear();
    spans->comments.clear();
  }
  out.reserve(out.size() + estimate_size(tickets, comments, users, style));
  writer w(out, style);
  w.open('{');
  w.key("\"data\"");
  w.open('{');
  w.key("\"tickets\"");
  w.open('{');

  w.key("\"data\"");
  write_array(w, tickets, [&w](const ticket_record& t) { write_ticket_fields(w, t); },
              spans != nullptr ? &spans->tickets : nullptr);

  w.key("\"comments\"");
  write_array(w, comments, [&w](const comment_record& c) { write_comment_fields(w, c); },
              spans != nullptr ? &spans->comments : nullptr);

  w.key("\"users\"");
  write_array(w, users, [&w](const user_record& u) {
    w.key("\"name\"");
    append_json_string(w.out(), u.name);
    w.key("\"id\"");
    append_int(w.out(), u.id);
    w.key("\"email\"");
    append_json_string(w.out(), u.email);
  });

  w.key("\"organizations\"");
  w.empty_array();

  w.close('}');
  w.close('}');
  w.close('}');
}

void encode_ticket_object(const ticket_record& ticket, std::string& out) {
  writer w(out, json_style::compact);
  w.open('{');
  write_ticket_fields(w, ticket);
  w.close('}');
}

void encode_comment_object(const comment_record& comment, std::string& out) {
  writer w(out, json_style::compact);
  w.open('{');
  write_comment_fields(w, comment);
  w.close('}');
}

}  // namespace tixport
