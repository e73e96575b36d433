// File: user_resolver.hpp
//
// Joins the export's users to the platform's email index (SPEC 2.1), builds
// the identity map chat id -> user id (SPEC 2.2) and remaps every author and
// requester reference, counting what dangles or is orphaned (SPEC 2.5). Requesters
// are remapped here; a comment's references when the comment is written
// (comment_references), since the candidate does not keep them.
//
//   resolved_users users = resolve_users(dedup.take_users(), dedup.take_authors(), index, max_id, log);
//   remap_ticket_references(tickets, users.identity, log);
//   const std::vector<std::int64_t> ticket_ids = sorted_ticket_ids(tickets);
//   write_batches(..., comment_references(users.identity, ticket_ids), ...);
#pragma once

#include "tixport/run/pipeline_messages.hpp"
#include "tixport/run/reject_log.hpp"
#include "tixport/ledger/run_ledger.hpp"
#include "tixport/index/user_index.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tixport {

/// One user of the output, in output order.
struct resolved_user {
  std::int64_t id;     ///< index id (matched), AUTHOR_ID or a fresh id (new)
  std::string name;    ///< trimmed NAME
  std::string email;   ///< trimmed EMAIL as written
  std::uint64_t line;  ///< physical line of the row it was taken from
  bool matched;        ///< the index had its email key
  user_origin origin;  ///< matched, new (AUTHOR_ID) or fresh
};

/// A chat id whose mapping this run decided (not in the --since ledger's identity map).
struct decided_identity {
  std::int64_t chat_id;    ///< AUTHOR_ID
  std::int64_t user_id;    ///< the user it maps to
  std::string email_key;   ///< the email key of its first candidate row, which decided it
};

/// The users of the output and the identity map.
struct resolved_users {
  std::vector<resolved_user> users;                       ///< ordered by source row
  std::unordered_map<std::int64_t, std::int64_t> identity;///< chat id -> user id
  std::uint64_t matched = 0;                               ///< users whose id came from the index
  std::uint64_t created = 0;                               ///< users new to the platform
  std::vector<decided_identity> decided;                   ///< identity entries new in this run, by chat id
  std::uint64_t ledger_users = 0;        ///< users not written: the --since ledger has their email key
  std::uint64_t ledger_index_conflicts = 0;  ///< ledger users whose email key the index gives another id
  std::optional<std::int64_t> largest_id;    ///< largest id seen (export, index, ledger, ids given)
};

/// Resolve users (sorted by offset) against `index`. `max_id_seen` is the largest valid
/// AUTHOR_ID / TICKET_REQUESTER_ID of the export. Logs id_conflict, author_email_conflict and
/// utf8_repaired_field. Throws fatal_error(input_error) when fresh ids pass the int64 range.
/// With a --since `ledger` (SPEC 4.2): an email key in it keeps its ledger id and is not
/// written again, a chat id in its identity map keeps its mapping (also for chat ids this
/// export never names), its user ids count as taken and fresh ids start above its largest id.
resolved_users resolve_users(std::vector<user_candidate>&& users,
                             std::vector<std::pair<std::int64_t, author_candidate>>&& authors,
                             const user_index& index, std::optional<std::int64_t> max_id_seen,
                             reject_log& log, const ledger_lookup* ledger = nullptr);

/// What remap_ticket_references counts, for a run with a --since ledger.
struct remap_scope {
  const std::vector<std::uint8_t>* ticket_written = nullptr;   ///< per ticket: 1 = written (nullptr: all)
  std::vector<ledger_dangling>* dangling = nullptr;            ///< out: every ticket's ref left unmapped
};
/// Map every requester_id through `identity` in place (ids not in it stay and are counted as
/// dangling). Only written tickets are counted (`scope`); every ticket's unmapped reference,
/// written or not, is appended to scope.dangling when it is set (what the next ledger keeps).
/// Parallel; the counts do not depend on threads.
void remap_ticket_references(std::vector<ticket_candidate>& tickets,
                             const std::unordered_map<std::int64_t, std::int64_t>& identity, reject_log& log,
                             const remap_scope& scope = {});

/// Where a comment's references go (SPEC 2.2, 2.5). A comment candidate keeps neither its
/// CONVERSATION_ID nor its AUTHOR_ID: both are read again from its record when the comment is
/// written, fingerprinted or checked, and mapped here. The author goes through the identity map
/// (an id with no entry stays as it is, and dangles); the ticket is looked up among the output's
/// tickets and the --since ledger's (a comment without one is an orphan: counted, and written).
/// A view: what it names must outlive it.
class comment_references {
 public:
  /// Maps no author and knows no ticket.
  comment_references() = default;
  /// `ticket_ids` sorted ascending; `ledger_tickets` sorted by id, as a ledger keeps them.
  comment_references(const std::unordered_map<std::int64_t, std::int64_t>& identity,
                     std::span<const std::int64_t> ticket_ids, std::span<const ledger_object> ledger_tickets = {})
      : identity_(&identity), ticket_ids_(ticket_ids), ledger_tickets_(ledger_tickets) {}

  /// Map `author_id` (the record's AUTHOR_ID) in place; `comment_id` and `ticket_id` are the
  /// record's COMMENT_PART_ID and CONVERSATION_ID. When `log` is set (a comment this archive
  /// writes), count a dangling author and an orphan at `comment.line`; when `dangling` is set,
  /// list an author left unmapped (what the next ledger keeps).
  void map(const comment_candidate& comment, std::int64_t comment_id, std::int64_t ticket_id, std::int64_t& author_id,
           reject_log* log, std::vector<ledger_dangling>* dangling = nullptr) const;

 private:
  [[nodiscard]] bool ticket_exists(std::int64_t id) const;

  const std::unordered_map<std::int64_t, std::int64_t>* identity_ = nullptr;
  std::span<const std::int64_t> ticket_ids_;
  std::span<const ledger_object> ledger_tickets_;
};

/// The ids of `tickets`, sorted: what comment_references looks orphans up in.
std::vector<std::int64_t> sorted_ticket_ids(std::span<const ticket_candidate> tickets);

/// Sort a dangling list as the next ledger keeps it: by (kind, object id).
void sort_dangling(std::vector<ledger_dangling>& dangling);
}  // namespace tixport
