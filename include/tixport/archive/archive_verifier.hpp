// File: archive_verifier.hpp
//
// `tixport verify` (SPEC 3): proves that an import archive (.tar, .tar.gz,
// .tar.zst, detected from the content) follows SPEC 2.3-2.6 on its own: entry
// names and order, the exact JSON structure and key order, value types, at most
// 100 objects per array, unique ids and email keys across the archive, and
// every reference resolvable (ticket_id among the archive's tickets,
// author_id / requester_id among its users or the optional index CSV).
// Entries are read sequentially (the archive is a stream) and parsed and
// checked on TBB workers, a bounded number in flight; memory grows with the
// number of objects, never with the bytes of bodies.
//
//   tixport::verify_options options;
//   options.archive = "out.tar.zst";
//   options.users_file = "users.csv";          // optional
//   tixport::verify_result result = tixport::verify_archive(options);
//   tixport::print_verify_result(result, stdout);
//   return result.valid ? 0 : 1;               // fatal_error -> exit 2
//
// Problem kinds (verify_problem::kind, keys of problems_by_kind):
//   entry_type       a directory, symlink or other non-regular entry
//   entry_path       an absolute path, a `..` component or a `./` prefix
//   entry_name       a name that is not backup_tickets_{N}.json
//   entry_order      N out of sequence (neither N = k*B nor N = k throughout)
//   entry_too_large  an entry larger than max_entry_bytes (never read into memory); by
//                    default kMaxBatchEntryBytes, the largest batch of objects that keep
//                    the size rule of batch_limits.hpp
//   json             not well-formed JSON, or nested beyond the depth limit
//   utf8             a string (or the entry) that is not valid UTF-8
//   structure        a missing, extra or misordered key, or a value of the
//                    wrong JSON type where an object/array is required
//   type             a field of the wrong JSON type or out of the int64 range
//   value            a well-typed value that breaks a rule (created_at not
//                    YYYY-MM-DDTHH:MM:SSZ or not a real date, invalid email,
//                    non-empty organizations)
//   array_size       more than 100 objects in an array (or more than B)
//   object_too_large a comment's html_body, or a user's name and email, over
//                    max_text_json_bytes as JSON strings (batch_limits.hpp; `run` skips
//                    such rows as comment_too_large / user_too_large)
//   duplicate_ticket_id, duplicate_comment_id, duplicate_user_id,
//   duplicate_email  the same id / email key twice in the archive
//   unknown_ticket_id     a comment's ticket_id with no ticket in the archive
//   unknown_author_id     an author_id neither among users nor in the index
//   unknown_requester_id  a requester_id neither among users nor in the index
#pragma once

#include "tixport/run/batch_limits.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tixport {

/// What to verify and how.
struct verify_options {
  std::filesystem::path archive;                    ///< the archive to check
  std::optional<std::filesystem::path> users_file;  ///< index CSV (id,email): ids that refs may point to
  std::optional<std::filesystem::path> since;       ///< a ledger (run --ledger): its tickets and users are on the platform
  /// Called in archive order after each entry is read: entries so far, archive file bytes read,
  /// the archive's size (0 when unknown).
  std::function<void(std::uint64_t entries, std::uint64_t bytes_read, std::uint64_t bytes_total)> progress;
  unsigned threads = 0;                             ///< worker threads; 0 = all cores
  std::size_t max_problems_listed = 20;             ///< how many problems first_problems keeps
  std::size_t max_text_json_bytes = kMaxTextJsonBytes;  ///< the size rule of batch_limits.hpp
  /// Larger entries are a problem, never read. Lowering max_text_json_bytes (tests) should lower
  /// this to max_batch_entry_bytes() of it.
  std::size_t max_entry_bytes = kMaxBatchEntryBytes;
};

/// One problem found in the archive.
struct verify_problem {
  std::string entry;      ///< entry name as stored in the archive
  std::string json_path;  ///< e.g. `/data/tickets/comments/3/author_id`; empty for entry-level problems
  std::string kind;       ///< one of the kinds listed at the top of this file
  std::string message;    ///< human-readable detail
};

/// The outcome of verify_archive().
struct verify_result {
  bool valid = false;             ///< true when no problem was found
  std::uint64_t entries = 0;      ///< entries in the archive
  std::uint64_t tickets = 0;      ///< ticket objects seen
  std::uint64_t comments = 0;     ///< comment objects seen
  std::uint64_t users = 0;        ///< user objects seen
  std::uint64_t bytes = 0;        ///< uncompressed bytes of entry data read
  std::map<std::string, std::uint64_t> problems_by_kind;  ///< problem count per kind
  std::vector<verify_problem> first_problems;  ///< in archive order, at most max_problems_listed
  double seconds = 0;             ///< wall time of the verification
};

/// Verify the archive of `options`.
/// Throws fatal_error(input_error, ...) when the archive is unreadable (not an
/// archive, truncated or corrupt stream, unreadable users_file...).
verify_result verify_archive(const verify_options& options);

/// Print the summary and first problems to `out`.
void print_verify_result(const verify_result& result, std::FILE* out);

/// The result as one JSON object and a newline (`tixport verify --json`; keys in the README):
/// archive, valid, exit_code (0 valid, 1 problems), entries, tickets, comments, users, bytes,
/// seconds, problems (total), problems_by_kind {kind: count}, first_problems [{entry,
/// json_path, kind, message}]. Text that is not valid UTF-8 is repaired (U+FFFD).
std::string verify_result_json(const verify_result& result, std::string_view archive);

}  // namespace tixport
