// File: migration_property_test.cpp
//
// Property test: for random messy exports, the parallel pipeline (random chunk
// sizes, 1..8 threads) writes exactly the batches that a plain serial
// reference implementation of SPEC 2.1-2.6, written here, computes.
#include <catch2/catch.hpp>

#include "support/test_support.hpp"
#include "tixport/csv/field_parsers.hpp"
#include "tixport/run/json_batch_encoder.hpp"
#include "tixport/archive/archive_verifier.hpp"
#include "tixport/index/user_index_csv.hpp"
#include "tixport/run/migration_pipeline.hpp"

#include <map>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace {

using namespace tixport;

struct ref_record {
  std::uint64_t line;
  std::vector<std::string> fields;
};

// Serial CSV reader with the pandas quote rules of SPEC 1.1 / README.
std::vector<ref_record> serial_parse(const std::string& data, std::size_t width, std::vector<std::uint64_t>& malformed) {
  std::vector<ref_record> out;
  std::size_t pos = data.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  std::uint64_t line = 1;
  const std::size_t n = data.size();
  bool header = true;
  while (pos < n) {
    const std::uint64_t start_line = line;
    if (data[pos] == '\n') { ++pos; ++line; continue; }
    if (data[pos] == '\r' && pos + 1 < n && data[pos + 1] == '\n') { pos += 2; ++line; continue; }
    std::vector<std::string> fields;
    std::string field;
    bool unterminated = false;
    for (;;) {
      if (pos < n && data[pos] == '"') {
        ++pos;
        bool closed = false;
        while (pos < n) {
          const char c = data[pos];
          if (c == '"') {
            if (pos + 1 < n && data[pos + 1] == '"') { field += '"'; pos += 2; continue; }
            ++pos; closed = true; break;
          }
          if (c == '\n') ++line;
          field += c; ++pos;
        }
        if (!closed) { unterminated = true; break; }
      }
      while (pos < n && data[pos] != ',' && data[pos] != '\n' && !(data[pos] == '\r' && pos + 1 < n && data[pos + 1] == '\n')) {
        field += data[pos++];
      }
      fields.push_back(std::move(field));
      field.clear();
      if (pos < n && data[pos] == ',') { ++pos; continue; }
      if (pos < n) { pos += data[pos] == '\r' ? 2 : 1; ++line; }
      break;
    }
    if (header) { header = false; continue; }
    if (unterminated || fields.size() != width) { malformed.push_back(start_line); continue; }
    out.push_back({start_line, std::move(fields)});
  }
  return out;
}

std::string clean(const std::string& s) {
  std::string out;
  if (is_valid_utf8(s)) return s;
  repair_utf8(s, out);
  return out;
}

// The expected archive entries (name -> bytes), by the plain serial reading of SPEC 2.
std::vector<std::pair<std::string, std::string>> reference_batches(const std::string& csv, const std::string& index_csv,
                                                                   unsigned batch_size) {
  std::vector<std::uint64_t> malformed;
  const auto records = serial_parse(csv, 10, malformed);  // header order is the original in this test
  std::vector<std::uint64_t> index_bad;
  const auto index_records = serial_parse(index_csv, 2, index_bad);
  std::vector<raw_index_entry> entries;
  for (const auto& r : index_records) entries.push_back({parse_id(r.fields[0]), r.fields[1]});
  for (std::size_t i = 0; i < index_bad.size(); ++i) entries.push_back({});
  const user_index index = user_index::build(entries);

  struct user_row { std::int64_t author; std::string name, email, key; std::uint64_t line; };
  std::vector<user_row> users;
  std::unordered_set<std::string> user_keys;
  std::unordered_map<std::int64_t, std::string> author_key;
  std::vector<comment_record> comments;
  std::vector<std::string> bodies;
  std::unordered_set<std::int64_t> comment_ids;
  std::vector<ticket_record> tickets;
  std::unordered_set<std::int64_t> ticket_ids;
  std::optional<std::int64_t> max_id = index.max_id();
  bodies.reserve(records.size());
  for (const auto& r : records) {
    const auto& f = r.fields;
    const auto author = parse_id(f[7]);
    const auto requester = parse_id(f[1]);
    for (auto id : {author, requester}) if (id && (!max_id || *id > *max_id)) max_id = id;
    const auto part = parse_id(f[2]);
    const auto conv = parse_id(f[3]);
    const auto pub = parse_bool(f[4]);
    const auto c_at = parse_timestamp(f[6]);
    if (part && conv && author && pub && c_at && !is_null_field(f[5]) && comment_ids.insert(*part).second) {
      bodies.push_back(clean(f[5]));
      comments.push_back({*c_at, *conv, *part, *pub, {}, *author});
    }
    const auto t_at = parse_timestamp(f[0]);
    if (conv && requester && t_at && ticket_ids.insert(*conv).second) tickets.push_back({*t_at, *requester, *conv});
    const std::string name = std::string(trim_ws(f[8]));
    const std::string email = clean(std::string(trim_ws(f[9])));
    if (author && !name.empty() && is_valid_email(email)) {
      std::string key;
      email_key(email, key);
      if (user_keys.insert(key).second) users.push_back({*author, clean(name), email, key, r.line});
      author_key.emplace(*author, key);
    }
  }
  for (std::size_t i = 0; i < comments.size(); ++i) comments[i].html_body = bodies[i];

  std::unordered_map<std::string, std::int64_t> id_of_key;
  std::unordered_set<std::int64_t> taken;
  std::int64_t next = max_id ? *max_id : 0;
  std::vector<user_record> user_out;
  for (const auto& u : users) {
    std::int64_t id;
    if (auto found = index.find(u.key)) id = *found;
    else if (!index.has_id(u.author) && !taken.contains(u.author)) id = u.author;
    else id = ++next;
    taken.insert(id);
    id_of_key[u.key] = id;
    user_out.push_back({u.name, id, u.email});
  }
  const auto map_id = [&](std::int64_t chat) {
    auto it = author_key.find(chat);
    return it == author_key.end() ? chat : id_of_key.at(it->second);
  };
  for (auto& c : comments) c.author_id = map_id(c.author_id);
  for (auto& t : tickets) t.requester_id = map_id(t.requester_id);

  std::vector<std::pair<std::string, std::string>> out;
  const std::size_t k_max = std::max({(tickets.size() + batch_size - 1) / batch_size,
                                      (comments.size() + batch_size - 1) / batch_size,
                                      (user_out.size() + batch_size - 1) / batch_size});
  const auto slice = [&](const auto& v, std::size_t k) {
    const std::size_t b = std::min(v.size(), (k - 1) * batch_size), e = std::min(v.size(), k * batch_size);
    return std::span(v.data() + b, e - b);
  };
  for (std::size_t k = 1; k <= k_max; ++k) {
    std::string json;
    encode_batch(slice(tickets, k), slice(comments, k), slice(user_out, k), json_style::compact, json);
    out.emplace_back("backup_tickets_" + std::to_string(k * batch_size) + ".json", std::move(json));
  }
  return out;
}

// A random messy export: small id pools so keys collide, invalid values, quotes and newlines.
std::string random_export(std::mt19937_64& rng, std::size_t rows) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const char* bodies[] = {"plain", "\"with, comma\"", "\"quote \"\" inside\"", "\"multi\nline\"", "\"crlf\r\nline\"",
                          "lone\rcr", "", "  ", "\"bad \xff utf8\"", "caf\xc3\xa9", "\"\"\"\"", "x\"y"};
  const char* bools[] = {"True", "false", "1", "0", "yes", "N", "maybe", " t "};
  const char* times[] = {"2021-01-01 00:00:00", "2021-02-03T04:05:06Z", "2020-12-31T23:30:00-01:00",
                         "2021-03-04 05:06:07.89", "not a time", ""};
  const char* names[] = {"Ann", "Bob", "  ", "", "Zoë", "\"Doe, J\""};
  const char* emails[] = {"ann@x.org", "ANN@x.org", " bob@x.org ", "bad-email", "", "cy@x.org", "di@x.org", "d i@x.org"};
  std::string csv = pick(4) == 0 ? "\xEF\xBB\xBF" : "";
  csv += tixport::test::kExportHeader;
  auto id = [&](std::size_t pool) -> std::string {
    switch (pick(20)) {
      case 0: return "x";
      case 1: return "";
      case 2: return std::to_string(pick(pool)) + ".0";
      case 3: return "00" + std::to_string(pick(pool));
      default: return std::to_string(pick(pool));
    }
  };
  for (std::size_t r = 0; r < rows; ++r) {
    if (pick(50) == 0) { csv += "short,row\n"; continue; }
    if (pick(60) == 0) { csv += pick(2) ? "\n" : "\r\n"; }
    csv += times[pick(6)]; csv += ',';
    csv += id(12); csv += ',';
    csv += id(rows + 1); csv += ',';
    csv += id(rows / 5 + 2); csv += ',';
    csv += bools[pick(8)]; csv += ',';
    csv += bodies[pick(12)]; csv += ',';
    csv += times[pick(6)]; csv += ',';
    csv += id(12); csv += ',';
    csv += names[pick(6)]; csv += ',';
    csv += emails[pick(8)];
    if (r + 1 < rows || pick(2)) csv += pick(3) ? "\n" : "\r\n";
  }
  return csv;
}

std::string random_index(std::mt19937_64& rng) {
  const char* emails[] = {"ann@x.org", "Cy@X.org", "zed@x.org", "", "bad", "di@x.org"};
  std::string csv = "id,email\n";
  const std::size_t n = rng() % 6;
  for (std::size_t i = 0; i < n; ++i) {
    csv += (rng() % 8 == 0 ? std::string("q") : std::to_string(rng() % 15)) + "," + emails[rng() % 6] + "\n";
  }
  return csv;
}

}  // namespace

TEST_CASE("run_migration equals a serial reference on random exports", "[migration_pipeline][parallel]") {
  std::mt19937_64 rng(20261126);
  tixport::test::temp_dir dir;
  for (int iteration = 0; iteration < 120; ++iteration) {
    const std::string csv = random_export(rng, 1 + rng() % 120);
    const std::string index_csv = random_index(rng);
    const unsigned batch_size = 1 + static_cast<unsigned>(rng() % 7);
    tixport::test::write_file(dir / "in.csv", csv);
    tixport::test::write_file(dir / "users.csv", index_csv);
    run_options opt;
    opt.input = dir / "in.csv";
    opt.output = dir / "out.tar";
    opt.threads = 1 + static_cast<unsigned>(rng() % 8);
    opt.chunk_bytes = 1 + rng() % 300;
    opt.batches.batch_size = batch_size;
    opt.mtime = 0;
    const auto users_path = dir / "users.csv";
    opt.load_index = [users_path] { return user_index::build(read_index_csv(users_path, 2)); };
    INFO("iteration " << iteration << " threads " << opt.threads << " chunk " << opt.chunk_bytes << "\n" << csv);
    run_migration(opt).commit();
    const auto got = tixport::test::read_archive(dir / "out.tar");
    const auto want = reference_batches(csv, index_csv, batch_size);
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].name == want[i].first);
      CHECK(got[i].data == want[i].second);
    }
  }
}

namespace {

// A tidy export: every conversation's requester and every comment's author is a user of the
// export, so --strict passes unless a row is made bad on purpose (`error_rate`). Bodies, names
// and emails have random lengths around `limit` and hold quotes, backslashes, control
// characters and non-ASCII, so their JSON size differs from their byte size.
std::string tidy_export(std::mt19937_64& rng, std::size_t rows, std::size_t limit, unsigned error_rate) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const char* pieces[] = {"a", "word ", "\"", "\\", "\n", "\r\n", "\t", "\x01", "\xc3\xa9", "\xe4\xb8\xad", ",", "<p>"};
  auto text = [&](std::size_t max_bytes) {
    std::string t = "t";
    const std::size_t target = pick(max_bytes + 1);
    while (t.size() < target) t += pieces[pick(std::size(pieces))];
    return t;
  };
  auto quoted = [](const std::string& s) {
    std::string q = "\"";
    for (const char c : s) {
      q += c;
      if (c == '"') q += '"';
    }
    return q + "\"";
  };
  struct author { int id; std::string name, email; };
  std::vector<author> authors;
  for (int a = 0; a < 6; ++a) {
    // Names long enough now and then that name + email pass the limit.
    std::string name = pick(12) == 0 ? text(limit) : "User " + std::to_string(a);
    for (char& c : name) {
      if (c == '\n' || c == '\r' || c == '\t' || c == ' ') c = '_';  // trimmed names: no edge white space
    }
    authors.push_back({100 + a, name, "u" + std::to_string(a) + "@x.org"});
  }
  std::string csv = tixport::test::export_csv();
  // Row r's author writes in conversation r % 5, whose requester is author (r % 5) % 6: every
  // requester writes the first row of their conversation, so is a user whenever authors are.
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t conv = r % 5;
    const author& writer = r < 5 ? authors[conv % 6] : authors[pick(authors.size())];
    const bool bad = error_rate > 0 && pick(100) < error_rate;
    std::string body = text(pick(30) == 0 ? 2 * limit : limit / 3);
    csv += "2021-01-01 00:00:00," + std::to_string(authors[conv % 6].id) + "," + std::to_string(1000 + r) + "," +
           std::to_string(50 + conv) + "," + (bad && pick(2) ? "maybe" : "true") + "," + quoted(body) +
           ",2021-01-01 00:00:01," + std::to_string(writer.id) + "," + quoted(writer.name) + "," + writer.email + "\n";
  }
  return csv;
}

}  // namespace

TEST_CASE("run and verify agree: an archive run writes with exit 0 under --strict passes verify (README, "
          "\"Decisions\")",
          "[migration_pipeline][archive_verifier][parallel]") {
  std::mt19937_64 rng(20261204);
  tixport::test::temp_dir dir;
  int strict_passes = 0;
  int too_large = 0;
  for (int iteration = 0; iteration < 60; ++iteration) {
    // The size rule, lowered so that small exports reach it: an 80 MB body at 256 KiB.
    const std::size_t limit = 40 + rng() % 400;
    const unsigned error_rate = iteration % 3 == 0 ? 5 : 0;
    const std::string csv = tidy_export(rng, 1 + rng() % 60, limit, error_rate);
    tixport::test::write_file(dir / "in.csv", csv);
    tixport::test::write_file(dir / "users.csv", rng() % 2 ? "id,email\n100,u0@x.org\n7,zz@x.org\n" : "id,email\n");
    run_options opt;
    opt.input = dir / "in.csv";
    opt.output = dir / "out.tar";
    opt.threads = 1 + static_cast<unsigned>(rng() % 4);
    opt.chunk_bytes = 1 + rng() % 2000;
    opt.batches.batch_size = 1 + static_cast<unsigned>(rng() % 7);
    opt.batches.style = rng() % 2 ? json_style::pretty : json_style::compact;
    opt.strict = true;
    opt.mtime = 0;
    opt.max_text_json_bytes = limit;
    const auto users_path = dir / "users.csv";
    opt.load_index = [users_path] { return user_index::build(read_index_csv(users_path, 2)); };
    INFO("iteration " << iteration << " limit " << limit);
    run_outcome outcome = run_migration(opt);
    outcome.commit();
    const run_report& report = outcome.report;
    too_large += report.issues.count(row_issue::comment_too_large) + report.issues.count(row_issue::user_too_large) > 0;

    verify_options verify;
    verify.archive = opt.output;
    verify.users_file = users_path;
    verify.max_text_json_bytes = limit;
    verify.max_entry_bytes = max_batch_entry_bytes(limit);
    const verify_result result = verify_archive(verify);
    std::string problems;
    for (const auto& [kind, count] : result.problems_by_kind) problems += kind + " " + std::to_string(count) + "; ";
    INFO("verify: " << problems);
    if (report.exit_code == 0) {
      ++strict_passes;
      CHECK(result.valid);
    }
    // Whatever --strict says, what run writes never breaks the size rule or the entry limit:
    // verify can only miss references whose rows run counted (dangling, orphans).
    for (const auto& [kind, count] : result.problems_by_kind) {
      CHECK((kind == "unknown_author_id" || kind == "unknown_requester_id" || kind == "unknown_ticket_id"));
    }
    // And verify applies the rule itself: the same export run with the rule's default keeps
    // its large texts, and verify at the lowered limit names each of them.
    if (report.issues.count(row_issue::comment_too_large) > 0) {
      run_options loose = opt;
      loose.max_text_json_bytes = kMaxTextJsonBytes;
      run_migration(loose).commit();
      CHECK(verify_archive(verify).problems_by_kind["object_too_large"] >=
            report.issues.count(row_issue::comment_too_large));
    }
  }
  // The generator must exercise both sides of the property.
  CHECK(strict_passes >= 10);
  CHECK(too_large >= 10);
}
