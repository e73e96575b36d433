// File: reject_log.hpp
//
// Counts and sample line numbers for everything a run skips, drops or repairs
// (SPEC 2.5, 2.7): one counter per row_issue plus the smallest
// kMaxSampleLines physical line numbers seen for it. Each parallel task keeps
// its own log and the logs are merged; because samples keep the smallest
// lines, the merged result does not depend on the order of merging.
//
//   reject_log local;
//   local.add(row_issue::comment_invalid_created_at, line);
//   shared.merge(local);          // under a lock or at a serial stage
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace tixport {

/// Every kind of thing a run counts per row. The names are the report's keys.
enum class row_issue : std::uint8_t {
  malformed_record,             ///< field count differs from the header's
  comment_invalid_id,           ///< COMMENT_PART_ID invalid
  comment_invalid_ticket_id,    ///< CONVERSATION_ID invalid
  comment_invalid_author_id,    ///< AUTHOR_ID invalid
  comment_invalid_public,       ///< COMMENT_PUBLIC invalid
  comment_invalid_created_at,   ///< COMMENT_CREATED_AT invalid
  comment_null_body,            ///< BODY null
  comment_too_large,            ///< html_body over kMaxTextJsonBytes as a JSON string (batch_limits.hpp)
  ticket_invalid_id,            ///< CONVERSATION_ID invalid
  ticket_invalid_requester_id,  ///< TICKET_REQUESTER_ID invalid
  ticket_invalid_created_at,    ///< TICKET_CREATED_AT invalid
  user_invalid_author_id,       ///< no user from this row: AUTHOR_ID invalid
  user_null_name,               ///< no user from this row: NAME null
  user_invalid_email,           ///< no user from this row: EMAIL null or invalid
  user_too_large,               ///< no user from this row: NAME and EMAIL over kMaxTextJsonBytes as JSON strings
  duplicate_comment,            ///< a later valid row of a COMMENT_PART_ID already taken
  duplicate_ticket,             ///< a later valid row of a CONVERSATION_ID already taken
  duplicate_user_row,           ///< a later candidate row of an email key already taken
  author_email_conflict,        ///< a chat id seen with more than one email key (line of its first row)
  id_conflict,                  ///< a new user given a fresh id
  dangling_author_ref,          ///< a comment's author_id not in the identity map
  dangling_requester_ref,       ///< a ticket's requester_id not in the identity map
  orphan_comment,               ///< a comment whose ticket_id has no ticket in the output
  utf8_repaired_field,          ///< a written field whose invalid UTF-8 was replaced by U+FFFD
  kCount
};

inline constexpr std::size_t kRowIssueCount = static_cast<std::size_t>(row_issue::kCount);
inline constexpr std::size_t kMaxSampleLines = 20;

/// The report key of an issue, e.g. "comment_invalid_created_at".
std::string_view row_issue_name(row_issue issue) noexcept;

/// True for issues that make `--strict` fail (SPEC 2.7: export problems and integrity counts).
bool row_issue_fails_strict(row_issue issue) noexcept;

/// One counted occurrence, kept only while every line is recorded (for --rejects).
struct reject_entry {
  std::uint64_t line;  ///< physical line of the row
  row_issue issue;     ///< why
};

/// Counts per issue and the smallest sample line numbers of each.
class reject_log {
 public:
  /// While one of these lives, every log also keeps every (line, issue) it counts, so the
  /// run can write the complete rejects file. Process-wide: the logs of one run are created
  /// in many stages and threads; a run is the only user of the process's logs.
  class record_every_line {
   public:
    record_every_line();
    ~record_every_line();
    record_every_line(const record_every_line&) = delete;
    record_every_line& operator=(const record_every_line&) = delete;
  };

  /// Count one occurrence at physical line `line`.
  void add(row_issue issue, std::uint64_t line);
  /// Count `n` occurrences with no line (e.g. from a source without lines).
  void add_count(row_issue issue, std::uint64_t n) noexcept { counts_[index(issue)] += n; }
  /// Add all of `other`; the result is independent of merge order.
  void merge(const reject_log& other);

  [[nodiscard]] std::uint64_t count(row_issue issue) const noexcept { return counts_[index(issue)]; }
  /// Up to kMaxSampleLines smallest lines, ascending.
  [[nodiscard]] std::vector<std::uint64_t> samples(row_issue issue) const;
  /// Every occurrence counted while a record_every_line lived, in no particular order.
  [[nodiscard]] const std::vector<reject_entry>& entries() const noexcept { return entries_; }

 private:
  static constexpr std::size_t index(row_issue issue) noexcept { return static_cast<std::size_t>(issue); }
  std::array<std::uint64_t, kRowIssueCount> counts_{};
  // Unsorted until samples() is asked; pruned to the smallest kMaxSampleLines when it grows.
  std::array<std::vector<std::uint64_t>, kRowIssueCount> samples_{};
  // After a prune: the largest kept line; larger lines are counted, not kept.
  std::array<std::uint64_t, kRowIssueCount> sample_ceiling_ = filled_ceiling();
  std::vector<reject_entry> entries_;  // only while every line is recorded
  static constexpr std::array<std::uint64_t, kRowIssueCount> filled_ceiling() noexcept {
    std::array<std::uint64_t, kRowIssueCount> a{};
    a.fill(~std::uint64_t{0});
    return a;
  }
};

/// A count and its kMaxSampleLines smallest line numbers, for counts outside row_issue
/// (e.g. changed_since_ledger). Serial.
struct counted_lines {
  std::uint64_t count = 0;            ///< occurrences
  std::vector<std::uint64_t> lines;   ///< smallest lines, ascending once finish() ran

  /// Count one occurrence at `line`.
  void add(std::uint64_t line);
  /// Sort the sample and keep the smallest kMaxSampleLines distinct lines.
  void finish();
};

}  // namespace tixport
