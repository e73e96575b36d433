// File: user_index_source.cpp
#include "tixport/index/user_index_source.hpp"

#include "tixport/common/atomic_output.hpp"
#include "tixport/index/user_index_csv.hpp"

#include <utility>

namespace tixport {

user_index_source::user_index_source(user_index_source_options options) : options_(std::move(options)) {
  // 1. --users-file: the index is that file. 2. --users-cache present and no --refresh-users:
  // the cache, as the API gave it last time. 3. Else the API; its entries refresh the cache.
  if (!options_.users_file.empty()) {
    origin_ = user_index_origin::file;
    description_ = options_.users_file.string();
  } else if (!options_.users_cache.empty() && !options_.refresh && std::filesystem::exists(options_.users_cache)) {
    origin_ = user_index_origin::cache;
    description_ = options_.users_cache.string() + " (cache of " + redact_url(options_.fetch.users_url) + ")";
  } else {
    origin_ = user_index_origin::api;
    description_ = redact_url(options_.fetch.users_url);
    // Credentials are read only now: a cache or a file needs none, and a bad auth file then
    // does not matter.
    options_.fetch.credentials = load_api_credentials(options_.auth_file);
    fetch_ = std::make_unique<user_index_fetch>(options_.fetch);
  }
}

user_index_source::~user_index_source() = default;

fetch_result user_index_source::take() {
  if (fetch_) return fetch_->get();
  const std::filesystem::path& path = origin_ == user_index_origin::file ? options_.users_file : options_.users_cache;
  fetch_result result;
  result.entries = read_index_csv(path, options_.threads);
  return result;
}

user_index user_index_source::load() {
  fetch_result result = take();
  user_index index = user_index::build(result.entries);
  if (origin_ == user_index_origin::api && !options_.users_cache.empty()) fetched_ = std::move(result.entries);
  return index;
}

void user_index_source::cancel() noexcept {
  if (fetch_) fetch_->cancel();
}

std::unique_ptr<atomic_output_file> user_index_source::stage_cache() const {
  if (!fetched_) return nullptr;
  return stage_index_csv(*fetched_, options_.users_cache);
}

}  // namespace tixport
