// File: pipeline_messages.hpp
//
// The structs that travel from the per-chunk row classifier to the
// deduplicator and on to the resolver and serializer. Every candidate carries
// the byte offset of its record: offsets are unique and grow in file order, so
// "first in file order" is "smallest offset", whatever thread saw it first.
// Nothing here holds a copy of a message body: bodies stay in the mapping and
// are located by offset (SPEC-sized exports are larger than the memory we allow).
#pragma once

#include "tixport/common/string_hash.hpp"
#include "tixport/common/uninitialized_allocator.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tixport {

/// A valid comment row (SPEC 2.3) as the classifier hands it to the deduplication, which
/// needs its COMMENT_PART_ID. Lives only while its chunk is absorbed.
struct comment_row {
  std::uint64_t offset;        ///< byte offset of the record: the file-order key
  std::uint64_t line : 63;     ///< physical line of the record
  bool is_public : 1;          ///< COMMENT_PUBLIC
  std::int64_t id;             ///< COMMENT_PART_ID
};

/// A comment row that is not (yet) a duplicate, held from its chunk's absorb to the write.
/// Its COMMENT_PART_ID, BODY, COMMENT_CREATED_AT, CONVERSATION_ID and AUTHOR_ID are read again
/// from the record when it is written or fingerprinted (one record scan, read_comment_fields
/// in batch_serializer.hpp), and its references are mapped then (comment_references in
/// user_resolver.hpp): keeping them here would cost 48 more bytes per comment for the whole
/// run, and the record is in the mapping anyway.
struct comment_candidate {
  std::uint64_t offset;        ///< byte offset of the record: the file-order key
  std::uint64_t line : 63;     ///< physical line of the record
  bool is_public : 1;          ///< COMMENT_PUBLIC

  static comment_candidate of(const comment_row& row) noexcept { return {row.offset, row.line, row.is_public}; }
};
// One per comment of the export is held until the write, tens of millions on large exports:
// every byte here is a byte of the peak (issue 14 counts them per unique comment).
static_assert(sizeof(comment_candidate) == 16);

/// The winners of the deduplication, file order. Sized first and then filled in parallel, so
/// resize() must not write every element first (that would also make the whole buffer
/// resident at once, beside the chunks it is filled from).
using comment_candidates = std::vector<comment_candidate, uninitialized_allocator<comment_candidate>>;

/// A ticket or comment the serializer wrote, as the next ledger records it. No default member
/// initializers: the serializer fills millions of these straight into fresh memory, in
/// parallel, and zeroing them first would touch every page twice.
struct written_object {
  std::int64_t id;            ///< CONVERSATION_ID or COMMENT_PART_ID
  std::uint64_t fingerprint;  ///< XXH3-64 of its compact JSON object
};

/// A valid ticket row (SPEC 2.4).
struct ticket_candidate {
  std::uint64_t offset;        ///< byte offset of the record
  std::uint64_t line;          ///< physical line of the record
  std::int64_t id;             ///< CONVERSATION_ID
  std::int64_t requester_id;   ///< TICKET_REQUESTER_ID, not yet mapped
  std::int64_t created_at;     ///< TICKET_CREATED_AT, epoch seconds UTC
};

/// A user candidate row (SPEC 2.1): valid AUTHOR_ID, non-null NAME, valid EMAIL.
struct user_candidate {
  std::uint64_t offset;        ///< byte offset of the record
  std::uint64_t line;          ///< physical line of the record
  std::int64_t author_id;      ///< AUTHOR_ID
  std::string name;            ///< trimmed NAME, valid UTF-8 (repaired if needed)
  std::string email;           ///< trimmed EMAIL as written, valid UTF-8
  bool name_repaired = false;  ///< NAME held invalid UTF-8
  bool email_repaired = false; ///< EMAIL held invalid UTF-8
};

/// The first email key seen for a chat id (SPEC 2.2).
struct author_candidate {
  std::uint64_t offset;        ///< byte offset of the chat id's first candidate row
  std::uint64_t line;          ///< its physical line
  std::string email_key;       ///< its email key
  bool conflict = false;       ///< the chat id was also seen with another email key
};

}  // namespace tixport
