// File: run_ledger.cpp
//
// The ledger file, version 2 (README.md "The ledger" has the table):
//   header (176 bytes), users (32 bytes each), email keys (one blob, padded to 8),
//   identity (24), tickets and comments (by column, below), dangling references (40),
//   changed objects (24), export block hashes (8), and an XXH3-64 checksum of
//   everything before it (8).
// All integers little-endian; every section starts 8-byte aligned. Tickets and comments, by far
// the largest sections, are stored by column, sorted by id: the fingerprints as a raw array
// (8 bytes each, random, so incompressible), the ids as LEB128 varints of their differences
// (exports number their objects densely: 1 byte each), and (run, flags, count) runs, since nearly
// every object of a ledger has the same run and flags. ~9 bytes an object instead of 24: the
// file is read, checksummed, written and fsynced in well under half the time. Version 1 (the
// same sections, tickets and comments as 24-byte records) is still read.
//
//   std::string bytes = serialize_ledger(ledger);   // version 2, checksum included
//   run_ledger back = parse_ledger(bytes, "x.ledger");
#include "tixport/ledger/run_ledger.hpp"

#include "tixport/common/atomic_output.hpp"
#include "tixport/csv/csv_reader.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/common/mapped_file.hpp"

#include "common/parallel_loops_internal.hpp"


#include <xxhash.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <cerrno>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <unordered_set>

namespace tixport {

static_assert(std::endian::native == std::endian::little, "the ledger file is little-endian, as the machine");
static_assert(sizeof(ledger_object) == 24 && std::has_unique_object_representations_v<ledger_object>,
              "ledger_object is copied from a version 1 file as is: no padding allowed");

namespace {

constexpr char kMagic[8] = {'T', 'I', 'X', 'L', 'E', 'D', 'G', 'R'};
constexpr std::size_t kHeaderBytesV1 = 144;
constexpr std::size_t kHeaderBytesV2 = 176;
constexpr std::size_t kUserBytes = 32;
constexpr std::size_t kIdentityBytes = 24;
constexpr std::size_t kObjectBytesV1 = 24;
constexpr std::size_t kFingerprintBytes = 8;
constexpr std::size_t kDanglingBytes = 40;
constexpr std::size_t kChangedBytes = 24;
constexpr std::size_t kBlockHashBytes = 8;
constexpr std::size_t kChecksumBytes = 8;
constexpr std::size_t kMaxVarintBytes = 10;  // LEB128 of a 64-bit value
constexpr std::uint32_t kFlagHasMaxId = 1;
constexpr std::uint32_t kFlagEndsAtRecord = 2;
constexpr std::uint32_t kFlagExportProblems = 4;
constexpr std::uint32_t kMaxRun = 0xFFFFFFFEu;

// Header field offsets (version 1 ends at 144; version 2 adds the column sizes).
enum header_field : std::size_t {
  kVersionAt = 8,
  kHeaderBytesAt = 12,
  kRunAt = 16,
  kFlagsAt = 20,
  kPreviousChecksumAt = 24,
  kMaxIdAt = 32,
  kExportSizeAt = 40,
  kExportLineFeedsAt = 48,
  kBlockBytesAt = 56,
  kUserCountAt = 64,
  kKeyBytesAt = 72,
  kIdentityCountAt = 80,
  kTicketCountAt = 88,
  kCommentCountAt = 96,
  kDanglingCountAt = 104,
  kBlockCountAt = 112,
  kTotalBytesAt = 120,
  kChangedCountAt = 128,
  kTicketIdBytesAt = 144,
  kTicketRunBytesAt = 152,
  kCommentIdBytesAt = 160,
  kCommentRunBytesAt = 168,
};

constexpr std::size_t padded8(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }

template <typename T>
void put(std::string& out, std::size_t at, T value) noexcept {
  std::memcpy(out.data() + at, &value, sizeof value);
}

template <typename T>
T get(std::string_view in, std::size_t at) noexcept {
  T value;
  std::memcpy(&value, in.data() + at, sizeof value);
  return value;
}

// ---- LEB128 ---------------------------------------------------------------------------------

/// Bytes of the LEB128 form of `v`.
constexpr std::size_t varint_bytes(std::uint64_t v) noexcept {
  return 1 + static_cast<std::size_t>(63 - std::countl_zero(v | 1)) / 7;
}

/// Write `v` as LEB128 at `p`; returns the end.
inline char* put_varint(char* p, std::uint64_t v) noexcept {
  while (v >= 0x80) {
    *p++ = static_cast<char>(static_cast<std::uint8_t>(v) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

void append_varint(std::string& out, std::uint64_t v) {
  char bytes[kMaxVarintBytes];
  out.append(bytes, put_varint(bytes, v));
}

/// Read one LEB128 value from [p, end); nullptr when it runs past `end`, does not fit 64 bits
/// or is not in its shortest form (each value has one encoding, so each ledger one file).
[[gnu::noinline]] const std::uint8_t* get_varint_slow(const std::uint8_t* p, const std::uint8_t* end,
                                                      std::uint64_t& value) noexcept {
  std::uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (p == end) return nullptr;
    const std::uint8_t b = *p++;
    if (shift == 63 && b > 1) return nullptr;
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if (b < 0x80) {
      if (b == 0 && shift != 0) return nullptr;
      value = v;
      return p;
    }
  }
  return nullptr;
}

inline const std::uint8_t* get_varint(const std::uint8_t* p, const std::uint8_t* end, std::uint64_t& value) noexcept {
  if (p != end && *p < 0x80) {  // the common case: a difference of 1..127
    value = *p;
    return p + 1;
  }
  return get_varint_slow(p, end, value);
}

constexpr std::uint64_t zigzag(std::int64_t v) noexcept {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

constexpr std::int64_t unzigzag(std::uint64_t v) noexcept {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

// ---- the object columns (version 2) -----------------------------------------------------------

/// Sizes of one ticket or comment section.
struct object_section {
  std::uint64_t count = 0;      ///< objects
  std::uint64_t id_bytes = 0;   ///< version 2: the LEB128 id differences, before padding
  std::uint64_t run_bytes = 0;  ///< version 2: the (run, flags, count) runs, before padding

  /// Bytes the section takes in a file of `version`.
  [[nodiscard]] std::uint64_t file_bytes(std::uint32_t version) const noexcept {
    if (version == 1) return count * kObjectBytesV1;
    return count * kFingerprintBytes + padded8(id_bytes) + padded8(run_bytes);
  }
};

/// The id column's first value: the first id (zigzag, ids may be negative in principle);
/// then each id minus the one before it (>= 1, the ids being strictly ascending).
class id_coder {
 public:
  std::uint64_t next(std::int64_t id) noexcept {
    const std::uint64_t code = first_ ? zigzag(id) : static_cast<std::uint64_t>(id) - static_cast<std::uint64_t>(previous_);
    first_ = false;
    previous_ = id;
    return code;
  }

 private:
  bool first_ = true;
  std::int64_t previous_ = 0;
};

/// Sizes of the version 2 section of `objects` and its run column: LEB128 (run, flags, count)
/// for each stretch of equal run and flags, stretches as long as they go. One pass.
object_section section_of(const merged_objects& objects, std::string& runs) {
  object_section s;
  s.count = objects.size();
  id_coder ids;
  std::uint32_t run = 0;
  std::uint32_t flags = 0;
  std::uint64_t stretch = 0;
  const auto close_stretch = [&] {
    append_varint(runs, run);
    append_varint(runs, flags);
    append_varint(runs, stretch);
  };
  objects.for_each([&](const ledger_object& o) {
    s.id_bytes += varint_bytes(ids.next(o.id));
    if (stretch != 0 && o.run == run && o.flags == flags) {
      ++stretch;
      return;
    }
    if (stretch != 0) close_stretch();
    run = o.run;
    flags = o.flags;
    stretch = 1;
  });
  if (stretch != 0) close_stretch();
  s.run_bytes = runs.size();
  return s;
}

/// Decode a version 2 section (`bytes`, the whole padded section) into `objects` in one pass:
/// each object is built once, from its fingerprint, id and run. Returns what is wrong (to follow
/// the section's name), or nullptr.
const char* decode_objects(std::string_view bytes, const object_section& s, std::vector<ledger_object>& objects) {
  const auto* const fingerprints = bytes.data();
  const auto* ids = reinterpret_cast<const std::uint8_t*>(bytes.data()) + s.count * kFingerprintBytes;
  const auto* const ids_end = ids + s.id_bytes;
  const auto* runs = ids + padded8(s.id_bytes);
  const auto* const runs_end = runs + s.run_bytes;
  objects.clear();
  objects.reserve(s.count);
  std::uint64_t done = 0;
  std::int64_t previous = 0;
  while (runs != runs_end) {
    std::uint64_t run = 0;
    std::uint64_t flags = 0;
    std::uint64_t count = 0;
    if ((runs = get_varint(runs, runs_end, run)) == nullptr || (runs = get_varint(runs, runs_end, flags)) == nullptr ||
        (runs = get_varint(runs, runs_end, count)) == nullptr) {
      return ": malformed run column";
    }
    // Canonical: every stretch non-empty, within the count, and longest (differs from the last).
    if (run > std::numeric_limits<std::uint32_t>::max() || flags > std::numeric_limits<std::uint32_t>::max() ||
        count == 0 || count > s.count - done ||
        (done != 0 && run == objects.back().run && flags == objects.back().flags)) {
      return ": malformed run column";
    }
    for (const std::uint64_t last = done + count; done != last; ++done) {
      std::uint64_t code = 0;
      if ((ids = get_varint(ids, ids_end, code)) == nullptr) return ": malformed id column";
      std::int64_t id = 0;
      if (done == 0) {
        id = unzigzag(code);
      } else {
        // Strictly ascending, and no wrap past the largest int64.
        const std::uint64_t room = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) -
                                   static_cast<std::uint64_t>(previous);
        if (code == 0 || code > room) return " not in id order";
        id = static_cast<std::int64_t>(static_cast<std::uint64_t>(previous) + code);
      }
      previous = id;
      std::uint64_t fingerprint = 0;
      std::memcpy(&fingerprint, fingerprints + done * kFingerprintBytes, sizeof fingerprint);
      objects.push_back(ledger_object{id, fingerprint, static_cast<std::uint32_t>(run),
                                      static_cast<std::uint32_t>(flags)});
    }
  }
  if (done != s.count) return ": malformed run column";
  if (ids != ids_end) return ": malformed id column";
  // Padding is zero, so that each ledger has one file.
  const auto zero = [](const std::uint8_t* from, const std::uint8_t* to) {
    return std::all_of(from, to, [](std::uint8_t b) { return b == 0; });
  };
  const auto* const section_end = reinterpret_cast<const std::uint8_t*>(bytes.data()) + bytes.size();
  if (!zero(ids_end, ids_end + (padded8(s.id_bytes) - s.id_bytes)) || !zero(runs_end, section_end)) {
    return ": padding not zero";
  }
  return nullptr;
}

/// Section offsets of a ledger with these counts.
struct layout {
  std::size_t users, keys, identity, tickets, comments, dangling, changed, blocks, total;

  static layout of(std::uint32_t version, std::uint64_t n_users, std::uint64_t key_bytes, std::uint64_t n_identity,
                   const object_section& tickets, const object_section& comments, std::uint64_t n_dangling,
                   std::uint64_t n_changed, std::uint64_t n_blocks) {
    layout l{};
    l.users = version == 1 ? kHeaderBytesV1 : kHeaderBytesV2;
    l.keys = l.users + n_users * kUserBytes;
    l.identity = l.keys + padded8(key_bytes);
    l.tickets = l.identity + n_identity * kIdentityBytes;
    l.comments = l.tickets + tickets.file_bytes(version);
    l.dangling = l.comments + comments.file_bytes(version);
    l.changed = l.dangling + n_dangling * kDanglingBytes;
    l.blocks = l.changed + n_changed * kChangedBytes;
    l.total = l.blocks + n_blocks * kBlockHashBytes + kChecksumBytes;
    return l;
  }
};

[[noreturn]] void bad(const std::string& name, const std::string& what) {
  throw fatal_error(exit_code::input_error, "ledger: " + name + ": " + what);
}

}  // namespace

std::string_view user_origin_name(user_origin origin) noexcept {
  switch (origin) {
    case user_origin::matched: return "matched";
    case user_origin::new_id: return "new";
    case user_origin::fresh: return "fresh";
  }
  return "?";
}

std::uint64_t fingerprint_bytes(std::string_view bytes) noexcept { return XXH3_64bits(bytes.data(), bytes.size()); }

namespace {

/// Bytes handed to the sink at a time while the object columns are encoded: one buffer, reused,
/// small enough to stay in cache between the encoding, the checksum and the write.
constexpr std::size_t kPieceBytes = 256 * 1024;
/// Objects encoded per step (their largest encoding fits a piece).
constexpr std::size_t kObjectsPerStep = 4096;
static_assert(kObjectsPerStep * kMaxVarintBytes <= kPieceBytes && kObjectsPerStep * kFingerprintBytes <= kPieceBytes);

/// Hands file bytes to a sink in order, through one reused buffer, checksumming them on the way.
template <typename Sink>
class piece_emitter {
 public:
  piece_emitter(Sink& sink, XXH3_state_t& state) : sink_(sink), state_(state), buffer_(new char[kPieceBytes]) {}

  /// Emit bytes that are already in memory, as they are.
  void emit(std::string_view bytes) {
    flush();
    XXH3_64bits_update(&state_, bytes.data(), bytes.size());
    sink_(bytes);
  }
  /// Room for `n` (<= kPieceBytes) bytes at the end of the buffer; advance() says how many were used.
  char* room(std::size_t n) {
    if (kPieceBytes - used_ < n) flush();
    return buffer_.get() + used_;
  }
  void advance(std::size_t n) noexcept { used_ += n; }
  /// Zero bytes up to the next multiple of 8 of a section of `bytes`.
  void pad(std::uint64_t bytes) {
    const std::size_t n = padded8(bytes) - bytes;
    std::memset(room(n), 0, n);
    advance(n);
  }
  void flush() {
    if (used_ == 0) return;
    XXH3_64bits_update(&state_, buffer_.get(), used_);
    sink_(std::string_view(buffer_.get(), used_));
    used_ = 0;
  }

 private:
  Sink& sink_;
  XXH3_state_t& state_;
  std::unique_ptr<char[]> buffer_;
  std::size_t used_ = 0;
};

/// Emit one column of `objects`, kObjectsPerStep objects a piece: `put(p, object)` writes at
/// most `max_bytes` at p and returns the end of what it wrote.
template <typename Sink, typename Put>
void emit_column(const merged_objects& objects, std::size_t max_bytes, piece_emitter<Sink>& out, Put put) {
  char* begin = nullptr;
  char* p = nullptr;
  std::size_t in_step = 0;
  objects.for_each([&](const ledger_object& o) {
    if (in_step == 0) p = begin = out.room(kObjectsPerStep * max_bytes);
    p = put(p, o);
    if (++in_step == kObjectsPerStep) {
      out.advance(static_cast<std::size_t>(p - begin));
      in_step = 0;
    }
  });
  if (in_step != 0) out.advance(static_cast<std::size_t>(p - begin));
}

/// Emit a version 2 object section: fingerprints, id column, run column, each padded to 8.
template <typename Sink>
void emit_objects(const merged_objects& objects, const object_section& s, const std::string& runs,
                  piece_emitter<Sink>& out) {
  emit_column(objects, kFingerprintBytes, out, [](char* p, const ledger_object& o) {
    std::memcpy(p, &o.fingerprint, kFingerprintBytes);
    return p + kFingerprintBytes;
  });
  id_coder ids;
  emit_column(objects, kMaxVarintBytes, out,
              [&ids](char* p, const ledger_object& o) { return put_varint(p, ids.next(o.id)); });
  out.pad(s.id_bytes);
  out.emit(runs);
  out.pad(s.run_bytes);
}

/// Hand the ledger's file bytes (version 2) to `sink` piece by piece, in file order, and set its
/// checksum: the object columns are encoded a piece at a time, never into a whole-file buffer.
template <typename Sink>
void emit_ledger(run_ledger& ledger, const merged_objects& ticket_objects, const merged_objects& comment_objects,
                 Sink sink) {
  std::uint64_t key_bytes = 0;
  for (const ledger_user& u : ledger.users) key_bytes += u.email_key.size();
  std::string ticket_runs;
  std::string comment_runs;
  const object_section tickets = section_of(ticket_objects, ticket_runs);
  const object_section comments = section_of(comment_objects, comment_runs);
  const layout l = layout::of(kLedgerVersion, ledger.users.size(), key_bytes, ledger.identity.size(), tickets,
                              comments, ledger.dangling.size(), ledger.changed.size(),
                              ledger.source.block_hashes.size());
  // Header, users, keys and identity: small, built in one zeroed buffer (padding is checksummed).
  std::string head(l.tickets, '\0');
  std::memcpy(head.data(), kMagic, sizeof kMagic);
  put<std::uint32_t>(head, kVersionAt, kLedgerVersion);
  put<std::uint32_t>(head, kHeaderBytesAt, kHeaderBytesV2);
  put<std::uint32_t>(head, kRunAt, ledger.run);
  put<std::uint32_t>(head, kFlagsAt, (ledger.max_id_seen ? kFlagHasMaxId : 0) |
                                         (ledger.source.ends_at_record ? kFlagEndsAtRecord : 0) |
                                         (ledger.source.had_problems ? kFlagExportProblems : 0));
  put<std::uint64_t>(head, kPreviousChecksumAt, ledger.previous_checksum);
  put<std::int64_t>(head, kMaxIdAt, ledger.max_id_seen.value_or(0));
  put<std::uint64_t>(head, kExportSizeAt, ledger.source.size);
  put<std::uint64_t>(head, kExportLineFeedsAt, ledger.source.line_feeds);
  put<std::uint32_t>(head, kBlockBytesAt, ledger.source.block_bytes);
  put<std::uint64_t>(head, kUserCountAt, ledger.users.size());
  put<std::uint64_t>(head, kKeyBytesAt, key_bytes);
  put<std::uint64_t>(head, kIdentityCountAt, ledger.identity.size());
  put<std::uint64_t>(head, kTicketCountAt, tickets.count);
  put<std::uint64_t>(head, kCommentCountAt, comments.count);
  put<std::uint64_t>(head, kDanglingCountAt, ledger.dangling.size());
  put<std::uint64_t>(head, kBlockCountAt, ledger.source.block_hashes.size());
  put<std::uint64_t>(head, kTotalBytesAt, l.total);
  put<std::uint64_t>(head, kChangedCountAt, ledger.changed.size());
  put<std::uint64_t>(head, kTicketIdBytesAt, tickets.id_bytes);
  put<std::uint64_t>(head, kTicketRunBytesAt, tickets.run_bytes);
  put<std::uint64_t>(head, kCommentIdBytesAt, comments.id_bytes);
  put<std::uint64_t>(head, kCommentRunBytesAt, comments.run_bytes);
  std::uint64_t key_at = 0;
  for (std::size_t i = 0; i < ledger.users.size(); ++i) {
    const ledger_user& u = ledger.users[i];
    const std::size_t at = l.users + i * kUserBytes;
    put<std::int64_t>(head, at, u.id);
    put<std::uint64_t>(head, at + 8, key_at);
    put<std::uint32_t>(head, at + 16, static_cast<std::uint32_t>(u.email_key.size()));
    put<std::uint32_t>(head, at + 20, u.run);
    put<std::uint8_t>(head, at + 24, static_cast<std::uint8_t>(u.origin));
    std::memcpy(head.data() + l.keys + key_at, u.email_key.data(), u.email_key.size());
    key_at += u.email_key.size();
  }
  for (std::size_t i = 0; i < ledger.identity.size(); ++i) {
    const ledger_identity& e = ledger.identity[i];
    const std::size_t at = l.identity + i * kIdentityBytes;
    put<std::int64_t>(head, at, e.chat_id);
    put<std::int64_t>(head, at + 8, e.user_id);
    put<std::uint32_t>(head, at + 16, e.user);
  }
  // Dangling references and block hashes after the objects, checksum last.
  std::string tail(l.total - l.dangling, '\0');
  for (std::size_t i = 0; i < ledger.dangling.size(); ++i) {
    const ledger_dangling& d = ledger.dangling[i];
    const std::size_t at = i * kDanglingBytes;
    put<std::int64_t>(tail, at, d.object_id);
    put<std::int64_t>(tail, at + 8, d.chat_id);
    put<std::uint64_t>(tail, at + 16, d.line);
    put<std::uint64_t>(tail, at + 24, d.offset);
    put<std::uint32_t>(tail, at + 32, static_cast<std::uint32_t>(d.kind));
  }
  for (std::size_t i = 0; i < ledger.changed.size(); ++i) {
    const ledger_changed& c = ledger.changed[i];
    const std::size_t at = (l.changed - l.dangling) + i * kChangedBytes;
    put<std::int64_t>(tail, at, c.object_id);
    put<std::uint64_t>(tail, at + 8, c.line);
    put<std::uint32_t>(tail, at + 16, static_cast<std::uint32_t>(c.kind));
  }
  if (!ledger.source.block_hashes.empty()) {
    std::memcpy(tail.data() + (l.blocks - l.dangling), ledger.source.block_hashes.data(),
                ledger.source.block_hashes.size() * kBlockHashBytes);
  }
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) throw std::bad_alloc();
  const std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state_owner(state, &XXH3_freeState);
  XXH3_64bits_reset(state);
  piece_emitter<Sink> out(sink, *state);
  out.emit(head);
  emit_objects(ticket_objects, tickets, ticket_runs, out);
  emit_objects(comment_objects, comments, comment_runs, out);
  out.emit(std::string_view(tail).substr(0, tail.size() - kChecksumBytes));
  ledger.checksum = XXH3_64bits_digest(state);
  ledger.format = kLedgerVersion;
  put<std::uint64_t>(tail, tail.size() - kChecksumBytes, ledger.checksum);
  sink(std::string_view(tail).substr(tail.size() - kChecksumBytes));
}

}  // namespace

std::string serialize_ledger(run_ledger& ledger) {
  merged_objects tickets;
  tickets.old = ledger.tickets;
  merged_objects comments;
  comments.old = ledger.comments;
  return serialize_ledger(ledger, tickets, comments);
}

std::string serialize_ledger(run_ledger& ledger, const merged_objects& tickets, const merged_objects& comments) {
  std::string out;
  emit_ledger(ledger, tickets, comments, [&](std::string_view piece) { out += piece; });
  return out;
}

void write_ledger(run_ledger& ledger, const merged_objects& tickets, const merged_objects& comments,
                  atomic_output_file& out) {
  emit_ledger(ledger, tickets, comments, [&](std::string_view piece) { out.write(piece); });
}

run_ledger parse_ledger(std::string_view in, const std::string& name) {
  // 1. Is it a ledger at all, of a version this tixport reads, and whole?
  if (in.size() < sizeof kMagic || std::memcmp(in.data(), kMagic, sizeof kMagic) != 0) {
    bad(name, in.empty() ? "empty file, not a tixport ledger" : "not a tixport ledger (no ledger magic)");
  }
  if (in.size() < kHeaderBytesV1) {
    bad(name, "truncated: " + std::to_string(in.size()) + " bytes, shorter than the ledger header");
  }
  const auto version = get<std::uint32_t>(in, kVersionAt);
  if (version < kLedgerOldestVersion || version > kLedgerVersion) {
    bad(name, "ledger format version " + std::to_string(version) + "; this tixport reads versions " +
                  std::to_string(kLedgerOldestVersion) + " to " + std::to_string(kLedgerVersion));
  }
  const std::size_t header_bytes = version == 1 ? kHeaderBytesV1 : kHeaderBytesV2;
  if (in.size() < header_bytes) {
    bad(name, "truncated: " + std::to_string(in.size()) + " bytes, shorter than the ledger header");
  }
  const auto total = get<std::uint64_t>(in, kTotalBytesAt);
  if (total != in.size()) {
    bad(name, total > in.size() ? "truncated: " + std::to_string(in.size()) + " of " + std::to_string(total) + " bytes"
                                : "corrupted: " + std::to_string(in.size() - total) + " bytes after the ledger's end");
  }
  const auto checksum = get<std::uint64_t>(in, in.size() - kChecksumBytes);
  if (XXH3_64bits(in.data(), in.size() - kChecksumBytes) != checksum) {
    bad(name, "corrupted: checksum mismatch");
  }

  // 2. Its sections. The checksum matched, so a failure below means a writer bug or a forged
  //    file; still checked, because every index is used to address memory.
  const auto n_users = get<std::uint64_t>(in, kUserCountAt);
  const auto key_bytes = get<std::uint64_t>(in, kKeyBytesAt);
  const auto n_identity = get<std::uint64_t>(in, kIdentityCountAt);
  object_section tickets{get<std::uint64_t>(in, kTicketCountAt)};
  object_section comments{get<std::uint64_t>(in, kCommentCountAt)};
  if (version != 1) {
    tickets.id_bytes = get<std::uint64_t>(in, kTicketIdBytesAt);
    tickets.run_bytes = get<std::uint64_t>(in, kTicketRunBytesAt);
    comments.id_bytes = get<std::uint64_t>(in, kCommentIdBytesAt);
    comments.run_bytes = get<std::uint64_t>(in, kCommentRunBytesAt);
  }
  const auto n_dangling = get<std::uint64_t>(in, kDanglingCountAt);
  const auto n_blocks = get<std::uint64_t>(in, kBlockCountAt);
  const auto n_changed = get<std::uint64_t>(in, kChangedCountAt);
  constexpr std::uint64_t kSane = std::uint64_t{1} << 40;
  for (const std::uint64_t n : {n_users, key_bytes, n_identity, tickets.count, tickets.id_bytes, tickets.run_bytes,
                                comments.count, comments.id_bytes, comments.run_bytes, n_dangling, n_changed,
                                n_blocks}) {
    if (n > kSane) bad(name, "corrupted: impossible section size");
  }
  const layout l =
      layout::of(version, n_users, key_bytes, n_identity, tickets, comments, n_dangling, n_changed, n_blocks);
  if (l.total != in.size() || get<std::uint32_t>(in, kHeaderBytesAt) != header_bytes) {
    bad(name, "corrupted: section sizes do not add up to the file size");
  }

  run_ledger ledger;
  ledger.format = version;
  ledger.run = get<std::uint32_t>(in, kRunAt);
  const auto flags = get<std::uint32_t>(in, kFlagsAt);
  ledger.previous_checksum = get<std::uint64_t>(in, kPreviousChecksumAt);
  if ((flags & kFlagHasMaxId) != 0) ledger.max_id_seen = get<std::int64_t>(in, kMaxIdAt);
  ledger.source.size = get<std::uint64_t>(in, kExportSizeAt);
  ledger.source.line_feeds = get<std::uint64_t>(in, kExportLineFeedsAt);
  ledger.source.block_bytes = get<std::uint32_t>(in, kBlockBytesAt);
  ledger.source.ends_at_record = (flags & kFlagEndsAtRecord) != 0;
  ledger.source.had_problems = (flags & kFlagExportProblems) != 0;
  if (ledger.run == 0 || ledger.run > kMaxRun) bad(name, "corrupted: run number " + std::to_string(ledger.run));
  // Every ledger this tixport writes hashes 1 MiB blocks; another size would make the two
  // rerun paths disagree and a hashing buffer as large as it says.
  if (ledger.source.block_bytes != kLedgerBlockBytes ||
      n_blocks != (ledger.source.size + ledger.source.block_bytes - 1) / ledger.source.block_bytes) {
    bad(name, "corrupted: export block table does not match the export size");
  }

  ledger.users.resize(n_users);
  for (std::size_t i = 0; i < n_users; ++i) {
    const std::size_t at = l.users + i * kUserBytes;
    ledger_user& u = ledger.users[i];
    u.id = get<std::int64_t>(in, at);
    const auto key_at = get<std::uint64_t>(in, at + 8);
    const auto key_len = get<std::uint32_t>(in, at + 16);
    u.run = get<std::uint32_t>(in, at + 20);
    const auto origin = get<std::uint8_t>(in, at + 24);
    if (key_at > key_bytes || key_len > key_bytes - key_at || origin > static_cast<std::uint8_t>(user_origin::fresh)) {
      bad(name, "corrupted: user " + std::to_string(i));
    }
    u.origin = static_cast<user_origin>(origin);
    u.email_key.assign(in.substr(l.keys + key_at, key_len));
  }
  {
    // Users are unique by email key (SPEC 2.1): a ledger with one key twice would give a
    // rerun two ids to choose from.
    std::unordered_set<std::string_view> keys;
    keys.reserve(n_users);
    for (std::size_t i = 0; i < n_users; ++i) {
      if (!keys.insert(ledger.users[i].email_key).second) {
        bad(name, "corrupted: user " + std::to_string(i) + " repeats an email key");
      }
    }
  }
  ledger.identity.resize(n_identity);
  for (std::size_t i = 0; i < n_identity; ++i) {
    const std::size_t at = l.identity + i * kIdentityBytes;
    ledger_identity& e = ledger.identity[i];
    e.chat_id = get<std::int64_t>(in, at);
    e.user_id = get<std::int64_t>(in, at + 8);
    e.user = get<std::uint32_t>(in, at + 16);
    if (e.user >= n_users || ledger.users[e.user].id != e.user_id ||
        (i > 0 && ledger.identity[i - 1].chat_id >= e.chat_id)) {
      bad(name, "corrupted: identity entry " + std::to_string(i));
    }
  }
  const auto read_objects = [&](std::vector<ledger_object>& objects, std::size_t at, const object_section& s,
                                const char* what) {
    if (version == 1) {
      // Version 1: the records are ledger_object's bytes.
      objects.resize(s.count);
      if (s.count != 0) std::memcpy(objects.data(), in.data() + at, s.count * kObjectBytesV1);
      for (std::size_t i = 1; i < objects.size(); ++i) {
        if (objects[i - 1].id >= objects[i].id) bad(name, std::string("corrupted: ") + what + " not in id order");
      }
      return;
    }
    if (const char* fault = decode_objects(in.substr(at, s.file_bytes(version)), s, objects)) {
      bad(name, std::string("corrupted: ") + what + fault);
    }
  };
  read_objects(ledger.tickets, l.tickets, tickets, "tickets");
  read_objects(ledger.comments, l.comments, comments, "comments");
  ledger.dangling.resize(n_dangling);
  for (std::size_t i = 0; i < n_dangling; ++i) {
    const std::size_t at = l.dangling + i * kDanglingBytes;
    ledger_dangling& d = ledger.dangling[i];
    d.object_id = get<std::int64_t>(in, at);
    d.chat_id = get<std::int64_t>(in, at + 8);
    d.line = get<std::uint64_t>(in, at + 16);
    d.offset = get<std::uint64_t>(in, at + 24);
    const auto kind = get<std::uint32_t>(in, at + 32);
    if (kind > static_cast<std::uint32_t>(ref_kind::comment_author)) bad(name, "corrupted: dangling reference kind");
    d.kind = static_cast<ref_kind>(kind);
    if (i > 0 && std::pair(ledger.dangling[i - 1].kind, ledger.dangling[i - 1].object_id) >= std::pair(d.kind, d.object_id)) {
      bad(name, "corrupted: unmapped references not in order");
    }
  }
  ledger.changed.resize(n_changed);
  for (std::size_t i = 0; i < n_changed; ++i) {
    const std::size_t at = l.changed + i * kChangedBytes;
    ledger_changed& c = ledger.changed[i];
    c.object_id = get<std::int64_t>(in, at);
    c.line = get<std::uint64_t>(in, at + 8);
    const auto kind = get<std::uint32_t>(in, at + 16);
    if (kind > static_cast<std::uint32_t>(object_kind::comment)) bad(name, "corrupted: changed object kind");
    c.kind = static_cast<object_kind>(kind);
    if (i > 0 && std::pair(ledger.changed[i - 1].kind, ledger.changed[i - 1].object_id) >= std::pair(c.kind, c.object_id)) {
      bad(name, "corrupted: changed objects not in order");
    }
  }
  // The largest id seen covers every id the ledger holds: fresh ids start above it.
  for (const ledger_user& u : ledger.users) {
    if (!ledger.max_id_seen || u.id > *ledger.max_id_seen) bad(name, "corrupted: a user id above the largest id seen");
  }
  ledger.source.block_hashes.resize(n_blocks);
  if (n_blocks != 0) std::memcpy(ledger.source.block_hashes.data(), in.data() + l.blocks, n_blocks * kBlockHashBytes);
  ledger.checksum = checksum;
  return ledger;
}

std::optional<std::uint32_t> ledger_run_of(const std::filesystem::path& path) noexcept {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return std::nullopt;
  }
  char head[kRunAt + 4];
  std::size_t got = 0;
  while (got < sizeof head) {
    const ssize_t n = ::read(fd, head + got, sizeof head - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got < sizeof head || std::memcmp(head, kMagic, sizeof kMagic) != 0) return std::nullopt;
  return get<std::uint32_t>(std::string_view(head, sizeof head), kRunAt);
}

run_ledger load_ledger(const std::filesystem::path& path) {
  // Mapped, not read into a buffer: a 2.5M-row ledger is tens of MB, and a buffer would be that
  // many fresh pages zeroed and copied into before the decoding even starts.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    bad(path.string(), errno == ENOENT ? "no such file" : "cannot be read: " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) bad(path.string(), "not a regular file");
  if (::access(path.c_str(), R_OK) != 0) bad(path.string(), "cannot be read: " + errno_text(errno));
  mapped_file file;
  try {
    file = mapped_file::open(path);
  } catch (const fatal_error& e) {
    bad(path.string(), std::string("cannot be read: ") + e.what());
  }
  run_ledger ledger = parse_ledger(file.bytes(), path.string());
  if (file.changed_since_open()) bad(path.string(), "changed while being read");
  return ledger;
}

// ---- export fingerprints ----------------------------------------------------

namespace {

/// Blocks hashed per task when the pages are released after hashing: 16 MiB of mapping at a
/// time per thread.
constexpr std::uint64_t kBlocksPerWindow = 16;

/// Hash blocks [first, last) of `bytes` (block k covers [k*b, min(size, (k+1)*b))) in parallel,
/// from the mapping. With `release_pages` (a prefix check, where the old bytes are read once and
/// never again) each window's pages leave the process as soon as it is hashed (MADV_DONTNEED:
/// the page cache keeps them, a later read faults them back in), so a rerun does not hold the
/// whole export resident. Measured on a 361 MB export: 0.03-0.05 s, against 0.10-0.13 s for
/// pread into a buffer (the copy) on the same loaded 2-core machine.
std::vector<std::uint64_t> hash_blocks(std::string_view bytes, std::uint32_t block_bytes, std::uint64_t first,
                                       std::uint64_t last, bool release_pages = false) {
  std::vector<std::uint64_t> results(last - first);
  const std::uint64_t windows = (last - first + kBlocksPerWindow - 1) / kBlocksPerWindow;
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  parallel_for_ranges(0, windows, 1, [&](std::size_t begin_window, std::size_t end_window) {
    for (std::uint64_t w = begin_window; w != end_window; ++w) {
      const std::uint64_t w_first = first + w * kBlocksPerWindow;
      const std::uint64_t w_last = std::min(last, w_first + kBlocksPerWindow);
      for (std::uint64_t k = w_first; k != w_last; ++k) {
        const std::uint64_t begin = k * block_bytes;
        const std::uint64_t size = std::min<std::uint64_t>(block_bytes, bytes.size() - begin);
        results[k - first] = XXH3_64bits(bytes.data() + begin, size);
      }
      if (release_pages) {
        // Whole pages inside the window only: the pages at its edges may be a neighbour's.
        const auto lo = reinterpret_cast<std::uintptr_t>(bytes.data() + w_first * block_bytes);
        const auto hi = reinterpret_cast<std::uintptr_t>(
            bytes.data() + std::min<std::uint64_t>(bytes.size(), w_last * block_bytes));
        const std::uintptr_t from = (lo + page - 1) / page * page;
        const std::uintptr_t to = hi / page * page;
        if (to > from) (void)::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
      }
    }
  });
  return results;
}

std::uint64_t block_count(std::uint64_t size, std::uint32_t block_bytes) noexcept {
  return (size + block_bytes - 1) / block_bytes;
}

/// Append the hashes of blocks [first, last block] of `bytes` to `out`: those of the full
/// blocks `known` has (hash_full_blocks of these same bytes) are taken from it, the others
/// hashed; `hashed` gets the bytes read.
void append_block_hashes(std::string_view bytes, std::uint32_t block_bytes, std::uint64_t first,
                         std::span<const std::uint64_t> known, std::vector<std::uint64_t>& out,
                         std::uint64_t& hashed) {
  std::uint64_t from = first;
  if (block_bytes == kLedgerBlockBytes) {
    const std::uint64_t known_end = std::min<std::uint64_t>(known.size(), bytes.size() / block_bytes);
    if (known_end > first) {
      out.insert(out.end(), known.begin() + static_cast<std::ptrdiff_t>(first),
                 known.begin() + static_cast<std::ptrdiff_t>(known_end));
      from = known_end;
    }
  }
  const std::vector<std::uint64_t> rest = hash_blocks(bytes, block_bytes, from, block_count(bytes.size(), block_bytes));
  out.insert(out.end(), rest.begin(), rest.end());
  hashed = bytes.size() - std::min<std::uint64_t>(bytes.size(), from * block_bytes);
}

}  // namespace

export_fingerprint fingerprint_export(std::string_view bytes, bool ends_at_record, std::uint64_t line_feeds,
                                      std::span<const std::uint64_t> full_blocks, std::uint64_t* bytes_hashed) {
  export_fingerprint f;
  f.size = bytes.size();
  f.ends_at_record = ends_at_record;
  f.line_feeds = line_feeds;
  std::uint64_t hashed = 0;
  append_block_hashes(bytes, f.block_bytes, 0, full_blocks, f.block_hashes, hashed);
  if (bytes_hashed != nullptr) *bytes_hashed = hashed;
  return f;
}

std::vector<std::uint64_t> hash_full_blocks(std::string_view bytes, bool release_pages) {
  return hash_blocks(bytes, kLedgerBlockBytes, 0, bytes.size() / kLedgerBlockBytes, release_pages);
}

prefix_match match_appended_prefix(const export_fingerprint& old, std::string_view bytes, bool release_pages,
                                   std::span<const std::uint64_t> full_blocks) {
  prefix_match m;
  if (old.block_bytes != kLedgerBlockBytes || bytes.size() < old.size) return m;
  // The old blocks, read from the new export: its full ones (hashed by the caller, or here),
  // and the old partial last one only up to the old size.
  const std::uint64_t old_full = old.size / old.block_bytes;
  std::vector<std::uint64_t> hashed;
  if (full_blocks.size() < old_full) {
    hashed = hash_blocks(bytes, old.block_bytes, 0, old_full, release_pages);
    full_blocks = hashed;
    m.bytes_hashed = old_full * old.block_bytes;
  } else {
    m.bytes_hashed = full_blocks.size() * std::uint64_t{old.block_bytes};
  }
  std::vector<std::uint64_t> blocks(full_blocks.begin(), full_blocks.begin() + static_cast<std::ptrdiff_t>(old_full));
  if (old.size % old.block_bytes != 0) {
    const std::vector<std::uint64_t> last = hash_blocks(bytes.substr(0, old.size), old.block_bytes, old_full,
                                                        old_full + 1, release_pages);
    blocks.push_back(last.front());
    m.bytes_hashed += old.size - old_full * old.block_bytes;
  }
  std::size_t equal = 0;
  while (equal < blocks.size() && equal < old.block_hashes.size() && blocks[equal] == old.block_hashes[equal]) ++equal;
  m.matching_bytes = std::min<std::uint64_t>(equal * std::uint64_t{old.block_bytes}, old.size);
  m.appended = equal == old.block_hashes.size() && equal == blocks.size() && old.ends_at_record;
  return m;
}

export_fingerprint extend_fingerprint(const export_fingerprint& old, std::string_view bytes, bool ends_at_record,
                                      std::uint64_t line_feeds, std::uint64_t& bytes_hashed,
                                      std::span<const std::uint64_t> full_blocks) {
  export_fingerprint f;
  f.size = bytes.size();
  f.block_bytes = old.block_bytes;
  f.ends_at_record = ends_at_record;
  f.line_feeds = line_feeds;
  // Old full blocks stay; the old partial last block grows, so it is hashed again.
  const std::uint64_t kept = old.size / old.block_bytes;
  f.block_hashes.assign(old.block_hashes.begin(), old.block_hashes.begin() + static_cast<std::ptrdiff_t>(kept));
  append_block_hashes(bytes, f.block_bytes, kept, full_blocks, f.block_hashes, bytes_hashed);
  return f;
}

// ---- lookups ------------------------------------------------------------------

ledger_lookup::ledger_lookup(const run_ledger& ledger) : ledger_(ledger) {
  by_key_.reserve(ledger.users.size());
  user_ids_.reserve(ledger.users.size());
  for (std::uint32_t i = 0; i < ledger.users.size(); ++i) {
    by_key_.emplace(ledger.users[i].email_key, i);
    user_ids_.insert(ledger.users[i].id);
  }
}

std::optional<std::uint32_t> ledger_lookup::user_by_key(std::string_view email_key) const {
  const auto it = by_key_.find(email_key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

const ledger_identity* ledger_lookup::identity(std::int64_t chat_id) const {
  const auto& v = ledger_.identity;
  const auto it = std::lower_bound(v.begin(), v.end(), chat_id,
                                   [](const ledger_identity& e, std::int64_t id) { return e.chat_id < id; });
  return it != v.end() && it->chat_id == chat_id ? &*it : nullptr;
}

const ledger_object* ledger_lookup::find(std::span<const ledger_object> sorted, std::int64_t id) noexcept {
  const auto it = std::lower_bound(sorted.begin(), sorted.end(), id,
                                   [](const ledger_object& o, std::int64_t x) { return o.id < x; });
  return it != sorted.end() && it->id == id ? &*it : nullptr;
}

// ---- show and dump --------------------------------------------------------------

void print_ledger_summary(const run_ledger& l, const std::filesystem::path& path, std::FILE* out) {
  std::uint64_t by_origin[3] = {0, 0, 0};
  for (const ledger_user& u : l.users) ++by_origin[static_cast<int>(u.origin)];
  const auto count_in_last = [](const std::vector<ledger_object>& v) {
    return static_cast<unsigned long long>(
        std::count_if(v.begin(), v.end(), [](const ledger_object& o) { return (o.flags & kInLastExport) != 0; }));
  };
  const auto ull = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::fprintf(out, "tixport ledger: %s\n", path.c_str());
  std::fprintf(out, "  format          version %u, checksum %016llx\n", l.format, ull(l.checksum));
  if (l.previous_checksum != 0) {
    std::fprintf(out, "  lineage         run %u, previous ledger %016llx\n", l.run, ull(l.previous_checksum));
  } else {
    std::fprintf(out, "  lineage         run %u, first run\n", l.run);
  }
  std::fprintf(out, "  export          %llu bytes, %llu line feeds, %llu blocks of %u bytes, %s\n", ull(l.source.size),
               ull(l.source.line_feeds), ull(l.source.block_hashes.size()), l.source.block_bytes,
               l.source.ends_at_record ? "ends at a record (appendable)" : "does not end at a record");
  if (l.max_id_seen) {
    std::fprintf(out, "  largest id      %lld\n", static_cast<long long>(*l.max_id_seen));
  } else {
    std::fprintf(out, "  largest id      none\n");
  }
  std::fprintf(out, "  users           %llu (%llu matched, %llu new, %llu fresh ids)\n", ull(l.users.size()),
               ull(by_origin[0]), ull(by_origin[1]), ull(by_origin[2]));
  std::fprintf(out, "  identity map    %llu chat ids\n", ull(l.identity.size()));
  std::fprintf(out, "  tickets         %llu (%llu in the last export)\n", ull(l.tickets.size()), count_in_last(l.tickets));
  std::fprintf(out, "  comments        %llu (%llu in the last export)\n", ull(l.comments.size()),
               count_in_last(l.comments));
  std::fprintf(out, "  unmapped refs   %llu\n", ull(l.dangling.size()));
}

std::string ledger_csv(const run_ledger& l, ledger_table table) {
  std::string out;
  char number[64];
  switch (table) {
    case ledger_table::users:
      out += "email_key,id,origin,run\n";
      for (const ledger_user& u : l.users) {
        append_csv_field(out, u.email_key);
        std::snprintf(number, sizeof number, ",%lld,", static_cast<long long>(u.id));
        out += number;
        out += user_origin_name(u.origin);
        out += ',' + std::to_string(u.run) + '\n';
      }
      break;
    case ledger_table::identity:
      out += "chat_id,user_id,email_key\n";
      for (const ledger_identity& e : l.identity) {
        std::snprintf(number, sizeof number, "%lld,%lld,", static_cast<long long>(e.chat_id),
                      static_cast<long long>(e.user_id));
        out += number;
        append_csv_field(out, l.users[e.user].email_key);
        out += '\n';
      }
      break;
    case ledger_table::tickets:
    case ledger_table::comments: {
      out += "id,fingerprint,run,in_last_export\n";
      for (const ledger_object& o : table == ledger_table::tickets ? l.tickets : l.comments) {
        std::snprintf(number, sizeof number, "%lld,%016llx,%u,%d\n", static_cast<long long>(o.id),
                      static_cast<unsigned long long>(o.fingerprint), o.run, (o.flags & kInLastExport) != 0 ? 1 : 0);
        out += number;
      }
      break;
    }
  }
  return out;
}

}  // namespace tixport
