// File: batch_serializer.hpp
//
// Cuts the resolved tickets, comments and users into batches of B (SPEC 2.6),
// encodes each batch's JSON on a worker thread, where its whole tar entry is
// framed too (tar_archive_sink::frame_header), and hands the entries to the
// archive sink in batch order; a .tar's entries are then written at their
// offsets by any thread. A bounded number of batches is in flight, so the
// output is never held whole in memory, and the bytes do not depend on how
// many threads encode.
//
//   batch_options opt{.batch_size = 100};
//   serialize_stats s = write_batches(source, tickets, comments, users, references, opt, sink, log);
#pragma once

#include "tixport/run/json_batch_encoder.hpp"
#include "tixport/run/pipeline_messages.hpp"
#include "tixport/run/reject_log.hpp"
#include "tixport/run/row_classifier.hpp"
#include "tixport/archive/tar_archive_sink.hpp"
#include "tixport/run/user_resolver.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tixport {

/// How batch files are named (SPEC 2.6).
enum class batch_name_style {
  offset,  ///< backup_tickets_{k*B}.json, the original numbering
  index,   ///< backup_tickets_{k}.json
};

inline constexpr unsigned kMaxBatchSize = 100;

/// Batching and encoding settings.
struct batch_options {
  unsigned batch_size = kMaxBatchSize;                 ///< B, 1..100
  batch_name_style name_style = batch_name_style::offset;
  json_style style = json_style::compact;
  std::size_t max_batches_in_flight = 0;               ///< 0 = 4 per thread of the current arena
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;  ///< called in batch order
};

/// Where a comment's COMMENT_PART_ID, BODY, COMMENT_CREATED_AT, CONVERSATION_ID and AUTHOR_ID
/// live: in its record, read again when the comment is written, fingerprinted or checked
/// (comment_candidate does not keep them).
struct comment_source {
  std::string_view file_bytes;        ///< the whole input
  std::size_t num_fields = 0;         ///< fields per record (the header's)
  std::size_t body_field = 0;         ///< index of BODY
  std::size_t created_at_field = 0;   ///< index of COMMENT_CREATED_AT
  std::size_t ticket_id_field = 0;    ///< index of CONVERSATION_ID
  std::size_t author_id_field = 0;    ///< index of AUTHOR_ID
  std::size_t id_field = 0;           ///< index of COMMENT_PART_ID

  /// The comment columns of `columns` (export_columns::resolve) in `file_bytes`.
  static comment_source of(std::string_view file_bytes, std::size_t num_fields, const export_columns& columns) noexcept {
    return {file_bytes,       num_fields, columns.body, columns.comment_created_at, columns.conversation_id,
            columns.author_id, columns.comment_part_id};
  }
};

/// A comment's fields as the parse saw them (the parse found them valid).
struct comment_fields {
  std::string_view body;     ///< a view into the input, or into the caller's `raw` (body_in_place false)
  std::int64_t id;           ///< COMMENT_PART_ID
  std::int64_t created_at;   ///< epoch seconds UTC
  std::int64_t ticket_id;    ///< CONVERSATION_ID
  std::int64_t author_id;    ///< AUTHOR_ID as written in the record (not yet mapped)
  bool body_in_place;        ///< body is a slice of the input (it held no "", or was left escaped)
  bool body_csv_pairs;       ///< body was left escaped: its `"` are doubled (comment_read::for_encoder)
  bool created_at_is_text;   ///< created_at_text is set and created_at is not (comment_read::for_encoder)
  char created_at_text[kTimestampTextSize];  ///< what format_timestamp(created_at) writes
};

/// How read_comment_fields gives a comment's body and created_at.
enum class comment_read {
  plain,        ///< the body's text (unescaped into `raw` when it held ""), created_at parsed
  for_encoder,  ///< as the batch encoder takes them, for the least work: a body that held "" is
                ///< left escaped in the input (body_csv_pairs), a created_at the export wrote in
                ///< UTC is copied as text (created_at_is_text)
};

/// Read `comment`'s fields again from its record (one scan of the record, up to the last of
/// the five).
comment_fields read_comment_fields(const comment_source& source, const comment_candidate& comment, std::string& raw,
                                   comment_read mode = comment_read::plain);

/// Only its COMMENT_PART_ID (the scan stops after it). A record that no longer holds a valid
/// one (the file changed under the run) is a fatal_error (input_error).
std::int64_t read_comment_id(const comment_source& source, const comment_candidate& comment);

/// The COMMENT_PART_ID of every comment, in order. Parallel.
std::vector<std::int64_t> read_comment_ids(const comment_source& source, std::span<const comment_candidate> comments);

/// What write_batches produced.
struct serialize_stats {
  std::uint64_t batches = 0;     ///< K
  std::uint64_t json_bytes = 0;  ///< bytes of all batch files
};

/// Where write_batches puts each written object's id and fingerprint (XXH3-64 of its compact
/// JSON object, as the ledger keeps it): index i for tickets[i] / comments[i]. Empty spans: none.
struct object_fingerprints {
  std::span<written_object> tickets;
  std::span<written_object> comments;
};

/// Number of batches K = max(ceil(T/B), ceil(C/B), ceil(U/B)).
std::uint64_t batch_count(std::uint64_t tickets, std::uint64_t comments, std::uint64_t users,
                          unsigned batch_size) noexcept;

/// Entry name of batch k (1-based).
std::string batch_entry_name(std::uint64_t k, unsigned batch_size, batch_name_style style);

/// Encode every batch and add it to `sink` in order. Each comment's references are mapped
/// through `references`, which logs dangling authors and orphans; repaired UTF-8 in bodies is
/// logged too. With `fingerprints`, also fingerprint every ticket and comment (spans sized like
/// the inputs); with `dangling`, append every comment author left unmapped (in comment order).
serialize_stats write_batches(const comment_source& source, std::span<const ticket_candidate> tickets,
                              std::span<const comment_candidate> comments,
                              std::span<const resolved_user> users, const comment_references& references,
                              const batch_options& options, tar_archive_sink& sink, reject_log& log,
                              const object_fingerprints& fingerprints = {},
                              std::vector<ledger_dangling>* dangling = nullptr);

/// Log what write_batches would log of `comments` (dangling authors, orphans, repaired bodies)
/// without encoding anything: what a dry run reports. Parallel.
void check_comments(const comment_source& source, std::span<const comment_candidate> comments,
                    const comment_references& references, reject_log& log);

/// With a --since ledger, the comments this archive does not write (`written[i]` 0) are still
/// mapped: append each one's author left unmapped to `dangling`, counting nothing. Parallel.
void list_unwritten_dangling(const comment_source& source, std::span<const comment_candidate> comments,
                             const std::vector<std::uint8_t>& written, const comment_references& references,
                             std::vector<ledger_dangling>& dangling);

/// The fingerprint of a ticket as written (requester_id already mapped).
std::uint64_t ticket_fingerprint(const ticket_candidate& ticket, std::string& scratch);

/// The fingerprint of a comment as written: its fields are taken from `source` and its author
/// mapped through `references` exactly as write_batches does (re-read, mapped, body repaired).
/// `raw` and `scratch` are reused.
std::uint64_t comment_fingerprint(const comment_source& source, const comment_candidate& comment,
                                  const comment_references& references, std::string& raw, std::string& scratch);

/// The unescaped text of field `field` of the record starting at `offset` (CSV rules of SPEC 1.1).
void reread_field(std::string_view file_bytes, std::uint64_t offset, std::size_t field, std::string& out);

}  // namespace tixport
