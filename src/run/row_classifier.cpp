// File: row_classifier.cpp
#include "tixport/run/row_classifier.hpp"

#include "tixport/csv/field_parsers.hpp"
#include "tixport/run/json_batch_encoder.hpp"

#include <algorithm>
#include <limits>

namespace tixport {

export_columns export_columns::resolve(const csv_header& header, const csv_source& source) {
  const std::vector<std::size_t> idx = resolve_columns(header, kNames, source);
  export_columns c;
  c.ticket_created_at = idx[0];
  c.ticket_requester_id = idx[1];
  c.comment_part_id = idx[2];
  c.conversation_id = idx[3];
  c.comment_public = idx[4];
  c.body = idx[5];
  c.comment_created_at = idx[6];
  c.author_id = idx[7];
  c.name = idx[8];
  c.email = idx[9];
  return c;
}

namespace {

// Copies `text` as valid UTF-8 into `out`; true when bytes had to be replaced.
bool copy_clean_utf8(std::string_view text, std::string& out) {
  out.clear();
  if (is_valid_utf8(text)) {
    out.assign(text);
    return false;
  }
  return repair_utf8(text, out);
}

// The JSON string bytes the batch file will hold for `text` (repaired when not valid UTF-8):
// the measure of batch_limits.hpp. `scratch` holds a repaired copy when one is needed.
std::size_t text_json_bytes(std::string_view text, std::string& scratch) {
  if (is_valid_utf8(text)) return json_string_bytes(text);
  scratch.clear();
  repair_utf8(text, scratch);
  return json_string_bytes(scratch);
}

// Whether `texts` together are over `limit` as JSON strings. An escape takes at most 6 bytes
// for 1 (\u00XX) and a repair 3 for 1 (U+FFFD), so short texts need no scan.
template <std::size_t N>
bool texts_too_large(const std::array<std::string_view, N>& texts, std::size_t limit, std::string& scratch) {
  constexpr std::size_t kMaxGrowth = 6;
  constexpr std::size_t kQuotes = 2;
  std::size_t bound = 0;
  for (const std::string_view t : texts) bound += t.size() * kMaxGrowth + kQuotes;
  if (bound <= limit) return false;
  std::size_t size = 0;
  for (const std::string_view t : texts) size += text_json_bytes(t, scratch);
  return size > limit;
}

/// texts_too_large for BODY, which may be a view left escaped (csv_chunk::escaped). Its JSON is
/// at least as long as its text's (`""` escapes to 4 bytes, `"` to 2), so only an escaped body
/// that looks too large is unescaped to be measured.
bool body_too_large(std::string_view body, bool escaped, std::size_t limit, std::string& scratch) {
  if (!texts_too_large(std::array{body}, limit, scratch)) return false;
  if (!escaped) return true;
  const std::string text = csv_unescape_pairs(body);
  return texts_too_large(std::array{std::string_view(text)}, limit, scratch);
}

void note_max(std::optional<std::int64_t>& max_id, std::optional<std::int64_t> id) noexcept {
  if (id && (!max_id || *id > *max_id)) max_id = id;
}

/// parse_timestamp that remembers the last text it parsed. The rows of a conversation repeat its
/// TICKET_CREATED_AT, often one after another, so most of them skip the parse (same text, same
/// value). The texts are views into one chunk, alive for the whole classify_chunk call.
class last_timestamp {
 public:
  std::optional<std::int64_t> parse(std::string_view text) noexcept {
    if (!parsed_ || text != text_) {
      value_ = parse_timestamp(text);
      text_ = text;
      parsed_ = true;
    }
    return value_;
  }

 private:
  std::string_view text_;
  std::optional<std::int64_t> value_;
  bool parsed_ = false;
};

/// The ticket fields of the last row, with what they came to. The rows of a conversation
/// usually follow one another and repeat CONVERSATION_ID, TICKET_REQUESTER_ID and
/// TICKET_CREATED_AT, so a repeat takes the same outcome without parsing or probing: a
/// rejection is the same rejection, and a valid ticket is now a duplicate (its first row
/// was taken, or was itself a duplicate).
struct last_ticket {
  enum class outcome : std::uint8_t { invalid_id, invalid_requester, invalid_created_at, valid };
  std::string_view conversation_text, requester_text, created_at_text;
  std::optional<std::int64_t> conversation, requester;
  outcome result = outcome::invalid_id;
  bool set = false;

  [[nodiscard]] bool repeats(std::string_view conversation_now, std::string_view requester_now,
                             std::string_view created_at_now) const noexcept {
    return set && conversation_now == conversation_text && requester_now == requester_text &&
           created_at_now == created_at_text;
  }
};

/// The user fields of (author, name, email) rows seen in this chunk with what they came to, one
/// per slot, the slot picked by the author: a direct-mapped cache. A repeat is the same
/// rejection, or (a candidate) a duplicate of the user its first row took, whose author entry
/// already says whether the chat id conflicts. Exports interleave conversations, so a chunk's
/// rows come from ~1000 authors: the last two rows' users matched 41% of the rows of the
/// generated export, 256 slots match 82%.
struct recent_users {
  enum class outcome : std::uint8_t { null_name, invalid_email, too_large, candidate };
  struct entry {
    std::int64_t author = 0;
    std::string_view name, email;  // trimmed
    outcome result = outcome::null_name;
    bool set = false;
  };
  static constexpr unsigned kSlotBits = 8;
  entry slots[std::size_t{1} << kSlotBits];

  static std::size_t slot_of(std::int64_t author) noexcept {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(author) * 0x9E3779B97F4A7C15ULL) >> (64 - kSlotBits));
  }
  [[nodiscard]] const entry* find(std::int64_t author, std::string_view name, std::string_view email) const noexcept {
    const entry& e = slots[slot_of(author)];
    if (!e.set || e.author != author || e.name != name || e.email != email) return nullptr;
    return &e;
  }
  void remember(std::int64_t author, std::string_view name, std::string_view email, outcome result) noexcept {
    slots[slot_of(author)] = {author, name, email, result, true};
  }
};

row_issue user_rejection(recent_users::outcome result) noexcept {
  switch (result) {
    case recent_users::outcome::null_name:
      return row_issue::user_null_name;
    case recent_users::outcome::invalid_email:
      return row_issue::user_invalid_email;
    default:
      return row_issue::user_too_large;
  }
}

}  // namespace

void classify_chunk(const csv_chunk& chunk, const export_columns& c, classified_chunk& out,
                    std::size_t max_text_json_bytes) {
  out.chunk_seq = chunk.chunk_seq;
  for (const malformed_record& bad : chunk.malformed) out.log.add(row_issue::malformed_record, bad.line);

  const std::size_t width = chunk.num_fields;
  const std::size_t records = chunk.record_count();
  out.rows += records;
  out.comments.reserve(out.comments.size() + records);
  std::string key;
  std::string email_text;
  std::string scratch;
  last_timestamp ticket_created_at;
  last_ticket ticket;
  recent_users recent;

  // BODY views the reader left escaped (run_stages asks it to): only tested here, never used.
  auto next_escaped = chunk.escaped.begin();
  for (std::size_t r = 0; r < records; ++r) {
    const std::string_view* f = chunk.fields.data() + r * width;
    const std::uint64_t offset = chunk.record_offsets[r];
    const std::uint64_t line = chunk.record_lines[r];
    const bool body_escaped = next_escaped != chunk.escaped.end() && *next_escaped == r * width + c.body;
    if (body_escaped) ++next_escaped;

    const std::optional<std::int64_t> author = parse_id(f[c.author_id]);
    const bool same_ticket = ticket.repeats(f[c.conversation_id], f[c.ticket_requester_id], f[c.ticket_created_at]);
    if (!same_ticket) {
      ticket.conversation_text = f[c.conversation_id];
      ticket.requester_text = f[c.ticket_requester_id];
      ticket.created_at_text = f[c.ticket_created_at];
      ticket.requester = parse_id(ticket.requester_text);
      ticket.conversation = parse_id(ticket.conversation_text);
      ticket.set = true;
    }
    const std::optional<std::int64_t> requester = ticket.requester;
    const std::optional<std::int64_t> conversation = ticket.conversation;
    note_max(out.max_id, author);
    note_max(out.max_id, requester);

    // Comments: the first failing field, in column order of SPEC 2.3, names the reason.
    if (const auto part = parse_id(f[c.comment_part_id]); !part) {
      out.log.add(row_issue::comment_invalid_id, line);
    } else if (!conversation) {
      out.log.add(row_issue::comment_invalid_ticket_id, line);
    } else if (!author) {
      out.log.add(row_issue::comment_invalid_author_id, line);
    } else if (const auto is_public = parse_bool(f[c.comment_public]); !is_public) {
      out.log.add(row_issue::comment_invalid_public, line);
    } else if (const auto created = parse_timestamp(f[c.comment_created_at]); !created) {
      out.log.add(row_issue::comment_invalid_created_at, line);
    } else if (is_null_field(f[c.body])) {  // an escaped body holds a `"`: not null either way
      out.log.add(row_issue::comment_null_body, line);
    } else if (body_too_large(f[c.body], body_escaped, max_text_json_bytes, scratch)) {
      out.log.add(row_issue::comment_too_large, line);
    } else {
      // Its other fields are read again from the record when the comment is written.
      out.comments.push_back(comment_row{offset, line, *is_public, *part});
      ++out.valid_comment_rows;
    }

    // Tickets (SPEC 2.4).
    using ticket_outcome = last_ticket::outcome;
    if (same_ticket) {
      switch (ticket.result) {
        case ticket_outcome::invalid_id:
          out.log.add(row_issue::ticket_invalid_id, line);
          break;
        case ticket_outcome::invalid_requester:
          out.log.add(row_issue::ticket_invalid_requester_id, line);
          break;
        case ticket_outcome::invalid_created_at:
          out.log.add(row_issue::ticket_invalid_created_at, line);
          break;
        case ticket_outcome::valid:
          ++out.valid_ticket_rows;
          out.log.add(row_issue::duplicate_ticket, line);
          break;
      }
    } else if (!conversation) {
      out.log.add(row_issue::ticket_invalid_id, line);
      ticket.result = ticket_outcome::invalid_id;
    } else if (!requester) {
      out.log.add(row_issue::ticket_invalid_requester_id, line);
      ticket.result = ticket_outcome::invalid_requester;
    } else if (const auto created = ticket_created_at.parse(f[c.ticket_created_at]); !created) {
      out.log.add(row_issue::ticket_invalid_created_at, line);
      ticket.result = ticket_outcome::invalid_created_at;
    } else {
      ++out.valid_ticket_rows;
      const auto [it, inserted] =
          out.tickets.try_emplace(*conversation, ticket_candidate{offset, line, *conversation, *requester, *created});
      if (!inserted) out.log.add(row_issue::duplicate_ticket, line);
      ticket.result = ticket_outcome::valid;
    }

    // Users (SPEC 2.1) and the chat id -> email key map (SPEC 2.2).
    if (!author) {
      out.log.add(row_issue::user_invalid_author_id, line);
      continue;
    }
    const std::string_view name = trim_ws(f[c.name]);
    const std::string_view email = trim_ws(f[c.email]);
    using user_outcome = recent_users::outcome;
    if (const recent_users::entry* seen = recent.find(*author, name, email)) {
      if (seen->result != user_outcome::candidate) {
        out.log.add(user_rejection(seen->result), line);
      } else {
        ++out.user_candidate_rows;
        out.log.add(row_issue::duplicate_user_row, line);
      }
      continue;
    }
    if (name.empty()) {
      out.log.add(row_issue::user_null_name, line);
      recent.remember(*author, name, email, user_outcome::null_name);
      continue;
    }
    if (!is_valid_email(email)) {
      out.log.add(row_issue::user_invalid_email, line);
      recent.remember(*author, name, email, user_outcome::invalid_email);
      continue;
    }
    if (texts_too_large(std::array{name, email}, max_text_json_bytes, scratch)) {
      out.log.add(row_issue::user_too_large, line);
      recent.remember(*author, name, email, user_outcome::too_large);
      continue;
    }
    recent.remember(*author, name, email, user_outcome::candidate);
    ++out.user_candidate_rows;
    const bool email_repaired = copy_clean_utf8(email, email_text);
    key.clear();
    email_key(email_text, key);

    if (auto it = out.users.find(std::string_view{key}); it != out.users.end()) {
      out.log.add(row_issue::duplicate_user_row, line);
    } else {
      user_candidate user{offset, line, *author, {}, email_text, false, email_repaired};
      user.name_repaired = copy_clean_utf8(name, user.name);
      out.users.emplace(key, std::move(user));
    }
    if (auto it = out.authors.find(*author); it == out.authors.end()) {
      out.authors.emplace(*author, author_candidate{offset, line, key, false});
    } else if (it->second.email_key != key) {
      it->second.conflict = true;
    }
  }
}

}  // namespace tixport
