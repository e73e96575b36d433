// File: temp_dir.hpp
//
// A fresh directory under the system temp dir for one test, removed with everything
// in it at the end (also after a test made it or its files read-only).
//
//   tixport::test::temp_dir dir;
//   write_file(dir / "chat.csv", ...);
//   run_tixport("run --input " + sh_quote(dir / "chat.csv") + ..., dir.path());
#pragma once

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace tixport::test {

/// A fresh directory under the system temp dir, removed on destruction.
class temp_dir {
 public:
  temp_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("tixport-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ignored;  // best effort: a test failure must not turn into a throw here
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ignored);
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace tixport::test
