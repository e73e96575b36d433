// File: json_batch_encoder.hpp
//
// Encodes one archive batch (SPEC 2.6) as the exact JSON bytes of a batch
// file: {"data":{"tickets":{"data":[...],"comments":[...],"users":[...],
// "organizations":[]}}}, compact (no white space, no trailing newline) or
// pretty (Python's json.dumps(obj, indent=2, ensure_ascii=False) layout).
// Key order is fixed per SPEC 2.3-2.4; created_at is rendered as
// "YYYY-MM-DDTHH:MM:SSZ". Strings are escaped per RFC 8259 and otherwise pass
// through as bytes, so callers must hand in valid UTF-8.
//
//   std::vector<tixport::ticket_record> tickets = ...;
//   std::vector<tixport::comment_record> comments = ...;
//   std::vector<tixport::user_record> users = ...;
//   std::string bytes;
//   tixport::encode_batch(tickets, comments, users, tixport::json_style::compact, bytes);
#pragma once

#include "tixport/csv/field_parsers.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tixport {

/// One ticket of the output (SPEC 2.4), keys written in this order.
struct ticket_record {
  std::int64_t created_at;    ///< seconds since the Unix epoch, UTC
  std::int64_t requester_id;  ///< TICKET_REQUESTER_ID after the identity map
  std::int64_t id;            ///< CONVERSATION_ID
};

/// One comment of the output (SPEC 2.3), keys written in this order.
struct comment_record {
  std::int64_t created_at;      ///< seconds since the Unix epoch, UTC
  std::int64_t ticket_id;       ///< CONVERSATION_ID
  std::int64_t id;              ///< COMMENT_PART_ID
  bool is_public;               ///< COMMENT_PUBLIC, written as key "public"
  std::string_view html_body;   ///< BODY: clean UTF-8, unescaped from CSV unless html_body_csv_pairs
  std::int64_t author_id;       ///< AUTHOR_ID after the identity map
  /// html_body is still the bytes between the export field's quotes, each `"` doubled
  /// (comment_read::for_encoder): the encoder halves the pairs as it escapes.
  bool html_body_csv_pairs = false;
  /// created_at_text holds what format_timestamp(created_at) writes (copy_utc_timestamp, from
  /// the export's text); created_at is then not read.
  bool created_at_is_text = false;
  char created_at_text[kTimestampTextSize] = {};
};

/// One user of the output (SPEC 2.1), keys written in this order.
struct user_record {
  std::string_view name;   ///< trimmed NAME, clean UTF-8
  std::int64_t id;         ///< index id (matched) or AUTHOR_ID / fresh id (new)
  std::string_view email;  ///< trimmed EMAIL as written, clean UTF-8
};

/// Layout of a batch file.
enum class json_style {
  compact,  ///< no white space at all, no trailing newline (the default)
  pretty,   ///< json.dumps(indent=2, ensure_ascii=False) layout, no trailing newline
};

/// Where each ticket and comment object of a batch lies in `out`: [begin, end) offsets. In the
/// compact style these bytes are exactly encode_ticket_object / encode_comment_object's.
struct batch_object_spans {
  std::vector<std::pair<std::size_t, std::size_t>> tickets;   ///< one per ticket, in order
  std::vector<std::pair<std::size_t, std::size_t>> comments;  ///< one per comment, in order
};

/// Append one batch file's bytes to `out`:
/// {"data":{"tickets":{"data":[tickets],"comments":[comments],"users":[users],"organizations":[]}}}
/// With `spans`, also say where each ticket and comment object went.
void encode_batch(std::span<const ticket_record> tickets,
                  std::span<const comment_record> comments,
                  std::span<const user_record> users, json_style style,
                  std::string& out, batch_object_spans* spans = nullptr);

/// Append one ticket as the compact JSON object it is inside a compact batch file
/// ({"created_at":...,"requester_id":...,"id":...}); what the ledger fingerprints.
void encode_ticket_object(const ticket_record& ticket, std::string& out);

/// Append one comment as the compact JSON object it is inside a compact batch file.
void encode_comment_object(const comment_record& comment, std::string& out);

/// Append `utf8` to `out` as a quoted JSON string: `"` -> \", `\` -> \\,
/// U+0000..U+001F -> \b \f \n \r \t or \u00XX (lower-case hex); every other
/// byte (non-ASCII, DEL, '/') is copied unchanged.
void append_json_string(std::string& out, std::string_view utf8);

/// append_json_string of the text whose CSV-quoted form (every `"` doubled, as between a
/// field's quotes) is `csv_pairs`: each `""` is written as \", the rest as append_json_string
/// does, in one pass without unescaping first.
void append_json_string_from_csv_pairs(std::string& out, std::string_view csv_pairs);

/// The bytes append_json_string() appends for `utf8`, quotes included, without writing them.
/// The one measure of the size rule of batch_limits.hpp, in `run` and in `verify`.
std::size_t json_string_bytes(std::string_view utf8) noexcept;

}  // namespace tixport
