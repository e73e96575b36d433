// File: row_classifier_test.cpp
//
// Tests of classify_chunk (SPEC 1.1, 2.1-2.4): small exports read with the real CSV
// reader, one row per reason. A row is a comment, a ticket and a user candidate at
// once; each of the three checks names the first failing field in SPEC order, and
// in-chunk duplicates are counted, the first row kept. Also: export_columns::resolve.
//
//   ./tixport_tests "[row_classifier]"

#include "tixport/run/row_classifier.hpp"
#include "tixport/run/batch_serializer.hpp"

#include "support/test_support.hpp"
#include "tixport/common/errors.hpp"
#include "tixport/csv/csv_reader.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <initializer_list>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace {

using tixport::classified_chunk;
using tixport::export_columns;
using tixport::row_issue;
using tixport::test::export_csv;

/// The ten export fields of one row, in header order.
struct row_fields {
  std::string ticket_created_at = "2021-01-01 00:00:00";
  std::string requester_id = "5";
  std::string comment_part_id = "1";
  std::string conversation_id = "10";
  std::string comment_public = "true";
  std::string body = "hello";
  std::string comment_created_at = "2021-01-01 00:00:01";
  std::string author_id = "5";
  std::string name = "Ann";
  std::string email = "ann@x.org";

  [[nodiscard]] std::string line() const {
    return ticket_created_at + "," + requester_id + "," + comment_part_id + "," + conversation_id + "," +
           comment_public + "," + body + "," + comment_created_at + "," + author_id + "," + name + "," + email + "\n";
  }
};

/// `csv` read with the project's reader (one thread, chunks in order) and classified
/// into one result; `chunk_bytes` splits it into many chunks when small.
classified_chunk classify(const std::string& csv, std::size_t max_text_json_bytes = tixport::kMaxTextJsonBytes,
                          std::size_t chunk_bytes = 4u << 20) {
  const auto header = tixport::read_csv_header(csv);
  REQUIRE(header.has_value());
  const export_columns columns = export_columns::resolve(*header);
  tixport::csv_read_options options;
  options.threads = 1;
  options.ordered = true;
  options.chunk_bytes = chunk_bytes;
  options.keep_escaped_field = columns.body;  // as the run reads the export
  classified_chunk out;
  (void)tixport::read_csv_records(csv, *header, options, [&](tixport::csv_chunk&& chunk) {
    tixport::classify_chunk(chunk, columns, out, max_text_json_bytes);
  });
  return out;
}

classified_chunk classify_rows(std::initializer_list<row_fields> rows) {
  std::string lines;
  for (const row_fields& r : rows) lines += r.line();
  return classify(export_csv(lines));
}

/// Comment `i`'s fields read back from `csv` (classified with the header's column order) as
/// the serializer reads them.
tixport::comment_fields fields_of(const std::string& csv, const classified_chunk& out, std::size_t i, std::string& raw) {
  const auto header = tixport::read_csv_header(csv);
  REQUIRE(header.has_value());
  const export_columns columns = export_columns::resolve(*header);
  const auto source = tixport::comment_source::of(csv, header->fields.size(), columns);
  return tixport::read_comment_fields(source, tixport::comment_candidate::of(out.comments.at(i)), raw);
}

/// The issues `log` counted, with their counts, as "name=count" in row_issue order.
std::vector<std::string> counted(const classified_chunk& out) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < tixport::kRowIssueCount; ++i) {
    const auto issue = static_cast<row_issue>(i);
    if (const std::uint64_t n = out.log.count(issue); n != 0) {
      names.push_back(std::string(tixport::row_issue_name(issue)) + "=" + std::to_string(n));
    }
  }
  return names;
}

}  // namespace

TEST_CASE("a valid row is a comment, a ticket and a user candidate, with its fields typed", "[row_classifier]") {
  row_fields r;
  r.body = "\"<p>Hi, there</p>\"";
  r.comment_public = "No";
  const classified_chunk out = classify_rows({r});
  CHECK(counted(out).empty());
  CHECK(out.rows == 1);
  CHECK(out.valid_comment_rows == 1);
  CHECK(out.valid_ticket_rows == 1);
  CHECK(out.user_candidate_rows == 1);
  REQUIRE(out.max_id.has_value());
  CHECK(*out.max_id == 5);

  REQUIRE(out.comments.size() == 1);
  const tixport::comment_row& c = out.comments[0];
  CHECK(c.id == 1);
  CHECK_FALSE(c.is_public);
  CHECK(c.line == 2);
  CHECK(c.offset == tixport::test::kExportHeader.size());
  // The other fields are read again from the record at write time; a body without "" is a
  // view of its unquoted bytes in the file.
  const std::string csv = export_csv(r.line());
  std::string raw;
  const tixport::comment_fields text = fields_of(csv, out, 0, raw);
  CHECK(text.ticket_id == 10);
  CHECK(text.author_id == 5);
  CHECK(text.body_in_place);
  CHECK(text.body == "<p>Hi, there</p>");
  CHECK(text.body.data() == csv.data() + csv.find("<p>Hi"));
  CHECK(text.created_at == 1609459201);  // 2021-01-01T00:00:01Z

  REQUIRE(out.tickets.count(10) == 1);
  const tixport::ticket_candidate& t = out.tickets.at(10);
  CHECK(t.id == 10);
  CHECK(t.requester_id == 5);
  CHECK(t.created_at == 1609459200);
  CHECK(t.line == 2);

  REQUIRE(out.users.count("ann@x.org") == 1);
  const tixport::user_candidate& u = out.users.find(std::string_view("ann@x.org"))->second;
  CHECK(u.author_id == 5);
  CHECK(u.name == "Ann");
  CHECK(u.email == "ann@x.org");
  CHECK_FALSE(u.name_repaired);
  CHECK_FALSE(u.email_repaired);
  REQUIRE(out.authors.count(5) == 1);
  CHECK(out.authors.at(5).email_key == "ann@x.org");
  CHECK_FALSE(out.authors.at(5).conflict);
}

TEST_CASE("a comment is rejected for its first invalid field, in SPEC 2.3's order", "[row_classifier]") {
  struct reject_case {
    const char* what;
    row_fields row;
    std::vector<std::string> issues;  ///< every count the row makes
  };
  auto with = [](auto change) {
    row_fields r;
    change(r);
    return r;
  };
  const std::vector<reject_case> cases = {
      {"COMMENT_PART_ID not a number", with([](row_fields& r) { r.comment_part_id = "x1"; }),
       {"comment_invalid_id=1"}},
      {"COMMENT_PART_ID empty", with([](row_fields& r) { r.comment_part_id = ""; }), {"comment_invalid_id=1"}},
      {"COMMENT_PART_ID 1.5", with([](row_fields& r) { r.comment_part_id = "1.5"; }), {"comment_invalid_id=1"}},
      {"COMMENT_PART_ID over int64", with([](row_fields& r) { r.comment_part_id = "9223372036854775808"; }),
       {"comment_invalid_id=1"}},
      {"COMMENT_PART_ID and CONVERSATION_ID both bad: the first column names it",
       with([](row_fields& r) {
         r.comment_part_id = "+1";
         r.conversation_id = "?";
       }),
       {"comment_invalid_id=1", "ticket_invalid_id=1"}},
      {"CONVERSATION_ID bad: no comment and no ticket", with([](row_fields& r) { r.conversation_id = "1e3"; }),
       {"comment_invalid_ticket_id=1", "ticket_invalid_id=1"}},
      {"AUTHOR_ID bad: no comment and no user", with([](row_fields& r) { r.author_id = "-"; }),
       {"comment_invalid_author_id=1", "user_invalid_author_id=1"}},
      {"COMMENT_PUBLIC not a boolean", with([](row_fields& r) { r.comment_public = "maybe"; }),
       {"comment_invalid_public=1"}},
      {"COMMENT_PUBLIC empty", with([](row_fields& r) { r.comment_public = ""; }), {"comment_invalid_public=1"}},
      {"COMMENT_CREATED_AT not a time", with([](row_fields& r) { r.comment_created_at = "yesterday"; }),
       {"comment_invalid_created_at=1"}},
      {"COMMENT_CREATED_AT not a calendar day",
       with([](row_fields& r) { r.comment_created_at = "2021-02-29 00:00:00"; }), {"comment_invalid_created_at=1"}},
      {"BODY empty", with([](row_fields& r) { r.body = ""; }), {"comment_null_body=1"}},
      {"BODY only white space", with([](row_fields& r) { r.body = "\" \t \""; }), {"comment_null_body=1"}},
  };
  for (const reject_case& c : cases) {
    INFO(c.what);
    const classified_chunk out = classify_rows({c.row});
    CHECK(counted(out) == c.issues);
    CHECK(out.rows == 1);
    CHECK(out.comments.empty());
    CHECK(out.valid_comment_rows == 0);
  }
}

TEST_CASE("a ticket is rejected for its first invalid field, in SPEC 2.4's order", "[row_classifier]") {
  row_fields bad_requester;
  bad_requester.requester_id = "five";
  row_fields bad_created;
  bad_created.ticket_created_at = "2021-13-01 00:00:00";
  row_fields both;
  both.requester_id = "";
  both.ticket_created_at = "";

  for (const auto& [what, row, issue] :
       {std::tuple{"TICKET_REQUESTER_ID", bad_requester, "ticket_invalid_requester_id=1"},
        std::tuple{"TICKET_CREATED_AT", bad_created, "ticket_invalid_created_at=1"},
        std::tuple{"both: the requester names it", both, "ticket_invalid_requester_id=1"}}) {
    INFO(what);
    const classified_chunk out = classify_rows({row});
    CHECK(counted(out) == std::vector<std::string>{issue});
    CHECK(out.tickets.empty());
    CHECK(out.valid_ticket_rows == 0);
    // The comment and the user of the row do not depend on the ticket's fields.
    CHECK(out.valid_comment_rows == 1);
    CHECK(out.user_candidate_rows == 1);
  }
}

TEST_CASE("a user candidate needs a valid AUTHOR_ID, a NAME and a valid EMAIL (SPEC 2.1)", "[row_classifier]") {
  struct user_case {
    const char* name;
    const char* email;
    const char* issue;  ///< nullptr: a candidate
  };
  const std::vector<user_case> cases = {
      {"", "ann@x.org", "user_null_name=1"},
      {"\" \t\"", "ann@x.org", "user_null_name=1"},
      {"Ann", "", "user_invalid_email=1"},
      {"Ann", "ann.x.org", "user_invalid_email=1"},
      {"Ann", "a@b@x.org", "user_invalid_email=1"},
      {"Ann", "@x.org", "user_invalid_email=1"},
      {"Ann", "ann@", "user_invalid_email=1"},
      {"Ann", "\"an n@x.org\"", "user_invalid_email=1"},
      {"\" Ann \"", "\"  ann@x.org \"", nullptr},  // trimmed, then valid
  };
  for (const user_case& c : cases) {
    INFO("NAME [" << c.name << "] EMAIL [" << c.email << "]");
    row_fields r;
    r.name = c.name;
    r.email = c.email;
    const classified_chunk out = classify_rows({r});
    // The comment and the ticket are kept whatever the user fields hold.
    CHECK(out.valid_comment_rows == 1);
    CHECK(out.valid_ticket_rows == 1);
    if (c.issue) {
      CHECK(counted(out) == std::vector<std::string>{c.issue});
      CHECK(out.users.empty());
      CHECK(out.authors.empty());
      CHECK(out.user_candidate_rows == 0);
    } else {
      CHECK(counted(out).empty());
      REQUIRE(out.users.size() == 1);
      CHECK(out.users.begin()->second.name == "Ann");
      CHECK(out.users.begin()->second.email == "ann@x.org");
    }
  }
}

TEST_CASE("email keys are lower case: mixed-case emails are one user, the first row's spelling kept",
          "[row_classifier]") {
  row_fields first;
  first.email = "Ann@Example.COM";
  row_fields second = first;
  second.comment_part_id = "2";
  second.email = "ann@example.com";
  second.name = "Annie";
  const classified_chunk out = classify_rows({first, second});
  CHECK(counted(out) == std::vector<std::string>{"duplicate_ticket=1", "duplicate_user_row=1"});
  CHECK(out.user_candidate_rows == 2);
  REQUIRE(out.users.size() == 1);
  const auto& [key, user] = *out.users.begin();
  CHECK(key == "ann@example.com");
  CHECK(user.email == "Ann@Example.COM");
  CHECK(user.name == "Ann");
  CHECK(user.line == 2);
  // Same chat id, same key: no conflict.
  REQUIRE(out.authors.size() == 1);
  CHECK_FALSE(out.authors.at(5).conflict);
}

TEST_CASE("a chat id seen with two email keys is marked as a conflict on its first row", "[row_classifier]") {
  row_fields first;
  row_fields second;
  second.comment_part_id = "2";
  second.email = "other@x.org";
  const classified_chunk out = classify_rows({first, second});
  CHECK(out.users.size() == 2);
  REQUIRE(out.authors.size() == 1);
  const tixport::author_candidate& a = out.authors.at(5);
  CHECK(a.email_key == "ann@x.org");
  CHECK(a.line == 2);
  CHECK(a.conflict);
}

TEST_CASE("in a chunk the first ticket row wins; comments are all kept for the deduplicator", "[row_classifier]") {
  row_fields a;
  row_fields b;
  b.comment_part_id = "2";
  b.requester_id = "6";  // a later row of ticket 10 with another requester: a duplicate, not a change
  row_fields c;
  c.comment_part_id = "1";  // the same comment id again: left to row_deduplicator
  c.conversation_id = "11";
  const classified_chunk out = classify_rows({a, b, c});
  CHECK(counted(out) == std::vector<std::string>{"duplicate_ticket=1", "duplicate_user_row=2"});
  CHECK(out.valid_ticket_rows == 3);
  REQUIRE(out.tickets.size() == 2);
  CHECK(out.tickets.at(10).requester_id == 5);
  CHECK(out.tickets.at(10).line == 2);
  REQUIRE(out.comments.size() == 3);
  CHECK(out.comments[0].line == 2);
  CHECK(out.comments[1].line == 3);
  CHECK(out.comments[2].line == 4);
  CHECK(out.comments[2].id == 1);
  REQUIRE(out.max_id.has_value());
  CHECK(*out.max_id == 6);  // the largest of AUTHOR_ID and TICKET_REQUESTER_ID, valid or not as a ticket
}

TEST_CASE("ids as the field parser defines them: leading zeros, .0, negative", "[row_classifier]") {
  row_fields r;
  r.comment_part_id = "007";
  r.conversation_id = "10.0";
  r.author_id = "-3";
  r.requester_id = " 4 ";
  const classified_chunk out = classify_rows({r});
  CHECK(counted(out).empty());
  REQUIRE(out.comments.size() == 1);
  CHECK(out.comments[0].id == 7);
  // Read again at write time with the same parser: the same values.
  std::string raw;
  const tixport::comment_fields fields = fields_of(export_csv(r.line()), out, 0, raw);
  CHECK(fields.ticket_id == 10);
  CHECK(fields.author_id == -3);
  CHECK(out.tickets.at(10).requester_id == 4);
  CHECK(*out.max_id == 4);
}

TEST_CASE("timestamps with a T, a fraction and an offset are normalised to UTC seconds", "[row_classifier]") {
  row_fields r;
  r.comment_created_at = "2021-01-01T10:01:00.75+01:00";
  r.ticket_created_at = "2021-01-01T00:00:00Z";
  const std::string csv = export_csv(r.line());
  const classified_chunk out = classify(csv);
  CHECK(counted(out).empty());
  REQUIRE(out.comments.size() == 1);
  std::string raw;
  CHECK(fields_of(csv, out, 0, raw).created_at == 1609459200 + 9 * 3600 + 60);  // 09:01:00Z
  CHECK(out.tickets.at(10).created_at == 1609459200);
}

TEST_CASE("a malformed record is counted at its line and is no row", "[row_classifier]") {
  row_fields good;
  const classified_chunk out = classify(export_csv("only,three,fields\n" + good.line()));
  CHECK(counted(out) == std::vector<std::string>{"malformed_record=1"});
  CHECK(out.log.samples(row_issue::malformed_record) == std::vector<std::uint64_t>{2});
  CHECK(out.rows == 1);
  REQUIRE(out.comments.size() == 1);
  CHECK(out.comments[0].line == 3);
}

TEST_CASE("a body that held \"\" is not in place: it is re-read from its record", "[row_classifier]") {
  row_fields r;
  r.body = "\"say \"\"hi\"\"\"";
  // Bytes after a closing quote are kept (SPEC 1.1): an owned copy that is still a timestamp.
  r.comment_created_at = "\"2021-01-01 00:00\":01";
  const std::string csv = export_csv(r.line());
  const classified_chunk out = classify(csv);
  REQUIRE(out.comments.size() == 1);
  std::string raw;
  const tixport::comment_fields text = fields_of(csv, out, 0, raw);
  CHECK_FALSE(text.body_in_place);
  CHECK(text.body == "say \"hi\"");
  CHECK(text.body.data() == raw.data());
  CHECK(text.created_at == 1609459201);
}

TEST_CASE("a comment's text is re-read from its record wherever BODY and COMMENT_CREATED_AT are",
          "[row_classifier]") {
  // BODY last and COMMENT_CREATED_AT first, a quoted body with a comma, a CRLF line end.
  const std::string csv =
      "COMMENT_CREATED_AT,TICKET_CREATED_AT,TICKET_REQUESTER_ID,COMMENT_PART_ID,CONVERSATION_ID,COMMENT_PUBLIC,"
      "AUTHOR_ID,NAME,EMAIL,BODY\r\n"
      "2021-01-01 00:00:05,2021-01-01 00:00:00,5,1,10,true,5,Ann,ann@x.org,\"a, b\"\r\n"
      "2021-01-01 00:00:06,2021-01-01 00:00:00,5,2,10,false,5,Ann,ann@x.org,plain\r\n";
  const auto header = tixport::read_csv_header(csv);
  REQUIRE(header.has_value());
  const export_columns columns = export_columns::resolve(*header);
  const classified_chunk out = classify(csv);
  REQUIRE(out.comments.size() == 2);
  const auto source = tixport::comment_source::of(csv, 10, columns);
  std::string raw;
  const tixport::comment_fields first =
      tixport::read_comment_fields(source, tixport::comment_candidate::of(out.comments[0]), raw);
  CHECK(first.body == "a, b");
  CHECK(first.id == 1);
  CHECK(first.body_in_place);
  CHECK(first.created_at == 1609459205);
  CHECK(first.ticket_id == 10);
  CHECK(first.author_id == 5);
  const tixport::comment_fields second =
      tixport::read_comment_fields(source, tixport::comment_candidate::of(out.comments[1]), raw);
  CHECK(second.body == "plain");  // the CR of the CRLF is not content
  CHECK(second.id == 2);
  CHECK(tixport::read_comment_id(source, tixport::comment_candidate::of(out.comments[1])) == 2);
  const std::vector<tixport::comment_candidate> both = {tixport::comment_candidate::of(out.comments[0]),
                                                        tixport::comment_candidate::of(out.comments[1])};
  CHECK(tixport::read_comment_ids(source, both) == std::vector<std::int64_t>{1, 2});
  CHECK(second.created_at == 1609459206);
}

TEST_CASE("texts over the JSON size limit: the comment or the user is rejected, the rest kept", "[row_classifier]") {
  // A limit of 16 JSON bytes: "hello" is 7, a 15-byte body with its quotes is 17.
  constexpr std::size_t kLimit = 16;
  row_fields big_body;
  big_body.body = std::string(15, 'b');
  row_fields big_user;
  big_user.comment_part_id = "2";
  big_user.author_id = "6";
  big_user.name = "Bo";
  big_user.email = "bo@example.org";  // 2 + 2 and 14 + 2: 20 > 16
  row_fields escaped;
  escaped.comment_part_id = "3";
  escaped.author_id = "7";
  escaped.email = "c@x.org";
  escaped.name = "C";
  escaped.body = "\"\x01\x01\x01\"";  // 3 bytes, each \u0001 in JSON: 20 > 16
  const classified_chunk out = classify(export_csv(big_body.line() + big_user.line() + escaped.line()), kLimit);
  CHECK(counted(out) == std::vector<std::string>{"comment_too_large=2", "user_too_large=1", "duplicate_ticket=2"});
  REQUIRE(out.comments.size() == 1);
  CHECK(out.comments[0].id == 2);
  CHECK(out.users.count("ann@x.org") == 1);
  CHECK(out.users.count("bo@example.org") == 0);
  CHECK(out.users.count("c@x.org") == 1);
}

TEST_CASE("a BODY left escaped by the reader is measured and tested by its text", "[row_classifier]") {
  // A limit of 16 JSON bytes. Five quotes are 12 JSON bytes as text ("\"\"\"\"\""), but their
  // escaped form, ten quotes, would be 22; eight quotes are 18 either way.
  constexpr std::size_t kLimit = 16;
  const auto quoted = [](std::size_t quotes) { return "\"" + std::string(2 * quotes, '"') + "\""; };
  row_fields five;
  five.body = quoted(5);
  row_fields eight;
  eight.comment_part_id = "2";
  eight.body = quoted(8);
  row_fields spaces_and_pair;
  spaces_and_pair.comment_part_id = "3";
  spaces_and_pair.body = "\"  \"\"  \"";  // not white space only: it holds a quote
  row_fields spaces;
  spaces.comment_part_id = "4";
  spaces.body = "\"   \"";
  const std::string csv = export_csv(five.line() + eight.line() + spaces_and_pair.line() + spaces.line());
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{4} << 20}) {
    INFO("chunk " << chunk);
    const classified_chunk out = classify(csv, kLimit, chunk);
    CHECK(counted(out) == std::vector<std::string>{"comment_null_body=1", "comment_too_large=1", "duplicate_ticket=3",
                                                   "duplicate_user_row=3"});
    REQUIRE(out.comments.size() == 2);
    CHECK(out.comments[0].id == 1);
    CHECK(out.comments[1].id == 3);
    std::string raw;
    CHECK(fields_of(csv, out, 0, raw).body == std::string(5, '"'));
  }
}

TEST_CASE("invalid UTF-8 in NAME and EMAIL is repaired in the candidate and flagged", "[row_classifier]") {
  row_fields r;
  r.name = "Zo\xff";
  r.email = "z\xfe@x.org";
  const classified_chunk out = classify_rows({r});
  REQUIRE(out.users.size() == 1);
  const tixport::user_candidate& u = out.users.begin()->second;
  CHECK(u.name == "Zo\xEF\xBF\xBD");
  CHECK(u.email == "z\xEF\xBF\xBD@x.org");
  CHECK(u.name_repaired);
  CHECK(u.email_repaired);
  CHECK(out.users.begin()->first == "z\xEF\xBF\xBD@x.org");
}

TEST_CASE("the result does not depend on how the export is cut into chunks", "[row_classifier]") {
  std::string rows;
  for (int i = 0; i < 40; ++i) {
    row_fields r;
    r.comment_part_id = std::to_string(i % 17);
    r.conversation_id = std::to_string(100 + i % 5);
    r.author_id = std::to_string(i % 7);
    // Built by appends: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
    r.email = std::to_string(i % 9);
    r.email.insert(0, 1, 'u');
    r.email += i % 2 ? "@X.org" : "@x.org";
    if (i % 11 == 0) r.comment_created_at = "bad";
    if (i % 13 == 0) r.body = "\"multi\nline\"";
    rows += r.line();
  }
  const std::string csv = export_csv(rows);
  const classified_chunk whole = classify(csv);
  for (const std::size_t chunk_bytes : {1, 37, 500}) {
    INFO("chunk_bytes " << chunk_bytes);
    const classified_chunk cut = classify(csv, tixport::kMaxTextJsonBytes, chunk_bytes);
    CHECK(counted(cut) == counted(whole));
    CHECK(cut.rows == whole.rows);
    REQUIRE(cut.comments.size() == whole.comments.size());
    for (std::size_t k = 0; k < cut.comments.size(); ++k) CHECK(cut.comments[k].offset == whole.comments[k].offset);
    CHECK(cut.tickets.size() == whole.tickets.size());
    CHECK(cut.users.size() == whole.users.size());
    CHECK(cut.authors.size() == whole.authors.size());
  }
}

TEST_CASE("export_columns::resolve finds the columns by name, in any order and case", "[row_classifier]") {
  const std::string csv =
      "email,NAME,author_id,COMMENT_CREATED_AT,BODY,COMMENT_PUBLIC,CONVERSATION_ID,COMMENT_PART_ID,"
      "TICKET_REQUESTER_ID,TICKET_CREATED_AT\n";
  const auto header = tixport::read_csv_header(csv);
  REQUIRE(header.has_value());
  const export_columns c = export_columns::resolve(*header);
  CHECK(c.email == 0);
  CHECK(c.name == 1);
  CHECK(c.author_id == 2);
  CHECK(c.comment_created_at == 3);
  CHECK(c.body == 4);
  CHECK(c.comment_public == 5);
  CHECK(c.conversation_id == 6);
  CHECK(c.comment_part_id == 7);
  CHECK(c.ticket_requester_id == 8);
  CHECK(c.ticket_created_at == 9);

  const auto missing = tixport::read_csv_header(std::string_view("TICKET_CREATED_AT,BODY\n"));
  REQUIRE(missing.has_value());
  CHECK_THROWS_AS(export_columns::resolve(*missing), tixport::fatal_error);
}

TEST_CASE("a TICKET_CREATED_AT repeated row after row, valid or not, counts as each row's own",
          "[row_classifier]") {
  // The classifier keeps the last text it parsed: runs of the same text, an invalid one among
  // them, a change of text and a return to an earlier one must count as parsing every row.
  const auto row = [](std::string conversation, std::string created) {
    row_fields r;
    r.conversation_id = std::move(conversation);
    r.ticket_created_at = std::move(created);
    return r;
  };
  const classified_chunk out = classify_rows({row("10", "2021-01-01 00:00:05"), row("10", "2021-01-01 00:00:05"),
                                              row("20", "2021-13-01 00:00:00"), row("20", "2021-13-01 00:00:00"),
                                              row("20", "2021-01-02 00:00:00"), row("30", "2021-01-01 00:00:05"),
                                              row("40", "2021-01-03 00:00:00")});
  REQUIRE(out.tickets.size() == 4);
  CHECK(out.tickets.at(10).created_at == 1609459205);
  CHECK(out.tickets.at(20).created_at == 1609545600);
  CHECK(out.tickets.at(20).line == 6);
  CHECK(out.tickets.at(30).created_at == 1609459205);
  CHECK(out.tickets.at(40).created_at == 1609632000);
  CHECK(out.log.count(row_issue::ticket_invalid_created_at) == 2);
  CHECK(out.log.samples(row_issue::ticket_invalid_created_at) == std::vector<std::uint64_t>{4, 5});
  CHECK(out.log.count(row_issue::duplicate_ticket) == 1);
}

TEST_CASE("repeated ticket and user fields take the outcome their first row had, as if each row were parsed",
          "[row_classifier]") {
  // The classifier remembers the last row's ticket fields and users' fields (by text, in 256
  // slots picked by the author) with what they came to. The same random rows are classified
  // twice: spelled alike
  // (the remembered outcomes are used) and with every repeat spelled differently but meaning
  // the same (leading zeros, blanks around NAME and EMAIL, a T in the timestamp), so that
  // each row is parsed and probed. Both must give the same result.
  struct ticket_pick {
    const char* conversation;
    const char* requester;
    const char* created_at;
  };
  const std::vector<ticket_pick> tickets = {{"10", "5", "2021-01-01 00:00:05"}, {"20", "6", "2021-01-02 00:00:00"},
                                            {"10", "7", "2021-01-01 00:00:05"}, {"x", "5", "2021-01-01 00:00:05"},
                                            {"30", "", "2021-01-01 00:00:05"},  {"40", "5", "2021-13-01 00:00:00"}};
  struct user_pick {
    const char* author;
    const char* name;
    const char* email;
  };
  const std::vector<user_pick> users = {
      {"5", "Ann", "ann@x.org"},  {"6", "Bob", "bob@x.org"}, {"5", "Ann", "ANN@x.org"},  {"7", "Cy", "ann@x.org"},
      {"8", "", "dee@x.org"},     {"9", "Eve", "not-an-email"}, {"y", "Fay", "fay@x.org"},
      {"11", "Gus", "gus-with-a-long-address@x.org"},
      // Authors 238 and 615 share author 5's slot, 239 shares author 6's: they evict each other.
      {"238", "Hal", "hal@x.org"}, {"615", "Ivy", "ann@x.org"}, {"239", "Jo", "JO@x.org"}, {"239", "", "jo@x.org"}};
  std::mt19937_64 rng(5);
  for (int iter = 0; iter < 200; ++iter) {
    std::string plain;
    std::string spelled;
    const std::size_t rows = 1 + rng() % 40;
    std::size_t t = rng() % tickets.size();
    std::size_t u = rng() % users.size();
    for (std::size_t r = 0; r < rows; ++r) {
      if (rng() % 3 == 0) t = rng() % tickets.size();  // runs of one conversation
      if (rng() % 2 == 0) u = rng() % users.size();
      row_fields row;
      row.comment_part_id = std::to_string(r + 1);
      row.conversation_id = tickets[t].conversation;
      row.requester_id = tickets[t].requester;
      row.ticket_created_at = tickets[t].created_at;
      row.author_id = users[u].author;
      row.name = users[u].name;
      row.email = users[u].email;
      plain += row.line();
      if (r % 2 == 1) {  // the same meaning, another text
        row.conversation_id = "0" + row.conversation_id;
        if (!row.requester_id.empty()) row.requester_id = "0" + row.requester_id;
        row.ticket_created_at[10] = 'T';
        row.author_id = "0" + row.author_id;
        row.name = " " + row.name + " ";
        row.email = " " + row.email;
      }
      spelled += row.line();
    }
    INFO("export:\n" << plain);
    constexpr std::size_t kSmallTextLimit = 40;  // Gus's name and email are too large together
    const classified_chunk a = classify(export_csv(plain), kSmallTextLimit);
    const classified_chunk b = classify(export_csv(spelled), kSmallTextLimit);
    CHECK(counted(a) == counted(b));
    for (std::size_t i = 0; i < tixport::kRowIssueCount; ++i) {
      CHECK(a.log.samples(static_cast<row_issue>(i)) == b.log.samples(static_cast<row_issue>(i)));
    }
    CHECK(a.valid_ticket_rows == b.valid_ticket_rows);
    CHECK(a.user_candidate_rows == b.user_candidate_rows);
    CHECK(a.comments.size() == b.comments.size());
    REQUIRE(a.tickets.size() == b.tickets.size());
    for (const auto& [id, x] : a.tickets) {
      REQUIRE(b.tickets.count(id) == 1);
      const auto& y = b.tickets.at(id);
      CHECK(std::tie(x.line, x.requester_id, x.created_at) == std::tie(y.line, y.requester_id, y.created_at));
    }
    REQUIRE(a.users.size() == b.users.size());
    for (const auto& [key, x] : a.users) {
      REQUIRE(b.users.count(key) == 1);
      const auto& y = b.users.at(key);
      CHECK(std::tie(x.line, x.author_id, x.name, x.email) == std::tie(y.line, y.author_id, y.name, y.email));
    }
    REQUIRE(a.authors.size() == b.authors.size());
    for (const auto& [id, x] : a.authors) {
      REQUIRE(b.authors.count(id) == 1);
      const auto& y = b.authors.at(id);
      CHECK(std::tie(x.line, x.email_key, x.conflict) == std::tie(y.line, y.email_key, y.conflict));
    }
    CHECK(a.max_id == b.max_id);
  }
}
