// File: run_ledger.hpp
//
// The ledger of SPEC 4.1: what the archives of a run and its predecessors put
// on the platform, so that a rerun on a refreshed export writes only what is
// new, with every id consistent with what was imported before. Users (email
// key -> id, and how the id was decided), the identity map (chat id -> user
// id, with the email key that decided it), every ticket and comment id with a
// 64-bit fingerprint of its JSON, references written unmapped (dangling), the
// largest id seen, the lineage (run number, previous ledger's checksum) and a
// fingerprint of the export (size, line feeds, XXH3 hashes of 1 MiB blocks).
//
// The file is binary, little-endian, 8-byte aligned sections, versioned and
// closed by an XXH3-64 checksum of everything before it; README.md "The
// ledger" documents every field. Version 2 (written) stores tickets and
// comments by column: fingerprints as a raw array, ids as LEB128 deltas, run
// and flags run-length encoded (~9 bytes an object, against 24 in version 1,
// which is still read). Reading checks magic, version, sizes, order and
// checksum and throws fatal_error(input_error) naming the file and what is
// wrong.
//
//   run_ledger old = load_ledger("trial.ledger");
//   ledger_lookup lookup(old);
//   if (auto i = lookup.user_by_key("jane@example.org")) ... old.users[*i].id
//   std::string bytes = serialize_ledger(next);   // checksum included
#pragma once

#include "tixport/common/string_hash.hpp"
#include "tixport/run/pipeline_messages.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tixport {

class atomic_output_file;

/// The format version this tixport writes.
inline constexpr std::uint32_t kLedgerVersion = 2;
/// The oldest format version this tixport still reads (versions kLedgerOldestVersion..kLedgerVersion).
inline constexpr std::uint32_t kLedgerOldestVersion = 1;
/// Bytes per export block whose hash the ledger keeps (SPEC 4.1, 4.3).
inline constexpr std::uint32_t kLedgerBlockBytes = 1u << 20;

/// How a user's id was decided (SPEC 2.1).
enum class user_origin : std::uint8_t {
  matched = 0,  ///< the index had the email key
  new_id = 1,   ///< new: the row's AUTHOR_ID
  fresh = 2,    ///< new, AUTHOR_ID taken: a fresh id
};

/// The name used in dumps and summaries: "matched", "new", "fresh".
std::string_view user_origin_name(user_origin origin) noexcept;

/// A user the platform has from an earlier archive.
struct ledger_user {
  std::int64_t id = 0;          ///< the id it was written with
  std::string email_key;        ///< trimmed, ASCII lower case
  user_origin origin = user_origin::new_id;
  std::uint32_t run = 0;        ///< the run (1-based) whose archive wrote it
};

/// One entry of the identity map.
struct ledger_identity {
  std::int64_t chat_id = 0;     ///< AUTHOR_ID of the export
  std::int64_t user_id = 0;     ///< the user id it maps to
  std::uint32_t user = 0;       ///< index in run_ledger::users of the user whose email key decided it
};

/// Flags of a ledger ticket or comment.
inline constexpr std::uint32_t kInLastExport = 1;  ///< a valid object of the export this ledger was made from

/// A ticket or comment written by an earlier archive.
struct ledger_object {
  std::int64_t id = 0;              ///< ticket id (CONVERSATION_ID) or comment id (COMMENT_PART_ID)
  std::uint64_t fingerprint = 0;    ///< XXH3-64 of its compact JSON object as written
  std::uint32_t run = 0;            ///< the run whose archive wrote it
  std::uint32_t flags = 0;          ///< kInLastExport
};

/// Which reference of an object was written unmapped.
enum class ref_kind : std::uint32_t {
  ticket_requester = 0,  ///< a ticket's requester_id
  comment_author = 1,    ///< a comment's author_id
};

/// A reference the identity map did not map, of an object of the last export (its first valid
/// row there). Such a reference is written as the raw chat id; a later export may map that chat
/// id, which changes the object's JSON. A run that does not parse the old rows again (SPEC 4.3)
/// re-reads just these rows, by offset, to see whether the object's JSON now differs.
struct ledger_dangling {
  std::int64_t object_id = 0;   ///< the ticket or comment
  std::int64_t chat_id = 0;     ///< the raw id in its row
  std::uint64_t line = 0;       ///< the row's physical line in the last export
  std::uint64_t offset = 0;     ///< the row's byte offset in the last export
  ref_kind kind = ref_kind::ticket_requester;
};

/// Which list a changed object is in.
enum class object_kind : std::uint32_t { ticket = 0, comment = 1 };

/// An object of the last export whose JSON there differed from what was imported (counted in
/// changed_since_ledger): kept so that a run that does not parse the old rows again (SPEC 4.3)
/// still counts it, at the same line.
struct ledger_changed {
  std::int64_t object_id = 0;   ///< the ticket or comment
  std::uint64_t line = 0;       ///< its physical line in the last export
  object_kind kind = object_kind::ticket;
};

/// What the ledger knows of the export it was made from.
struct export_fingerprint {
  std::uint64_t size = 0;            ///< bytes
  std::uint64_t line_feeds = 0;      ///< LF bytes (the next physical line is line_feeds + 1)
  std::uint32_t block_bytes = kLedgerBlockBytes;
  bool ends_at_record = false;       ///< ends with a LF outside quotes: an appended export continues it
  bool had_problems = false;         ///< a malformed record or an invalid comment / ticket row (--strict)
  std::vector<std::uint64_t> block_hashes;  ///< XXH3-64 of [k*block_bytes, min(size, (k+1)*block_bytes))
};

/// The whole ledger in memory.
struct run_ledger {
  std::uint32_t run = 0;                     ///< this ledger's run number (1 = a run without --since)
  std::uint64_t previous_checksum = 0;       ///< checksum of the --since ledger; 0 for run 1
  std::optional<std::int64_t> max_id_seen;   ///< largest id seen over all runs (SPEC 2.1, 4.2), ids written included
  export_fingerprint source;                 ///< the export of this run
  std::vector<ledger_user> users;            ///< in the order written, run by run
  std::vector<ledger_identity> identity;     ///< sorted by chat_id
  std::vector<ledger_object> tickets;        ///< sorted by id
  std::vector<ledger_object> comments;       ///< sorted by id
  std::vector<ledger_dangling> dangling;     ///< unmapped references of the last export, sorted by (kind, object_id)
  std::vector<ledger_changed> changed;       ///< sorted by (kind, object_id)
  std::uint64_t checksum = 0;                ///< of the file (set by load and serialize)
  std::uint32_t format = kLedgerVersion;     ///< format version of the file (set by load and serialize)
};

/// The tickets or comments of a ledger as they are encoded: the `old` objects (a loaded ledger's,
/// or a whole list) merged in id order with the ones written now (`added`, run `run`, flags
/// kInLastExport). The next ledger's object lists are never built in memory: at 2.5M rows they
/// are 60 MB of fresh pages, more time than encoding them.
struct merged_objects {
  std::span<const ledger_object> old;            ///< sorted by id
  /// Per old object: 1 = a valid object of this export (its flags become kInLastExport, else 0).
  /// nullptr: the old objects keep their flags.
  const std::vector<std::uint8_t>* old_in_export = nullptr;
  std::span<const written_object> added;         ///< sorted by id, none of them in `old`
  std::uint32_t run = 0;                         ///< the run of the added objects

  [[nodiscard]] std::size_t size() const noexcept { return old.size() + added.size(); }

  /// Call f(const ledger_object&) for each object, in id order.
  template <typename F>
  void for_each(F&& f) const {
    const auto added_object = [&](const written_object& w) {
      return ledger_object{w.id, w.fingerprint, run, kInLastExport};
    };
    std::size_t a = 0;
    for (std::size_t j = 0; j < old.size(); ++j) {
      for (; a < added.size() && added[a].id < old[j].id; ++a) f(added_object(added[a]));
      ledger_object o = old[j];
      if (old_in_export != nullptr) o.flags = (*old_in_export)[j] != 0 ? kInLastExport : 0;
      f(o);
    }
    for (; a < added.size(); ++a) f(added_object(added[a]));
  }
};

/// Read and check a ledger file. Throws fatal_error(input_error, "ledger: <path>: <what is wrong>")
/// for a missing, unreadable, truncated, corrupted, foreign or other-version file.
run_ledger load_ledger(const std::filesystem::path& path);

/// The run number in the header of `path` when it begins like a tixport ledger; nullopt when it
/// does not, cannot be read or does not exist. Reads the header only and never throws: for the
/// warning that `run --ledger` (without --since) replaces an earlier run's ledger.
std::optional<std::uint32_t> ledger_run_of(const std::filesystem::path& path) noexcept;

/// Parse ledger bytes (`name` for messages). Throws like load_ledger.
run_ledger parse_ledger(std::string_view bytes, const std::string& name);

/// The file bytes of `ledger`; sets ledger.checksum. Deterministic: same ledger, same bytes.
std::string serialize_ledger(run_ledger& ledger);

/// The file bytes of `ledger` with `tickets` and `comments` for its object lists (its own
/// tickets and comments are not read). Same bytes as serialize_ledger of the merged lists.
std::string serialize_ledger(run_ledger& ledger, const merged_objects& tickets, const merged_objects& comments);

/// Write those bytes to `out`, a piece at a time, the objects encoded straight from the merge;
/// sets ledger.checksum.
void write_ledger(run_ledger& ledger, const merged_objects& tickets, const merged_objects& comments,
                  atomic_output_file& out);

/// Print the summary of `tixport ledger show`.
void print_ledger_summary(const run_ledger& ledger, const std::filesystem::path& path, std::FILE* out);

/// What `tixport ledger dump --what` writes.
enum class ledger_table { users, identity, tickets, comments };

/// Write one table as CSV with a header line (users: email_key,id,origin,run; identity:
/// chat_id,user_id,email_key; tickets / comments: id,fingerprint,run,in_last_export).
std::string ledger_csv(const run_ledger& ledger, ledger_table table);

/// XXH3-64 of bytes: the fingerprint of a JSON object and of an export block.
std::uint64_t fingerprint_bytes(std::string_view bytes) noexcept;

/// Hash `bytes` in kLedgerBlockBytes blocks, in parallel on the current task arena.
/// `line_feeds` is the export's LF count (the CSV reader counts them anyway). `full_blocks`:
/// hash_full_blocks of these same bytes when the caller has them (a --since run's prefix check
/// hashed them): only the blocks they lack are hashed, and `bytes_hashed` (if set) gets the
/// bytes read here.
export_fingerprint fingerprint_export(std::string_view bytes, bool ends_at_record, std::uint64_t line_feeds,
                                      std::span<const std::uint64_t> full_blocks = {},
                                      std::uint64_t* bytes_hashed = nullptr);

/// How a new export relates to the ledger's (SPEC 4.3).
struct prefix_match {
  bool appended = false;              ///< `bytes` starts with the whole old export, which ended at a record
  std::uint64_t matching_bytes = 0;   ///< bytes of leading blocks equal to the old export's
  std::uint64_t bytes_hashed = 0;     ///< bytes read to decide
};

/// Check whether `bytes` begins with the export `old` was made from, by its block hashes
/// (parallel). Only an old export that ended at a record boundary can be continued. With
/// `release_pages` (`bytes` is a whole read-only file mapping), each hashed window of the old
/// part is dropped from the process at once (MADV_DONTNEED), so a run that parses only the new
/// part does not keep the old one resident. `full_blocks`: the hashes of `bytes`' full blocks
/// when the caller already has them (hash_full_blocks, run while the ledger loads); else they
/// are hashed here.
prefix_match match_appended_prefix(const export_fingerprint& old, std::string_view bytes, bool release_pages = false,
                                   std::span<const std::uint64_t> full_blocks = {});

/// XXH3 of every full kLedgerBlockBytes block of `bytes` (release_pages: as for
/// match_appended_prefix), in parallel: all the prefix check needs of a new export before its
/// ledger is even read.
std::vector<std::uint64_t> hash_full_blocks(std::string_view bytes, bool release_pages = false);

/// The fingerprint of `bytes`, which begins with `old`'s export: the old full blocks are kept,
/// the rest is hashed, or taken from `full_blocks` (as for fingerprint_export). `bytes_hashed`
/// gets the bytes read.
export_fingerprint extend_fingerprint(const export_fingerprint& old, std::string_view bytes, bool ends_at_record,
                                      std::uint64_t line_feeds, std::uint64_t& bytes_hashed,
                                      std::span<const std::uint64_t> full_blocks = {});

/// Lookups a delta run makes into a loaded ledger.
class ledger_lookup {
 public:
  explicit ledger_lookup(const run_ledger& ledger);

  /// Index in users of an email key, if the ledger has it.
  [[nodiscard]] std::optional<std::uint32_t> user_by_key(std::string_view email_key) const;
  /// True when some ledger user has `id`.
  [[nodiscard]] bool holds_user_id(std::int64_t id) const { return user_ids_.contains(id); }
  /// The identity entry of a chat id, if any.
  [[nodiscard]] const ledger_identity* identity(std::int64_t chat_id) const;
  /// The ledger object with `id` in a sorted list, if any.
  static const ledger_object* find(std::span<const ledger_object> sorted, std::int64_t id) noexcept;

  [[nodiscard]] const run_ledger& ledger() const noexcept { return ledger_; }

 private:
  const run_ledger& ledger_;
  std::unordered_map<std::string_view, std::uint32_t, transparent_string_hash, std::equal_to<>> by_key_;
  std::unordered_set<std::int64_t> user_ids_;
};

}  // namespace tixport
