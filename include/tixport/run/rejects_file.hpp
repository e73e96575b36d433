// File: rejects_file.hpp
//
// `run --rejects FILE`: the complete list behind the report's counts, one CSV
// row per counted occurrence (a skipped, duplicate, conflicting, dangling or
// repaired row), for a migration lead to fix the source or sign off. The
// report keeps 20 sample lines per reason; this file keeps them all. The ids
// are the row's own fields as written (trimmed), re-read from the export
// after the run, so an invalid id shows as it was.
//
//   reject_log::record_every_line recording;       // before the run's logs count
//   ... run ...
//   write_rejects_csv(data, header, columns, log.entries(), threads, sink);
#pragma once

#include "tixport/csv/csv_reader.hpp"
#include "tixport/run/reject_log.hpp"
#include "tixport/run/row_classifier.hpp"

#include <functional>
#include <string_view>
#include <vector>

namespace tixport {

/// Write the rejects CSV to `sink` in pieces: header
/// `line,reason,comment_id,conversation_id,author_id,requester_id,fields,expected_fields`, then
/// one row per entry sorted by line and reason. `header` is where the run started parsing
/// (entries' lines are at or after it). `fields` is the field count of a malformed record (its
/// ids are then left empty). Returns the number of rows written.
std::uint64_t write_rejects_csv(std::string_view data, const csv_header& header, const export_columns& columns,
                                std::vector<reject_entry> entries, unsigned threads,
                                const std::function<void(std::string_view)>& sink);

}  // namespace tixport
