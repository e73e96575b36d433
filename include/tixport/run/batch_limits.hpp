// File: batch_limits.hpp
//
// The size rule that `run` and `verify` share (README, "Decisions": objects too
// large for a batch file). One object's text, measured as the JSON string bytes
// tixport writes for it (quotes and escapes included, after UTF-8 repair), may
// be at most kMaxTextJsonBytes: a comment's html_body, or a user's name and
// email together. Everything else of an object is bounded by its fixed parts, so
// a batch of full arrays can never exceed kMaxBatchEntryBytes, which is the
// entry limit of `verify`. `run` skips a row whose object would break the rule
// (row_issue comment_too_large / user_too_large, which fail --strict); `verify`
// reports such an object (object_too_large) and any larger entry
// (entry_too_large). Both measure with json_string_bytes().
//
//   if (json_string_bytes(body) > tixport::kMaxTextJsonBytes) ...  // comment_too_large
//   verify_options options;  // options.max_entry_bytes == kMaxBatchEntryBytes
#pragma once

#include <cstddef>

namespace tixport {

/// Objects per array of one batch file at most (SPEC 2.6: B <= 100).
inline constexpr std::size_t kMaxObjectsPerArray = 100;

/// The largest text of one object, as JSON string bytes: a comment's html_body, or a user's
/// name and email together. 256 KiB is about 100 pages of plain text; a chat message larger
/// than that is a pasted file or log, and importers cap comment bodies well below it.
inline constexpr std::size_t kMaxTextJsonBytes = std::size_t{256} << 10;

/// Upper bounds of the parts of a batch file that are not text, in either layout (compact or
/// pretty), every integer at its widest, separators and indentation included. Checked by
/// tests/json_batch_encoder_test.cpp against encode_batch().
inline constexpr std::size_t kMaxEnvelopeJsonBytes = 512;      ///< the batch file around its arrays
inline constexpr std::size_t kMaxTicketJsonBytes = 256;        ///< one ticket object
inline constexpr std::size_t kMaxCommentFixedJsonBytes = 384;  ///< one comment object but html_body
inline constexpr std::size_t kMaxUserFixedJsonBytes = 192;     ///< one user object but name and email

/// The largest batch file whose objects keep their text within `max_text_json_bytes`.
constexpr std::size_t max_batch_entry_bytes(std::size_t max_text_json_bytes) noexcept {
  return kMaxEnvelopeJsonBytes +
         kMaxObjectsPerArray * (kMaxTicketJsonBytes + kMaxCommentFixedJsonBytes + kMaxUserFixedJsonBytes +
                                2 * max_text_json_bytes);
}

/// `verify`'s entry limit: no batch `run` writes is larger (about 50 MiB).
inline constexpr std::size_t kMaxBatchEntryBytes = max_batch_entry_bytes(kMaxTextJsonBytes);

}  // namespace tixport
