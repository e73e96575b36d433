// File: ledger_delta.hpp
//
// The delta stage of a rerun (SPEC 4.2, 4.3): sets this export's tickets and
// comments against the --since ledger (what is new is written, what the
// platform has is left out and compared by fingerprint, what vanished is
// counted) and builds the next ledger from the old one plus what this run
// wrote. Both rerun paths go through here: the full compare (every row of the
// new export parsed) and the appended path (only the rows after the old
// export's bytes parsed; the ledger stands for the old rows). They give the
// same archive and the same next ledger.
//
//   object_delta td = partition_against_ledger(ticket_ids, old.tickets, appended);
//   // ... remap with td.written, write the batches with fingerprints ...
//   next_ledger next = build_next_ledger(update);
//   write_ledger(next.ledger, next.tickets, next.comments, out);
#pragma once

#include "tixport/run/batch_serializer.hpp"
#include "tixport/run/pipeline_messages.hpp"
#include "tixport/run/reject_log.hpp"
#include "tixport/run/row_classifier.hpp"
#include "tixport/ledger/run_ledger.hpp"
#include "tixport/run/user_resolver.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tixport {

/// How a run with --since read its export (SPEC 4.3).
enum class rerun_path {
  none,          ///< no --since
  appended,      ///< the export continues the ledger's byte for byte: only what follows was parsed
  full_compare,  ///< the whole export was parsed and compared by id
};

/// The report's name of a path: "none", "appended", "full_compare".
std::string_view rerun_path_name(rerun_path path) noexcept;

/// An object of this export that the ledger has, whose JSON is compared with the ledger's.
struct compared_object {
  std::size_t object;   ///< index in this run's list (file order)
  std::size_t ledger;   ///< index in the ledger's list
  std::uint64_t line;   ///< the object's physical line in this export
};

/// This export's tickets or comments set against the ledger's.
struct object_delta {
  std::vector<std::uint8_t> written;  ///< per object of this run (file order): 1 = new, written
  /// (object index, ledger index) of objects the ledger has and whose JSON is compared, sorted by
  /// ledger index. On the appended path, objects of the old part are not compared again (their
  /// rows are the old rows): only ledger objects that were missing from the old export are.
  std::vector<compared_object> compare;
  std::vector<std::uint8_t> in_export;  ///< per ledger object: a valid object of this export
  std::uint64_t written_count = 0;      ///< objects written
  std::uint64_t skipped = 0;            ///< objects of this export the ledger has
  std::uint64_t missing = 0;            ///< ledger objects that are not in this export
};

/// Set `ids` (this run's objects in file order, at `lines`) against `ledger` (sorted by id).
/// `appended`: the parsed objects are only those after the old export, whose own objects are
/// the ledger's kInLastExport ones (SPEC 4.3).
object_delta partition_against_ledger(std::span<const std::int64_t> ids, std::span<const std::uint64_t> lines,
                                      std::span<const ledger_object> ledger, bool appended);

/// Compared tickets whose fingerprint differs from the ledger's, with their lines. Parallel.
std::vector<ledger_changed> changed_tickets(std::span<const ticket_candidate> tickets, const object_delta& delta,
                                            std::span<const ledger_object> ledger);

/// Compared comments whose fingerprint differs from the ledger's, with their lines; each comment
/// re-read from `source` and mapped through `references`, as the write would. Parallel.
std::vector<ledger_changed> changed_comments(const comment_source& source, std::span<const comment_candidate> comments,
                                             const comment_references& references, const object_delta& delta,
                                             std::span<const ledger_object> ledger);

/// Appended path: add the changes of the old part, whose rows are not parsed again. An old-part
/// object's row is the same as in the last export, so its JSON differs from the last export's
/// only through a reference that was unmapped then and is mapped now: those rows (the ledger
/// keeps their offsets) are re-read and fingerprinted; every other old-part object keeps what
/// the ledger says (changed or not). Then sort `changed` by (kind, id), each object once. The
/// full compare finds the same objects by fingerprinting every row.
void add_old_part_changes(const run_ledger& ledger, const std::unordered_map<std::int64_t, std::int64_t>& identity,
                          const comment_source& source, const export_columns& columns,
                          std::vector<ledger_changed>& changed);

/// Sort by (kind, id), each object once.
void normalize_changed(std::vector<ledger_changed>& changed);

/// The count and sample lines of one kind, for the report.
counted_lines changed_lines(std::span<const ledger_changed> changed, object_kind kind);

/// What build_next_ledger needs from the run.
struct ledger_update {
  const run_ledger* previous = nullptr;             ///< the --since ledger, or nullptr
  export_fingerprint source;                        ///< this run's export
  std::optional<std::int64_t> largest_id;           ///< resolved_users::largest_id
  std::span<const resolved_user> users;             ///< users written
  std::span<const decided_identity> decided;        ///< identity entries decided by this run
  std::span<written_object> tickets;                ///< tickets written (any order; sorted by id in place)
  std::span<written_object> comments;               ///< comments written (any order; sorted by id in place)
  const object_delta* ticket_delta = nullptr;       ///< with previous: in_export flags, compare lines
  const object_delta* comment_delta = nullptr;
  std::span<const ledger_dangling> dangling;        ///< unmapped references of this run's parsed objects
  bool appended = false;                            ///< the appended path: old-part objects were not parsed
  const std::unordered_map<std::int64_t, std::int64_t>* identity = nullptr;  ///< the run's identity map
  std::span<const ledger_changed> changed;          ///< objects of this export that changed, sorted
  bool export_problems = false;                     ///< this export (all of it) had --strict problems
};

/// The next ledger, ready to be written: everything in memory but its tickets and comments,
/// which are the previous ledger's merged with this run's as they are encoded. It points into
/// the previous ledger, the update's delta and its written objects, which must outlive it.
struct next_ledger {
  run_ledger ledger;        ///< its tickets and comments are left empty
  merged_objects tickets;   ///< the ledger's tickets: old (this export's flags) + written now
  merged_objects comments;  ///< the ledger's comments: old (this export's flags) + written now
};

/// The previous ledger plus what this run wrote, as SPEC 4.2 says: run number and lineage,
/// users, identity, objects (kInLastExport = in this export), unmapped references (lines moved
/// to this export's), largest id, export fingerprint. Sorts update.tickets and update.comments
/// by id, in place. Write it with
/// write_ledger(next.ledger, next.tickets, next.comments, out).
next_ledger build_next_ledger(const ledger_update& update);

}  // namespace tixport
