// File: rejects_file.cpp
#include "tixport/run/rejects_file.hpp"

#include "tixport/csv/field_parsers.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>

namespace tixport {

namespace {

constexpr std::size_t kPieceBytes = 1u << 20;

/// What the rejects file shows of one row.
struct row_ids {
  std::string comment, conversation, author, requester;
  std::uint32_t fields = 0;  ///< field count, for a malformed record
  bool malformed = false;
};

}  // namespace

std::uint64_t write_rejects_csv(std::string_view data, const csv_header& header, const export_columns& columns,
                                std::vector<reject_entry> entries, unsigned threads,
                                const std::function<void(std::string_view)>& sink) {
  std::sort(entries.begin(), entries.end(), [](const reject_entry& a, const reject_entry& b) {
    return a.line != b.line ? a.line < b.line : a.issue < b.issue;
  });
  std::vector<std::uint64_t> lines;
  lines.reserve(entries.size());
  for (const reject_entry& e : entries) {
    if (lines.empty() || lines.back() != e.line) lines.push_back(e.line);
  }

  // 1. The rows behind the lines: one ordered pass over the part of the export the run read.
  std::unordered_map<std::uint64_t, row_ids> rows;
  rows.reserve(lines.size());
  const auto wanted = [&](std::uint64_t line) { return std::binary_search(lines.begin(), lines.end(), line); };
  if (!lines.empty()) {
    csv_read_options options;
    options.threads = threads;
    options.ordered = true;
    read_csv_records(data, header, options, [&](csv_chunk&& chunk) {
      for (std::size_t r = 0; r < chunk.record_count(); ++r) {
        if (!wanted(chunk.record_lines[r])) continue;
        const auto f = chunk.record(r);
        row_ids& ids = rows[chunk.record_lines[r]];
        ids.comment = trim_ws(f[columns.comment_part_id]);
        ids.conversation = trim_ws(f[columns.conversation_id]);
        ids.author = trim_ws(f[columns.author_id]);
        ids.requester = trim_ws(f[columns.ticket_requester_id]);
      }
      for (const malformed_record& m : chunk.malformed) {
        if (!wanted(m.line)) continue;
        row_ids& ids = rows[m.line];
        ids.malformed = true;
        ids.fields = m.field_count;
      }
    });
  }

  // 2. One CSV row per entry, written in pieces.
  std::string out = "line,reason,comment_id,conversation_id,author_id,requester_id,fields,expected_fields\n";
  const std::string expected = std::to_string(header.fields.size());
  for (const reject_entry& e : entries) {
    out += std::to_string(e.line);
    out += ',';
    out += row_issue_name(e.issue);
    const auto it = rows.find(e.line);
    if (it == rows.end()) {
      out += ",,,,,,\n";
    } else if (it->second.malformed) {
      out += ",,,,," + std::to_string(it->second.fields) + ',' + expected + '\n';
    } else {
      for (const std::string* id : {&it->second.comment, &it->second.conversation, &it->second.author,
                                    &it->second.requester}) {
        out += ',';
        append_csv_field(out, *id);
      }
      out += ",,\n";
    }
    if (out.size() >= kPieceBytes) {
      sink(out);
      out.clear();
    }
  }
  sink(out);
  return entries.size();
}

}  // namespace tixport
