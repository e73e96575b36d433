// File: sample_generator.cpp
//
// `tixport generate`: writes a synthetic chat export and a user index shaped
// on the original migration (2.5M rows, ~92K conversations, ~13K chat users,
// a 56.7K-user index), with the mess SPEC 1.1 anticipates at small rates.
//
// How determinism and speed fit together:
//  1. Everything that must be global is a pure function of (seed, index):
//     a conversation's length and shape of (seed, conversation), a message's
//     content of (seed, conversation, message), a user of (seed, user).
//     Only two things are precomputed serially: the user table (~rows/190
//     entries) and, per block, where the block starts in the conversation
//     sequence (one pass over the conversation lengths, O(rows/27)).
//  2. The export is cut into blocks of kBlockRows rows. A block replays the
//     conversations it touches from their first slot (they are short), keeps
//     the slots that fall inside it and interleaves neighbouring
//     conversations with its own PRNG, seeded from (seed, block index).
//  3. Worker threads generate blocks in parallel; the calling thread writes
//     them in block order from a small reorder ring, with a bounded number of
//     blocks in flight. So the bytes depend on (rows, seed) only, never on
//     the thread count (see run_ordered_blocks for why not parallel_pipeline).
//  4. Randomness is xoshiro256** seeded through splitmix64, with integer-only
//     sampling (no std:: distributions, no floating point), so the output is
//     the same on every compiler and libm.
//
//   generate_options o; o.rows = 50'000; o.output = "c.csv"; o.users_output = "u.csv";
//   generate_stats s = generate_sample(o);
#include "tixport/generate/sample_generator.hpp"

#include "tixport/common/atomic_output.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"
#include "tixport/common/parallelism.hpp"

#include <oneapi/tbb/info.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace tixport {
namespace {

namespace fs = std::filesystem;
using std::string_view_literals::operator""sv;

// ---------------------------------------------------------------------------
// Shape of the data (the original export: 2.5M rows, ~92.5K conversations,
// ~2.1M distinct comments, ~13K chat users, a 56.7K-user index).
// Rates are in parts per million so that all sampling is integer arithmetic.
// ---------------------------------------------------------------------------
constexpr std::uint64_t kBlockRows = 16384;           // rows per parallel block
constexpr std::uint64_t kMaxRows = 10'000'000'000;    // ~3.6 TB; beyond this the user table gets silly
constexpr std::uint32_t kMeanRowsPerConversation = 27;
constexpr std::uint64_t kRowsPerChatUser = 190;
constexpr std::uint64_t kIndexPerChatUserTenths = 43;  // index = 4.3 x chat users
constexpr std::uint64_t kUsersPerAgent = 64;           // ~1.5% of chat users answer the chats
constexpr std::uint64_t kMaxAgents = 256;
constexpr std::uint64_t kConversationIdStride = 8;     // conversation ids increase with gaps < 8
constexpr std::uint64_t kCommentIdStride = 2048;       // > the longest conversation (~600 rows)
constexpr std::int64_t kConversationIdBase = 20'000'000;
constexpr std::int64_t kCommentIdBase = 5'000'000'000;
constexpr std::int64_t kChatIdBase = 4'000'000'000;    // chat ids: 10 digits, beyond 32 bits
constexpr std::int64_t kIndexIdBase = 1;               // index ids: small, like "1,user1@..."
constexpr std::int64_t kIndexIdStride = 5;             // normal ids use offsets 0..2, extras 3..4
constexpr std::int64_t kFirstConversationTime = 1'546'300'800;  // 2019-01-01T00:00:00Z
constexpr std::int64_t kTimeSpanSeconds = 1'277LL * 86'400;     // ~3.5 years of chats

constexpr std::uint32_t kMillion = 1'000'000;
// Per-slot events (slot = one row of a conversation in its original order).
constexpr std::uint32_t kDuplicatePpm = 166'000;       // 16% of all rows (slot 0 never repeats)
constexpr std::uint32_t kVariantDuplicatePpm = 150'000;  // of duplicates: same id, other content
constexpr std::uint32_t kRepeatPreviousPpm = 600'000;  // a duplicate repeats the last message
constexpr std::uint32_t kInvalidValuePpm = 1'000;      // ~0.1% rows with one invalid value
constexpr std::uint32_t kMalformedPpm = 100;           // wrong field count
constexpr std::uint32_t kCrlfRecordEndPpm = 10'000;    // mixed record ends
constexpr std::uint32_t kBlankLinePpm = 100;           // empty line before a record
// Per-message events.
constexpr std::uint32_t kSwitchSpeakerPpm = 780'000;   // chats mostly alternate
constexpr std::uint32_t kAgentTransferPpm = 40'000;
constexpr std::uint32_t kPrivateNotePpm = 80'000;      // agent messages with COMMENT_PUBLIC false
constexpr std::uint32_t kEmptyAuthorIdPpm = 10'000;
constexpr std::uint32_t kEmptyNamePpm = 25'000;
constexpr std::uint32_t kEmptyEmailPpm = 25'000;
constexpr std::uint32_t kEmptyBodyPpm = 3'000;
constexpr std::uint32_t kAltEmailRowPpm = 300'000;     // rows of an alt-email user showing the alt
constexpr std::uint32_t kEmailUpperPpm = 10'000;
constexpr std::uint32_t kEmailPaddedPpm = 20'000;
constexpr std::uint32_t kNamePaddedPpm = 10'000;
constexpr std::uint32_t kLoneCrPpm = 1'000;            // of messages by ASCII-named customers
constexpr std::uint32_t kBadUtf8Ppm = 200;
constexpr std::uint32_t kIdPandasPpm = 20'000;         // "123.0"
constexpr std::uint32_t kIdZerosPpm = 5'000;           // "000123"
constexpr std::uint32_t kLongBodyPpm = 35'000;         // the 400..8192-byte tail
// Per-user properties, as fractions of 2^32 applied to low-discrepancy
// sequences so that small samples hit the shares closely.
constexpr std::uint64_t kQ32 = 1ULL << 32;
constexpr std::uint64_t kCustomerInIndexQ32 = kQ32 * 405 / 1000;  // ~40% of chat emails
constexpr std::uint64_t kAgentInIndexQ32 = kQ32 * 900 / 1000;
constexpr std::uint64_t kNoEmailQ32 = kQ32 * 15 / 1000;
constexpr std::uint64_t kSharesEmailQ32 = kQ32 * 15 / 1000;      // two chat ids, one email
constexpr std::uint64_t kAltEmailQ32 = kQ32 * 20 / 1000;         // one chat id, two emails
constexpr std::uint64_t kCollidingIdQ32 = kQ32 * 50 / 1000;      // new users whose id is taken
// Index entries.
constexpr std::uint32_t kIndexOtherCasePpm = 120'000;
constexpr std::uint32_t kIndexPaddedPpm = 80'000;
constexpr std::uint32_t kIndexQuotedPpm = 50'000;
constexpr std::uint64_t kIndexBadEntryQ32 = kQ32 * 25 / 10'000;  // 0.25% for each of four kinds

// ---------------------------------------------------------------------------
// Randomness: splitmix64 for seeding and hashing, xoshiro256** for streams.
// ---------------------------------------------------------------------------
constexpr std::uint64_t splitmix64_next(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// What a PRNG stream is for; part of its key so streams never coincide.
enum class stream : std::uint64_t {
  conversation_length = 1,
  conversation_shape,
  conversation_slots,
  message,
  message_variant,
  user,
  index_id,
  index_entry,
  block,
};

constexpr std::uint64_t stream_key(std::uint64_t seed, stream kind, std::uint64_t a,
                                   std::uint64_t b = 0) noexcept {
  std::uint64_t s = seed;
  std::uint64_t h = splitmix64_next(s);
  s = h ^ (static_cast<std::uint64_t>(kind) * 0xD1B54A32D192ED03ULL);
  h = splitmix64_next(s);
  s = h ^ a;
  h = splitmix64_next(s);
  s = h ^ (b * 0x8CB92BA72F3D8DD7ULL);
  return splitmix64_next(s);
}

/// xoshiro256** (Blackman and Vigna), seeded from one 64-bit key.
class rng {
 public:
  explicit rng(std::uint64_t key) noexcept {
    for (auto& word : s_) word = splitmix64_next(key);
  }
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, n) for n < 2^32 (multiply-shift; the tiny bias is irrelevant here).
  std::uint32_t below(std::uint64_t n) noexcept {
    return static_cast<std::uint32_t>(((next() >> 32) * n) >> 32);
  }
  std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(next() >> 32); }
  bool chance(std::uint32_t ppm) noexcept { return below(kMillion) < ppm; }
  template <typename T, std::size_t N>
  const T& pick(const std::array<T, N>& items) noexcept {
    return items[below(N)];
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::array<std::uint64_t, 4> s_{};
};

/// Fraction in [0, 2^32) of a Weyl sequence: u * frac(sqrt(p)) mod 1. Equidistributed
/// with low discrepancy, so "share of users with property X" is close on small samples.
enum class weyl : std::uint64_t {
  in_index = 0x9E3779B97F4A7C15ULL,  // golden ratio
  alt_email = 0x6A09E667F3BCC908ULL, // frac(sqrt 2)
  shares = 0xBB67AE8584CAA73BULL,    // frac(sqrt 3)
  colliding = 0x3C6EF372FE94F82BULL, // frac(sqrt 5)
  no_email = 0xA54FF53A5F1D36F1ULL,  // frac(sqrt 7)
  index_bad_id = 0x510E527FADE682D1ULL,     // frac(sqrt 11)
  index_no_email = 0x9B05688C2B3E6C1FULL,   // frac(sqrt 13)
  index_dup_email = 0x1F83D9ABFB41BD6BULL,  // frac(sqrt 17)
  index_dup_id = 0x5BE0CD19137E2179ULL,     // frac(sqrt 19)
};
constexpr std::uint64_t weyl_q32(std::uint64_t u, weyl which) noexcept {
  return ((u + 1) * static_cast<std::uint64_t>(which)) >> 32;
}

// ---------------------------------------------------------------------------
// Word lists. Display names carry the mess (non-ASCII, apostrophes); slugs are
// the ASCII letters used in email local parts (letters only, so that the
// email patterns below can never produce the same address for two users).
// ---------------------------------------------------------------------------
struct name_part {
  std::string_view display;
  std::string_view slug;
};

constexpr std::array kFirstNames{
    name_part{"Maria", "maria"},     name_part{"José", "jose"},       name_part{"Zoë", "zoe"},
    name_part{"Jürgen", "juergen"},  name_part{"François", "francois"}, name_part{"Søren", "soren"},
    name_part{"Łukasz", "lukasz"},   name_part{"Ana", "ana"},         name_part{"John", "john"},
    name_part{"Emma", "emma"},       name_part{"Liam", "liam"},       name_part{"Olivia", "olivia"},
    name_part{"Noah", "noah"},       name_part{"Sofía", "sofia"},     name_part{"Mohammed", "mohammed"},
    name_part{"Aisha", "aisha"},     name_part{"Wei", "wei"},         name_part{"Yuki", "yuki"},
    name_part{"Priya", "priya"},     name_part{"Lars", "lars"},       name_part{"Chloé", "chloe"},
    name_part{"Björn", "bjorn"},     name_part{"Nikolai", "nikolai"}, name_part{"Fatima", "fatima"},
    name_part{"David", "david"},     name_part{"Sarah", "sarah"},     name_part{"Michael", "michael"},
    name_part{"Laura", "laura"},     name_part{"Mateo", "mateo"},     name_part{"Inès", "ines"},
    name_part{"Olga", "olga"},       name_part{"Hannah", "hannah"},
};
constexpr std::array kLastNames{
    name_part{"Garcia", "garcia"},   name_part{"Müller", "mueller"},   name_part{"Smith", "smith"},
    name_part{"Dubois", "dubois"},   name_part{"Nowak", "nowak"},      name_part{"O'Brien", "obrien"},
    name_part{"Rossi", "rossi"},     name_part{"Nakamura", "nakamura"}, name_part{"Kim", "kim"},
    name_part{"Jensen", "jensen"},   name_part{"Silva", "silva"},      name_part{"Johnson", "johnson"},
    name_part{"Ivanova", "ivanova"}, name_part{"Schmidt", "schmidt"},  name_part{"Martín", "martin"},
    name_part{"Öztürk", "ozturk"},   name_part{"Andersson", "andersson"}, name_part{"Brown", "brown"},
    name_part{"Lefèvre", "lefevre"}, name_part{"Kowalski", "kowalski"}, name_part{"Patel", "patel"},
    name_part{"Chen", "chen"},       name_part{"Williams", "williams"}, name_part{"van der Berg", "vanderberg"},
    name_part{"Fernández", "fernandez"}, name_part{"Novák", "novak"},
};
constexpr std::array kCjkNames{
    name_part{"田中 太郎", "tanaka"}, name_part{"山本 花子", "yamamoto"}, name_part{"王 伟", "wang"},
    name_part{"李 娜", "li"},         name_part{"김 민준", "minjun"},     name_part{"佐藤 健", "sato"},
};
constexpr std::array kEmojiSuffixes{" 🌸"sv, " 🚀"sv, " ☕"sv, " 🙂"sv};
constexpr std::array kPersonalDomains{
    "gmail.com"sv, "yahoo.com"sv,   "outlook.com"sv, "hotmail.co.uk"sv, "web.de"sv,   "gmx.net"sv,
    "orange.fr"sv, "icloud.com"sv,  "proton.me"sv,   "yandex.ru"sv,     "qq.com"sv,   "libero.it"sv,
};
constexpr std::array kWorkDomains{
    "acme-corp.com"sv, "globex.example"sv, "initech.io"sv, "umbrella.co"sv, "hooli.xyz"sv,
    "stark-industries.net"sv,
};
constexpr std::string_view kAgentDomain = "shopnow-support.com";

constexpr std::array kCustomerSentences{
    "Hi, I can't log in to my account since this morning."sv,
    "I ordered the blue jacket last week, but it still hasn't shipped."sv,
    "The app says \"payment failed\" every time I try to check out."sv,
    "Could you please help me reset my password?"sv,
    "I was charged twice for the same order, can you refund one of them?"sv,
    "Thanks, that worked!"sv,
    "Merci beaucoup, ça marche maintenant !"sv,
    "Danke für die schnelle Antwort, aber das Problem besteht weiterhin."sv,
    "¿Dónde está mi pedido? Lo compré hace dos semanas."sv,
    "注文した商品がまだ届いていません。"sv,
    "谢谢你的帮助！"sv,
    "Спасибо, всё работает."sv,
    "It's still not working 😞"sv,
    "Here is a screenshot of the error."sv,
    "My email address changed, can you update it?"sv,
    "I'd like to cancel my subscription, please."sv,
    "The invoice shows the wrong VAT number, it should be DE123456789."sv,
    "ok"sv,
    "Is there a way to export my data as CSV?"sv,
    "When I click \"Save\", nothing happens."sv,
    "Great, thank you so much! 👍"sv,
    "Where can I find the tracking number?"sv,
    "The discount code SPRING20 doesn't apply at checkout."sv,
    "I'm using Safari 15 on macOS, if that helps."sv,
    "Can I talk to a human, please?"sv,
};
constexpr std::array kAgentSentences{
    "Hi there, thanks for reaching out!"sv,
    "I'm sorry to hear that, let me check this for you."sv,
    "Could you please send me your order number?"sv,
    "I've just reset your password, you should receive an email shortly."sv,
    "Your refund has been processed, it can take 3–5 business days to show up."sv,
    "I've escalated this to our technical team, they'll get back to you within 24 hours."sv,
    "Please try clearing your browser's cache and cookies, then log in again."sv,
    "You can find the tracking number under \"My orders\" → \"Details\"."sv,
    "Is there anything else I can help you with?"sv,
    "Have a great day! 😊"sv,
    "Bonjour, je m'en occupe tout de suite."sv,
    "Vielen Dank für Ihre Geduld."sv,
    "I've applied a 10% discount to your next order."sv,
    "Our opening hours are Mon–Fri, 9:00–18:00 CET."sv,
    "Internal note: customer is on the legacy plan, check billing before refunding."sv,
};
// ASCII-only sentences for the rows whose body carries a lone CR.
constexpr std::array kAsciiSentences{
    "Hi, I can't log in to my account since this morning."sv,
    "Could you please help me reset my password?"sv,
    "Here is a screenshot of the error."sv,
    "Is there a way to export my data as CSV?"sv,
    "When I click \"Save\", nothing happens."sv,
};
constexpr std::array kLogLines{
    "2021-03-04 05:06:07 ERROR [checkout] PaymentException: card_declined, code=\"05\""sv,
    "    at com.shopnow.pay.Gateway.charge(Gateway.java:214)"sv,
    "2021-03-04 05:06:08 WARN  [session] token expired, refreshing (attempt 2/3)"sv,
    "2021-03-04 05:06:09 INFO  [cart] items=3, total=129.90 EUR, coupon=SPRING20"sv,
};
constexpr std::array kParagraphSeparators{""sv, ""sv, "\n"sv, "\n"sv, "\r\n"sv};
// Bytes that are not valid UTF-8, each a different kind of maximal invalid subsequence.
constexpr std::array kBadUtf8{
    "caf\xE9"sv,         // Latin-1 e-acute
    "\xC3\x28"sv,        // lead byte followed by ASCII
    "\xF0\x9F\x98"sv,    // truncated 4-byte emoji
    "\xFF\xFE"sv,        // never valid
    "\xED\xA0\x80"sv,    // UTF-16 surrogate
    "\xC0\xAF"sv,        // overlong '/'
};
constexpr std::array kBadTimestamps{
    "not a date"sv, "2021/03/04 05:06"sv, "03/04/2021 05:06:07"sv, "yesterday"sv,
    "2021-03-04 5pm"sv, "N/A"sv,
};
constexpr std::array kBadIds{"abc"sv, "12a4"sv, "1e6"sv, "#N/A"sv, "12.5"sv, "--7"sv};
constexpr std::array kBadBooleans{"maybe"sv, "unknown"sv, "2"sv, "ja"sv};
constexpr std::array kBadEmails{
    "john.doe(at)gmail.com"sv, "no email"sv, "a@b@c.com"sv, "@example.com"sv, "jane doe@x.com"sv,
};
constexpr std::array kTimeOffsetsMinutes{120, -300, 330, 540, -180, 60};

constexpr std::string_view kHeader =
    "TICKET_CREATED_AT,TICKET_REQUESTER_ID,COMMENT_PART_ID,CONVERSATION_ID,COMMENT_PUBLIC,BODY,"
    "COMMENT_CREATED_AT,AUTHOR_ID,NAME,EMAIL\n";
constexpr std::string_view kIndexHeader = "id,email\n";

// ---------------------------------------------------------------------------
// Small text helpers.
// ---------------------------------------------------------------------------
void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

void append_2digits(std::string& out, unsigned v) {
  out.push_back(static_cast<char>('0' + v / 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

bool needs_quotes(std::string_view field) noexcept {
  // One pass; libstdc++'s find_first_of calls memchr on the set for every byte.
  return std::any_of(field.begin(), field.end(),
                     [](char c) { return c == ',' || c == '"' || c == '\r' || c == '\n'; });
}

/// Append `field` as one CSV field, quoted (with `""`) only when it has to be.
void append_csv_field(std::string& out, std::string_view field) {
  if (!needs_quotes(field)) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (;;) {
    const std::size_t q = field.find('"');
    if (q == std::string_view::npos) break;
    out.append(field.substr(0, q + 1));
    out.push_back('"');
    field.remove_prefix(q + 1);
  }
  out.append(field);
  out.push_back('"');
}

bool is_ascii(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

char ascii_upper(char c) noexcept { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }
char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

/// "maria.garcia7@gmail.com" -> "Maria.Garcia7@Gmail.com": same key, other letter case.
std::string capitalized_email(std::string_view email) {
  std::string out(email);
  bool start = true;
  for (char& c : out) {
    if (start) c = ascii_upper(c);
    start = (c == '.' || c == '@');
  }
  return out;
}

std::string upper_email(std::string_view email) {
  std::string out(email);
  for (char& c : out) c = ascii_upper(c);
  return out;
}

std::string lower_email(std::string_view email) {
  std::string out(email);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

// ---------------------------------------------------------------------------
// Time: epoch seconds (UTC) -> "YYYY-MM-DD HH:MM:SS" in its several spellings.
// ---------------------------------------------------------------------------
struct civil_time {
  std::int64_t year;
  unsigned month, day, hour, minute, second;
};

/// Howard Hinnant's civil_from_days, on seconds since 1970-01-01T00:00:00Z.
civil_time to_civil(std::int64_t t) noexcept {
  std::int64_t days = t / 86400;
  std::int64_t secs = t % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned day = doy - (153 * mp + 2) / 5 + 1;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
  const auto s = static_cast<unsigned>(secs);
  return {year, month, day, s / 3600, (s / 60) % 60, s % 60};
}

enum class time_style : std::uint8_t { space, iso_z, offset, fraction_space, fraction_iso_z };

time_style pick_time_style(rng& r) noexcept {
  const std::uint32_t x = r.below(1000);
  if (x < 920) return time_style::space;  // what the original export holds
  if (x < 950) return time_style::iso_z;
  if (x < 975) return time_style::offset;
  if (x < 990) return time_style::fraction_space;
  return time_style::fraction_iso_z;
}

/// The style's extra parameters (zone, fraction digits) drawn up front, so an
/// exact duplicate draws the same numbers.
struct time_spelling {
  time_style style = time_style::space;
  int offset_minutes = 0;
  std::uint32_t fraction = 0;   // digits of the fraction
  bool six_digits = false;
};

time_spelling pick_time_spelling(rng& r) noexcept {
  time_spelling s;
  s.style = pick_time_style(r);
  s.offset_minutes = r.pick(kTimeOffsetsMinutes);
  s.six_digits = r.chance(500'000);
  s.fraction = r.below(s.six_digits ? 1'000'000 : 1'000);
  return s;
}

void append_timestamp(std::string& out, std::int64_t t, const time_spelling& sp) {
  const bool offset = sp.style == time_style::offset;
  const civil_time c = to_civil(offset ? t + sp.offset_minutes * 60LL : t);
  append_int(out, c.year);
  out.push_back('-');
  append_2digits(out, c.month);
  out.push_back('-');
  append_2digits(out, c.day);
  const bool iso = sp.style == time_style::iso_z || sp.style == time_style::offset ||
                   sp.style == time_style::fraction_iso_z;
  out.push_back(iso ? 'T' : ' ');
  append_2digits(out, c.hour);
  out.push_back(':');
  append_2digits(out, c.minute);
  out.push_back(':');
  append_2digits(out, c.second);
  if (sp.style == time_style::fraction_space || sp.style == time_style::fraction_iso_z) {
    char digits[8];
    const int width = sp.six_digits ? 6 : 3;
    std::uint32_t f = sp.fraction;
    for (int i = width - 1; i >= 0; --i) {
      digits[i] = static_cast<char>('0' + f % 10);
      f /= 10;
    }
    out.push_back('.');
    out.append(digits, static_cast<std::size_t>(width));
  }
  if (sp.style == time_style::iso_z || sp.style == time_style::fraction_iso_z) out.push_back('Z');
  if (offset) {
    const int m = sp.offset_minutes < 0 ? -sp.offset_minutes : sp.offset_minutes;
    out.push_back(sp.offset_minutes < 0 ? '-' : '+');
    append_2digits(out, static_cast<unsigned>(m / 60));
    out.push_back(':');
    append_2digits(out, static_cast<unsigned>(m % 60));
  }
}

// ---------------------------------------------------------------------------
// Ids in their several spellings.
// ---------------------------------------------------------------------------
enum class id_style : std::uint8_t { plain, pandas_float, leading_zeros };

id_style pick_id_style(rng& r) noexcept {
  const std::uint32_t x = r.below(kMillion);
  if (x < kIdPandasPpm) return id_style::pandas_float;
  if (x < kIdPandasPpm + kIdZerosPpm) return id_style::leading_zeros;
  return id_style::plain;
}

void append_id(std::string& out, std::int64_t id, id_style style) {
  if (style == id_style::leading_zeros) out.append("00"sv);
  append_int(out, id);
  if (style == id_style::pandas_float) out.append(".0"sv);
}

// ---------------------------------------------------------------------------
// Users.
// ---------------------------------------------------------------------------
/// One chat user. Users [0, agents) are agents, the rest customers.
struct chat_user {
  std::int64_t chat_id = 0;     ///< AUTHOR_ID / TICKET_REQUESTER_ID in the export
  std::string name;             ///< display name as written (may be padded, have commas, ...)
  std::string email;            ///< as written in the export; empty for users without email
  std::string alt_email;        ///< a second email this chat id sometimes shows; may be empty
  bool in_index = false;        ///< the index holds `email` under another id
  bool name_ascii = false;      ///< whole name is ASCII (lone-CR rows need ASCII-only rows)
};

/// The sizes everything else is derived from.
struct plan_sizes {
  std::uint64_t rows = 0;
  std::uint64_t conversations = 0;
  std::uint64_t users = 0;
  std::uint64_t agents = 0;
  std::uint64_t index_positions = 0;  ///< normal index entries (extras come on top)
};

std::uint64_t home_position(const plan_sizes& sz, std::uint64_t user) noexcept {
  // Spaced >= 4 apart because index_positions >= 4.3 x users; +1 is never a home.
  return user * sz.index_positions / sz.users;
}

std::int64_t index_id(std::uint64_t seed, std::uint64_t position) noexcept {
  rng r(stream_key(seed, stream::index_id, position));
  return kIndexIdBase + static_cast<std::int64_t>(position) * kIndexIdStride +
         static_cast<std::int64_t>(r.below(3));
}

/// A fresh local part "first.last" style for user `u`; the trailing number keeps it unique.
std::string chat_local_part(rng& r, const name_part& first, const name_part& last, std::uint64_t u) {
  std::string local;
  switch (r.below(4)) {
    case 0:
      local.append(first.slug).append("."sv).append(last.slug);
      break;
    case 1:
      local.push_back(first.slug.front());
      local.append(last.slug);
      break;
    case 2:
      local.append(first.slug);
      break;
    default:
      local.append(last.slug).append("."sv).append(first.slug);
      break;
  }
  append_uint(local, u);
  return local;
}

std::vector<chat_user> build_users(std::uint64_t seed, const plan_sizes& sz) {
  std::vector<chat_user> users(sz.users);
  std::vector<std::string> base_emails(sz.users);
  for (std::uint64_t u = 0; u < sz.users; ++u) {
    rng r(stream_key(seed, stream::user, u));
    chat_user& user = users[u];
    const bool agent = u < sz.agents;
    const name_part& first = r.pick(kFirstNames);
    const name_part& last = r.pick(kLastNames);
    const name_part& cjk = r.pick(kCjkNames);
    const std::string_view emoji = r.pick(kEmojiSuffixes);
    // 1. The name, with the shapes real exports hold.
    const std::uint32_t style = r.below(100);
    const name_part* email_first = &first;
    const name_part* email_last = &last;
    if (style < 68) {
      user.name.append(first.display).append(" "sv).append(last.display);
    } else if (style < 80) {
      user.name.append(first.display);
    } else if (style < 85 && !agent) {
      user.name.append(last.display).append(", "sv).append(first.display);  // needs quotes
    } else if (style < 88 && !agent) {
      user.name.append(first.display).append(" \""sv).append(first.slug.substr(0, 2)).append("\" "sv);
      user.name.append(last.display);  // a nickname in quotes
    } else if (style < 94) {
      user.name.append(cjk.display);
      email_first = &cjk;
      email_last = &first;
    } else if (style < 97) {
      user.name.append(first.display).append(emoji);
    } else {
      user.name.append(" "sv).append(first.display).append(" "sv).append(last.display).append(" "sv);
    }
    user.name_ascii = is_ascii(user.name);
    // 2. The email, unique per user by its trailing number.
    const std::string local = chat_local_part(r, *email_first, *email_last, u);
    const std::string_view domain = agent ? kAgentDomain : r.pick(kPersonalDomains);
    base_emails[u] = local + "@" + std::string(domain);
    const bool capitalized = r.chance(100'000);
    const std::string_view work_domain = r.pick(kWorkDomains);
    const std::uint32_t id_jitter = r.below(kConversationIdStride);
    // 3. Properties whose shares matter: low-discrepancy sequences, exclusive in this order.
    const bool no_email = !agent && weyl_q32(u, weyl::no_email) < kNoEmailQ32;
    const bool shares = !agent && !no_email && u > sz.agents &&
                        weyl_q32(u, weyl::shares) < kSharesEmailQ32;
    const bool alt = !agent && !no_email && !shares && weyl_q32(u, weyl::alt_email) < kAltEmailQ32;
    const std::uint64_t in_index_q32 = agent ? kAgentInIndexQ32 : kCustomerInIndexQ32;
    user.in_index = !no_email && !shares && weyl_q32(u, weyl::in_index) < in_index_q32;
    const bool colliding = !agent && !no_email && !shares && !user.in_index &&
                           weyl_q32(u, weyl::colliding) < kCollidingIdQ32;
    if (no_email) {
      user.email.clear();
    } else if (shares) {
      // Another chat id with the previous user's address, in other letter case half the time.
      user.email = r.chance(500'000) ? capitalized_email(base_emails[u - 1]) : base_emails[u - 1];
      base_emails[u] = base_emails[u - 1];
    } else {
      user.email = capitalized ? capitalized_email(base_emails[u]) : base_emails[u];
    }
    if (alt) user.alt_email = local + "@" + std::string(work_domain);
    // 4. The chat id: its own range, unless it deliberately takes an index id.
    user.chat_id = colliding ? index_id(seed, home_position(sz, u) + 1)
                             : kChatIdBase + static_cast<std::int64_t>(u * kConversationIdStride) +
                                   id_jitter;
  }
  return users;
}

// ---------------------------------------------------------------------------
// Conversations: length, shape, and the replay of their slots.
// ---------------------------------------------------------------------------
/// Survival function of the conversation length L = 1 + G, G geometric with
/// P(G >= g) = (26/27)^g, in Q32 and computed with integers only: mean L = 27.
class length_table {
 public:
  length_table() {
    std::uint64_t s = kQ32;
    while (s > 0) {
      survival_.push_back(s);
      s = s * (kMeanRowsPerConversation - 1) / kMeanRowsPerConversation;
    }
  }
  /// L for a uniform 32-bit draw: 1 + the largest g >= 1 with survival[g] > draw.
  std::uint64_t sample(std::uint32_t draw) const noexcept {
    // survival_ is strictly decreasing; count the g >= 1 with survival[g] > draw.
    const auto it = std::partition_point(survival_.begin() + 1, survival_.end(),
                                         [draw](std::uint64_t s) { return s > draw; });
    return 1 + static_cast<std::uint64_t>(it - (survival_.begin() + 1));
  }

 private:
  std::vector<std::uint64_t> survival_;
};

const length_table& lengths() {
  static const length_table table;
  return table;
}

std::uint64_t conversation_length(std::uint64_t seed, std::uint64_t conv) noexcept {
  rng r(stream_key(seed, stream::conversation_length, conv));
  return lengths().sample(r.u32());
}

/// Where a block starts in the grouped (conversation after conversation) row order.
struct block_start {
  std::uint64_t conversation = 0;  ///< conversation holding the block's first row
  std::uint64_t first_slot = 0;    ///< that row's slot within the conversation
};

/// Everything the blocks share; read-only once built.
struct generator_plan {
  std::uint64_t seed = 0;
  plan_sizes sizes;
  std::vector<block_start> blocks;
  std::vector<chat_user> users;
  std::int64_t conversation_spacing = 1;  ///< seconds between conversation starts, on average
};

/// Per-conversation values that do not depend on its slots.
struct conversation_shape {
  std::uint64_t index = 0;
  std::uint64_t length = 0;       ///< slots (rows), after truncation of the last conversation
  std::int64_t id = 0;            ///< CONVERSATION_ID
  std::int64_t comment_base = 0;  ///< COMMENT_PART_ID of message m = comment_base + m
  std::int64_t start = 0;         ///< time of the first message = TICKET_CREATED_AT
  std::uint32_t requester = 0;    ///< user index (a customer)
  std::uint32_t agent = 0;        ///< user index of the first agent to answer
};

conversation_shape make_shape(const generator_plan& plan, std::uint64_t conv, std::uint64_t length) {
  const plan_sizes& sz = plan.sizes;
  rng r(stream_key(plan.seed, stream::conversation_shape, conv));
  conversation_shape s;
  s.index = conv;
  s.length = length;
  s.id = kConversationIdBase + static_cast<std::int64_t>(conv * kConversationIdStride + r.below(kConversationIdStride));
  s.comment_base = kCommentIdBase + static_cast<std::int64_t>(conv * kCommentIdStride);
  s.start = kFirstConversationTime + static_cast<std::int64_t>(conv) * plan.conversation_spacing +
            static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(plan.conversation_spacing)));
  // Customers arrive through the years: conversation `conv` brings customer k
  // when k first becomes reachable, otherwise a returning customer in [0, k].
  const std::uint64_t customers = sz.users - sz.agents;
  const std::uint64_t k = conv * customers / sz.conversations;
  const bool newcomer = conv == 0 || (conv - 1) * customers / sz.conversations < k;
  const std::uint64_t customer = newcomer ? k : r.below(k + 1);
  s.requester = static_cast<std::uint32_t>(sz.agents + std::min(customer, customers - 1));
  s.agent = r.below(sz.agents);
  return s;
}

enum class slot_kind : std::uint8_t { original, exact_duplicate, variant_duplicate };
enum class bad_field : std::uint8_t {
  none, ticket_created_at, requester_id, comment_part_id, conversation_id, comment_public,
  comment_created_at, author_id, email,
};
enum class malformed_kind : std::uint8_t { none, unquoted_name, truncated };

/// One message of a conversation: who wrote it and when.
struct message_plan {
  std::uint32_t author = 0;  ///< user index
  std::int64_t time = 0;     ///< COMMENT_CREATED_AT, epoch seconds
};

/// One row of a conversation in its own order.
struct slot_plan {
  std::uint32_t message = 0;                        ///< message index within the conversation
  slot_kind kind = slot_kind::original;
  bad_field bad = bad_field::none;                  ///< the one invalid value, if any
  malformed_kind malformed = malformed_kind::none;  ///< wrong field count, if any
  bool crlf = false;                                ///< record ends with CRLF
  bool blank_line_before = false;                   ///< an empty line precedes the record
  bool repeat = false;                              ///< well-formed, valid id already seen
};

struct conversation_plan {
  conversation_shape shape;
  std::vector<message_plan> messages;
  std::vector<slot_plan> slots;  ///< slots [0, replayed end)
};

bad_field pick_bad_field(rng& r) noexcept {
  switch (r.below(8)) {
    case 0: return bad_field::ticket_created_at;
    case 1: return bad_field::requester_id;
    case 2: return bad_field::comment_part_id;
    case 3: return bad_field::conversation_id;
    case 4: return bad_field::comment_public;
    case 5: return bad_field::comment_created_at;
    case 6: return bad_field::author_id;
    default: return bad_field::email;
  }
}

std::int64_t message_gap(rng& r) noexcept {
  const std::uint32_t x = r.below(100);
  if (x < 70) return 5 + r.below(240);
  if (x < 95) return 240 + r.below(1800);
  return 3600 + r.below(86400);
}

/// Replay the slots [0, end) of a conversation: which message each row is,
/// duplicates, the row-level mess, and who wrote each message when.
void replay_slots(const generator_plan& plan, conversation_plan& cp, std::uint64_t end) {
  const conversation_shape& s = cp.shape;
  rng r(stream_key(plan.seed, stream::conversation_slots, s.index));
  cp.messages.clear();
  cp.slots.clear();
  cp.slots.reserve(end);
  std::vector<bool> seen;  // message has had a well-formed row with a valid COMMENT_PART_ID
  bool agent_side = false;
  std::uint32_t agent = s.agent;
  std::int64_t time = s.start;
  for (std::uint64_t j = 0; j < end; ++j) {
    slot_plan slot;
    // Draw every event for every slot, used or not, so the stream stays aligned.
    const bool dup = r.chance(kDuplicatePpm);
    const bool variant = r.chance(kVariantDuplicatePpm);
    const bool previous = r.chance(kRepeatPreviousPpm);
    const std::uint32_t earlier = r.below(std::max<std::size_t>(cp.messages.size(), 1));
    const bool switch_speaker = r.chance(kSwitchSpeakerPpm);
    const bool transfer = r.chance(kAgentTransferPpm);
    const std::uint32_t new_agent = r.below(plan.sizes.agents);
    const std::int64_t gap = message_gap(r);
    const bool invalid = r.chance(kInvalidValuePpm);
    const bad_field bad = pick_bad_field(r);
    const bool malformed = r.chance(kMalformedPpm);
    const bool truncated = r.chance(500'000);
    slot.crlf = r.chance(kCrlfRecordEndPpm);
    slot.blank_line_before = r.chance(kBlankLinePpm);
    if (j > 0 && dup) {
      slot.kind = variant ? slot_kind::variant_duplicate : slot_kind::exact_duplicate;
      slot.message = previous ? static_cast<std::uint32_t>(cp.messages.size() - 1) : earlier;
    } else {
      message_plan m;
      if (cp.messages.empty()) {
        m.author = s.requester;  // the customer opens the chat
      } else {
        if (switch_speaker) agent_side = !agent_side;
        if (agent_side && switch_speaker && transfer) agent = new_agent;
        m.author = agent_side ? agent : s.requester;
        time += gap;
      }
      m.time = time;
      slot.message = static_cast<std::uint32_t>(cp.messages.size());
      cp.messages.push_back(m);
      seen.push_back(false);
    }
    if (malformed) slot.malformed = truncated ? malformed_kind::truncated : malformed_kind::unquoted_name;
    if (invalid) slot.bad = bad;
    const bool well_formed = slot.malformed == malformed_kind::none;
    if (well_formed && slot.bad != bad_field::comment_part_id) {
      slot.repeat = seen[slot.message];
      seen[slot.message] = true;
    }
    cp.slots.push_back(slot);
  }
}

// ---------------------------------------------------------------------------
// Rows.
// ---------------------------------------------------------------------------
/// Everything drawn for one message, in a fixed order from its own stream, so
/// an exact duplicate is the same bytes.
struct message_draws {
  time_spelling ticket_time;
  time_spelling comment_time;
  id_style requester_style = id_style::plain;
  id_style comment_style = id_style::plain;
  id_style conversation_style = id_style::plain;
  id_style author_style = id_style::plain;
  bool private_note = false;
  std::uint32_t public_spelling = 0;
  bool empty_author_id = false;
  bool empty_name = false;
  bool empty_email = false;
  bool empty_body = false;
  bool alt_email = false;
  bool email_upper = false;
  std::uint32_t email_padding = 0;  // 0 none, 1 leading, 2 trailing, 3 both
  bool name_padded = false;
  bool lone_cr = false;
  bool bad_utf8 = false;
  std::uint64_t body_key = 0;
};

message_draws draw_message(std::uint64_t seed, std::uint64_t conv, std::uint32_t message) {
  rng r(stream_key(seed, stream::message, conv, message));
  message_draws d;
  d.ticket_time = pick_time_spelling(r);
  d.comment_time = pick_time_spelling(r);
  d.requester_style = pick_id_style(r);
  d.comment_style = pick_id_style(r);
  d.conversation_style = pick_id_style(r);
  d.author_style = pick_id_style(r);
  d.private_note = r.chance(kPrivateNotePpm);
  const std::uint32_t sp = r.below(1000);
  d.public_spelling = sp < 930 ? 0 : sp < 960 ? 1 : sp < 980 ? 2 : sp < 990 ? 3 : sp < 995 ? 4 : 5;
  d.empty_author_id = r.chance(kEmptyAuthorIdPpm);
  d.empty_name = r.chance(kEmptyNamePpm);
  d.empty_email = r.chance(kEmptyEmailPpm);
  d.empty_body = r.chance(kEmptyBodyPpm);
  d.alt_email = r.chance(kAltEmailRowPpm);
  d.email_upper = r.chance(kEmailUpperPpm);
  d.email_padding = r.chance(kEmailPaddedPpm) ? 1 + r.below(3) : 0;
  d.name_padded = r.chance(kNamePaddedPpm);
  d.lone_cr = r.chance(kLoneCrPpm);
  d.bad_utf8 = r.chance(kBadUtf8Ppm);
  d.body_key = r.next();
  return d;
}

constexpr std::array<std::array<std::string_view, 2>, 6> kPublicSpellings{{
    {"False", "True"}, {"false", "true"}, {"0", "1"}, {"no", "yes"}, {"FALSE", "TRUE"}, {"f", "t"},
}};

std::uint64_t body_target_length(rng& r) noexcept {
  if (r.chance(kLongBodyPpm)) {
    // The tail: 400..~8000 bytes, most of it near the low end (product of uniforms).
    constexpr std::uint64_t kSpan = 7600;
    const std::uint64_t a = r.below(kSpan);
    const std::uint64_t b = r.below(kSpan);
    const std::uint64_t c = r.below(kSpan);
    return 400 + a * b / kSpan * c / kSpan;
  }
  // Most messages: a target of 20..290 bytes, triangular around 155; the last
  // sentence overshoots it by ~40 bytes on average, so bodies land in 20..400.
  return 20 + r.below(136) + r.below(136);
}

/// Fill `body` (unquoted) for one message.
void make_body(std::string& body, std::uint64_t key, bool agent, bool lone_cr, bool bad_utf8) {
  rng r(key);
  body.clear();
  const std::uint64_t target = body_target_length(r);
  if (lone_cr) {
    // ASCII only, a lone CR between two lines, no LF anywhere.
    body.append("<p>"sv).append(r.pick(kAsciiSentences)).append("\r"sv).append(r.pick(kAsciiSentences));
    body.append("</p>"sv);
    return;
  }
  const bool html = r.below(100) < 85;
  if (html) body.append("<p>"sv);
  const std::uint64_t bad_at = bad_utf8 ? r.below(4) : ~0ULL;
  for (std::uint64_t n = 0; body.size() < target; ++n) {
    if (n == bad_at) body.append(r.pick(kBadUtf8)).push_back(' ');
    const std::uint32_t what = r.below(100);
    if (html && what < 6) {
      body.append("See <a href=\"https://help.shopnow.example/articles/"sv);
      append_uint(body, 360'000'000 + r.below(1'000'000));
      body.append("\">this article</a> for details."sv);
    } else if (html && what < 9) {
      body.append("<b>Important:</b> "sv);
      body.append(agent ? r.pick(kAgentSentences) : r.pick(kCustomerSentences));
    } else if (target > 400 && what < 30) {
      // Long messages paste logs: many short LF-separated lines.
      body.append(html ? "<pre>"sv : ""sv);
      const std::uint32_t lines = 2 + r.below(6);
      for (std::uint32_t i = 0; i < lines; ++i) body.append(r.pick(kLogLines)).push_back('\n');
      body.append(html ? "</pre>"sv : ""sv);
    } else {
      body.append(agent ? r.pick(kAgentSentences) : r.pick(kCustomerSentences));
    }
    if (body.size() >= target) break;
    // Between sentences: a space, or a new paragraph with LF, CRLF or nothing between.
    if (r.below(100) < 30) {
      const std::string_view sep = r.pick(kParagraphSeparators);
      if (html) {
        body.append("</p>"sv).append(sep).append("<p>"sv);
      } else {
        body.append(sep.empty() ? "\n"sv : sep);
      }
    } else {
      body.push_back(' ');
    }
  }
  if (html) body.append("</p>"sv);
}

/// Per-block scratch space and counters.
struct block_context {
  std::string body;
  std::string scratch;
  std::vector<std::uint32_t> authors;  ///< user indices written as a valid AUTHOR_ID
  std::uint64_t duplicate_rows = 0;
};

void write_row(std::string& out, const generator_plan& plan, const conversation_plan& cp,
               std::uint64_t slot_index, block_context& ctx) {
  const conversation_shape& s = cp.shape;
  const slot_plan& slot = cp.slots[slot_index];
  const message_plan& msg = cp.messages[slot.message];
  const chat_user& author = plan.users[msg.author];
  const chat_user& requester = plan.users[s.requester];
  const bool agent = msg.author < plan.sizes.agents;
  message_draws d = draw_message(plan.seed, s.index, slot.message);
  std::uint64_t body_key = d.body_key;
  if (slot.kind == slot_kind::variant_duplicate) {
    // Same COMMENT_PART_ID, other content: one aspect changes.
    rng v(stream_key(plan.seed, stream::message_variant, s.index, slot_index));
    switch (v.below(4)) {
      case 0: body_key = v.next(); break;                                    // edited body
      case 1: d.public_spelling = (d.public_spelling + 1 + v.below(5)) % 6; break;
      case 2: {  // the same instant, spelled another way
        const time_style before = d.comment_time.style;
        d.comment_time = pick_time_spelling(v);
        if (d.comment_time.style == before) {
          d.comment_time.style = before == time_style::space ? time_style::iso_z : time_style::space;
        }
        break;
      }
      default:
        d.empty_name = !d.empty_name;
        d.email_upper = !d.email_upper;
        break;
    }
  }
  if (slot.repeat) ++ctx.duplicate_rows;
  if (slot.malformed == malformed_kind::none && slot.bad != bad_field::author_id &&
      !d.empty_author_id && (ctx.authors.empty() || ctx.authors.back() != msg.author)) {
    ctx.authors.push_back(msg.author);  // sorted and made unique at the end of the block
  }

  if (slot.blank_line_before) out.append(slot.crlf ? "\r\n"sv : "\n"sv);
  // TICKET_CREATED_AT
  if (slot.bad == bad_field::ticket_created_at) {
    out.append(kBadTimestamps[d.body_key % kBadTimestamps.size()]);
  } else {
    append_timestamp(out, s.start, d.ticket_time);
  }
  out.push_back(',');
  // TICKET_REQUESTER_ID
  if (slot.bad == bad_field::requester_id) {
    out.append(kBadIds[d.body_key % kBadIds.size()]);
  } else {
    append_id(out, requester.chat_id, d.requester_style);
  }
  out.push_back(',');
  // COMMENT_PART_ID
  if (slot.bad == bad_field::comment_part_id) {
    out.append(kBadIds[(d.body_key >> 8) % kBadIds.size()]);
  } else {
    append_id(out, s.comment_base + slot.message, d.comment_style);
  }
  out.push_back(',');
  // CONVERSATION_ID
  if (slot.bad == bad_field::conversation_id) {
    out.append(kBadIds[(d.body_key >> 16) % kBadIds.size()]);
  } else {
    append_id(out, s.id, d.conversation_style);
  }
  out.push_back(',');
  // COMMENT_PUBLIC
  if (slot.bad == bad_field::comment_public) {
    out.append(kBadBooleans[d.body_key % kBadBooleans.size()]);
  } else {
    out.append(kPublicSpellings[d.public_spelling][agent && d.private_note ? 0 : 1]);
  }
  out.push_back(',');
  // BODY
  if (!d.empty_body) {
    make_body(ctx.body, body_key, agent, d.lone_cr && !agent && author.name_ascii, d.bad_utf8);
    append_csv_field(out, ctx.body);
  }
  out.push_back(',');
  // COMMENT_CREATED_AT
  if (slot.bad == bad_field::comment_created_at) {
    out.append(kBadTimestamps[(d.body_key >> 24) % kBadTimestamps.size()]);
  } else {
    append_timestamp(out, msg.time, d.comment_time);
  }
  if (slot.malformed == malformed_kind::truncated) {
    // The export was cut here: three fields short.
    out.append(slot.crlf ? "\r\n"sv : "\n"sv);
    return;
  }
  out.push_back(',');
  // AUTHOR_ID
  if (slot.bad == bad_field::author_id) {
    out.append(kBadIds[(d.body_key >> 32) % kBadIds.size()]);
  } else if (!d.empty_author_id) {
    append_id(out, author.chat_id, d.author_style);
  }
  out.push_back(',');
  // NAME
  if (slot.malformed == malformed_kind::unquoted_name) {
    // A writer that forgot to quote "Last, First": one field too many.
    out.append(author.name_ascii ? "Doe, John" : "Müller, Jürgen");
  } else if (!d.empty_name) {
    if (d.name_padded) {
      ctx.scratch.assign(" ").append(author.name).append("  "sv);
      append_csv_field(out, ctx.scratch);
    } else {
      append_csv_field(out, author.name);
    }
  }
  out.push_back(',');
  // EMAIL
  if (slot.bad == bad_field::email) {
    out.append(kBadEmails[d.body_key % kBadEmails.size()]);
  } else if (!d.empty_email && !author.email.empty()) {
    const std::string& email =
        d.alt_email && !author.alt_email.empty() ? author.alt_email : author.email;
    if (d.email_padding & 1U) out.push_back(' ');
    if (d.email_upper) {
      out.append(upper_email(email));
    } else {
      out.append(email);
    }
    if (d.email_padding & 2U) out.append("  "sv);
  }
  out.append(slot.crlf ? "\r\n"sv : "\n"sv);
}

// ---------------------------------------------------------------------------
// Blocks.
// ---------------------------------------------------------------------------
struct block_result {
  std::string text;                    ///< the block's CSV records
  std::uint64_t rows = 0;              ///< records in `text`
  std::uint64_t duplicate_rows = 0;    ///< rows repeating an earlier COMMENT_PART_ID
  std::vector<std::uint32_t> authors;  ///< sorted, unique user indices written as AUTHOR_ID
};

/// A run of one conversation's slots inside the block.
struct segment {
  std::size_t conversation = 0;  ///< index into the block's conversation plans
  std::uint64_t next_slot = 0;
  std::uint64_t end_slot = 0;
};

constexpr std::size_t kInterleaveWindow = 3;  // conversations open at once
constexpr std::uint32_t kStayPpm = 550'000;   // keep writing the same conversation

block_result generate_block(const generator_plan& plan, std::uint64_t block) {
  const plan_sizes& sz = plan.sizes;
  const std::uint64_t first_row = block * kBlockRows;
  const std::uint64_t block_rows = std::min(kBlockRows, sz.rows - first_row);
  block_result result;
  result.rows = block_rows;
  result.text.reserve(block_rows * 420);

  // 1. The conversations the block touches, in grouped order, replayed up to
  //    the last slot the block needs.
  std::vector<conversation_plan> convs;
  std::vector<segment> segments;
  const block_start& bs = plan.blocks[block];
  std::uint64_t conv = bs.conversation;
  std::uint64_t slot = bs.first_slot;
  std::uint64_t conv_first_row = first_row - slot;
  for (std::uint64_t left = block_rows; left > 0; ++conv, slot = 0) {
    const std::uint64_t natural = conversation_length(plan.seed, conv);
    const std::uint64_t length = std::min(natural, sz.rows - conv_first_row);
    const std::uint64_t take = std::min(length - slot, left);
    conversation_plan cp;
    cp.shape = make_shape(plan, conv, length);
    replay_slots(plan, cp, slot + take);
    convs.push_back(std::move(cp));
    segments.push_back({convs.size() - 1, slot, slot + take});
    left -= take;
    conv_first_row += length;
  }

  // 2. Interleave neighbouring conversations, keeping each one's order.
  rng r(stream_key(plan.seed, stream::block, block));
  block_context ctx;
  std::array<segment, kInterleaveWindow> open{};
  std::size_t open_count = 0;
  std::size_t next_segment = 0;
  std::size_t current = 0;
  for (std::uint64_t written = 0; written < block_rows; ++written) {
    while (open_count < kInterleaveWindow && next_segment < segments.size()) {
      open[open_count++] = segments[next_segment++];
    }
    if (!(current < open_count && r.chance(kStayPpm))) current = r.below(open_count);
    segment& seg = open[current];
    write_row(result.text, plan, convs[seg.conversation], seg.next_slot, ctx);
    if (++seg.next_slot == seg.end_slot) {
      // Close it, keeping the others in their order.
      std::move(open.begin() + static_cast<std::ptrdiff_t>(current) + 1,
                open.begin() + static_cast<std::ptrdiff_t>(open_count),
                open.begin() + static_cast<std::ptrdiff_t>(current));
      --open_count;
      current = open_count;  // no preference after a close
    }
  }
  result.duplicate_rows = ctx.duplicate_rows;
  std::sort(ctx.authors.begin(), ctx.authors.end());
  ctx.authors.erase(std::unique(ctx.authors.begin(), ctx.authors.end()), ctx.authors.end());
  result.authors = std::move(ctx.authors);
  return result;
}

// ---------------------------------------------------------------------------
// The index file.
// ---------------------------------------------------------------------------
void append_index_email(std::string& out, std::string_view email, rng& r) {
  const bool padded = r.chance(kIndexPaddedPpm);
  const bool quoted = r.chance(kIndexQuotedPpm);
  if (quoted || padded) {
    // Padding is legal unquoted too; quoting some exercises the index reader's quotes.
    if (quoted) out.push_back('"');
    if (padded) out.push_back(' ');
    out.append(email);
    if (padded) out.append("  "sv);
    if (quoted) out.push_back('"');
  } else {
    out.append(email);
  }
}

std::string index_only_email(rng& r, std::uint64_t position, std::string_view suffix) {
  const name_part& first = r.pick(kFirstNames);
  const name_part& last = r.pick(kLastNames);
  std::string email;
  if (r.chance(500'000)) {
    email.append(first.slug).append("."sv).append(last.slug);
  } else {
    email.push_back(first.slug.front());
    email.append(last.slug);
  }
  email.push_back('.');  // digits after a dot: a shape chat emails never have
  append_uint(email, position);
  email.append(suffix).append("@"sv).append(r.pick(kPersonalDomains));
  return email;
}

/// The index CSV: one entry per position (40% of chat emails at their users'
/// home positions, the rest index-only users), plus a few invalid entries.
std::string build_index(const generator_plan& plan, std::uint64_t& entries) {
  const plan_sizes& sz = plan.sizes;
  std::string out;
  out.reserve(sz.index_positions * 40 + 64);
  out.append(kIndexHeader);
  entries = 0;
  std::uint64_t next_user = 0;
  for (std::uint64_t p = 0; p < sz.index_positions; ++p) {
    rng r(stream_key(plan.seed, stream::index_entry, p));
    const std::int64_t id = index_id(plan.seed, p);
    std::string email;
    const bool home = next_user < sz.users && home_position(sz, next_user) == p;
    const chat_user* user = home ? &plan.users[next_user++] : nullptr;
    if (user != nullptr && user->in_index) {
      // A chat user the platform already has, under its own id; the key is the same.
      email = user->email;
      if (r.chance(kIndexOtherCasePpm)) {
        email = r.chance(500'000) ? lower_email(email) : capitalized_email(lower_email(email));
        if (email == user->email) email = upper_email(email);
      }
    } else {
      email = index_only_email(r, p, "");
    }
    append_int(out, id);
    out.push_back(',');
    append_index_email(out, email, r);
    out.push_back('\n');
    ++entries;
    // The invalid entries a real index collects, each kind rarely.
    if (weyl_q32(p, weyl::index_bad_id) < kIndexBadEntryQ32) {  // an id that is not one
      out.append(r.pick(kBadIds)).push_back(',');
      out.append(index_only_email(r, p, "x")).push_back('\n');
      ++entries;
    }
    if (weyl_q32(p, weyl::index_no_email) < kIndexBadEntryQ32) {  // no email
      append_int(out, id + 4);
      out.append(r.chance(500'000) ? ",\n"sv : ",   \n"sv);
      ++entries;
    }
    if (weyl_q32(p, weyl::index_dup_email) < kIndexBadEntryQ32) {  // same email, another id
      append_int(out, id + 3);
      out.push_back(',');
      out.append(email).push_back('\n');
      ++entries;
    }
    if (weyl_q32(p, weyl::index_dup_id) < kIndexBadEntryQ32) {  // same id, another email
      append_int(out, id);
      out.push_back(',');
      out.append(index_only_email(r, p, "b")).push_back('\n');
      ++entries;
    }
  }
  return out;
}

/// Generate the plan's blocks on `workers` threads and hand them to `write`
/// on the calling thread in block order, with at most 2 x workers + 1 blocks
/// in flight (~6 MB each), so memory stays bounded whatever the row count.
///
/// Plain threads and one mutex rather than tbb::parallel_pipeline: Debian's
/// libtbb is not built with ThreadSanitizer, which then cannot see how oneTBB
/// passes tokens between threads and reports each hand-off as a race. Here
/// every hand-off goes through the mutex, so the [parallel] tests run clean
/// under TSan without suppressions. Blocks are big, so the lock is cold.
template <typename Write>
void run_ordered_blocks(const generator_plan& plan, unsigned workers, Write&& write) {
  const std::uint64_t block_count = plan.blocks.size();
  if (block_count == 0) return;
  const std::uint64_t window = 2 * static_cast<std::uint64_t>(workers) + 1;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::optional<block_result>> ring(window);  // block b lives in ring[b % window]
  std::uint64_t next_to_generate = 0;
  std::uint64_t next_to_write = 0;
  bool stop = false;
  std::exception_ptr worker_error;

  auto work = [&] {
    for (;;) {
      std::uint64_t block = 0;
      {
        std::unique_lock lock(mutex);
        // Wait for the ring slot of the next block to be free (written out).
        changed.wait(lock, [&] {
          return stop || next_to_generate == block_count || next_to_generate < next_to_write + window;
        });
        if (stop || next_to_generate == block_count) return;
        block = next_to_generate++;
      }
      try {
        block_result result = generate_block(plan, block);
        const std::lock_guard lock(mutex);
        ring[block % window] = std::move(result);
      } catch (...) {
        const std::lock_guard lock(mutex);
        if (!worker_error) worker_error = std::current_exception();
        stop = true;
      }
      changed.notify_all();
    }
  };

  std::vector<std::jthread> threads;
  // Joins the workers on every way out; on an error in `write` they stop early.
  class stop_and_join {
   public:
    explicit stop_and_join(std::function<void()> stop_all) : stop_all_(std::move(stop_all)) {}
    stop_and_join(const stop_and_join&) = delete;
    stop_and_join& operator=(const stop_and_join&) = delete;
    ~stop_and_join() { stop_all_(); }

   private:
    std::function<void()> stop_all_;
  } joiner([&] {
    {
      const std::lock_guard lock(mutex);
      stop = true;
    }
    changed.notify_all();
    threads.clear();  // each jthread joins
  });
  threads.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) threads.emplace_back(work);

  for (std::uint64_t block = 0; block < block_count; ++block) {
    block_result result;
    {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return worker_error || ring[block % window].has_value(); });
      if (worker_error) std::rethrow_exception(worker_error);
      result = std::move(*ring[block % window]);
      ring[block % window].reset();
      ++next_to_write;
    }
    changed.notify_all();
    write(result);
  }
}

generator_plan make_plan(const generate_options& options) {
  generator_plan plan;
  plan.seed = options.seed;
  plan_sizes& sz = plan.sizes;
  sz.rows = options.rows;
  if (sz.rows == 0) return plan;
  // 1. Conversation lengths: where each block starts in the grouped order.
  const std::uint64_t block_count = (sz.rows + kBlockRows - 1) / kBlockRows;
  plan.blocks.reserve(block_count);
  std::uint64_t conv_start = 0;
  std::uint64_t conv = 0;
  for (std::uint64_t b = 0; b < block_count; ++b) {
    const std::uint64_t row = b * kBlockRows;
    for (;;) {
      const std::uint64_t length = conversation_length(plan.seed, conv);
      if (row < conv_start + length) break;
      conv_start += length;
      ++conv;
    }
    plan.blocks.push_back({conv, row - conv_start});
  }
  while (conv_start + conversation_length(plan.seed, conv) < sz.rows) {
    conv_start += conversation_length(plan.seed, conv);
    ++conv;
  }
  sz.conversations = conv + 1;  // the last one is cut to end exactly at `rows`
  // 2. Users and the index, from the row count.
  sz.users = std::max<std::uint64_t>(2, (sz.rows + kRowsPerChatUser / 2) / kRowsPerChatUser);
  sz.agents = std::clamp<std::uint64_t>((sz.users + kUsersPerAgent / 2) / kUsersPerAgent, 1,
                                        std::min(kMaxAgents, sz.users - 1));
  sz.index_positions = (sz.users * kIndexPerChatUserTenths + 5) / 10;
  plan.conversation_spacing = std::max<std::int64_t>(
      1, kTimeSpanSeconds / static_cast<std::int64_t>(sz.conversations));
  plan.users = build_users(plan.seed, sz);
  return plan;
}

}  // namespace

generate_stats generate_sample(const generate_options& options) {
  const auto started = std::chrono::steady_clock::now();
  if (options.output.empty() || options.users_output.empty()) {
    throw fatal_error(exit_code::input_error, "generate: options: --output and --users-output are required");
  }
  if (fs::absolute(options.output).lexically_normal() ==
      fs::absolute(options.users_output).lexically_normal()) {
    throw fatal_error(exit_code::input_error,
                      "generate: options: --output and --users-output name the same file");
  }
  if (options.rows > kMaxRows) {
    throw fatal_error(exit_code::input_error,
                      "generate: options: --rows above " + std::to_string(kMaxRows));
  }
  const generator_plan plan = make_plan(options);
  const plan_sizes& sz = plan.sizes;
  generate_stats stats;
  stats.conversations = sz.conversations;

  // Written beside their targets, renamed into place when complete; a second SIGINT/SIGTERM
  // under main's interrupt_guard removes the temporary files.
  atomic_output_file index_file(options.users_output, "generate");
  atomic_output_file export_file(options.output, "generate");
  {
    std::uint64_t entries = 0;
    const std::string index_text = sz.rows == 0 ? std::string(kIndexHeader) : build_index(plan, entries);
    index_file.write(index_text);
    stats.index_users = entries;
  }
  export_file.write(kHeader);
  std::vector<bool> authored(sz.users, false);
  const unsigned workers = resolve_threads(options.threads);
  run_ordered_blocks(plan, workers, [&](block_result& r) {
    // The first signal: stop between blocks; the temp files go on unwinding.
    throw_if_interrupted();
    export_file.write(r.text);
    stats.rows += r.rows;
    if (options.progress) options.progress(stats.rows, options.rows);
    stats.duplicate_rows += r.duplicate_rows;
    for (const std::uint32_t u : r.authors) authored[u] = true;
  });
  stats.chat_users = static_cast<std::uint64_t>(std::count(authored.begin(), authored.end(), true));
  stats.bytes = export_file.bytes_written();

  index_file.complete();
  export_file.complete();
  index_file.commit();
  export_file.commit();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace tixport
