// File: progress_meter.hpp
//
// The one progress line of every long command (run, fetch-users, verify,
// generate): stage, done/total, rate and ETA, rewritten in place at most four
// times a second. Only on a terminal that understands "\r\033[K" (stderr is a
// tty and TERM is not "dumb"), and never with --quiet; elsewhere it prints
// nothing, so logs and pipes stay clean.
//
//   progress_meter progress(progress_meter::wanted(!quiet));
//   progress.update("reading", bytes_done, bytes_total, progress_unit::bytes);
//   progress.update("fetching pages", pages, 0, progress_unit::items, "2 retries");  // total unknown
//   progress.clear();                               // before printing the summary
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

namespace tixport {

/// How done/total are shown.
enum class progress_unit {
  items,  ///< plain counts ("1234/5000 pages")
  bytes,  ///< shown in MB
};

class progress_meter {
 public:
  /// True when a progress line belongs on stderr: `allowed` (not --quiet), stderr is a
  /// terminal, and TERM is set and not "dumb".
  static bool wanted(bool allowed);

  /// A meter that draws on `out` when `enabled` (else every call is a no-op).
  explicit progress_meter(bool enabled, std::FILE* out = stderr);
  ~progress_meter();
  progress_meter(const progress_meter&) = delete;
  progress_meter& operator=(const progress_meter&) = delete;

  /// Show `stage`: done of total (total 0: unknown, no percentage or ETA), the rate since the
  /// stage began and the time left at that rate, then `note`. Thread-safe; redraws at most
  /// every 250 ms (a new stage or `force` draws at once).
  void update(std::string_view stage, std::uint64_t done, std::uint64_t total, progress_unit unit,
              std::string_view note = {}, bool force = false);
  /// Erase the line (before anything else is printed on stderr).
  void clear();

  /// The text of one line (no "\r\033[K"), for tests: `seconds` since the stage began.
  static std::string format(std::string_view stage, std::uint64_t done, std::uint64_t total, progress_unit unit,
                            double seconds, std::string_view note);

 private:
  using clock = std::chrono::steady_clock;
  bool enabled_;
  std::FILE* out_;
  std::mutex mutex_;
  bool shown_ = false;
  std::string stage_;
  clock::time_point stage_start_{};
  clock::time_point last_draw_{};
};

}  // namespace tixport
