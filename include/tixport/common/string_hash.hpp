// File: string_hash.hpp
//
// A hash for string-keyed unordered containers that also finds by std::string_view,
// so a lookup builds no temporary std::string (C++20 heterogeneous lookup: the hash
// and the key equality both transparent).
//
//   std::unordered_map<std::string, int, transparent_string_hash, std::equal_to<>> ids;
//   ids.find(std::string_view(key));
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace tixport {

/// Hash of std::string / std::string_view keys, transparent (use with std::equal_to<>).
struct transparent_string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace tixport
