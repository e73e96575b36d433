// File: ledger_delta.cpp
#include "tixport/ledger/ledger_delta.hpp"

#include "tixport/csv/field_parsers.hpp"

#include "common/parallel_loops_internal.hpp"

#include <oneapi/tbb/blocked_range.h>

#include <algorithm>
#include <string>

namespace tixport {

std::string_view rerun_path_name(rerun_path path) noexcept {
  switch (path) {
    case rerun_path::none: return "none";
    case rerun_path::appended: return "appended";
    case rerun_path::full_compare: return "full_compare";
  }
  return "?";
}

object_delta partition_against_ledger(std::span<const std::int64_t> ids, std::span<const std::uint64_t> lines,
                                      std::span<const ledger_object> ledger, bool appended) {
  object_delta d;
  d.written.assign(ids.size(), 1);
  d.in_export.assign(ledger.size(), 0);
  std::uint64_t old_part = 0;
  if (appended) {
    // The old export's objects are in this export too: its bytes are this export's start.
    for (std::size_t j = 0; j < ledger.size(); ++j) {
      if ((ledger[j].flags & kInLastExport) != 0) {
        d.in_export[j] = 1;
        ++old_part;
      }
    }
  }
  // A merge of both lists in id order: linear after one sort, where a lookup per object in a
  // 2.5M-entry ledger would miss the cache on most of its steps.
  std::vector<std::pair<std::int64_t, std::size_t>> order(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) order[i] = {ids[i], i};
  parallel_sort_vector(order, std::less<>{});
  std::size_t j = 0;
  for (const auto& [id, i] : order) {
    while (j < ledger.size() && ledger[j].id < id) ++j;
    if (j == ledger.size() || ledger[j].id != id) continue;
    d.written[i] = 0;
    // On the appended path a row for an object of the old part is a later duplicate of it.
    if (appended && (ledger[j].flags & kInLastExport) != 0) continue;
    d.compare.push_back(compared_object{i, j, lines[i]});
    d.in_export[j] = 1;
  }
  d.skipped = old_part + d.compare.size();
  d.written_count = static_cast<std::uint64_t>(std::count(d.written.begin(), d.written.end(), 1));
  d.missing = static_cast<std::uint64_t>(std::count(d.in_export.begin(), d.in_export.end(), 0));
  return d;
}

namespace {

/// Fingerprint every compared object in parallel (`fingerprint(i, raw, scratch)`) and list those
/// that differ from the ledger's, in ledger order.
template <typename Fingerprint>
std::vector<ledger_changed> find_changed(const object_delta& delta, std::span<const ledger_object> ledger,
                                         object_kind kind, Fingerprint fingerprint) {
  std::vector<std::uint8_t> differs(delta.compare.size(), 0);
  parallel_for_ranges(0, delta.compare.size(), 1024, [&](std::size_t begin, std::size_t end) {
    std::string raw;
    std::string scratch;
    for (std::size_t k = begin; k != end; ++k) {
      const compared_object& c = delta.compare[k];
      differs[k] = fingerprint(c.object, raw, scratch) != ledger[c.ledger].fingerprint;
    }
  });
  std::vector<ledger_changed> out;
  for (std::size_t k = 0; k < differs.size(); ++k) {
    if (differs[k] != 0) out.push_back({ledger[delta.compare[k].ledger].id, delta.compare[k].line, kind});
  }
  return out;
}

}  // namespace

std::vector<ledger_changed> changed_tickets(std::span<const ticket_candidate> tickets, const object_delta& delta,
                                            std::span<const ledger_object> ledger) {
  return find_changed(delta, ledger, object_kind::ticket, [&](std::size_t i, std::string& /*raw*/, std::string& scratch) {
    return ticket_fingerprint(tickets[i], scratch);
  });
}

std::vector<ledger_changed> changed_comments(const comment_source& source, std::span<const comment_candidate> comments,
                                             const comment_references& references, const object_delta& delta,
                                             std::span<const ledger_object> ledger) {
  return find_changed(delta, ledger, object_kind::comment, [&](std::size_t i, std::string& raw, std::string& scratch) {
    return comment_fingerprint(source, comments[i], references, raw, scratch);
  });
}

void normalize_changed(std::vector<ledger_changed>& changed) {
  const auto key = [](const ledger_changed& c) { return std::pair(c.kind, c.object_id); };
  std::sort(changed.begin(), changed.end(), [&](const ledger_changed& x, const ledger_changed& y) { return key(x) < key(y); });
  changed.erase(std::unique(changed.begin(), changed.end(),
                            [&](const ledger_changed& x, const ledger_changed& y) { return key(x) == key(y); }),
                changed.end());
}

namespace {

/// True when `id` is an object of the ledger's last export.
bool in_last_export(std::span<const ledger_object> objects, std::int64_t id) {
  const ledger_object* o = ledger_lookup::find(objects, id);
  return o != nullptr && (o->flags & kInLastExport) != 0;
}

}  // namespace

void add_old_part_changes(const run_ledger& ledger, const std::unordered_map<std::int64_t, std::int64_t>& identity,
                          const comment_source& source, const export_columns& columns,
                          std::vector<ledger_changed>& changed) {
  const auto key = [](object_kind kind, std::int64_t id) { return std::pair(kind, id); };
  std::vector<std::pair<object_kind, std::int64_t>> recomputed;
  std::string field;
  std::string raw;
  std::string scratch;
  const auto read = [&](std::uint64_t offset, std::size_t column) -> std::string_view {
    reread_field(source.file_bytes, offset, column, field);
    return trim_ws(field);
  };
  for (const ledger_dangling& d : ledger.dangling) {
    const bool is_ticket = d.kind == ref_kind::ticket_requester;
    const ledger_object* object = ledger_lookup::find(is_ticket ? ledger.tickets : ledger.comments, d.object_id);
    if (object == nullptr || (object->flags & kInLastExport) == 0) continue;  // not in the old part
    const auto mapped = identity.find(d.chat_id);
    // Still unmapped, or mapped to the very id written (a chat user who now has an email and
    // kept their AUTHOR_ID): the JSON is the last export's, and so is its changed status.
    if (mapped == identity.end() || mapped->second == d.chat_id) continue;
    const object_kind kind = is_ticket ? object_kind::ticket : object_kind::comment;
    recomputed.push_back(key(kind, d.object_id));
    // The row as the last export had it (this export starts with those bytes), mapped now.
    std::uint64_t fingerprint = 0;
    if (is_ticket) {
      const auto created = parse_timestamp(read(d.offset, columns.ticket_created_at));
      fingerprint = ticket_fingerprint(ticket_candidate{d.offset, d.line, d.object_id, mapped->second,
                                                        created.value_or(0)},
                                       scratch);
    } else {
      comment_candidate c{};
      c.offset = d.offset;
      c.line = d.line;
      c.is_public = parse_bool(read(d.offset, columns.comment_public)).value_or(false);
      // comment_fingerprint re-reads the other fields from the record and maps its AUTHOR_ID
      // (d.chat_id) to mapped->second, as the write would.
      fingerprint = comment_fingerprint(source, c, comment_references(identity, {}), raw, scratch);
    }
    if (fingerprint != object->fingerprint) changed.push_back({d.object_id, d.line, kind});
  }
  std::sort(recomputed.begin(), recomputed.end());
  // Every other old-part object is as the last export left it.
  for (const ledger_changed& c : ledger.changed) {
    if (std::binary_search(recomputed.begin(), recomputed.end(), key(c.kind, c.object_id))) continue;
    if (!in_last_export(c.kind == object_kind::ticket ? ledger.tickets : ledger.comments, c.object_id)) continue;
    changed.push_back(c);
  }
  normalize_changed(changed);
}

counted_lines changed_lines(std::span<const ledger_changed> changed, object_kind kind) {
  counted_lines out;
  for (const ledger_changed& c : changed) {
    if (c.kind == kind) out.add(c.line);
  }
  out.finish();
  return out;
}

namespace {

/// What this run wrote of one kind, sorted by id in place.
std::span<const written_object> sorted_by_id(std::span<written_object> written) {
  const auto by_id = [](const written_object& x, const written_object& y) { return x.id < y.id; };
  // Exports often number their objects in file order already: then no sort at all.
  if (!std::is_sorted(written.begin(), written.end(), by_id)) parallel_sort_span(written, by_id);
  return written;
}

}  // namespace

next_ledger build_next_ledger(const ledger_update& u) {
  next_ledger result;
  run_ledger& next = result.ledger;
  const run_ledger* old = u.previous;
  next.run = old != nullptr ? old->run + 1 : 1;  // parse_ledger refuses a run number that could wrap
  next.previous_checksum = old != nullptr ? old->checksum : 0;
  next.source = u.source;
  next.max_id_seen = u.largest_id;
  if (old != nullptr && old->max_id_seen && (!next.max_id_seen || *old->max_id_seen > *next.max_id_seen)) {
    next.max_id_seen = old->max_id_seen;
  }

  // Users: the old ones, then this run's in output order.
  if (old != nullptr) next.users = old->users;
  std::unordered_map<std::string, std::uint32_t, transparent_string_hash, std::equal_to<>> user_by_key;
  user_by_key.reserve(next.users.size() + u.users.size());
  for (std::uint32_t i = 0; i < next.users.size(); ++i) user_by_key.emplace(next.users[i].email_key, i);
  for (const resolved_user& r : u.users) {
    ledger_user user;
    user.id = r.id;
    email_key(r.email, user.email_key);
    user.origin = r.origin;
    user.run = next.run;
    user_by_key.emplace(user.email_key, static_cast<std::uint32_t>(next.users.size()));
    next.users.push_back(std::move(user));
  }

  // Identity: old entries stand; this run's are new chat ids (both lists sorted by chat id).
  const std::span<const ledger_identity> old_identity =
      old != nullptr ? std::span<const ledger_identity>(old->identity) : std::span<const ledger_identity>();
  next.identity.reserve(old_identity.size() + u.decided.size());
  std::size_t o = 0;
  for (const decided_identity& d : u.decided) {
    while (o < old_identity.size() && old_identity[o].chat_id < d.chat_id) next.identity.push_back(old_identity[o++]);
    const auto it = user_by_key.find(std::string_view(d.email_key));
    if (it == user_by_key.end()) continue;  // cannot happen: every decided key made or found a user
    next.identity.push_back(ledger_identity{d.chat_id, d.user_id, it->second});
  }
  while (o < old_identity.size()) next.identity.push_back(old_identity[o++]);

  const auto merged = [&](std::vector<ledger_object> run_ledger::*list, const object_delta* delta,
                          std::span<const written_object> added) {
    merged_objects m;
    if (old != nullptr) m.old = old->*list;
    m.old_in_export = delta != nullptr ? &delta->in_export : nullptr;
    m.added = added;
    m.run = next.run;
    return m;
  };
  result.tickets = merged(&run_ledger::tickets, u.ticket_delta, sorted_by_id(u.tickets));
  result.comments = merged(&run_ledger::comments, u.comment_delta, sorted_by_id(u.comments));

  // Unmapped references of this export's objects. The full compare parsed every row: its list
  // is complete. The appended path parsed only the new rows: the old part's entries come from
  // the old ledger (those whose chat id is still unmapped), and a parsed row of an old-part
  // object is a later duplicate of it, not its row.
  const auto by_kind_id = [](const ledger_dangling& x, const ledger_dangling& y) {
    return std::pair(x.kind, x.object_id) < std::pair(y.kind, y.object_id);
  };
  if (old != nullptr && u.appended) {
    const auto old_part = [&](const ledger_dangling& d) {
      return in_last_export(d.kind == ref_kind::ticket_requester ? old->tickets : old->comments, d.object_id);
    };
    std::vector<ledger_dangling> carried;
    for (const ledger_dangling& d : old->dangling) {
      if (old_part(d) && (u.identity == nullptr || !u.identity->contains(d.chat_id))) carried.push_back(d);
    }
    std::vector<ledger_dangling> parsed;
    for (const ledger_dangling& d : u.dangling) {
      if (!old_part(d)) parsed.push_back(d);
    }
    next.dangling.reserve(carried.size() + parsed.size());
    std::merge(carried.begin(), carried.end(), parsed.begin(), parsed.end(), std::back_inserter(next.dangling),
               by_kind_id);
  } else {
    next.dangling.assign(u.dangling.begin(), u.dangling.end());
  }
  next.changed.assign(u.changed.begin(), u.changed.end());
  next.source.had_problems = u.export_problems;
  return result;
}

}  // namespace tixport
