// File: archive_verifier.cpp
//
// `tixport verify`: a three-stage TBB pipeline over the entries of an archive.
//   1. read (serial, in order): libarchive hands out the next entry; entry-level
//      checks (type, path, name, numbering, size cap) and the entry's bytes read
//      into a padded buffer.
//   2. check (parallel): simdjson DOM parse, then the exact structure, key
//      order, types and values of SPEC 2.3-2.6; the entry's ids and references
//      are collected as compact (id, object index) lists.
//   3. merge (serial, in order): per-entry problems and counts are added, ids
//      go into open-addressing tables that find duplicates across the archive,
//      references are kept for the final pass.
// At the end every reference is looked up (ticket_id in the archive's tickets,
// author_id / requester_id in its users or the index) and the problems are
// sorted into archive order.
//
//   verify_result r = verify_archive({.archive = "out.tar.zst"});
//
// Memory: at most `tokens` entries (each <= max_entry_bytes) are in flight;
// the cross-entry state is ~16-32 bytes per object plus the email keys, and
// never holds bodies.
#include "tixport/archive/archive_verifier.hpp"

#include "tixport/ledger/run_ledger.hpp"

#include "tixport/index/user_index_csv.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/common/parallelism.hpp"
#include "tixport/csv/field_parsers.hpp"
#include "tixport/run/json_batch_encoder.hpp"

#include "common/parallel_loops_internal.hpp"
#include "common/tsan_annotations_internal.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <random>
#include <string_view>
#include <utility>

namespace tixport {
namespace {

using namespace std::string_view_literals;

// ---------------------------------------------------------------------------
// Limits and names
// ---------------------------------------------------------------------------

/// SPEC 2.6: at most 100 objects per array.
constexpr std::size_t kMaxPerArray = 100;
/// The deepest legal value is a scalar in an object in an array in
/// /data/tickets (depth 5); anything much deeper is hostile, and simdjson
/// rejects it before building the tape.
constexpr std::size_t kMaxJsonDepth = 16;
/// A parser that grew past this for one large entry is dropped afterwards, so
/// one hostile entry does not pin its buffers for the rest of the run.
constexpr std::size_t kKeepParserCapacity = std::size_t{8} << 20;
/// libarchive read block for archive_read_open_filename.
constexpr std::size_t kReadBlockBytes = std::size_t{1} << 20;
/// How much of a quoted value or key a message shows.
constexpr std::size_t kExcerptBytes = 60;
/// How much of an entry name a message shows (pax names can be very long).
constexpr std::size_t kMaxNameShown = 256;
/// Entry names end in "backup_tickets_{N}.json" with N = k*B, B in 1..100.
constexpr std::string_view kNamePrefix = "backup_tickets_";
constexpr std::string_view kNameSuffix = ".json";
constexpr std::uint64_t kMaxBatchSize = 100;
constexpr std::uint32_t kNoIndex = std::numeric_limits<std::uint32_t>::max();

enum class problem_kind : std::uint8_t {
  entry_type,
  entry_path,
  entry_name,
  entry_order,
  entry_too_large,
  json,
  utf8,
  structure,
  type,
  value,
  array_size,
  object_too_large,
  duplicate_ticket_id,
  duplicate_comment_id,
  duplicate_user_id,
  duplicate_email,
  unknown_ticket_id,
  unknown_author_id,
  unknown_requester_id,
  count_,
};
constexpr std::size_t kKindCount = static_cast<std::size_t>(problem_kind::count_);
constexpr std::array<std::string_view, kKindCount> kKindNames = {
    "entry_type",          "entry_path",           "entry_name",         "entry_order",
    "entry_too_large",     "json",                 "utf8",               "structure",
    "type",                "value",                "array_size",         "object_too_large",
    "duplicate_ticket_id",
    "duplicate_comment_id", "duplicate_user_id",   "duplicate_email",    "unknown_ticket_id",
    "unknown_author_id",   "unknown_requester_id",
};

/// Where in an entry a problem sits; also its rank in archive order.
enum class section : std::uint8_t { entry, document, tickets, comments, users, organizations };

/// Document-level problems rank by depth: "", "/data", "/data/tickets".
enum class doc_level : std::uint32_t { root, data, tickets };

constexpr std::array<std::string_view, 3> kTicketKeys = {"created_at", "requester_id", "id"};
constexpr std::array<std::string_view, 6> kCommentKeys = {"created_at", "ticket_id", "id",
                                                          "public",     "html_body", "author_id"};
constexpr std::array<std::string_view, 3> kUserKeys = {"name", "id", "email"};
constexpr std::array<std::string_view, 1> kRootKeys = {"data"};
constexpr std::array<std::string_view, 1> kDataKeys = {"tickets"};
constexpr std::array<std::string_view, 4> kTicketsKeys = {"data", "comments", "users",
                                                          "organizations"};

/// Field positions used as problem ranks (field 0 is the object itself).
constexpr std::uint8_t kTicketRequesterField = 2;  // 1 + index in kTicketKeys
constexpr std::uint8_t kTicketIdField = 3;
constexpr std::uint8_t kCommentTicketField = 2;
constexpr std::uint8_t kCommentIdField = 3;
constexpr std::uint8_t kCommentAuthorField = 6;
constexpr std::uint8_t kUserIdField = 2;
constexpr std::uint8_t kUserEmailField = 3;

std::string_view array_path(section sec) {
  switch (sec) {
    case section::tickets: return "/data/tickets/data";
    case section::comments: return "/data/tickets/comments";
    case section::users: return "/data/tickets/users";
    case section::organizations: return "/data/tickets/organizations";
    case section::entry:
    case section::document: break;
  }
  return "";
}

std::string_view field_name(section sec, std::uint8_t field) {
  if (field == 0) return {};
  const std::size_t idx = field - 1U;
  switch (sec) {
    case section::tickets: return idx < kTicketKeys.size() ? kTicketKeys[idx] : ""sv;
    case section::comments: return idx < kCommentKeys.size() ? kCommentKeys[idx] : ""sv;
    case section::users: return idx < kUserKeys.size() ? kUserKeys[idx] : ""sv;
    default: return {};
  }
}

/// JSON path of an object field: /data/tickets/comments/3/author_id.
std::string object_path(section sec, std::uint32_t obj, std::uint8_t field) {
  std::string path(array_path(sec));
  if (obj == kNoIndex) return path;
  path += '/';
  path += std::to_string(obj);
  if (const std::string_view name = field_name(sec, field); !name.empty()) {
    path += '/';
    path += name;
  }
  return path;
}

/// Bytes safe to print: printable ASCII as is, anything else as \xNN,
/// cut at `max_bytes` (entry names and values come from hostile input).
std::string printable(std::string_view text, std::size_t max_bytes = kExcerptBytes) {
  std::string out;
  const std::size_t shown = std::min(text.size(), max_bytes);
  out.reserve(shown + 8);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
      out += static_cast<char>(byte);
    } else {
      constexpr std::string_view kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4U];
      out += kHex[byte & 0xfU];
    }
  }
  if (shown < text.size()) out += "...";
  return out;
}

std::string quoted(std::string_view text) { return '"' + printable(text) + '"'; }

// Deliberately not field_parsers.hpp's trim_ws: the verifier checks the writer's trimming independently.
bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// ---------------------------------------------------------------------------
// Problems: counted always, kept only while among the first `keep` in order
// ---------------------------------------------------------------------------

struct problem_rank {
  std::uint32_t entry = 0;         ///< entry index in the archive
  section sec = section::entry;    ///< part of the entry
  std::uint32_t obj = 0;           ///< object index in the array (or doc_level)
  std::uint8_t field = 0;          ///< 0 = the object/array itself, else 1 + key position
  friend bool operator<(const problem_rank& a, const problem_rank& b) noexcept {
    return std::tie(a.entry, a.sec, a.obj, a.field) < std::tie(b.entry, b.sec, b.obj, b.field);
  }
};

struct problem_record {
  problem_rank rank;       ///< position in archive order
  problem_kind kind;       ///< what is wrong
  std::string json_path;   ///< where inside the entry
  std::string message;     ///< detail
};

class problem_sink {
 public:
  explicit problem_sink(std::size_t keep = 0) { reset(keep); }

  /// Count a problem; build its path and message only if it may be listed.
  template <typename PathFn, typename MessageFn>
  void add(problem_kind kind, problem_rank rank, PathFn&& path, MessageFn&& message) {
    ++counts_[static_cast<std::size_t>(kind)];
    if (!wanted(rank)) return;
    records_.push_back({rank, kind, std::string(path()), std::string(message())});
    if (records_.size() >= compact_at_) compact();
  }

  /// Move everything of `other` into this sink.
  void absorb(problem_sink& other) {
    for (std::size_t i = 0; i < kKindCount; ++i) counts_[i] += other.counts_[i];
    for (problem_record& rec : other.records_) {
      if (!wanted(rec.rank)) continue;
      records_.push_back(std::move(rec));
      if (records_.size() >= compact_at_) compact();
    }
    other.reset(keep_);
  }

  void reset(std::size_t keep) {
    keep_ = keep;
    // Sort and cut when twice `keep` are held (saturating: SIZE_MAX means all).
    compact_at_ = keep > std::numeric_limits<std::size_t>::max() / 2 ? std::numeric_limits<std::size_t>::max()
                                                                     : 2 * keep;
    counts_.fill(0);
    records_.clear();
    full_ = false;
  }

  /// The kept problems, sorted into archive order, at most `keep`.
  std::vector<problem_record> take_sorted() {
    compact();
    return std::move(records_);
  }

  [[nodiscard]] const std::array<std::uint64_t, kKindCount>& counts() const noexcept { return counts_; }

 private:
  [[nodiscard]] bool wanted(const problem_rank& rank) const noexcept {
    if (keep_ == 0) return false;
    // Equal ranks keep insertion order (stable sort), so a newcomer equal to
    // the current last kept one would be cut as well.
    return !full_ || rank < threshold_;
  }

  void compact() {
    std::stable_sort(records_.begin(), records_.end(),
                     [](const problem_record& a, const problem_record& b) { return a.rank < b.rank; });
    if (records_.size() >= keep_ && keep_ > 0) {
      records_.resize(keep_);
      full_ = true;
      threshold_ = records_.back().rank;
    }
  }

  std::size_t keep_ = 0;
  std::size_t compact_at_ = 0;
  std::array<std::uint64_t, kKindCount> counts_{};
  std::vector<problem_record> records_;
  bool full_ = false;
  problem_rank threshold_;
};

// ---------------------------------------------------------------------------
// Open-addressing tables for ids and email keys (hash-flooding resistant seed)
// ---------------------------------------------------------------------------

/// Where an object sits in the archive.
struct object_location {
  std::uint32_t entry = kNoIndex;  ///< kNoIndex marks an empty slot
  std::uint32_t obj = 0;
};

std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30U;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27U;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31U;
  return x;
}

std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed) noexcept {
  std::uint64_t h = mix64(seed ^ s.size());
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, s.data() + i, 8);
    h = mix64(h ^ word) + 0x9e3779b97f4a7c15ULL;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  return mix64(h ^ tail ^ seed);
}

/// Seeded per run, so a crafted archive cannot aim its ids at one bucket.
std::uint64_t random_seed() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32U) ^ device();
}

/// int64 id -> location of its first occurrence.
class id_table {
 public:
  explicit id_table(std::uint64_t seed) : seed_(seed) {}

  /// Insert `id` at `where`; returns the earlier location when it was there.
  std::optional<object_location> insert(std::int64_t id, object_location where) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    slot& s = find_slot(id);
    if (s.where.entry != kNoIndex) return s.where;
    s = {id, where};
    ++size_;
    return std::nullopt;
  }

  [[nodiscard]] bool contains(std::int64_t id) const noexcept {
    if (slots_.empty()) return false;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = mix64(static_cast<std::uint64_t>(id) ^ seed_) & mask;; i = (i + 1) & mask) {
      if (slots_[i].where.entry == kNoIndex) return false;
      if (slots_[i].id == id) return true;
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  struct slot {
    std::int64_t id = 0;
    object_location where;
  };

  slot& find_slot(std::int64_t id) noexcept {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = mix64(static_cast<std::uint64_t>(id) ^ seed_) & mask;; i = (i + 1) & mask) {
      if (slots_[i].where.entry == kNoIndex || slots_[i].id == id) return slots_[i];
    }
  }

  void grow() {
    std::vector<slot> old(std::max<std::size_t>(64, slots_.size() * 2));
    old.swap(slots_);
    for (const slot& s : old) {
      if (s.where.entry != kNoIndex) find_slot(s.id) = s;
    }
  }

  std::uint64_t seed_;
  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

/// Email key -> location of its first occurrence; keys live in one byte arena.
class email_table {
 public:
  explicit email_table(std::uint64_t seed) : seed_(seed) {}

  std::optional<object_location> insert(std::string_view key, object_location where) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const std::uint64_t h = hash_bytes(key, seed_);
    slot& s = find_slot(key, h);
    if (s.where.entry != kNoIndex) return s.where;
    s = {h, arena_.size(), static_cast<std::uint32_t>(key.size()), where};
    arena_.append(key);
    ++size_;
    return std::nullopt;
  }

 private:
  struct slot {
    std::uint64_t hash = 0;
    std::size_t offset = 0;
    std::uint32_t length = 0;
    object_location where;
  };

  slot& find_slot(std::string_view key, std::uint64_t h) noexcept {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      slot& s = slots_[i];
      if (s.where.entry == kNoIndex) return s;
      if (s.hash == h && s.length == key.size() &&
          std::string_view(arena_).substr(s.offset, s.length) == key) {
        return s;
      }
    }
  }

  void grow() {
    std::vector<slot> old(std::max<std::size_t>(64, slots_.size() * 2));
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const slot& s : old) {
      if (s.where.entry == kNoIndex) continue;
      std::size_t i = s.hash & mask;
      while (slots_[i].where.entry != kNoIndex) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  std::uint64_t seed_;
  std::vector<slot> slots_;
  std::string arena_;
  std::size_t size_ = 0;
};

// ---------------------------------------------------------------------------
// Value rules (SPEC 1.1, 2.1-2.4)
// ---------------------------------------------------------------------------

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool is_leap(int year) noexcept { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int days_in_month(int year, int month) noexcept {
  constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap(year) ? 29 : kDays[static_cast<std::size_t>(month - 1)];
}

/// `YYYY-MM-DDTHH:MM:SSZ` naming a real instant (no leap second: the writer
/// normalises through a calendar that has none).
bool valid_timestamp(std::string_view s) noexcept {
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:ddZ";
  if (s.size() != kShape.size()) return false;
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    if (kShape[i] == 'd' ? !is_digit(s[i]) : s[i] != kShape[i]) return false;
  }
  auto number = [&](std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) v = v * 10 + (s[i] - '0');
    return v;
  };
  const int year = number(0, 4);
  const int month = number(5, 2);
  const int day = number(8, 2);
  return month >= 1 && month <= 12 && day >= 1 && day <= days_in_month(year, month) &&
         number(11, 2) <= 23 && number(14, 2) <= 59 && number(17, 2) <= 59;
}

/// SPEC 1.1: exactly one `@`, text on both sides, no white space.
bool valid_email(std::string_view s) noexcept {
  const std::size_t at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == s.size()) return false;
  if (s.find('@', at + 1) != std::string_view::npos) return false;
  return std::none_of(s.begin(), s.end(), is_space);
}


std::string_view type_name(simdjson::dom::element_type t) noexcept {
  using simdjson::dom::element_type;
  switch (t) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64: return "an integer";
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

// ---------------------------------------------------------------------------
// UTF-8: find and neutralise invalid bytes, locate them in the JSON text
// ---------------------------------------------------------------------------

/// Length of the valid UTF-8 sequence at s[i], or 0 when it is invalid
/// (overlongs, surrogates and code points past U+10FFFF are invalid).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
  auto at = [&](std::size_t k) -> unsigned { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0U; };
  auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xbf) {
    const unsigned b = at(k);
    return k < s.size() && b >= lo && b <= hi;
  };
  const unsigned b0 = at(i);
  if (b0 < 0x80) return 1;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(i + 1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const unsigned lo = b0 == 0xe0 ? 0xa0 : 0x80;
    const unsigned hi = b0 == 0xed ? 0x9f : 0xbf;
    return cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const unsigned lo = b0 == 0xf0 ? 0x90 : 0x80;
    const unsigned hi = b0 == 0xf4 ? 0x8f : 0xbf;
    return cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  }
  return 0;
}

struct utf8_repair {
  std::size_t invalid_bytes = 0;  ///< bytes replaced by '?'
  std::size_t first_offset = 0;   ///< offset of the first one
};

/// Replace every byte that starts no valid sequence by '?', in place.
utf8_repair repair_utf8(char* data, std::size_t size) noexcept {
  utf8_repair repair;
  const std::string_view s(data, size);
  for (std::size_t i = 0; i < size;) {
    const std::size_t len = utf8_sequence_length(s, i);
    if (len != 0) {
      i += len;
      continue;
    }
    if (repair.invalid_bytes++ == 0) repair.first_offset = i;
    data[i] = '?';
    ++i;
  }
  return repair;
}

/// JSON pointer of the value (or key) holding byte `offset` of `doc`, found
/// by a light scan that tracks the open containers. Used only on the rare
/// error path; gives up (empty path) on text it does not understand.
std::string json_path_at(std::string_view doc, std::size_t offset) {
  struct frame {
    bool object = false;        ///< object or array
    std::size_t index = 0;      ///< array position
    std::string key;            ///< current member key (raw text)
    bool expecting_key = false; ///< next string in this object is a key
  };
  std::vector<frame> stack;
  auto render = [&]() {
    std::string path;
    for (const frame& f : stack) {
      path += '/';
      if (!f.object) {
        path += std::to_string(f.index);
        continue;
      }
      for (const char c : printable(f.key)) {
        if (c == '~') path += "~0";
        else if (c == '/') path += "~1";
        else path += c;
      }
    }
    return path;
  };
  std::size_t pos = 0;
  while (pos < doc.size() && pos <= offset) {
    const char c = doc[pos];
    if (is_space(c) || c == ':') {
      if (c == ':' && !stack.empty()) stack.back().expecting_key = false;
      ++pos;
    } else if (c == '{' || c == '[') {
      if (stack.size() >= kMaxJsonDepth) return {};
      stack.push_back({c == '{', 0, {}, c == '{'});
      ++pos;
    } else if (c == '}' || c == ']') {
      if (stack.empty()) return {};
      stack.pop_back();
      ++pos;
    } else if (c == ',') {
      if (stack.empty()) return {};
      frame& top = stack.back();
      if (top.object) top.expecting_key = true;
      else ++top.index;
      ++pos;
    } else if (c == '"') {
      std::size_t end = pos + 1;
      while (end < doc.size() && doc[end] != '"') end += doc[end] == '\\' ? 2 : 1;
      const bool is_key = !stack.empty() && stack.back().object && stack.back().expecting_key;
      if (is_key) stack.back().key.assign(doc.substr(pos + 1, std::min(end, doc.size()) - pos - 1));
      if (offset <= end) return render();
      pos = end + 1;
    } else {
      ++pos;  // a number, true, false or null
    }
  }
  return render();
}

// ---------------------------------------------------------------------------
// One entry: read, then checked on a worker
// ---------------------------------------------------------------------------

/// An id or reference at object `obj` of its array.
struct id_at {
  std::int64_t id;    ///< the value
  std::uint32_t obj;  ///< object index in its array
};

/// An email key at object `obj` of the users array, in the entry's key arena.
struct key_at {
  std::uint32_t offset;  ///< into entry_work::email_keys
  std::uint32_t length;  ///< bytes
  std::uint32_t obj;     ///< object index in the users array
};

/// Everything the pipeline carries for one archive entry; slots are reused.
struct entry_work {
  std::uint32_t entry_idx = 0;             ///< position in the archive
  std::string name;                        ///< entry name, made printable
  bool parse = false;                      ///< content is a candidate batch
  std::size_t array_cap = kMaxPerArray;    ///< max objects per array (100 or B)
  std::size_t max_text_json_bytes = kMaxTextJsonBytes;  ///< verify_options::max_text_json_bytes
  simdjson::padded_string content;         ///< entry bytes, dropped after the check
  problem_sink problems;                   ///< this entry's problems
  std::uint64_t tickets = 0;               ///< objects in /data/tickets/data
  std::uint64_t comments = 0;              ///< objects in /data/tickets/comments
  std::uint64_t users = 0;                 ///< objects in /data/tickets/users
  std::vector<id_at> ticket_ids;           ///< ticket ids (well-typed only)
  std::vector<id_at> requester_refs;       ///< tickets' requester_id
  std::vector<id_at> comment_ids;          ///< comment ids
  std::vector<id_at> ticket_refs;          ///< comments' ticket_id
  std::vector<id_at> author_refs;          ///< comments' author_id
  std::vector<id_at> user_ids;             ///< user ids
  std::string email_keys;                  ///< users' email keys, back to back
  std::vector<key_at> emails;              ///< slices of email_keys

  void reset(std::uint32_t idx, std::size_t keep) {
    entry_idx = idx;
    name.clear();
    parse = false;
    array_cap = kMaxPerArray;
    content = simdjson::padded_string{};
    problems.reset(keep);
    tickets = comments = users = 0;
    for (auto* v : {&ticket_ids, &requester_refs, &comment_ids, &ticket_refs, &author_refs, &user_ids}) {
      v->clear();
    }
    email_keys.clear();
    emails.clear();
  }
};

/// The per-worker simdjson parser (not thread safe, reused across entries).
struct json_worker {
  std::unique_ptr<simdjson::dom::parser> parser = fresh_parser();

  static std::unique_ptr<simdjson::dom::parser> fresh_parser() {
    auto p = std::make_unique<simdjson::dom::parser>();
    // Depth is fixed at allocation; later automatic growth keeps it.
    if (p->allocate(simdjson::dom::MINIMAL_DOCUMENT_CAPACITY, kMaxJsonDepth) != simdjson::SUCCESS) {
      throw std::bad_alloc();
    }
    return p;
  }
};

/// Checks one parsed document against SPEC 2.3-2.6 and collects its ids.
class document_checker {
 public:
  explicit document_checker(entry_work& work) : work_(work) {}

  void check(simdjson::dom::element root) {
    simdjson::dom::element data;
    simdjson::dom::element tickets;
    if (!descend(root, kRootKeys, doc_level::root, "", data)) return;
    if (!descend(data, kDataKeys, doc_level::data, "/data", tickets)) return;
    simdjson::dom::object obj;
    if (!expect_object(tickets, doc_level::tickets, "/data/tickets", obj)) return;
    std::array<std::optional<simdjson::dom::element>, kTicketsKeys.size()> parts;
    match_keys(obj, kTicketsKeys, parts, [&](std::string message) {
      add(problem_kind::structure, {work_.entry_idx, section::document, static_cast<std::uint32_t>(doc_level::tickets), 0},
          [] { return "/data/tickets"; }, [&] { return message; });
    });
    if (parts[0]) check_array(*parts[0], section::tickets);
    if (parts[1]) check_array(*parts[1], section::comments);
    if (parts[2]) check_array(*parts[2], section::users);
    if (parts[3]) check_organizations(*parts[3]);
  }

 private:
  template <typename PathFn, typename MessageFn>
  void add(problem_kind kind, problem_rank rank, PathFn&& path, MessageFn&& message) {
    work_.problems.add(kind, rank, std::forward<PathFn>(path), std::forward<MessageFn>(message));
  }

  void add_field(problem_kind kind, section sec, std::uint32_t obj, std::uint8_t field, std::string message) {
    add(kind, {work_.entry_idx, sec, obj, field}, [&] { return object_path(sec, obj, field); },
        [&] { return std::move(message); });
  }

  bool expect_object(simdjson::dom::element el, doc_level level, std::string_view path,
                     simdjson::dom::object& out) {
    if (el.get_object().get(out) == simdjson::SUCCESS) return true;
    add(problem_kind::structure, {work_.entry_idx, section::document, static_cast<std::uint32_t>(level), 0},
        [&] { return std::string(path); },
        [&] { return "expected an object, found " + std::string(type_name(el.type())); });
    return false;
  }

  /// `el` must be an object whose only key is keys[0]; hands out its value.
  template <std::size_t N>
  bool descend(simdjson::dom::element el, const std::array<std::string_view, N>& keys, doc_level level,
               std::string_view path, simdjson::dom::element& child) {
    simdjson::dom::object obj;
    if (!expect_object(el, level, path, obj)) return false;
    std::array<std::optional<simdjson::dom::element>, N> found;
    match_keys(obj, keys, found, [&](std::string message) {
      add(problem_kind::structure, {work_.entry_idx, section::document, static_cast<std::uint32_t>(level), 0},
          [&] { return std::string(path); }, [&] { return message; });
    });
    if (!found[0]) return false;
    child = *found[0];
    return true;
  }

  /// Hands out the value of each expected key (its first occurrence) and
  /// reports once when the keys are not exactly `expected`, in that order.
  template <std::size_t N, typename Report>
  static void match_keys(simdjson::dom::object obj, const std::array<std::string_view, N>& expected,
                         std::array<std::optional<simdjson::dom::element>, N>& found, Report&& report) {
    bool exact = true;
    std::size_t position = 0;
    for (const auto field : obj) {
      const std::string_view key = field.key;
      if (position < N && expected[position] == key) {
        if (!found[position]) found[position] = field.value;
        else exact = false;
      } else {
        exact = false;
        for (std::size_t j = 0; j < N; ++j) {
          if (expected[j] == key && !found[j]) found[j] = field.value;
        }
      }
      ++position;
    }
    if (exact && position == N) return;
    std::string message = "keys are {";
    std::size_t shown = 0;
    for (const auto field : obj) {
      if (shown > 0) message += ", ";
      if (++shown > 8) {
        message += "...";
        break;
      }
      message += quoted(field.key);
    }
    message += "}, expected {";
    for (std::size_t j = 0; j < N; ++j) {
      if (j > 0) message += ", ";
      message += '"';
      message += expected[j];
      message += '"';
    }
    message += '}';
    report(std::move(message));
  }

  void check_array(simdjson::dom::element el, section sec) {
    simdjson::dom::array arr;
    if (el.get_array().get(arr) != simdjson::SUCCESS) {
      add(problem_kind::structure, {work_.entry_idx, sec, 0, 0}, [&] { return std::string(array_path(sec)); },
          [&] { return "expected an array, found " + std::string(type_name(el.type())); });
      return;
    }
    const std::size_t count = arr.size();
    if (count > work_.array_cap) {
      add(problem_kind::array_size, {work_.entry_idx, sec, 0, 0}, [&] { return std::string(array_path(sec)); },
          [&] {
            return std::to_string(count) + " objects, at most " + std::to_string(work_.array_cap) +
                   (work_.array_cap == kMaxPerArray ? std::string() : " (the batch size of this archive)") +
                   " allowed";
          });
    }
    switch (sec) {
      case section::tickets: work_.tickets += count; break;
      case section::comments: work_.comments += count; break;
      case section::users: work_.users += count; break;
      default: break;
    }
    std::uint32_t idx = 0;
    for (const simdjson::dom::element item : arr) {
      check_object(item, sec, idx++);
    }
  }

  void check_object(simdjson::dom::element el, section sec, std::uint32_t idx) {
    simdjson::dom::object obj;
    if (el.get_object().get(obj) != simdjson::SUCCESS) {
      add_field(problem_kind::structure, sec, idx, 0, "expected an object, found " + std::string(type_name(el.type())));
      return;
    }
    auto report = [&](std::string message) { add_field(problem_kind::structure, sec, idx, 0, std::move(message)); };
    if (sec == section::tickets) {
      std::array<std::optional<simdjson::dom::element>, kTicketKeys.size()> f;
      match_keys(obj, kTicketKeys, f, report);
      check_timestamp(f[0], sec, idx, 1);
      collect_id(f[1], sec, idx, kTicketRequesterField, work_.requester_refs);
      collect_id(f[2], sec, idx, kTicketIdField, work_.ticket_ids);
    } else if (sec == section::comments) {
      std::array<std::optional<simdjson::dom::element>, kCommentKeys.size()> f;
      match_keys(obj, kCommentKeys, f, report);
      check_timestamp(f[0], sec, idx, 1);
      collect_id(f[1], sec, idx, kCommentTicketField, work_.ticket_refs);
      collect_id(f[2], sec, idx, kCommentIdField, work_.comment_ids);
      check_bool(f[3], sec, idx, 4);
      check_text(f[4], sec, idx, 5, "html_body", /*must_be_trimmed=*/false);
      collect_id(f[5], sec, idx, kCommentAuthorField, work_.author_refs);
      check_text_size({f[4]}, sec, idx, 5, "html_body is ", " bytes as a JSON string");
    } else {
      std::array<std::optional<simdjson::dom::element>, kUserKeys.size()> f;
      match_keys(obj, kUserKeys, f, report);
      check_text(f[0], sec, idx, 1, "name", /*must_be_trimmed=*/true);
      collect_id(f[1], sec, idx, kUserIdField, work_.user_ids);
      check_email(f[2], sec, idx);
      check_text_size({f[0], f[2]}, sec, idx, 0, "name and email are ", " bytes as JSON strings");
    }
  }

  /// The size rule of batch_limits.hpp, measured as `run` measures it: the JSON string bytes
  /// of the texts together (strings only; a wrong type was reported already).
  void check_text_size(std::initializer_list<std::optional<simdjson::dom::element>> texts, section sec,
                       std::uint32_t idx, std::uint8_t field, std::string_view what, std::string_view unit) {
    std::size_t size = 0;
    for (const auto& el : texts) {
      std::string_view s;
      if (el && el->get_string().get(s) == simdjson::SUCCESS) size += json_string_bytes(s);
    }
    if (size > work_.max_text_json_bytes) {
      add_field(problem_kind::object_too_large, sec, idx, field,
                std::string(what) + std::to_string(size) + std::string(unit) + ", more than the limit of " +
                    std::to_string(work_.max_text_json_bytes));
    }
  }

  /// A string value, or a type problem (missing keys were reported already).
  std::optional<std::string_view> string_field(const std::optional<simdjson::dom::element>& el, section sec,
                                               std::uint32_t idx, std::uint8_t field) {
    if (!el) return std::nullopt;
    std::string_view s;
    if (el->get_string().get(s) == simdjson::SUCCESS) return s;
    add_field(problem_kind::type, sec, idx, field, "expected a string, found " + std::string(type_name(el->type())));
    return std::nullopt;
  }

  void check_timestamp(const std::optional<simdjson::dom::element>& el, section sec, std::uint32_t idx,
                       std::uint8_t field) {
    const auto s = string_field(el, sec, idx, field);
    if (s && !valid_timestamp(*s)) {
      add_field(problem_kind::value, sec, idx, field,
                quoted(*s) + " is not a valid YYYY-MM-DDTHH:MM:SSZ timestamp");
    }
  }

  void check_bool(const std::optional<simdjson::dom::element>& el, section sec, std::uint32_t idx,
                  std::uint8_t field) {
    if (el && !el->is_bool()) {
      add_field(problem_kind::type, sec, idx, field, "expected a boolean, found " + std::string(type_name(el->type())));
    }
  }

  void check_text(const std::optional<simdjson::dom::element>& el, section sec, std::uint32_t idx,
                  std::uint8_t field, std::string_view what, bool must_be_trimmed) {
    const auto s = string_field(el, sec, idx, field);
    if (!s) return;
    if (trim(*s).empty()) {
      add_field(problem_kind::value, sec, idx, field, std::string(what) + " is empty or only white space");
    } else if (must_be_trimmed && trim(*s).size() != s->size()) {
      add_field(problem_kind::value, sec, idx, field,
                std::string(what) + " " + quoted(*s) + " has leading or trailing white space");
    }
  }

  void check_email(const std::optional<simdjson::dom::element>& el, section sec, std::uint32_t idx) {
    const auto s = string_field(el, sec, idx, kUserEmailField);
    if (!s) return;
    if (!valid_email(*s)) {
      add_field(problem_kind::value, sec, idx, kUserEmailField,
                quoted(*s) + " is not a valid email (one @, text on both sides, no white space)");
    }
    const auto offset = static_cast<std::uint32_t>(work_.email_keys.size());
    std::transform(s->begin(), s->end(), std::back_inserter(work_.email_keys), ascii_lower);
    work_.emails.push_back({offset, static_cast<std::uint32_t>(s->size()), idx});
  }

  void collect_id(const std::optional<simdjson::dom::element>& el, section sec, std::uint32_t idx,
                  std::uint8_t field, std::vector<id_at>& out) {
    if (!el) return;
    std::int64_t id = 0;
    if (el->type() == simdjson::dom::element_type::INT64 && el->get_int64().get(id) == simdjson::SUCCESS) {
      out.push_back({id, idx});
      return;
    }
    if (el->type() == simdjson::dom::element_type::UINT64) {
      add_field(problem_kind::type, sec, idx, field,
                std::to_string(el->get_uint64().value_unsafe()) + " is outside the int64 range");
    } else {
      add_field(problem_kind::type, sec, idx, field,
                "expected an integer, found " + std::string(type_name(el->type())));
    }
  }

  void check_organizations(simdjson::dom::element el) {
    simdjson::dom::array arr;
    if (el.get_array().get(arr) != simdjson::SUCCESS) {
      add(problem_kind::structure, {work_.entry_idx, section::organizations, 0, 0},
          [] { return "/data/tickets/organizations"; },
          [&] { return "expected an array, found " + std::string(type_name(el.type())); });
    } else if (arr.size() != 0) {
      add(problem_kind::value, {work_.entry_idx, section::organizations, 0, 0},
          [] { return "/data/tickets/organizations"; },
          [&] { return "must be empty, holds " + std::to_string(arr.size()) + " values"; });
    }
  }

  entry_work& work_;
};

/// Stage 2: parse and check one entry (runs on any worker).
void check_entry(entry_work& work, json_worker& worker) {
  if (!work.parse) return;
  simdjson::dom::parser& parser = *worker.parser;
  simdjson::dom::element root;
  auto error = parser.parse(work.content).get(root);
  if (error == simdjson::UTF8_ERROR) {
    // simdjson validates the whole text at once; find where, report it with
    // its path, then check the rest with the bad bytes neutralised so one bad
    // string does not hide the entry's other problems or its ids.
    const std::string_view text(work.content.data(), work.content.size());
    std::size_t first_bad = 0;
    while (first_bad < text.size() && utf8_sequence_length(text, first_bad) != 0) {
      first_bad += utf8_sequence_length(text, first_bad);
    }
    // The path comes from the original bytes (a key may hold the bad bytes).
    std::string path = json_path_at(text, first_bad);
    const utf8_repair repair = repair_utf8(work.content.data(), work.content.size());
    work.problems.add(
        problem_kind::utf8, {work.entry_idx, section::document, 0, 0}, [&] { return std::move(path); },
        [&] {
          return "invalid UTF-8 at byte " + std::to_string(repair.first_offset) + " (" +
                 std::to_string(repair.invalid_bytes) + " invalid bytes in this entry)";
        });
    error = parser.parse(work.content).get(root);
  }
  if (error != simdjson::SUCCESS) {
    work.problems.add(problem_kind::json, {work.entry_idx, section::document, 0, 0}, [] { return ""; }, [&] {
      switch (error) {
        case simdjson::DEPTH_ERROR: return "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
        case simdjson::EMPTY: return std::string("empty entry: no JSON value");
        case simdjson::NUMBER_ERROR: return std::string("not valid JSON: a number is malformed or beyond 64 bits");
        default: return "not valid JSON: " + std::string(simdjson::error_message(error));
      }
    });
  } else {
    document_checker(work).check(root);
  }
  work.content = simdjson::padded_string{};
  if (parser.capacity() > kKeepParserCapacity) worker.parser = json_worker::fresh_parser();
}

// ---------------------------------------------------------------------------
// Stage 1: the archive reader
// ---------------------------------------------------------------------------

struct archive_deleter {
  void operator()(archive* a) const noexcept { archive_read_free(a); }
};

class archive_reader {
 public:
  archive_reader(const std::filesystem::path& path, std::size_t max_entry_bytes)
      : path_(path.string()), max_entry_bytes_(max_entry_bytes), handle_(archive_read_new()) {
    if (!handle_) throw fatal_error(exit_code::input_error, "verify: open: out of memory");
    // Only what tixport writes: tar (ustar/pax/gnu), plain, gzip or zstd,
    // recognised from the bytes, whatever the file is called.
    archive_read_support_format_tar(handle_.get());
    archive_read_support_filter_gzip(handle_.get());
    archive_read_support_filter_zstd(handle_.get());
    if (archive_read_open_filename(handle_.get(), path_.c_str(), kReadBlockBytes) != ARCHIVE_OK) fail("open");
  }

  /// Bytes of the archive file read so far (compressed), for a progress line.
  [[nodiscard]] std::uint64_t file_bytes_read() const {
    const la_int64_t n = archive_filter_bytes(handle_.get(), -1);
    return n > 0 ? static_cast<std::uint64_t>(n) : 0;
  }

  /// Fill `work` with the next entry and its entry-level problems; false at the end.
  bool next(entry_work& work) {
    archive_entry* entry = nullptr;
    current_.clear();
    const int rc = archive_read_next_header(handle_.get(), &entry);
    if (rc == ARCHIVE_EOF) return false;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) fail("read header");
    const char* raw_name = archive_entry_pathname(entry);
    const std::string_view name = raw_name != nullptr ? std::string_view(raw_name) : std::string_view();
    work.name = printable(name, kMaxNameShown);
    current_ = work.name;
    const std::uint32_t idx = work.entry_idx;
    auto entry_problem = [&](problem_kind kind, std::string message) {
      work.problems.add(kind, {idx, section::entry, 0, 0}, [] { return ""; }, [&] { return std::move(message); });
    };

    // 1. Only regular files: a link or directory is never a batch.
    const auto type = archive_entry_filetype(entry);
    if (type != AE_IFREG || archive_entry_hardlink(entry) != nullptr) {
      entry_problem(problem_kind::entry_type, std::string("not a regular file (") + entry_type_name(entry) + ")");
      skip();
      return true;
    }
    // 2. Entries sit at the root under their plain name.
    if (!check_path(name, entry_problem)) {
      skip();
      return true;
    }
    // 3. The name and its number, then the size cap.
    const std::optional<std::uint64_t> number = batch_number(name);
    if (!number) {
      entry_problem(problem_kind::entry_name, "name is not backup_tickets_{N}.json");
      skip();
      return true;
    }
    check_order(*number, work, entry_problem);
    if (archive_entry_size_is_set(entry) != 0 && archive_entry_size(entry) >= 0 &&
        static_cast<std::uint64_t>(archive_entry_size(entry)) > max_entry_bytes_) {
      const auto declared = static_cast<std::uint64_t>(archive_entry_size(entry));
      entry_problem(problem_kind::entry_too_large, std::to_string(declared) + " bytes, more than the limit of " +
                                                       std::to_string(max_entry_bytes_));
      skip();
      return true;
    }
    if (read_content(entry, work)) {
      work.parse = true;
    } else {
      entry_problem(problem_kind::entry_too_large, "more than the limit of " + std::to_string(max_entry_bytes_) + " bytes");
    }
    return true;
  }

  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  [[noreturn]] void fail(std::string_view step) const {
    const char* raw = archive_error_string(handle_.get());
    std::string reason = raw != nullptr ? raw : "unreadable archive";
    if (step == "open" && reason.rfind("Failed to open", 0) == 0 && archive_errno(handle_.get()) > 0) {
      reason += std::string(": ") + std::strerror(archive_errno(handle_.get()));
    }
    if (reason.find("Unrecognized archive format") != std::string::npos) {
      reason += " (expected a .tar, .tar.gz or .tar.zst archive)";
    }
    const std::string entry = current_.empty() ? std::string() : current_ + ": ";
    throw fatal_error(exit_code::input_error, "verify: " + std::string(step) + ": " + path_ + ": " + entry + reason);
  }

  static const char* entry_type_name(archive_entry* entry) {
    if (archive_entry_hardlink(entry) != nullptr) return "hard link";
    switch (archive_entry_filetype(entry)) {
      case AE_IFDIR: return "directory";
      case AE_IFLNK: return "symbolic link";
      case AE_IFCHR: return "character device";
      case AE_IFBLK: return "block device";
      case AE_IFIFO: return "fifo";
      case AE_IFSOCK: return "socket";
      default: return "unknown type";
    }
  }

  template <typename Report>
  static bool check_path(std::string_view name, Report& report) {
    if (name.empty()) {
      report(problem_kind::entry_name, "empty name");
      return false;
    }
    if (name.front() == '/') {
      report(problem_kind::entry_path, "absolute path");
      return false;
    }
    // A `..` component anywhere, `./` in front: both would place a file
    // somewhere else than the root on extraction.
    for (std::size_t start = 0; start <= name.size();) {
      const std::size_t slash = std::min(name.find('/', start), name.size());
      if (name.substr(start, slash - start) == "..") {
        report(problem_kind::entry_path, "path with a .. component");
        return false;
      }
      start = slash + 1;
    }
    if (name.substr(0, 2) == "./") {
      report(problem_kind::entry_path, "path starts with ./");
      return false;
    }
    if (name.find('/') != std::string_view::npos) {
      report(problem_kind::entry_name, "not at the archive's root");
      return false;
    }
    return true;
  }

  /// N of backup_tickets_{N}.json: decimal, no leading zero, positive.
  static std::optional<std::uint64_t> batch_number(std::string_view name) {
    if (name.size() <= kNamePrefix.size() + kNameSuffix.size() || name.substr(0, kNamePrefix.size()) != kNamePrefix ||
        name.substr(name.size() - kNameSuffix.size()) != kNameSuffix) {
      return std::nullopt;
    }
    const std::string_view digits =
        name.substr(kNamePrefix.size(), name.size() - kNamePrefix.size() - kNameSuffix.size());
    constexpr std::size_t kMaxDigits = 18;  // keeps N + B far from overflow
    if (digits.size() > kMaxDigits || digits.front() == '0') return std::nullopt;
    std::uint64_t n = 0;
    for (const char c : digits) {
      if (!is_digit(c)) return std::nullopt;
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
  }

  /// The first name fixes the step B (N = k*B; B = 1 is also index style);
  /// each later one must be the previous N + B, so one missing entry is one problem.
  template <typename Report>
  void check_order(std::uint64_t n, entry_work& work, Report& report) {
    if (step_ == 0) {
      step_ = n;
      if (n > kMaxBatchSize) {
        report(problem_kind::entry_order,
               "first entry must be backup_tickets_{B}.json with B in 1..100 (B-numbering) or "
               "backup_tickets_1.json (index numbering)");
      }
    } else if (n != last_ + step_) {
      report(problem_kind::entry_order, "out of order: expected backup_tickets_" + std::to_string(last_ + step_) + ".json");
    }
    last_ = n;
    // With N = k*B and B > 1 a batch holds at most B of each kind; B = 1 reads
    // as index numbering, where only the 100 limit applies.
    work.array_cap = (step_ > 1 && step_ <= kMaxBatchSize) ? step_ : kMaxPerArray;
  }

  /// Read the entry into work.content; false when it passes the cap (the
  /// declared size is not known up front for some tar variants).
  bool read_content(archive_entry* entry, entry_work& work) {
    if (archive_entry_size_is_set(entry) != 0) {
      const auto size = static_cast<std::size_t>(archive_entry_size(entry));
      work.content = simdjson::padded_string(size);
      if (size > 0 && work.content.data() == nullptr) throw std::bad_alloc();
      read_exactly(work.content.data(), size);
      bytes_ += size;
      return true;
    }
    std::string buffer;
    std::array<char, 64 * 1024> block{};
    for (;;) {
      const la_ssize_t got = archive_read_data(handle_.get(), block.data(), block.size());
      if (got < 0) fail("read data");
      if (got == 0) break;
      bytes_ += static_cast<std::uint64_t>(got);
      if (buffer.size() + static_cast<std::size_t>(got) > max_entry_bytes_) {
        skip();
        return false;
      }
      buffer.append(block.data(), static_cast<std::size_t>(got));
    }
    work.content = simdjson::padded_string(buffer);
    return true;
  }

  void read_exactly(char* out, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
      const la_ssize_t got = archive_read_data(handle_.get(), out + done, size - done);
      if (got < 0) fail("read data");
      if (got == 0) {
        throw fatal_error(exit_code::input_error, "verify: read data: " + path_ + ": " + current_ +
                                                      ": entry ends after " + std::to_string(done) + " of " +
                                                      std::to_string(size) + " bytes (truncated archive)");
      }
      done += static_cast<std::size_t>(got);
    }
  }

  void skip() {
    if (archive_read_data_skip(handle_.get()) != ARCHIVE_OK) fail("skip data");
  }

  std::string path_;
  std::size_t max_entry_bytes_;
  std::unique_ptr<archive, archive_deleter> handle_;
  std::string current_;     ///< printable name of the entry being read, for messages
  std::uint64_t step_ = 0;  ///< B, 0 until the first well-named entry
  std::uint64_t last_ = 0;  ///< N of the last well-named entry
  std::uint64_t bytes_ = 0;
};

// ---------------------------------------------------------------------------
// The index CSV (id,email), read by the same reader and rules as `run`'s
// ---------------------------------------------------------------------------

void read_index_ids(const std::filesystem::path& path, id_table& ids) {
  // For verify an unreadable index is an unreadable input: exit 2.
  const std::vector<raw_index_entry> entries =
      read_index_csv(path, 0, {"verify: users file: user index", exit_code::input_error});
  for (const raw_index_entry& entry : entries) {
    if (entry.id) ids.insert(*entry.id, {0, 0});
  }
}

// ---------------------------------------------------------------------------
// Stage 3 and the final pass
// ---------------------------------------------------------------------------

/// A reference to check once every entry is in.
struct pending_ref {
  std::int64_t id;       ///< referenced id
  std::uint32_t entry;   ///< entry index
  std::uint32_t obj;     ///< object index in its array
};

class archive_merger {
 public:
  explicit archive_merger(std::size_t keep)
      : problems_(keep), seed_(random_seed()), tickets_(seed_), comments_(seed_ ^ 1U), users_(seed_ ^ 2U),
        emails_(seed_ ^ 3U) {}

  /// Add one checked entry; entries arrive in archive order.
  void merge(entry_work& work) {
    names_.push_back(std::move(work.name));
    problems_.absorb(work.problems);
    tickets_count_ += work.tickets;
    comments_count_ += work.comments;
    users_count_ += work.users;
    const std::uint32_t e = work.entry_idx;
    check_unique(work.ticket_ids, e, tickets_, problem_kind::duplicate_ticket_id, section::tickets, kTicketIdField,
                 "ticket id");
    check_unique(work.comment_ids, e, comments_, problem_kind::duplicate_comment_id, section::comments,
                 kCommentIdField, "comment id");
    check_unique(work.user_ids, e, users_, problem_kind::duplicate_user_id, section::users, kUserIdField, "user id");
    for (const key_at& k : work.emails) {
      const std::string_view key = std::string_view(work.email_keys).substr(k.offset, k.length);
      if (const auto first = emails_.insert(key, {e, k.obj})) {
        problems_.add(problem_kind::duplicate_email, {e, section::users, k.obj, kUserEmailField},
                      [&] { return object_path(section::users, k.obj, kUserEmailField); },
                      [&] {
                        return "email key " + quoted(key) + " already used at " + where(*first, section::users, kUserEmailField);
                      });
      }
    }
    append_refs(work.requester_refs, e, requester_refs_);
    append_refs(work.ticket_refs, e, ticket_refs_);
    append_refs(work.author_refs, e, author_refs_);
  }

  /// The final pass: every reference against the archive (and the index, and a ledger's
  /// tickets and users: a delta archive refers to what earlier archives imported).
  void check_references(const id_table* index, const id_table* ledger_tickets = nullptr,
                        const id_table* ledger_users = nullptr) {
    for (const pending_ref& r : ticket_refs_) {
      if (tickets_.contains(r.id) || (ledger_tickets != nullptr && ledger_tickets->contains(r.id))) continue;
      report_ref(r, problem_kind::unknown_ticket_id, section::comments, kCommentTicketField,
                 "ticket_id " + std::to_string(r.id) + " has no ticket in the archive");
    }
    const std::string_view scope = index != nullptr ? "neither a user in the archive nor in the index"
                                                    : "not a user in the archive (no index given)";
    auto known_user = [&](std::int64_t id) {
      return users_.contains(id) || (index != nullptr && index->contains(id)) ||
             (ledger_users != nullptr && ledger_users->contains(id));
    };
    for (const pending_ref& r : requester_refs_) {
      if (known_user(r.id)) continue;
      report_ref(r, problem_kind::unknown_requester_id, section::tickets, kTicketRequesterField,
                 "requester_id " + std::to_string(r.id) + " is " + std::string(scope));
    }
    for (const pending_ref& r : author_refs_) {
      if (known_user(r.id)) continue;
      report_ref(r, problem_kind::unknown_author_id, section::comments, kCommentAuthorField,
                 "author_id " + std::to_string(r.id) + " is " + std::string(scope));
    }
  }

  void finish(verify_result& result) {
    result.tickets = tickets_count_;
    result.comments = comments_count_;
    result.users = users_count_;
    const auto& counts = problems_.counts();
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < kKindCount; ++i) {
      if (counts[i] == 0) continue;
      result.problems_by_kind[std::string(kKindNames[i])] = counts[i];
      total += counts[i];
    }
    result.valid = total == 0;
    for (problem_record& rec : problems_.take_sorted()) {
      result.first_problems.push_back({names_.at(rec.rank.entry), std::move(rec.json_path),
                                       std::string(kKindNames[static_cast<std::size_t>(rec.kind)]),
                                       std::move(rec.message)});
    }
  }

 private:
  std::string where(object_location loc, section sec, std::uint8_t field) const {
    return names_.at(loc.entry) + " " + object_path(sec, loc.obj, field);
  }

  void check_unique(const std::vector<id_at>& ids, std::uint32_t e, id_table& table, problem_kind kind, section sec,
                    std::uint8_t field, std::string_view what) {
    for (const id_at& item : ids) {
      const auto first = table.insert(item.id, {e, item.obj});
      if (!first) continue;
      problems_.add(kind, {e, sec, item.obj, field}, [&] { return object_path(sec, item.obj, field); },
                    [&] {
                      return std::string(what) + " " + std::to_string(item.id) + " already used at " +
                             where(*first, sec, field);
                    });
    }
  }

  static void append_refs(const std::vector<id_at>& refs, std::uint32_t e, std::vector<pending_ref>& out) {
    for (const id_at& r : refs) out.push_back({r.id, e, r.obj});
  }

  void report_ref(const pending_ref& r, problem_kind kind, section sec, std::uint8_t field, std::string message) {
    problems_.add(kind, {r.entry, sec, r.obj, field}, [&] { return object_path(sec, r.obj, field); },
                  [&] { return std::move(message); });
  }

  problem_sink problems_;
  std::uint64_t seed_;
  id_table tickets_;
  id_table comments_;
  id_table users_;
  email_table emails_;
  std::vector<pending_ref> requester_refs_;
  std::vector<pending_ref> ticket_refs_;
  std::vector<pending_ref> author_refs_;
  std::vector<std::string> names_;
  std::uint64_t tickets_count_ = 0;
  std::uint64_t comments_count_ = 0;
  std::uint64_t users_count_ = 0;
};

}  // namespace

verify_result verify_archive(const verify_options& options) {
  const auto started = std::chrono::steady_clock::now();
  const std::size_t keep = options.max_problems_listed;

  // The index first: a bad users file ends the run before any archive work.
  std::optional<id_table> index;
  if (options.users_file) {
    index.emplace(random_seed());
    read_index_ids(*options.users_file, *index);
  }
  std::optional<id_table> ledger_tickets;
  std::optional<id_table> ledger_users;
  if (options.since) {
    const run_ledger ledger = load_ledger(*options.since);
    ledger_tickets.emplace(random_seed());
    ledger_users.emplace(random_seed());
    for (const ledger_object& t : ledger.tickets) ledger_tickets->insert(t.id, {0, 0});
    for (const ledger_user& u : ledger.users) ledger_users->insert(u.id, {0, 0});
  }

  archive_reader reader(options.archive, options.max_entry_bytes);
  std::error_code size_error;
  std::uint64_t archive_size = std::filesystem::file_size(options.archive, size_error);
  if (size_error) archive_size = 0;
  archive_merger merger(keep);
  verify_result result;

  // More threads than TBB's worker limit (the cores) would not run anyway,
  // and TBB warns on stderr when an arena asks for them.
  const int concurrency = static_cast<int>(std::min(resolve_threads(0), resolve_threads(options.threads)));
  // Two entries per worker keep the workers fed while the reader decompresses;
  // the ring of slots is reused, so memory stays at `tokens` entries.
  const std::size_t tokens = static_cast<std::size_t>(std::max(2, 2 * concurrency));
  std::vector<entry_work> slots(tokens);
  tsan::per_thread<json_worker> workers;
  std::uint64_t next_entry = 0;

  // Read in order, check in parallel, merge in order; a slot is reused once merged.
  const auto read_next = [&](tbb::flow_control& control) -> entry_work* {
    if (next_entry >= kNoIndex) throw fatal_error(exit_code::input_error, "verify: read header: too many entries");
    // Token k lives in slot k % tokens: at most `tokens` are live and
    // they leave the in-order last stage in order, so slot k - tokens is free.
    entry_work& work = slots[next_entry % tokens];
    work.reset(static_cast<std::uint32_t>(next_entry), keep);
    work.max_text_json_bytes = options.max_text_json_bytes;
    if (!reader.next(work)) {
      control.stop();
      return nullptr;
    }
    ++next_entry;
    if (options.progress) options.progress(next_entry, reader.file_bytes_read(), archive_size);
    return &work;
  };
  const auto check = [&](entry_work* work) { check_entry(*work, workers.local()); };
  const auto merge = [&](entry_work* work) { merger.merge(*work); };
  in_arena(static_cast<unsigned>(concurrency),
           [&] { ordered_pipeline<entry_work>(tokens, read_next, check, merge); });
  merger.check_references(index ? &*index : nullptr, ledger_tickets ? &*ledger_tickets : nullptr,
                             ledger_users ? &*ledger_users : nullptr);
  merger.finish(result);
  result.entries = next_entry;
  result.bytes = reader.bytes();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

void print_verify_result(const verify_result& result, std::FILE* out) {
  std::uint64_t total = 0;
  for (const auto& [kind, count] : result.problems_by_kind) total += count;
  const double mb_per_s = result.seconds > 0 ? static_cast<double>(result.bytes) / 1e6 / result.seconds : 0.0;
  std::fprintf(out, "verify: %s\n", result.valid ? "valid" : "INVALID");
  std::fprintf(out, "  entries   %llu\n", static_cast<unsigned long long>(result.entries));
  std::fprintf(out, "  tickets   %llu\n", static_cast<unsigned long long>(result.tickets));
  std::fprintf(out, "  comments  %llu\n", static_cast<unsigned long long>(result.comments));
  std::fprintf(out, "  users     %llu\n", static_cast<unsigned long long>(result.users));
  std::fprintf(out, "  bytes     %llu\n", static_cast<unsigned long long>(result.bytes));
  std::fprintf(out, "  time      %.3f s (%.1f MB/s)\n", result.seconds, mb_per_s);
  std::fprintf(out, "  problems  %llu\n", static_cast<unsigned long long>(total));
  for (const auto& [kind, count] : result.problems_by_kind) {
    std::fprintf(out, "    %-22s %llu\n", kind.c_str(), static_cast<unsigned long long>(count));
  }
  if (result.first_problems.empty()) return;
  std::fprintf(out, "first problems (%zu of %llu):\n", result.first_problems.size(),
               static_cast<unsigned long long>(total));
  for (const verify_problem& p : result.first_problems) {
    std::fprintf(out, "  %s%s%s: %s: %s\n", p.entry.c_str(), p.json_path.empty() ? "" : " ", p.json_path.c_str(),
                 p.kind.c_str(), p.message.c_str());
  }
}

namespace {

// `text` as a JSON string; bytes that are not UTF-8 (an entry name can hold any) repaired.
void append_json_text(std::string& out, std::string_view text) {
  if (is_valid_utf8(text)) {
    append_json_string(out, text);
    return;
  }
  std::string repaired;
  tixport::repair_utf8(text, repaired);
  append_json_string(out, repaired);
}

}  // namespace

std::string verify_result_json(const verify_result& result, std::string_view archive) {
  std::uint64_t total = 0;
  for (const auto& [kind, count] : result.problems_by_kind) total += count;
  const auto number = [](std::uint64_t value) { return std::to_string(value); };
  std::string out = "{\"archive\":";
  append_json_text(out, archive);
  out += ",\"valid\":" + std::string(result.valid ? "true" : "false");
  out += ",\"exit_code\":" + std::string(result.valid ? "0" : "1");
  out += ",\"entries\":" + number(result.entries) + ",\"tickets\":" + number(result.tickets) +
         ",\"comments\":" + number(result.comments) + ",\"users\":" + number(result.users) +
         ",\"bytes\":" + number(result.bytes);
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f", result.seconds);
  out += ",\"seconds\":" + std::string(seconds) + ",\"problems\":" + number(total) + ",\"problems_by_kind\":{";
  bool first = true;
  for (const auto& [kind, count] : result.problems_by_kind) {
    if (!first) out += ',';
    first = false;
    append_json_text(out, kind);
    out += ':' + number(count);
  }
  out += "},\"first_problems\":[";
  for (std::size_t i = 0; i < result.first_problems.size(); ++i) {
    const verify_problem& p = result.first_problems[i];
    out += i ? ",{\"entry\":" : "{\"entry\":";
    append_json_text(out, p.entry);
    out += ",\"json_path\":";
    append_json_text(out, p.json_path);
    out += ",\"kind\":";
    append_json_text(out, p.kind);
    out += ",\"message\":";
    append_json_text(out, p.message);
    out += '}';
  }
  out += "]}\n";
  return out;
}

}  // namespace tixport
