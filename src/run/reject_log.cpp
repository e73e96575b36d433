// File: reject_log.cpp
#include "tixport/run/reject_log.hpp"

#include <algorithm>
#include <atomic>

namespace tixport {

namespace {

constexpr std::array<std::string_view, kRowIssueCount> kIssueNames = {
    "malformed_record",
    "comment_invalid_id",
    "comment_invalid_ticket_id",
    "comment_invalid_author_id",
    "comment_invalid_public",
    "comment_invalid_created_at",
    "comment_null_body",
    "comment_too_large",
    "ticket_invalid_id",
    "ticket_invalid_requester_id",
    "ticket_invalid_created_at",
    "user_invalid_author_id",
    "user_null_name",
    "user_invalid_email",
    "user_too_large",
    "duplicate_comment",
    "duplicate_ticket",
    "duplicate_user_row",
    "author_email_conflict",
    "id_conflict",
    "dangling_author_ref",
    "dangling_requester_ref",
    "orphan_comment",
    "utf8_repaired_field",
};

// Called only when the vector has grown to twice the cap, so the amortised cost per
// add is O(1). Keep the kMaxSampleLines smallest *distinct* lines, ascending. A line can repeat (a
// row's NAME and EMAIL are both repaired): counting repeats here would crowd out lines
// that belong in the samples. Returns the ceiling: past it no line can be a sample.
std::uint64_t prune(std::vector<std::uint64_t>& lines) {
  std::sort(lines.begin(), lines.end());
  lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
  if (lines.size() < kMaxSampleLines) return ~std::uint64_t{0};
  lines.resize(kMaxSampleLines);
  return lines.back();
}

std::atomic<int> g_record_every_line{0};

}  // namespace

reject_log::record_every_line::record_every_line() { g_record_every_line.fetch_add(1); }

reject_log::record_every_line::~record_every_line() { g_record_every_line.fetch_sub(1); }

std::string_view row_issue_name(row_issue issue) noexcept {
  return kIssueNames[static_cast<std::size_t>(issue)];
}

bool row_issue_fails_strict(row_issue issue) noexcept {
  switch (issue) {
    // 1. Users are optional per row: a row without a user is not an error (a user too large
    //    for a batch file is: its text is lost, so user_too_large fails --strict).
    case row_issue::user_invalid_author_id:
    case row_issue::user_null_name:
    case row_issue::user_invalid_email:
    // 2. Duplicates are the expected shape of the export (SPEC counts, never fails on them).
    case row_issue::duplicate_comment:
    case row_issue::duplicate_ticket:
    case row_issue::duplicate_user_row:
    // 3. A chat id with two emails is resolved by SPEC 2.2's first-row rule.
    case row_issue::author_email_conflict:
      return false;
    default:
      return true;
  }
}

void reject_log::add(row_issue issue, std::uint64_t line) {
  const auto i = index(issue);
  ++counts_[i];
  if (g_record_every_line.load(std::memory_order_relaxed) != 0) entries_.push_back({line, issue});
  // Once kMaxSampleLines lines are kept, a larger line can never be a sample: duplicates
  // are logged on most rows of an export, in ascending order, so this is the common case.
  if (line > sample_ceiling_[i]) return;
  auto& lines = samples_[i];
  lines.push_back(line);
  if (lines.size() >= 2 * kMaxSampleLines) sample_ceiling_[i] = std::min(sample_ceiling_[i], prune(lines));
}

void reject_log::merge(const reject_log& other) {
  entries_.insert(entries_.end(), other.entries_.begin(), other.entries_.end());
  for (std::size_t i = 0; i < kRowIssueCount; ++i) {
    counts_[i] += other.counts_[i];
    auto& lines = samples_[i];
    lines.insert(lines.end(), other.samples_[i].begin(), other.samples_[i].end());
    if (lines.size() >= 2 * kMaxSampleLines) {
      sample_ceiling_[i] = std::min(sample_ceiling_[i], prune(lines));
    }
  }
}

std::vector<std::uint64_t> reject_log::samples(row_issue issue) const {
  std::vector<std::uint64_t> lines = samples_[index(issue)];
  std::sort(lines.begin(), lines.end());
  lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
  if (lines.size() > kMaxSampleLines) lines.resize(kMaxSampleLines);
  return lines;
}

void counted_lines::add(std::uint64_t line) {
  ++count;
  lines.push_back(line);
  if (lines.size() > 4 * kMaxSampleLines) finish();
}

void counted_lines::finish() {
  std::sort(lines.begin(), lines.end());
  lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
  if (lines.size() > kMaxSampleLines) lines.resize(kMaxSampleLines);
}

}  // namespace tixport
