// File: user_resolver.cpp
#include "tixport/user_resolver.hpp"

#include "tixport/errors.hpp"
#include "tixport/field_parsers.hpp"

#include "tsan_annotations_internal.hpp"

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
                             reject_log& log) {
  resolved_users out;
  out.users.reserve(users.size());

  // Fresh ids start above every id anybody could already mean (SPEC 2.1).
  std::optional<std::int64_t> largest = max_id_seen;
  if (index.max_id() && (!largest || *index.max_id() > *largest)) largest = index.max_id();
  std::int64_t next_fresh = largest ? *largest : 0;

  std::unordered_map<std::string, std::int64_t, transparent_string_hash, std::equal_to<>> id_by_key;
  id_by_key.reserve(users.size());
  std::unordered_set<std::int64_t> taken;
  taken.reserve(users.size());
  std::string key;
  for (user_candidate& u : users) {
    key.clear();
    email_key(u.email, key);
    std::int64_t id = 0;
    bool matched = false;
    if (const auto found = index.find(key)) {
      id = *found;
      matched = true;
    } else if (!index.has_id(u.author_id) && !taken.contains(u.author_id)) {
      id = u.author_id;
    } else {
      if (next_fresh == std::numeric_limits<std::int64_t>::max()) {
        throw fatal_error(exit_code::input_error,
                          "users: line " + std::to_string(u.line) +
                              ": no fresh user id left: the largest id seen is the int64 maximum");
      }
      id = ++next_fresh;
      log.add(row_issue::id_conflict, u.line);
    }
    taken.insert(id);
    id_by_key.emplace(key, id);
    if (u.name_repaired) log.add(row_issue::utf8_repaired_field, u.line);
    if (u.email_repaired) log.add(row_issue::utf8_repaired_field, u.line);
    ++(matched ? out.matched : out.created);
    out.users.push_back(resolved_user{id, std::move(u.name), std::move(u.email), u.line, matched});
  }

  out.identity.reserve(authors.size());
  for (auto& [chat_id, a] : authors) {
    // Every chat id in the map came from a candidate row, whose email key made a user.
    const auto it = id_by_key.find(std::string_view{a.email_key});
    if (it != id_by_key.end()) out.identity.emplace(chat_id, it->second);
    if (a.conflict) log.add(row_issue::author_email_conflict, a.line);
  }
  return out;
}

void remap_references(std::vector<comment_candidate>& comments, std::vector<ticket_candidate>& tickets,
                      const std::unordered_map<std::int64_t, std::int64_t>& identity, reject_log& log) {
  std::vector<std::int64_t> ticket_ids;
  ticket_ids.reserve(tickets.size());
  for (const ticket_candidate& t : tickets) ticket_ids.push_back(t.id);
  std::sort(ticket_ids.begin(), ticket_ids.end());

  tsan::combinable<reject_log> logs;
  // tsan::body / acquire: hand-offs ThreadSanitizer cannot see in libtbb (tsan_annotations_internal.hpp).
  oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<std::size_t>(0, comments.size(), 4096),
                            tsan::body(&logs, [&](const oneapi::tbb::blocked_range<std::size_t>& range) {
                              reject_log& local = logs.local();
                              for (std::size_t i = range.begin(); i != range.end(); ++i) {
                                comment_candidate& c = comments[i];
                                if (const auto it = identity.find(c.author_id); it != identity.end()) {
                                  c.author_id = it->second;
                                } else {
                                  local.add(row_issue::dangling_author_ref, c.line);
                                }
                                if (!std::binary_search(ticket_ids.begin(), ticket_ids.end(), c.ticket_id)) {
                                  local.add(row_issue::orphan_comment, c.line);
                                }
                              }
                            }));
  tsan::acquire(&logs);
  oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<std::size_t>(0, tickets.size(), 4096),
                            tsan::body(&logs, [&](const oneapi::tbb::blocked_range<std::size_t>& range) {
                              reject_log& local = logs.local();
                              for (std::size_t i = range.begin(); i != range.end(); ++i) {
                                ticket_candidate& t = tickets[i];
                                if (const auto it = identity.find(t.requester_id); it != identity.end()) {
                                  t.requester_id = it->second;
                                } else {
                                  local.add(row_issue::dangling_requester_ref, t.line);
                                }
                              }
                            }));
  tsan::acquire(&logs);
  logs.combine_each([&](const reject_log& local) { log.merge(local); });
}

}  // namespace tixport
