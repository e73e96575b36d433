// File: user_index.cpp
#include "tixport/index/user_index.hpp"

#include "tixport/csv/field_parsers.hpp"

#include <algorithm>

namespace tixport {

user_index user_index::build(std::span<const raw_index_entry> entries) {
  user_index index;
  index.by_key_.reserve(entries.size());
  index.all_ids_.reserve(entries.size());
  std::unordered_set<std::int64_t> kept_ids;
  kept_ids.reserve(entries.size());
  std::string key;
  for (const raw_index_entry& entry : entries) {
    ++index.stats_.entries;
    if (!entry.id) {
      ++index.stats_.invalid_id;
      continue;
    }
    const std::int64_t id = *entry.id;
    // Every valid id is taken, whatever happens to its email (SPEC 2.1).
    index.all_ids_.insert(id);
    index.max_id_ = index.max_id_ ? std::max(*index.max_id_, id) : id;
    if (!entry.email) {
      ++index.stats_.invalid_email;
      continue;
    }
    const std::string_view email = trim_ws(*entry.email);
    if (!is_valid_email(email)) {
      ++index.stats_.invalid_email;
      continue;
    }
    key.clear();
    email_key(email, key);
    if (index.by_key_.contains(key)) {
      ++index.stats_.duplicate_email;
      continue;
    }
    if (!kept_ids.insert(id).second) {
      ++index.stats_.duplicate_id;
      continue;
    }
    index.by_key_.emplace(key, id);
    ++index.stats_.kept;
  }
  return index;
}

std::optional<std::int64_t> user_index::find(std::string_view email_key) const {
  const auto it = by_key_.find(email_key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

}  // namespace tixport
