// File: row_classifier.hpp
//
// Turns one verified CSV chunk into typed candidates (SPEC 1.1, 2.1-2.4) and
// rejection counts. Runs on many chunks at once; each call owns its result.
// Within a chunk, tickets, users and chat ids are deduplicated locally (first
// row wins, rows arrive in file order), so the shared maps see one insert per
// key per chunk instead of one per row.
//
//   export_columns columns = export_columns::resolve(header);
//   classified_chunk out;
//   classify_chunk(chunk, columns, out);
#pragma once

#include "tixport/run/batch_limits.hpp"
#include "tixport/csv/csv_reader.hpp"
#include "tixport/run/pipeline_messages.hpp"
#include "tixport/run/reject_log.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tixport {

/// Field indexes of the export's required columns (SPEC 1.1).
struct export_columns {
  static constexpr std::array<std::string_view, 10> kNames = {
      "TICKET_CREATED_AT", "TICKET_REQUESTER_ID", "COMMENT_PART_ID", "CONVERSATION_ID",
      "COMMENT_PUBLIC",    "BODY",                "COMMENT_CREATED_AT", "AUTHOR_ID",
      "NAME",              "EMAIL"};
  std::size_t ticket_created_at = 0;    ///< TICKET_CREATED_AT
  std::size_t ticket_requester_id = 0;  ///< TICKET_REQUESTER_ID
  std::size_t comment_part_id = 0;      ///< COMMENT_PART_ID
  std::size_t conversation_id = 0;      ///< CONVERSATION_ID
  std::size_t comment_public = 0;       ///< COMMENT_PUBLIC
  std::size_t body = 0;                 ///< BODY
  std::size_t comment_created_at = 0;   ///< COMMENT_CREATED_AT
  std::size_t author_id = 0;            ///< AUTHOR_ID
  std::size_t name = 0;                 ///< NAME
  std::size_t email = 0;                ///< EMAIL

  /// Find the columns by name; throws fatal_error(input_error) naming every missing or repeated one
  /// and what `source` holds instead (see resolve_columns).
  static export_columns resolve(const csv_header& header, const csv_source& source = {});
};

/// Everything one chunk contributes.
struct classified_chunk {
  std::uint64_t chunk_seq = 0;                   ///< the chunk's sequence number
  std::uint64_t rows = 0;                        ///< well-formed records
  std::uint64_t valid_comment_rows = 0;          ///< rows that are valid comments
  std::uint64_t valid_ticket_rows = 0;           ///< rows that are valid tickets
  std::uint64_t user_candidate_rows = 0;         ///< rows that are user candidates
  std::optional<std::int64_t> max_id;            ///< largest valid AUTHOR_ID / TICKET_REQUESTER_ID
  std::vector<comment_row> comments;             ///< every valid comment row, in file order
  std::unordered_map<std::int64_t, ticket_candidate> tickets;  ///< first valid row per CONVERSATION_ID
  std::unordered_map<std::string, user_candidate, transparent_string_hash, std::equal_to<>> users;       ///< first candidate row per email key
  std::unordered_map<std::int64_t, author_candidate> authors;  ///< first candidate row per chat id
  reject_log log;                                ///< rejections and in-chunk duplicates
};

/// Classify every record of `chunk`. A comment whose html_body, or a user whose name and email, would be over
/// `max_text_json_bytes` as JSON strings is rejected (batch_limits.hpp).
void classify_chunk(const csv_chunk& chunk, const export_columns& columns, classified_chunk& out,
                    std::size_t max_text_json_bytes = kMaxTextJsonBytes);

}  // namespace tixport
