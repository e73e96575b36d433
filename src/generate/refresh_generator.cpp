// File: refresh_generator.cpp
#include "tixport/generate/refresh_generator.hpp"

#include "tixport/common/atomic_output.hpp"
#include "tixport/csv/csv_reader.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/common/parallelism.hpp"
#include "tixport/csv/field_parsers.hpp"
#include "tixport/common/mapped_file.hpp"
#include "tixport/run/row_classifier.hpp"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace tixport {

namespace {

// Mix of the appended rows (per mille).
constexpr std::uint64_t kOldConversationPermille = 400;  // a message in an old conversation
constexpr std::uint64_t kDuplicatePermille = 50;         // a repeat of an appended row
constexpr std::uint64_t kKnownCustomerPermille = 200;    // a new conversation from a known customer
constexpr std::uint64_t kMaxMessagesPerNewConversation = 8;
constexpr std::uint64_t kGainedEmailEvery = 200;         // one old chat id gains an email per 200 rows
constexpr std::int64_t kFirstNewTime = 1780272000;       // 2026-06-01T00:00:00Z: after the trial

/// splitmix64: small, fast, and the same on every machine.
class prng {
 public:
  explicit prng(std::uint64_t seed) : state_(seed ^ 0x5DEECE66DULL) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  bool permille(std::uint64_t p) { return below(1000) < p; }

 private:
  std::uint64_t state_;
};

struct known_conversation {
  std::int64_t id;
  std::int64_t requester;
  std::string ticket_created_at;  // as the old export wrote it, trimmed
};

struct known_user {
  std::int64_t id;
  std::string name;
  std::string email;
};

/// What the old export tells about who talks where.
struct base_facts {
  std::vector<known_conversation> conversations;  // file order of first valid row
  std::vector<known_user> users;                  // chat ids with a name and a valid email
  std::vector<std::int64_t> without_email;        // chat ids never seen with a valid email
  std::int64_t max_comment = 0;
  std::int64_t max_conversation = 0;
  std::int64_t max_user = 0;
};

base_facts read_base(std::string_view data, const std::filesystem::path& path, unsigned threads) {
  const std::optional<csv_header> header = read_csv_header(data);
  if (!header) throw fatal_error(exit_code::input_error, "generate: --append-to " + path.string() + ": empty file");
  const export_columns c = export_columns::resolve(*header, {"generate: --append-to", path.native(), data});
  base_facts facts;
  std::map<std::int64_t, bool> conversation_seen;
  std::map<std::int64_t, bool> has_email;  // chat id -> a valid email seen
  csv_read_options options;
  options.threads = threads;
  options.ordered = true;  // "first row" facts in file order, whatever the threads
  read_csv_records(data, *header, options, [&](csv_chunk&& chunk) {
    for (std::size_t r = 0; r < chunk.record_count(); ++r) {
      const auto f = chunk.record(r);
      const auto raise = [](std::int64_t& max, std::optional<std::int64_t> id) {
        if (id && *id > max) max = *id;
      };
      const auto comment = parse_id(f[c.comment_part_id]);
      const auto conversation = parse_id(f[c.conversation_id]);
      const auto requester = parse_id(f[c.ticket_requester_id]);
      const auto author = parse_id(f[c.author_id]);
      raise(facts.max_comment, comment);
      raise(facts.max_conversation, conversation);
      raise(facts.max_user, requester);
      raise(facts.max_user, author);
      const std::string_view created = trim_ws(f[c.ticket_created_at]);
      if (conversation && requester && parse_timestamp(created) && !conversation_seen[*conversation]) {
        conversation_seen[*conversation] = true;
        facts.conversations.push_back({*conversation, *requester, std::string(created)});
      }
      if (!author) continue;
      const std::string_view name = trim_ws(f[c.name]);
      const std::string_view email = trim_ws(f[c.email]);
      const bool valid = !name.empty() && is_valid_email(email) && is_valid_utf8(name) && is_valid_utf8(email);
      auto [it, first] = has_email.emplace(*author, valid);
      if (valid && (first || !it->second)) facts.users.push_back({*author, std::string(name), std::string(email)});
      it->second = it->second || valid;
    }
  });
  for (const auto& [id, valid] : has_email) {
    if (!valid) facts.without_email.push_back(id);
  }
  return facts;
}

void append_time(std::string& out, std::int64_t t) {
  const std::int64_t days = t / 86400;
  const std::int64_t secs = t % 86400;
  // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
  const std::int64_t z = days + 719468;
  const std::int64_t era = z / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", static_cast<long long>(y),
                static_cast<long long>(m), static_cast<long long>(d), static_cast<long long>(secs / 3600),
                static_cast<long long>(secs / 60 % 60), static_cast<long long>(secs % 60));
  out += buf;
}

/// One export row in the header's column order.
struct row_values {
  std::string ticket_created_at, requester, comment, conversation, is_public, body, comment_created_at, author, name,
      email;
};

std::string format_row(const row_values& v, const export_columns& c, std::size_t width) {
  std::vector<const std::string*> by_column(width, nullptr);
  by_column[c.ticket_created_at] = &v.ticket_created_at;
  by_column[c.ticket_requester_id] = &v.requester;
  by_column[c.comment_part_id] = &v.comment;
  by_column[c.conversation_id] = &v.conversation;
  by_column[c.comment_public] = &v.is_public;
  by_column[c.body] = &v.body;
  by_column[c.comment_created_at] = &v.comment_created_at;
  by_column[c.author_id] = &v.author;
  by_column[c.name] = &v.name;
  by_column[c.email] = &v.email;
  std::string out;
  for (std::size_t i = 0; i < width; ++i) {
    if (i != 0) out += ',';
    if (by_column[i] != nullptr) append_csv_field(out, *by_column[i]);  // extra columns stay empty
  }
  out += '\n';
  return out;
}

}  // namespace

refresh_stats generate_refresh(const refresh_options& options) {
  const auto start = std::chrono::steady_clock::now();
  const unsigned threads = resolve_threads(options.threads);
  output_plan plan;
  plan.add_input(options.base, "--append-to");
  plan.add_output(options.output, "--output", "--append-to");
  plan.check();
  mapped_file file = mapped_file::open(options.base);
  const std::string_view data = file.bytes();
  const std::optional<csv_header> header = read_csv_header(data);
  if (!header) throw fatal_error(exit_code::input_error, "generate: --append-to " + options.base.string() + ": empty file");
  const export_columns columns =
      export_columns::resolve(*header, {"generate: --append-to", options.base.native(), data});
  base_facts facts;
  in_arena(threads, [&] { facts = read_base(data, options.base, threads); });

  refresh_stats stats;
  stats.base_bytes = data.size();
  prng rng(options.seed * 0x100000001B3ULL + data.size());
  std::string rows;
  // The old export's last record may lack its line end: give it one, so the new rows are records.
  if (!data.empty() && data.back() != '\n') rows += '\n';
  std::int64_t now = kFirstNewTime;
  std::int64_t next_comment = facts.max_comment;
  std::int64_t next_conversation = facts.max_conversation;
  std::int64_t next_user = facts.max_user;
  std::vector<known_user> customers = facts.users;
  std::vector<known_conversation> conversations = facts.conversations;
  std::size_t gained = 0;
  std::string last_row;
  const char* bodies[] = {"Thanks, that fixed it.", "Any update on this?", "Still broken after the update\nsee attached",
                          "<p>We have shipped a fix, please retry.</p>", "He said \"it works\" now", "Merci, ça marche"};
  const auto message = [&](const known_conversation& conv, const known_user& author) {
    row_values v;
    v.ticket_created_at = conv.ticket_created_at;
    v.requester = std::to_string(conv.requester);
    v.comment = std::to_string(++next_comment);
    v.conversation = std::to_string(conv.id);
    v.is_public = rng.permille(800) ? "true" : "false";
    v.body = bodies[rng.below(std::size(bodies))];
    now += 1 + static_cast<std::int64_t>(rng.below(600));
    append_time(v.comment_created_at, now);
    v.author = std::to_string(author.id);
    v.name = author.name;
    v.email = author.email;
    last_row = format_row(v, columns, header->fields.size());
    rows += last_row;
    ++stats.rows;
  };
  const auto new_customer = [&] {
    const std::int64_t id = ++next_user;
    customers.push_back({id, "Customer " + std::to_string(id), "customer" + std::to_string(id) + "@example.com"});
    ++stats.new_customers;
    return customers.back();
  };

  while (stats.rows < options.rows) {
    if (!last_row.empty() && rng.permille(kDuplicatePermille)) {
      rows += last_row;  // exports repeat rows
      ++stats.rows;
      ++stats.duplicate_rows;
      continue;
    }
    if (gained < facts.without_email.size() && !conversations.empty() &&
        stats.rows / kGainedEmailEvery >= gained + 1) {
      // A chat user known only by id in the old export, now with a name and an email.
      const std::int64_t id = facts.without_email[gained++];
      const known_user user{id, "Returning " + std::to_string(id), "returning" + std::to_string(id) + "@example.com"};
      customers.push_back(user);
      message(conversations[rng.below(conversations.size())], user);
      ++stats.users_gaining_email;
      continue;
    }
    if (!facts.conversations.empty() && !customers.empty() && rng.permille(kOldConversationPermille)) {
      message(facts.conversations[rng.below(facts.conversations.size())], customers[rng.below(customers.size())]);
      ++stats.messages_in_old;
      continue;
    }
    // A new conversation: its requester opens it, then a few replies.
    const known_user requester = customers.empty() || !rng.permille(kKnownCustomerPermille)
                                     ? new_customer()
                                     : customers[rng.below(customers.size())];
    known_conversation conv{++next_conversation, requester.id, {}};
    append_time(conv.ticket_created_at, now);
    conversations.push_back(conv);
    ++stats.new_conversations;
    const std::uint64_t messages = 1 + rng.below(kMaxMessagesPerNewConversation);
    for (std::uint64_t m = 0; m < messages && stats.rows < options.rows; ++m) {
      message(conv, m == 0 || customers.size() < 2 ? requester : customers[rng.below(customers.size())]);
    }
  }

  atomic_output_file out(options.output, "generate");
  out.write(data);
  out.write(rows);
  out.commit();
  stats.bytes = data.size() + rows.size();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace tixport
