// File: user_resolver.cpp
#include "tixport/run/user_resolver.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/csv/field_parsers.hpp"

#include "common/parallel_loops_internal.hpp"
#include "common/tsan_annotations_internal.hpp"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/combinable.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <limits>
#include <unordered_set>

namespace tixport {

resolved_users resolve_users(std::vector<user_candidate>&& users,
                             std::vector<std::pair<std::int64_t, author_candidate>>&& authors,
                             const user_index& index, std::optional<std::int64_t> max_id_seen,
                             reject_log& log, const ledger_lookup* ledger) {
  resolved_users out;
  out.users.reserve(users.size());
  const auto raise = [](std::optional<std::int64_t>& largest, std::optional<std::int64_t> id) {
    if (id && (!largest || *id > *largest)) largest = id;
  };

  // Fresh ids start above every id anybody could already mean (SPEC 2.1), and above every id
  // earlier runs saw or gave (SPEC 4.2).
  std::optional<std::int64_t> largest = max_id_seen;
  raise(largest, index.max_id());
  if (ledger != nullptr) {
    raise(largest, ledger->ledger().max_id_seen);
    for (const ledger_user& u : ledger->ledger().users) raise(largest, u.id);
  }
  std::int64_t next_fresh = largest ? *largest : 0;

  std::unordered_map<std::string, std::int64_t, transparent_string_hash, std::equal_to<>> id_by_key;
  id_by_key.reserve(users.size());
  std::unordered_set<std::int64_t> taken;
  taken.reserve(users.size());
  std::string key;
  for (user_candidate& u : users) {
    key.clear();
    email_key(u.email, key);
    if (ledger != nullptr) {
      if (const auto known = ledger->user_by_key(key)) {
        // Imported before: its id stands, and it is not written again.
        id_by_key.emplace(key, ledger->ledger().users[*known].id);
        ++out.ledger_users;
        continue;
      }
    }
    std::int64_t id = 0;
    user_origin origin = user_origin::new_id;
    if (const auto found = index.find(key)) {
      id = *found;
      origin = user_origin::matched;
      // The index gives a new email key an id an earlier archive gave somebody else: the index
      // is the platform's word (SPEC 2.1), but it contradicts the ledger, so it is counted.
      if (ledger != nullptr && ledger->holds_user_id(id)) ++out.ledger_index_conflicts;
    } else if (!index.has_id(u.author_id) && !taken.contains(u.author_id) &&
               (ledger == nullptr || !ledger->holds_user_id(u.author_id))) {
      id = u.author_id;
    } else {
      if (next_fresh == std::numeric_limits<std::int64_t>::max()) {
        throw fatal_error(exit_code::input_error,
                          "users: line " + std::to_string(u.line) +
                              ": no fresh user id left: fresh ids have reached the int64 maximum (" +
                              std::to_string(next_fresh) + ")");
      }
      id = ++next_fresh;
      origin = user_origin::fresh;
      log.add(row_issue::id_conflict, u.line);
    }
    taken.insert(id);
    id_by_key.emplace(key, id);
    if (u.name_repaired) log.add(row_issue::utf8_repaired_field, u.line);
    if (u.email_repaired) log.add(row_issue::utf8_repaired_field, u.line);
    const bool matched = origin == user_origin::matched;
    ++(matched ? out.matched : out.created);
    out.users.push_back(resolved_user{id, std::move(u.name), std::move(u.email), u.line, matched, origin});
  }
  for (const resolved_user& u : out.users) raise(largest, u.id);
  out.largest_id = largest;

  out.identity.reserve(authors.size() + (ledger != nullptr ? ledger->ledger().identity.size() : 0));
  if (ledger != nullptr) {
    // The ledger's mappings stand, also for chat ids this export does not name again.
    for (const ledger_identity& e : ledger->ledger().identity) out.identity.emplace(e.chat_id, e.user_id);
    for (const ledger_user& u : ledger->ledger().users) {
      if (const auto found = index.find(u.email_key); found && *found != u.id) ++out.ledger_index_conflicts;
    }
  }
  for (auto& [chat_id, a] : authors) {
    bool conflict = a.conflict;
    if (ledger != nullptr) {
      if (const ledger_identity* known = ledger->identity(chat_id)) {
        // Decided by an earlier run; another email key now is a conflict across runs.
        if (ledger->ledger().users[known->user].email_key != a.email_key) conflict = true;
        if (conflict) log.add(row_issue::author_email_conflict, a.line);
        continue;
      }
    }
    // Every chat id in the map came from a candidate row, whose email key made a user.
    const auto it = id_by_key.find(std::string_view{a.email_key});
    if (it != id_by_key.end()) {
      out.identity.emplace(chat_id, it->second);
      out.decided.push_back(decided_identity{chat_id, it->second, std::move(a.email_key)});
    }
    if (conflict) log.add(row_issue::author_email_conflict, a.line);
  }
  std::sort(out.decided.begin(), out.decided.end(),
            [](const decided_identity& x, const decided_identity& y) { return x.chat_id < y.chat_id; });
  return out;
}

void remap_ticket_references(std::vector<ticket_candidate>& tickets,
                             const std::unordered_map<std::int64_t, std::int64_t>& identity, reject_log& log,
                             const remap_scope& scope) {
  // Integrity is counted for what this archive writes; tickets a --since ledger already has
  // are only mapped (their JSON is compared with the ledger's).
  tsan::combinable<reject_log> logs;
  tsan::combinable<std::vector<ledger_dangling>> unmapped;
  parallel_for_ranges(0, tickets.size(), 4096, [&](std::size_t begin, std::size_t end) {
    reject_log& local = logs.local();
    for (std::size_t i = begin; i != end; ++i) {
      ticket_candidate& t = tickets[i];
      if (const auto it = identity.find(t.requester_id); it != identity.end()) {
        t.requester_id = it->second;
      } else {
        if (scope.ticket_written == nullptr || (*scope.ticket_written)[i] != 0) {
          local.add(row_issue::dangling_requester_ref, t.line);
        }
        if (scope.dangling != nullptr) {
          unmapped.local().push_back(
              {t.id, t.requester_id, t.line, t.offset, ref_kind::ticket_requester});
        }
      }
    }
  });
  logs.combine_each([&](const reject_log& local) { log.merge(local); });
  if (scope.dangling != nullptr) {
    unmapped.combine_each([&](const std::vector<ledger_dangling>& local) {
      scope.dangling->insert(scope.dangling->end(), local.begin(), local.end());
    });
    sort_dangling(*scope.dangling);
  }
}

bool comment_references::ticket_exists(std::int64_t id) const {
  return std::binary_search(ticket_ids_.begin(), ticket_ids_.end(), id) ||
         ledger_lookup::find(ledger_tickets_, id) != nullptr;
}

void comment_references::map(const comment_candidate& c, std::int64_t comment_id, std::int64_t ticket_id,
                             std::int64_t& author_id, reject_log* log, std::vector<ledger_dangling>* dangling) const {
  bool mapped = false;
  if (identity_ != nullptr) {
    if (const auto it = identity_->find(author_id); it != identity_->end()) {
      author_id = it->second;
      mapped = true;
    }
  }
  if (!mapped) {
    if (log != nullptr) log->add(row_issue::dangling_author_ref, c.line);
    if (dangling != nullptr) dangling->push_back({comment_id, author_id, c.line, c.offset, ref_kind::comment_author});
  }
  if (log != nullptr && !ticket_exists(ticket_id)) log->add(row_issue::orphan_comment, c.line);
}

std::vector<std::int64_t> sorted_ticket_ids(std::span<const ticket_candidate> tickets) {
  std::vector<std::int64_t> ids;
  ids.reserve(tickets.size());
  for (const ticket_candidate& t : tickets) ids.push_back(t.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

void sort_dangling(std::vector<ledger_dangling>& dangling) {
  std::sort(dangling.begin(), dangling.end(), [](const ledger_dangling& x, const ledger_dangling& y) {
    return std::pair(x.kind, x.object_id) < std::pair(y.kind, y.object_id);
  });
}

}  // namespace tixport
