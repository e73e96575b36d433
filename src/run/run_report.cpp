// File: run_report.cpp
#include "tixport/run/run_report.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/run/json_batch_encoder.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace tixport {

namespace {

constexpr double kMegabyte = 1e6;

double rate(double amount, double seconds) { return seconds > 0 ? amount / seconds : 0.0; }

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

void append_key(std::string& out, std::string_view key) {
  append_json_string(out, key);
  out += ':';
}

void append_u64(std::string& out, std::string_view key, std::uint64_t value) {
  append_key(out, key);
  out += std::to_string(value);
  out += ',';
}

void append_lines(std::string& out, const std::vector<std::uint64_t>& lines) {
  out += '[';
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(lines[i]);
  }
  out += ']';
}

void close_object(std::string& out) {
  if (!out.empty() && out.back() == ',') out.pop_back();
  out += '}';
}

[[noreturn]] void throw_report_error(const char* step, const std::filesystem::path& path, int error) {
  throw fatal_error(exit_code::output_error, std::string("report: ") + step + ": " + path.string() + ": " + errno_text(error));
}

// Writes `text` to an existing non-regular target (character device, FIFO, socket, symlink)
// through one open(): no temp file, no rename. O_TRUNC matters only when a symlink leads to a
// regular file (e.g. /dev/stdout redirected to a file); devices and FIFOs ignore it.
void write_report_through(const std::string& text, const std::filesystem::path& path) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);  // a FIFO's open blocks until a reader comes; a signal may cut it
  if (fd < 0) throw_report_error("open", path, errno);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;  // write() returning 0 for a non-empty buffer: no progress
      ::close(fd);  // the write already failed; its error is the one to report
      throw_report_error("write", path, error);
    }
    done += static_cast<std::size_t>(n);
  }
  // close() is where NFS and some devices report a failed write.
  if (::close(fd) != 0 && errno != EINTR) throw_report_error("close", path, errno);
}

constexpr std::size_t kWarningLines = 5;  // sample lines a warning shows per count
constexpr std::uint64_t kFewKeptPercent = 1;  // an index keeping less than this share warns

// "name 3 (lines 4, 7, 9)": a count and its first sample lines, for a one-line warning.
std::string count_with_lines(const reject_log& log, row_issue issue) {
  std::string text = std::string(row_issue_name(issue)) + " " + std::to_string(log.count(issue));
  const std::vector<std::uint64_t> lines = log.samples(issue);
  if (lines.empty()) return text;
  text += lines.size() == 1 ? " (line " : " (lines ";
  for (std::size_t i = 0; i < lines.size() && i < kWarningLines; ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(lines[i]);
  }
  if (lines.size() > kWarningLines || log.count(issue) > lines.size()) text += ", ...";
  return text + ")";
}

// Issues that reject a row as a comment or ticket (not duplicates, users or integrity counts).
bool rejects_row(row_issue issue) noexcept {
  return issue >= row_issue::malformed_record && issue <= row_issue::ticket_invalid_created_at;
}

// Every non-zero count of `log` for which `select` holds, as count_with_lines(), joined by "; ".
template <typename Select>
std::string counts_with_lines(const reject_log& log, Select select) {
  std::string text;
  for (std::size_t i = 0; i < kRowIssueCount; ++i) {
    const auto issue = static_cast<row_issue>(i);
    if (!select(issue) || log.count(issue) == 0) continue;
    if (!text.empty()) text += "; ";
    text += count_with_lines(log, issue);
  }
  return text;
}

}  // namespace

bool export_had_problems(const reject_log& issues) noexcept {
  for (const row_issue issue :
       {row_issue::malformed_record, row_issue::comment_invalid_id, row_issue::comment_invalid_ticket_id,
        row_issue::comment_invalid_author_id, row_issue::comment_invalid_public, row_issue::comment_invalid_created_at,
        row_issue::comment_null_body, row_issue::comment_too_large, row_issue::ticket_invalid_id, row_issue::ticket_invalid_requester_id,
        row_issue::ticket_invalid_created_at}) {
    if (issues.count(issue) != 0) return true;
  }
  return false;
}

std::string describe_index_stats(const user_index_stats& s) {
  return std::to_string(s.entries) + " entries (" + std::to_string(s.kept) + " kept; skipped: " +
         std::to_string(s.invalid_id) + " invalid id, " + std::to_string(s.invalid_email) + " invalid email, " +
         std::to_string(s.duplicate_email) + " duplicate email, " + std::to_string(s.duplicate_id) +
         " duplicate id)";
}

std::optional<std::string> index_warning(const user_index_stats& stats, std::string_view source) {
  // kept < 1% of entries, in integers: kept * 100 < entries. Zero kept warns even when the
  // index is empty: a platform without a single user is not what a migration targets.
  if (stats.kept != 0 && stats.kept * 100 >= stats.entries * kFewKeptPercent) return std::nullopt;
  std::string text = "the user index " + std::string(source) + " kept " +
                     (stats.kept == 0 ? std::string("none") : "only " + std::to_string(stats.kept)) + " of its " +
                     std::to_string(stats.entries) + " entries (skipped: " + std::to_string(stats.invalid_id) +
                     " invalid id, " + std::to_string(stats.invalid_email) + " invalid email, " +
                     std::to_string(stats.duplicate_email) + " duplicate email, " +
                     std::to_string(stats.duplicate_id) + " duplicate id)";
  text += stats.kept == 0 ? ": every user is new" : ": nearly every user is new";
  text += "; is it the right file, with columns id,email?";
  return text;
}

std::vector<std::string> report_warnings(const run_report& r) {
  std::vector<std::string> out;
  if (auto warning = index_warning(r.index, r.index_source)) out.push_back(std::move(*warning));
  // On the appended path the rows counted are only those after the ledger's export (SPEC 4.3):
  // the ledger stands for the rest, so the warning must not speak of the whole export.
  const bool appended = r.rerun.path == "appended";
  if (r.rows > 0 && r.valid_comment_rows == 0 && r.valid_ticket_rows == 0) {
    std::string text = appended ? "none of the " + std::to_string(r.rows) +
                                      " rows after the part of the export the ledger covers is a valid comment or "
                                      "ticket row: this archive holds no new ticket and no new comment from them"
                                : "none of the export's " + std::to_string(r.rows) +
                                      " rows is a valid comment or ticket row: the archive holds no ticket and no "
                                      "comment";
    const std::string why = counts_with_lines(r.issues, rejects_row);
    if (!why.empty()) text += "; rejected by: " + why;
    out.push_back(std::move(text));
  }
  if (r.rerun.replaced_ledger_run != 0) {
    out.push_back("--ledger replaced " + r.rerun.ledger + ", the ledger of run " +
                  std::to_string(r.rerun.replaced_ledger_run) +
                  ", without --since: this archive holds everything again and the new ledger starts over at run 1; "
                  "to continue from a ledger, name it with --since (it may be the --ledger file too)");
  }
  if (!r.rerun.since.empty()) {
    // An export that lacks most of what the ledger holds is rarely a refresh of its export:
    // more often the ledger of another migration.
    const std::uint64_t missing = r.rerun.missing_tickets + r.rerun.missing_comments;
    // Skipped counts every ledger object found again, the changed ones included.
    const std::uint64_t held = r.rerun.skipped_tickets + r.rerun.skipped_comments + missing;
    if (held != 0 && missing * 2 > held) {
      out.push_back("this export lacks " + std::to_string(missing) + " of the " + std::to_string(held) +
                    " tickets and comments the --since ledger " + r.rerun.since +
                    " holds (counted in missing_since_ledger): is it the ledger of this export's earlier runs?");
    }
  }
  if (r.exit_code == static_cast<int>(exit_code::strict_failed)) {
    std::string why = counts_with_lines(r.issues, [](row_issue issue) { return row_issue_fails_strict(issue); });
    if (r.rerun.old_part_problems) {
      // Those rows were not parsed again: say where the problems are and how to list them.
      if (!why.empty()) why += "; and ";
      why += "problems in the first " + std::to_string(r.rerun.prefix_bytes) +
             " bytes of the export, which the ledger covers and this run did not parse again (counted by an "
             "earlier run; --full-compare counts and lists them)";
    }
    out.push_back("--strict: exit 1 because of " + why);
  }
  return out;
}

bool strict_problems(const run_report& report) noexcept {
  if (report.rerun.old_part_problems) return true;
  for (std::size_t i = 0; i < kRowIssueCount; ++i) {
    const auto issue = static_cast<row_issue>(i);
    if (row_issue_fails_strict(issue) && report.issues.count(issue) != 0) return true;
  }
  return false;
}

std::string report_json(const run_report& r) {
  std::string out = "{";
  append_key(out, "input");
  append_json_string(out, r.input);
  out += ',';
  append_key(out, "output");
  append_json_string(out, r.output);
  out += ',';
  append_key(out, "index_source");
  append_json_string(out, r.index_source);
  out += ',';
  append_u64(out, "input_bytes", r.input_bytes);
  append_u64(out, "rows", r.rows);
  append_u64(out, "well_formed_rows", r.well_formed_rows);
  append_u64(out, "malformed_records", r.issues.count(row_issue::malformed_record));
  append_u64(out, "blank_lines", r.blank_lines);
  append_u64(out, "valid_comment_rows", r.valid_comment_rows);
  append_u64(out, "valid_ticket_rows", r.valid_ticket_rows);
  append_u64(out, "user_candidate_rows", r.user_candidate_rows);
  append_key(out, "users");
  out += '{';
  append_u64(out, "total", r.users);
  append_u64(out, "matched", r.users_matched);
  append_u64(out, "new", r.users_new);
  close_object(out);
  out += ',';
  append_u64(out, "comments", r.comments);
  append_u64(out, "tickets", r.tickets);
  append_u64(out, "batches", r.batches);
  append_u64(out, "json_bytes", r.json_bytes);
  append_u64(out, "archive_bytes", r.archive_bytes);
  append_u64(out, "csv_chunks", r.csv_chunks);
  append_u64(out, "csv_reparsed_chunks", r.csv_reparsed_chunks);
  append_key(out, "index");
  out += '{';
  append_u64(out, "entries", r.index.entries);
  append_u64(out, "kept", r.index.kept);
  append_u64(out, "invalid_id", r.index.invalid_id);
  append_u64(out, "invalid_email", r.index.invalid_email);
  append_u64(out, "duplicate_email", r.index.duplicate_email);
  append_u64(out, "duplicate_id", r.index.duplicate_id);
  close_object(out);
  out += ',';
  append_key(out, "issues");
  out += '{';
  for (std::size_t i = 0; i < kRowIssueCount; ++i) {
    const auto issue = static_cast<row_issue>(i);
    append_key(out, row_issue_name(issue));
    out += '{';
    append_u64(out, "count", r.issues.count(issue));
    append_key(out, "sample_lines");
    append_lines(out, r.issues.samples(issue));
    out += '}';
    out += ',';
  }
  close_object(out);
  out += ',';
  {
    const rerun_report& rr = r.rerun;
    const auto append_changed = [&](std::string_view key, const counted_lines& c) {
      append_key(out, key);
      out += '{';
      append_u64(out, "count", c.count);
      append_key(out, "sample_lines");
      append_lines(out, c.lines);
      out += "},";
    };
    append_key(out, "changed_since_ledger");
    out += '{';
    append_changed("tickets", rr.changed_tickets);
    append_changed("comments", rr.changed_comments);
    close_object(out);
    out += ',';
    append_key(out, "missing_since_ledger");
    out += '{';
    append_u64(out, "tickets", rr.missing_tickets);
    append_u64(out, "comments", rr.missing_comments);
    close_object(out);
    out += ',';
    append_u64(out, "ledger_index_conflicts", rr.ledger_index_conflicts);
    append_key(out, "rerun");
    out += '{';
    append_key(out, "since");
    append_json_string(out, rr.since);
    out += ',';
    append_key(out, "ledger");
    append_json_string(out, rr.ledger);
    out += ',';
    append_key(out, "path");
    append_json_string(out, rr.path);
    out += ',';
    append_u64(out, "ledger_run", rr.ledger_run);
    append_key(out, "old_part_problems");
    out += rr.old_part_problems ? "true," : "false,";
    append_u64(out, "bytes_hashed", rr.bytes_hashed);
    append_u64(out, "bytes_parsed", rr.bytes_parsed);
    append_u64(out, "prefix_bytes", rr.prefix_bytes);
    append_key(out, "skipped_already_imported");
    out += '{';
    append_u64(out, "tickets", rr.skipped_tickets);
    append_u64(out, "comments", rr.skipped_comments);
    append_u64(out, "users", rr.skipped_users);
    close_object(out);
    out += '}';
    out += ',';
  }
  append_key(out, "stages");
  out += '{';
  for (const stage_time& s : r.stages) {
    append_key(out, s.name + "_seconds");
    out += fixed(s.seconds, 6);
    out += ',';
  }
  close_object(out);
  out += ',';
  append_key(out, "seconds");
  out += fixed(r.seconds, 6);
  out += ',';
  append_key(out, "rows_per_second");
  out += fixed(rate(static_cast<double>(r.rows), r.seconds), 1);
  out += ',';
  append_key(out, "mb_per_second");
  out += fixed(rate(static_cast<double>(r.input_bytes) / kMegabyte, r.seconds), 3);
  out += ',';
  append_key(out, "dry_run");
  out += r.dry_run ? "true" : "false";
  out += ',';
  append_key(out, "warnings");
  out += '[';
  for (const std::string& warning : report_warnings(r)) {
    if (out.back() != '[') out += ',';
    append_json_string(out, warning);
  }
  out += "],";
  append_key(out, "strict_problems");
  out += strict_problems(r) ? "true" : "false";
  out += ',';
  append_key(out, "exit_code");
  out += std::to_string(r.exit_code);
  out += "}\n";
  return out;
}

std::unique_ptr<atomic_output_file> stage_report_json(const run_report& report, const std::filesystem::path& path) {
  const std::string text = report_json(report);
  // Only a regular file (or a new path) is replaced by temp file + rename. Anything else is
  // written through: renaming over /dev/stdout, /dev/null or a FIFO would replace the device
  // node or link itself (as root, even in /dev) instead of writing to it. A symlink counts as
  // "anything else" too: /dev/stdout is one, to /proc/self/fd/1, and renaming over a link
  // replaces the link rather than writing to what it names.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) throw_report_error("open", path, EISDIR);
  if (is_write_through_target(path)) {
    write_report_through(text, path);
    return nullptr;
  }
  auto file = std::make_unique<atomic_output_file>(path, "report");
  file->write(text);
  file->complete();
  return file;
}

void write_report_json(const run_report& report, const std::filesystem::path& path) {
  if (const std::unique_ptr<atomic_output_file> file = stage_report_json(report, path)) file->commit();
}

void print_summary(const run_report& r, std::FILE* out, bool every_sample) {
  const double mb = static_cast<double>(r.input_bytes) / kMegabyte;
  if (r.dry_run) {
    std::fprintf(out, "tixport run (dry run, nothing written): %s\n", r.input.c_str());
  } else {
    std::fprintf(out, "tixport run: %s -> %s\n", r.input.c_str(), r.output.c_str());
  }
  std::fprintf(out, "  rows            %llu (%llu well-formed, %llu malformed, %llu blank lines skipped)\n",
               static_cast<unsigned long long>(r.rows), static_cast<unsigned long long>(r.well_formed_rows),
               static_cast<unsigned long long>(r.issues.count(row_issue::malformed_record)),
               static_cast<unsigned long long>(r.blank_lines));
  std::fprintf(out, "  users           %llu (%llu matched in the index, %llu new)\n",
               static_cast<unsigned long long>(r.users), static_cast<unsigned long long>(r.users_matched),
               static_cast<unsigned long long>(r.users_new));
  std::fprintf(out, "  comments        %llu\n", static_cast<unsigned long long>(r.comments));
  std::fprintf(out, "  tickets         %llu\n", static_cast<unsigned long long>(r.tickets));
  std::fprintf(out, "  index           %s, from %s\n", describe_index_stats(r.index).c_str(), r.index_source.c_str());
  bool any = false;
  for (std::size_t i = 0; i < kRowIssueCount; ++i) {
    const auto issue = static_cast<row_issue>(i);
    const std::uint64_t n = r.issues.count(issue);
    if (n == 0) continue;
    if (!any) std::fprintf(out, "  dropped, repaired and integrity counts (first lines):\n");
    any = true;
    std::string lines;
    for (std::uint64_t line : r.issues.samples(issue)) {
      if (!every_sample && lines.size() > 60) {
        lines += " ...";
        break;
      }
      if (!lines.empty()) lines += ' ';
      lines += std::to_string(line);
    }
    std::fprintf(out, "    %-28s %10llu   lines %s\n", std::string(row_issue_name(issue)).c_str(),
                 static_cast<unsigned long long>(n), lines.c_str());
  }
  if (!any) std::fprintf(out, "  nothing dropped, repaired or dangling\n");
  const rerun_report& rr = r.rerun;
  if (!rr.since.empty()) {
    std::fprintf(out, "  rerun           since %s: %s path, %llu bytes hashed, %llu bytes parsed (%llu bytes as before)\n",
                 rr.since.c_str(), rr.path.c_str(), static_cast<unsigned long long>(rr.bytes_hashed),
                 static_cast<unsigned long long>(rr.bytes_parsed), static_cast<unsigned long long>(rr.prefix_bytes));
    std::fprintf(out, "  already imported %llu tickets, %llu comments, %llu users (not written again)\n",
                 static_cast<unsigned long long>(rr.skipped_tickets), static_cast<unsigned long long>(rr.skipped_comments),
                 static_cast<unsigned long long>(rr.skipped_users));
    const auto lines_text = [](const counted_lines& c) {
      std::string text;
      for (std::uint64_t line : c.lines) {
        text += text.empty() ? "  lines " : " ";
        text += std::to_string(line);
      }
      return text;
    };
    std::fprintf(out, "  changed since the ledger (not written): %llu tickets%s, %llu comments%s\n",
                 static_cast<unsigned long long>(rr.changed_tickets.count), lines_text(rr.changed_tickets).c_str(),
                 static_cast<unsigned long long>(rr.changed_comments.count), lines_text(rr.changed_comments).c_str());
    std::fprintf(out, "  missing since the ledger: %llu tickets, %llu comments; ledger/index id conflicts: %llu\n",
                 static_cast<unsigned long long>(rr.missing_tickets), static_cast<unsigned long long>(rr.missing_comments),
                 static_cast<unsigned long long>(rr.ledger_index_conflicts));
  }
  if (!rr.ledger.empty()) {
    std::fprintf(out, "  ledger          %s (run %u)\n", rr.ledger.c_str(), rr.ledger_run);
  }
  if (r.dry_run) {
    std::fprintf(out, "  batches         %llu would be written (dry run: no archive, no ledger)\n",
                 static_cast<unsigned long long>(r.batches));
  } else {
    std::fprintf(out, "  batches         %llu, %llu bytes of JSON, archive %llu bytes\n",
                 static_cast<unsigned long long>(r.batches), static_cast<unsigned long long>(r.json_bytes),
                 static_cast<unsigned long long>(r.archive_bytes));
  }
  std::string stages;
  for (const stage_time& s : r.stages) stages += " " + s.name + " " + fixed(s.seconds, 3) + " s";
  std::fprintf(out, "  time            %.3f s (%s )\n", r.seconds, stages.c_str());
  std::fprintf(out, "  throughput      %.0f rows/s, %.1f MB/s\n", rate(static_cast<double>(r.rows), r.seconds),
               rate(mb, r.seconds));
}

}  // namespace tixport
