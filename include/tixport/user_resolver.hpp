// File: user_resolver.hpp
//
// Joins the export's users to the platform's email index (SPEC 2.1), builds
// the identity map chat id -> user id (SPEC 2.2) and remaps every author and
// requester reference, counting what dangles or is orphaned (SPEC 2.5).
//
//   resolved_users users = resolve_users(dedup.take_users(), dedup.take_authors(), index, max_id, log);
//   remap_references(comments, tickets, users.identity, threads, log);
#pragma once

#include "tixport/pipeline_messages.hpp"
#include "tixport/reject_log.hpp"
#include "tixport/user_index.hpp"

#include <cstdint>
#include <optional>
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
};

/// The users of the output and the identity map.
struct resolved_users {
  std::vector<resolved_user> users;                       ///< ordered by source row
  std::unordered_map<std::int64_t, std::int64_t> identity;///< chat id -> user id
  std::uint64_t matched = 0;                               ///< users whose id came from the index
  std::uint64_t created = 0;                               ///< users new to the platform
};

/// Resolve users (sorted by offset) against `index`. `max_id_seen` is the largest valid
/// AUTHOR_ID / TICKET_REQUESTER_ID of the export. Logs id_conflict, author_email_conflict and
/// utf8_repaired_field. Throws fatal_error(input_error) when fresh ids pass the int64 range.
resolved_users resolve_users(std::vector<user_candidate>&& users,
                             std::vector<std::pair<std::int64_t, author_candidate>>&& authors,
                             const user_index& index, std::optional<std::int64_t> max_id_seen,
                             reject_log& log);

/// Map every author_id and requester_id through `identity` in place (ids not in it stay and are
/// counted as dangling) and count orphan comments. Parallel; the counts do not depend on threads.
void remap_references(std::vector<comment_candidate>& comments, std::vector<ticket_candidate>& tickets,
                      const std::unordered_map<std::int64_t, std::int64_t>& identity, reject_log& log);

}  // namespace tixport
