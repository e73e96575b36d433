// File: batch_serializer.hpp
//
// Cuts the resolved tickets, comments and users into batches of B (SPEC 2.6),
// encodes each batch's JSON on a worker thread and hands the files to the
// archive sink in batch order. A bounded number of batches is in flight, so
// the output is never held whole in memory, and the bytes do not depend on
// how many threads encode.
//
//   batch_options opt{.batch_size = 100};
//   serialize_stats s = write_batches(input, tickets, comments, users, opt, sink, log);
#pragma once

#include "tixport/run/json_batch_encoder.hpp"
#include "tixport/run/pipeline_messages.hpp"
#include "tixport/run/reject_log.hpp"
#include "tixport/archive/tar_archive_sink.hpp"
#include "tixport/run/user_resolver.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

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

/// Where each comment's BODY and COMMENT_CREATED_AT live: in its record, read again when the
/// comment is written or fingerprinted (comment_candidate does not keep them).
struct body_source {
  std::string_view file_bytes;        ///< the whole input
  std::size_t num_fields = 0;         ///< fields per record (the header's)
  std::size_t body_field = 0;         ///< index of BODY
  std::size_t created_at_field = 0;   ///< index of COMMENT_CREATED_AT
};

/// A comment's BODY and COMMENT_CREATED_AT as the parse saw them.
struct comment_text {
  std::string_view body;     ///< a view into the input, or into the caller's `raw` (body_in_place false)
  std::int64_t created_at;   ///< epoch seconds UTC
  bool body_in_place;        ///< body is a slice of the input (it held no "")
};

/// Read `comment`'s BODY and COMMENT_CREATED_AT again from its record (one scan of the record,
/// up to the later of the two fields); a body that held "" is unescaped into `raw`.
comment_text read_comment_text(const body_source& source, const comment_candidate& comment, std::string& raw);

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

/// Encode every batch and add it to `sink` in order. Repaired UTF-8 in bodies is logged.
/// With `fingerprints`, also fingerprint every ticket and comment (spans sized like the inputs).
serialize_stats write_batches(const body_source& source, std::span<const ticket_candidate> tickets,
                              std::span<const comment_candidate> comments,
                              std::span<const resolved_user> users, const batch_options& options,
                              tar_archive_sink& sink, reject_log& log,
                              const object_fingerprints& fingerprints = {});

/// Count the comments whose body write_batches would repair (invalid UTF-8), as it logs them
/// (utf8_repaired_field), without encoding anything: what a dry run reports. Parallel.
void count_body_repairs(const body_source& source, std::span<const comment_candidate> comments, reject_log& log);

/// The fingerprint of a ticket as written (requester_id already mapped).
std::uint64_t ticket_fingerprint(const ticket_candidate& ticket, std::string& scratch);

/// The fingerprint of a comment as written (author_id already mapped): its body is taken from
/// `source` exactly as write_batches takes it (re-read, repaired). `raw` and `scratch` are reused.
std::uint64_t comment_fingerprint(const body_source& source, const comment_candidate& comment, std::string& raw,
                                  std::string& scratch);

/// The unescaped text of field `field` of the record starting at `offset` (CSV rules of SPEC 1.1).
void reread_field(std::string_view file_bytes, std::uint64_t offset, std::size_t field, std::string& out);

}  // namespace tixport
