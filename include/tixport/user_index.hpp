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
#include <string>

namespace tixport {

/// One entry of the index as the source gave it, before any validation.
struct raw_index_entry {
  std::optional<std::int64_t> id;    ///< nullopt when the id was not a valid int64
  std::optional<std::string> email;  ///< untrimmed email as given; nullopt for JSON null
};

}  // namespace tixport
