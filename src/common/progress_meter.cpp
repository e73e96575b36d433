// File: progress_meter.cpp
#include "tixport/common/progress_meter.hpp"

#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace tixport {

namespace {

constexpr auto kRedrawInterval = std::chrono::milliseconds(250);
constexpr double kMegabyte = 1e6;

std::string amount(std::uint64_t n, progress_unit unit) {
  char buf[48];
  if (unit == progress_unit::bytes) {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(n) / kMegabyte);
  } else {
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  }
  return buf;
}

std::string duration(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

}  // namespace

bool progress_meter::wanted(bool allowed) {
  if (!allowed || ::isatty(STDERR_FILENO) != 1) return false;
  const char* term = std::getenv("TERM");
  return term != nullptr && *term != '\0' && std::strcmp(term, "dumb") != 0;
}

progress_meter::progress_meter(bool enabled, std::FILE* out) : enabled_(enabled), out_(out) {}

progress_meter::~progress_meter() { clear(); }

std::string progress_meter::format(std::string_view stage, std::uint64_t done, std::uint64_t total,
                                   progress_unit unit, double seconds, std::string_view note) {
  std::string line(stage);
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  char buf[64];
  if (total != 0) {
    std::snprintf(buf, sizeof buf, " %5.1f%%", 100.0 * static_cast<double>(done) / static_cast<double>(total));
    line += buf;
    line += "  " + amount(done, unit) + " of " + amount(total, unit);
  } else {
    line += "  " + amount(done, unit);
  }
  if (rate > 0) {
    if (unit == progress_unit::bytes) {
      std::snprintf(buf, sizeof buf, "  %.1f MB/s", rate / kMegabyte);
    } else {
      std::snprintf(buf, sizeof buf, "  %.0f/s", rate);
    }
    line += buf;
    if (total > done) line += "  ETA " + duration(static_cast<double>(total - done) / rate);
  }
  if (!note.empty()) {
    line += "  ";
    line += note;
  }
  return line;
}

void progress_meter::update(std::string_view stage, std::uint64_t done, std::uint64_t total, progress_unit unit,
                            std::string_view note, bool force) {
  if (!enabled_) return;
  const auto now = clock::now();
  std::lock_guard lock(mutex_);
  if (stage != stage_) {
    stage_ = stage;
    stage_start_ = now;
    force = true;
  }
  if (!force && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  const double seconds = std::chrono::duration<double>(now - stage_start_).count();
  std::fprintf(out_, "\r\033[K%s", format(stage, done, total, unit, seconds, note).c_str());
  std::fflush(out_);
  shown_ = true;
}

void progress_meter::clear() {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  if (shown_) {
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
  shown_ = false;
}

}  // namespace tixport
