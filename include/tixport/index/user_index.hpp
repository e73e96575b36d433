// File: user_index.hpp
//
// The ticketing platform's existing users (SPEC 1.2): email key -> user id,
// plus every valid id the index holds, so new users never take one of them.
// Built from entries in file or page order, from the index CSV or the REST API.
//
//   std::vector<raw_index_entry> entries = ...;   // in file / page order
//   user_index index = user_index::build(entries);
//   if (auto id = index.find("jane@example.org")) ...
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tixport {

/// One entry of the index as the source gave it, before any validation.
struct raw_index_entry {
  std::optional<std::int64_t> id;    ///< nullopt when the id was not a valid int64
  std::optional<std::string> email;  ///< untrimmed email as given; nullopt for JSON null
};

/// What building the index kept and skipped, for the report.
struct user_index_stats {
  std::uint64_t entries = 0;          ///< entries read
  std::uint64_t kept = 0;             ///< entries in the email index
  std::uint64_t invalid_id = 0;       ///< skipped: id missing or not an int64
  std::uint64_t invalid_email = 0;    ///< skipped: email null or not valid (SPEC 1.1)
  std::uint64_t duplicate_email = 0;  ///< skipped: an earlier entry had the same email key
  std::uint64_t duplicate_id = 0;     ///< skipped: an earlier kept entry had the same id
};

/// The email index of SPEC 1.2: first entry wins per email key and per id.
class user_index {
 public:
  /// Build from entries in file or page order.
  static user_index build(std::span<const raw_index_entry> entries);

  /// The index id of an email key (trimmed, ASCII lower case), if any.
  [[nodiscard]] std::optional<std::int64_t> find(std::string_view email_key) const;
  /// True when `id` is a valid id anywhere in the source, kept or skipped.
  [[nodiscard]] bool has_id(std::int64_t id) const { return all_ids_.contains(id); }
  /// The largest valid id anywhere in the source; nullopt when there is none.
  [[nodiscard]] std::optional<std::int64_t> max_id() const noexcept { return max_id_; }
  [[nodiscard]] const user_index_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::size_t size() const noexcept { return by_key_.size(); }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::int64_t, string_hash, std::equal_to<>> by_key_;
  std::unordered_set<std::int64_t> all_ids_;
  std::optional<std::int64_t> max_id_;
  user_index_stats stats_;
};

}  // namespace tixport
