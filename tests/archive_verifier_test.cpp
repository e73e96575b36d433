// File: archive_verifier_test.cpp
//
// Tests of `tixport verify` (archive_verifier): archives are built here with
// libarchive (tar, tar.gz, tar.zst) around hand-written JSON, one test per
// check, plus hostile archives (truncated streams, path tricks, links,
// oversized entries, garbage, deep nesting, invalid UTF-8).
#include "tixport/archive/archive_verifier.hpp"

#include "support/test_support.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/index/user_index_csv.hpp"
#include "tixport/run/migration_pipeline.hpp"
#include "tixport/run/reject_log.hpp"
#include "tixport/generate/sample_generator.hpp"
#include "tixport/index/user_index.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using tixport::verify_options;
using tixport::verify_result;
using tixport::test::read_file;
using tixport::test::temp_dir;
using tixport::test::write_file;

namespace {

enum class compression { none, gzip, zstd };

struct entry_spec {
  std::string name;            ///< path inside the archive
  std::string content;         ///< data of a regular file
  unsigned type = AE_IFREG;    ///< AE_IFREG, AE_IFDIR, AE_IFLNK
};

void write_archive(const fs::path& path, compression comp, const std::vector<entry_spec>& entries) {
  archive* a = archive_write_new();
  REQUIRE(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
  if (comp == compression::gzip) REQUIRE(archive_write_add_filter_gzip(a) == ARCHIVE_OK);
  if (comp == compression::zstd) REQUIRE(archive_write_add_filter_zstd(a) == ARCHIVE_OK);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (const entry_spec& spec : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, spec.name.c_str());
    archive_entry_set_filetype(e, spec.type);
    archive_entry_set_perm(e, spec.type == AE_IFDIR ? 0755 : 0644);
    if (spec.type == AE_IFLNK) archive_entry_set_symlink(e, "/etc/passwd");
    archive_entry_set_size(e, spec.type == AE_IFREG ? static_cast<la_int64_t>(spec.content.size()) : 0);
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    if (spec.type == AE_IFREG && !spec.content.empty()) {
      REQUIRE(archive_write_data(a, spec.content.data(), spec.content.size()) ==
              static_cast<la_ssize_t>(spec.content.size()));
    }
    archive_entry_free(e);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

// --- JSON builders for hand-written batches (SPEC 2.3, 2.4, 2.6) ---

std::string ticket(long long id, long long requester, const std::string& created = "2024-01-02T03:04:05Z") {
  return R"({"created_at":")" + created + R"(","requester_id":)" + std::to_string(requester) +
         R"(,"id":)" + std::to_string(id) + "}";
}

std::string comment(long long id, long long ticket_id, long long author, const std::string& body = "hello",
                    const std::string& is_public = "true") {
  return R"({"created_at":"2024-01-02T03:04:06Z","ticket_id":)" + std::to_string(ticket_id) + R"(,"id":)" +
         std::to_string(id) + R"(,"public":)" + is_public + R"(,"html_body":")" + body + R"(","author_id":)" +
         std::to_string(author) + "}";
}

std::string user(long long id, const std::string& name, const std::string& email) {
  return R"({"name":")" + name + R"(","id":)" + std::to_string(id) + R"(,"email":")" + email + R"("})";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

std::string batch(const std::vector<std::string>& tickets, const std::vector<std::string>& comments,
                  const std::vector<std::string>& users, const std::string& organizations = "[]") {
  return R"({"data":{"tickets":{"data":[)" + join(tickets) + R"(],"comments":[)" + join(comments) +
         R"(],"users":[)" + join(users) + R"(],"organizations":)" + organizations + "}}}";
}

/// A valid two-batch archive (B = 2): references cross the batch boundary.
std::vector<entry_spec> valid_entries() {
  return {
      {"backup_tickets_2.json",
       batch({ticket(1, 10), ticket(2, 11)}, {comment(100, 1, 10), comment(101, 3, 12)},
             {user(10, "Ann", "ann@example.org"), user(11, "Bob", "bob@example.org")})},
      {"backup_tickets_4.json", batch({ticket(3, 12)}, {comment(102, 2, 11)}, {user(12, "Cy", "cy@example.org")})},
  };
}

verify_result verify(const fs::path& path, std::size_t keep = 20, unsigned threads = 2) {
  verify_options options;
  options.archive = path;
  options.max_problems_listed = keep;
  options.threads = threads;
  return tixport::verify_archive(options);
}

/// Verify a one-off .tar of `entries`.
verify_result verify_entries(const std::vector<entry_spec>& entries, std::size_t keep = 20) {
  temp_dir dir;
  write_archive(dir / "a.tar", compression::none, entries);
  return verify(dir / "a.tar", keep);
}

/// The archive holds exactly one problem, of `kind`, at `entry` and `path`.
void require_single_problem(const verify_result& r, const std::string& kind, const std::string& entry,
                            const std::string& path) {
  INFO("problems: " << r.problems_by_kind.size());
  for (const auto& p : r.first_problems) INFO(p.entry << " " << p.json_path << ": " << p.kind << ": " << p.message);
  CHECK_FALSE(r.valid);
  REQUIRE(r.first_problems.size() == 1);
  CHECK(r.problems_by_kind == std::map<std::string, std::uint64_t>{{kind, 1}});
  CHECK(r.first_problems[0].kind == kind);
  CHECK(r.first_problems[0].entry == entry);
  CHECK(r.first_problems[0].json_path == path);
}

/// One batch, index numbering, holding ticket 1 (requester 10), comment 100 and user 10,
/// with `replace` applied to the text (to plant one problem).
std::string one_batch(const std::string& from = "", const std::string& to = "") {
  std::string text = batch({ticket(1, 10)}, {comment(100, 1, 10)}, {user(10, "Ann", "ann@example.org")});
  if (!from.empty()) {
    const auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, from.size(), to);
  }
  return text;
}

verify_result verify_one(const std::string& content) {
  return verify_entries({{"backup_tickets_1.json", content}});
}

/// A 512-byte ustar header; `size_field` is the raw 12-byte size field.
std::string ustar_header(const std::string& name, const std::string& size_field) {
  std::string h(512, '\0');
  h.replace(0, name.size(), name);
  h.replace(100, 8, std::string("0000644\0", 8));
  h.replace(108, 8, std::string("0000000\0", 8));
  h.replace(116, 8, std::string("0000000\0", 8));
  h.replace(124, 12, size_field);
  h.replace(136, 12, std::string("00000000000\0", 12));
  h[156] = '0';
  h.replace(257, 6, std::string("ustar\0", 6));
  h.replace(263, 2, "00");
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (const char c : h) sum += static_cast<unsigned char>(c);
  char chk[8];
  std::snprintf(chk, sizeof chk, "%06o", sum);
  h.replace(148, 8, std::string(chk, 6) + std::string("\0 ", 2));
  return h;
}

}  // namespace

TEST_CASE("a valid archive verifies in every format, detected from the content", "[archive_verifier]") {
  temp_dir dir;
  const auto entries = valid_entries();
  std::uint64_t expected_bytes = 0;
  for (const auto& e : entries) expected_bytes += e.content.size();
  for (const auto comp : {compression::none, compression::gzip, compression::zstd}) {
    // A misleading name: the format must come from the bytes.
    const fs::path path = dir / "archive.bin";
    write_archive(path, comp, entries);
    const verify_result r = verify(path);
    CHECK(r.valid);
    CHECK(r.entries == 2);
    CHECK(r.tickets == 3);
    CHECK(r.comments == 3);
    CHECK(r.users == 3);
    CHECK(r.bytes == expected_bytes);
    CHECK(r.problems_by_kind.empty());
    CHECK(r.first_problems.empty());
  }
}

TEST_CASE("an archive without entries is valid (K = 0)", "[archive_verifier]") {
  for (const auto comp : {compression::none, compression::zstd}) {
    temp_dir dir;
    write_archive(dir / "empty.tar", comp, {});
    const verify_result r = verify(dir / "empty.tar");
    CHECK(r.valid);
    CHECK(r.entries == 0);
    CHECK(r.tickets == 0);
  }
}

TEST_CASE("index numbering 1, 2, 3 is accepted with up to 100 per array", "[archive_verifier]") {
  std::vector<std::string> tickets;
  std::vector<std::string> comments;
  for (int i = 1; i <= 100; ++i) {
    tickets.push_back(ticket(i, 10));
    comments.push_back(comment(1000 + i, i, 10));
  }
  const verify_result r = verify_entries({
      {"backup_tickets_1.json", batch(tickets, comments, {user(10, "Ann", "ann@example.org")})},
      {"backup_tickets_2.json", batch({ticket(101, 10)}, {}, {})},
      {"backup_tickets_3.json", batch({ticket(102, 10)}, {}, {})},
  });
  CHECK(r.valid);
  CHECK(r.entries == 3);
  CHECK(r.tickets == 102);
  CHECK(r.comments == 100);
}

TEST_CASE("entry numbering must follow N = k*B or N = k", "[archive_verifier]") {
  SECTION("a gap in the sequence") {
    const verify_result r = verify_entries({
        {"backup_tickets_100.json", one_batch()},
        {"backup_tickets_300.json", batch({}, {}, {})},
    });
    require_single_problem(r, "entry_order", "backup_tickets_300.json", "");
    CHECK(r.first_problems[0].message == "out of order: expected backup_tickets_200.json");
  }
  SECTION("a first entry past 100") {
    const verify_result r = verify_entries({{"backup_tickets_200.json", one_batch()}});
    require_single_problem(r, "entry_order", "backup_tickets_200.json", "");
  }
  SECTION("leading zeros are not the original numbering") {
    const verify_result r = verify_entries({{"backup_tickets_01.json", one_batch()}});
    require_single_problem(r, "entry_name", "backup_tickets_01.json", "");
  }
}

TEST_CASE("entries with other names or below the root are problems", "[archive_verifier]") {
  SECTION("another name") {
    const verify_result r = verify_entries({{"backup_tickets_1.json", one_batch()}, {"notes.txt", "hello"}});
    require_single_problem(r, "entry_name", "notes.txt", "");
  }
  SECTION("a sub-directory") {
    const verify_result r =
        verify_entries({{"backup_tickets_1.json", one_batch()}, {"dir/backup_tickets_2.json", batch({}, {}, {})}});
    require_single_problem(r, "entry_name", "dir/backup_tickets_2.json", "");
  }
}

TEST_CASE("hostile paths: .., absolute, ./ prefix", "[archive_verifier]") {
  for (const std::string name : {"../backup_tickets_1.json", "/backup_tickets_1.json", "./backup_tickets_1.json",
                                 "a/../../backup_tickets_1.json"}) {
    INFO(name);
    // The entry itself is never parsed, so its references do not count.
    const verify_result r = verify_entries({{name, one_batch()}});
    require_single_problem(r, "entry_path", name, "");
    CHECK(r.tickets == 0);
  }
}

TEST_CASE("symlink and directory entries are problems", "[archive_verifier]") {
  const verify_result r = verify_entries({
      {"backup_tickets_1.json", one_batch()},
      {"backup_tickets_2.json", "", AE_IFLNK},
      {"somedir", "", AE_IFDIR},
  });
  CHECK_FALSE(r.valid);
  CHECK(r.entries == 3);
  CHECK(r.problems_by_kind == std::map<std::string, std::uint64_t>{{"entry_type", 2}});
  REQUIRE(r.first_problems.size() == 2);
  CHECK(r.first_problems[0].entry == "backup_tickets_2.json");
  CHECK(r.first_problems[0].message == "not a regular file (symbolic link)");
  CHECK(r.first_problems[1].entry == "somedir/");  // libarchive's pax writer marks directories
  CHECK(r.first_problems[1].message == "not a regular file (directory)");
}

TEST_CASE("structure: exact keys in the exact order at every level", "[archive_verifier]") {
  SECTION("root is not an object") {
    require_single_problem(verify_one("[1,2]"), "structure", "backup_tickets_1.json", "");
  }
  SECTION("an extra top-level key") {
    const std::string text = one_batch();
    require_single_problem(verify_one(text.substr(0, text.size() - 1) + R"(,"more":1})"), "structure",
                           "backup_tickets_1.json", "");
  }
  SECTION("organizations missing") {
    const verify_result r = verify_one(one_batch(R"(,"organizations":[])", ""));
    require_single_problem(r, "structure", "backup_tickets_1.json", "/data/tickets");
    CHECK(r.first_problems[0].message ==
          R"(keys are {"data", "comments", "users"}, expected {"data", "comments", "users", "organizations"})");
  }
  SECTION("comments not an array") {
    const verify_result r = verify_entries(
        {{"backup_tickets_1.json",
          R"({"data":{"tickets":{"data":[],"comments":{},"users":[],"organizations":[]}}})"}});
    require_single_problem(r, "structure", "backup_tickets_1.json", "/data/tickets/comments");
    CHECK(r.first_problems[0].message == "expected an array, found an object");
  }
  SECTION("ticket keys in another order") {
    const verify_result r = verify_one(one_batch(R"({"created_at":"2024-01-02T03:04:05Z","requester_id":10,"id":1})",
                                                 R"({"requester_id":10,"created_at":"2024-01-02T03:04:05Z","id":1})"));
    require_single_problem(r, "structure", "backup_tickets_1.json", "/data/tickets/data/0");
  }
  SECTION("a user with an extra key") {
    const verify_result r = verify_one(one_batch(R"("email":"ann@example.org"})", R"("email":"ann@example.org","x":1})"));
    require_single_problem(r, "structure", "backup_tickets_1.json", "/data/tickets/users/0");
  }
  SECTION("a repeated key") {
    const verify_result r = verify_one(one_batch(R"("name":"Ann","id":10,)", R"("name":"Ann","name":"Ann","id":10,)"));
    require_single_problem(r, "structure", "backup_tickets_1.json", "/data/tickets/users/0");
  }
  SECTION("an array element that is not an object") {
    const verify_result r = verify_one(one_batch(R"("users":[)", R"("users":[7,)"));
    CHECK(r.users == 2);
    require_single_problem(r, "structure", "backup_tickets_1.json", "/data/tickets/users/0");
  }
}

TEST_CASE("value types", "[archive_verifier]") {
  SECTION("id as a string") {
    const verify_result r = verify_one(one_batch(R"("requester_id":10,"id":1})", R"("requester_id":10,"id":"1"})"));
    // The ticket id is unusable, so the comment's ticket_id 1 dangles too.
    CHECK(r.problems_by_kind == std::map<std::string, std::uint64_t>{{"type", 1}, {"unknown_ticket_id", 1}});
    REQUIRE(r.first_problems.size() == 2);
    CHECK(r.first_problems[0].json_path == "/data/tickets/data/0/id");
    CHECK(r.first_problems[0].message == "expected an integer, found a string");
    CHECK(r.first_problems[1].json_path == "/data/tickets/comments/0/ticket_id");
  }
  SECTION("id as a fraction") {
    const verify_result r = verify_one(one_batch(R"("id":100,)", R"("id":100.5,)"));
    require_single_problem(r, "type", "backup_tickets_1.json", "/data/tickets/comments/0/id");
  }
  SECTION("id beyond int64") {
    const verify_result r = verify_one(one_batch(R"("id":100,)", R"("id":9223372036854775808,)"));
    require_single_problem(r, "type", "backup_tickets_1.json", "/data/tickets/comments/0/id");
    CHECK(r.first_problems[0].message == "9223372036854775808 is outside the int64 range");
  }
  SECTION("public as a string") {
    const verify_result r = verify_one(one_batch(R"("public":true)", R"("public":"false")"));
    require_single_problem(r, "type", "backup_tickets_1.json", "/data/tickets/comments/0/public");
  }
  SECTION("created_at as a number") {
    const verify_result r = verify_one(one_batch(R"("created_at":"2024-01-02T03:04:05Z")", R"("created_at":1704164645)"));
    require_single_problem(r, "type", "backup_tickets_1.json", "/data/tickets/data/0/created_at");
  }
  SECTION("email as null") {
    const verify_result r = verify_one(one_batch(R"("email":"ann@example.org")", R"("email":null)"));
    require_single_problem(r, "type", "backup_tickets_1.json", "/data/tickets/users/0/email");
    CHECK(r.first_problems[0].message == "expected a string, found null");
  }
}

TEST_CASE("value rules: timestamps, emails, names, bodies, organizations", "[archive_verifier]") {
  struct planted {
    std::string from, to, path;
  };
  for (const planted& p : std::vector<planted>{
           {"2024-01-02T03:04:05Z", "2023-02-29T03:04:05Z", "/data/tickets/data/0/created_at"},
           {"2024-01-02T03:04:05Z", "2024-01-02 03:04:05Z", "/data/tickets/data/0/created_at"},
           {"2024-01-02T03:04:05Z", "2024-01-02T24:00:00Z", "/data/tickets/data/0/created_at"},
           {"2024-01-02T03:04:06Z", "2024-01-02T03:04:06+01:00", "/data/tickets/comments/0/created_at"},
           {"ann@example.org", "ann@@example.org", "/data/tickets/users/0/email"},
           {"ann@example.org", "ann example@org", "/data/tickets/users/0/email"},
           {"ann@example.org", "@example.org", "/data/tickets/users/0/email"},
           {R"("name":"Ann")", R"("name":" ")", "/data/tickets/users/0/name"},
           {R"("name":"Ann")", R"("name":"Ann ")", "/data/tickets/users/0/name"},
           {R"("html_body":"hello")", R"("html_body":" \n ")", "/data/tickets/comments/0/html_body"},
           {R"("organizations":[])", R"("organizations":[{"id":1}])", "/data/tickets/organizations"},
       }) {
    INFO(p.to);
    require_single_problem(verify_one(one_batch(p.from, p.to)), "value", "backup_tickets_1.json", p.path);
  }
  // A leap day and the last second of a day are fine.
  CHECK(verify_one(one_batch("2024-01-02T03:04:05Z", "2024-02-29T23:59:59Z")).valid);
}

TEST_CASE("array size: at most 100, and at most B with N = k*B numbering", "[archive_verifier]") {
  SECTION("101 tickets with index numbering") {
    std::vector<std::string> tickets;
    for (int i = 1; i <= 101; ++i) tickets.push_back(ticket(i, 10));
    const verify_result r =
        verify_entries({{"backup_tickets_1.json", batch(tickets, {}, {user(10, "Ann", "ann@example.org")})}});
    require_single_problem(r, "array_size", "backup_tickets_1.json", "/data/tickets/data");
    CHECK(r.first_problems[0].message == "101 objects, at most 100 allowed");
  }
  SECTION("3 users in a batch of B = 2") {
    const verify_result r = verify_entries({{"backup_tickets_2.json",
                                             batch({}, {},
                                                   {user(1, "A", "a@x.org"), user(2, "B", "b@x.org"),
                                                    user(3, "C", "c@x.org")})}});
    require_single_problem(r, "array_size", "backup_tickets_2.json", "/data/tickets/users");
    CHECK(r.first_problems[0].message == "3 objects, at most 2 (the batch size of this archive) allowed");
  }
}

TEST_CASE("ids and email keys are unique across the archive", "[archive_verifier]") {
  SECTION("a ticket id in two entries") {
    auto entries = valid_entries();
    entries[1].content = batch({ticket(3, 12), ticket(1, 12)}, {comment(102, 2, 11)}, {user(12, "Cy", "cy@example.org")});
    const verify_result r = verify_entries(entries);
    require_single_problem(r, "duplicate_ticket_id", "backup_tickets_4.json", "/data/tickets/data/1/id");
    CHECK(r.first_problems[0].message ==
          "ticket id 1 already used at backup_tickets_2.json /data/tickets/data/0/id");
  }
  SECTION("a comment id twice in one entry") {
    const verify_result r = verify_one(
        batch({ticket(1, 10)}, {comment(100, 1, 10), comment(100, 1, 10)}, {user(10, "Ann", "ann@example.org")}));
    require_single_problem(r, "duplicate_comment_id", "backup_tickets_1.json", "/data/tickets/comments/1/id");
  }
  SECTION("a user id twice") {
    const verify_result r = verify_one(batch(
        {ticket(1, 10)}, {comment(100, 1, 10)}, {user(10, "Ann", "ann@example.org"), user(10, "Bo", "bo@example.org")}));
    require_single_problem(r, "duplicate_user_id", "backup_tickets_1.json", "/data/tickets/users/1/id");
  }
  SECTION("an email key differing only in case") {
    auto entries = valid_entries();
    entries[1].content =
        batch({ticket(3, 12)}, {comment(102, 2, 11)}, {user(12, "Cy", "cy@example.org"), user(13, "An", "ANN@Example.ORG")});
    const verify_result r = verify_entries(entries);
    require_single_problem(r, "duplicate_email", "backup_tickets_4.json", "/data/tickets/users/1/email");
    CHECK(r.first_problems[0].message ==
          R"(email key "ann@example.org" already used at backup_tickets_2.json /data/tickets/users/0/email)");
  }
}

TEST_CASE("references resolve within the archive or the index", "[archive_verifier]") {
  SECTION("a comment on a ticket that is not in the archive") {
    const verify_result r = verify_one(one_batch(R"("ticket_id":1,)", R"("ticket_id":7,)"));
    require_single_problem(r, "unknown_ticket_id", "backup_tickets_1.json", "/data/tickets/comments/0/ticket_id");
    CHECK(r.first_problems[0].message == "ticket_id 7 has no ticket in the archive");
  }
  SECTION("an author and a requester that are nobody") {
    temp_dir dir;
    const std::string text = batch({ticket(1, 20)}, {comment(100, 1, 30)}, {user(10, "Ann", "ann@example.org")});
    write_archive(dir / "a.tar.gz", compression::gzip, {{"backup_tickets_1.json", text}});
    const verify_result r = verify(dir / "a.tar.gz");
    CHECK(r.problems_by_kind ==
          std::map<std::string, std::uint64_t>{{"unknown_author_id", 1}, {"unknown_requester_id", 1}});
    REQUIRE(r.first_problems.size() == 2);
    // Archive order: the ticket comes before the comment.
    CHECK(r.first_problems[0].json_path == "/data/tickets/data/0/requester_id");
    CHECK(r.first_problems[0].message == "requester_id 20 is not a user in the archive (no index given)");
    CHECK(r.first_problems[1].json_path == "/data/tickets/comments/0/author_id");

    // The index (BOM, CRLF, quoted fields, a bad row) holds both: valid.
    write_file(dir / "users.csv",
                "\xEF\xBB\xBF\"Email\",ID\r\n"
                "\"x@y.org\",00020\r\n"
                "\"a \"\"quoted\"\", one\",\" 30.0 \"\r\n"
                "bad@row.org,abc\r\n"
                "short-row\r\n"
                "\r\n"
                "huge@y.org,9223372036854775808\n");
    verify_options options;
    options.archive = dir / "a.tar.gz";
    options.users_file = dir / "users.csv";
    CHECK(tixport::verify_archive(options).valid);

    // An index that has neither id.
    write_file(dir / "other.csv", "id,email\n21,x@y.org\n31,z@y.org\n");
    options.users_file = dir / "other.csv";
    const verify_result with_index = tixport::verify_archive(options);
    REQUIRE(with_index.first_problems.size() == 2);
    CHECK(with_index.first_problems[1].message == "author_id 30 is neither a user in the archive nor in the index");
  }
}

TEST_CASE("an index CSV without the id or email column is an input error", "[archive_verifier]") {
  temp_dir dir;
  write_archive(dir / "a.tar", compression::none, valid_entries());
  verify_options options;
  options.archive = dir / "a.tar";
  options.users_file = dir / "users.csv";
  for (const std::string csv : {"user_id,email\n1,a@b.c\n", "id,mail\n1,a@b.c\n", "id,email,ID\n1,a@b.c,2\n", ""}) {
    INFO(csv);
    write_file(dir / "users.csv", csv);
    try {
      (void)tixport::verify_archive(options);
      FAIL("no fatal_error");
    } catch (const tixport::fatal_error& e) {
      CHECK(e.code() == tixport::exit_code::input_error);
      CHECK(std::string(e.what()).rfind("verify: users file: ", 0) == 0);
    }
  }
  options.users_file = dir / "missing.csv";
  CHECK_THROWS_AS(tixport::verify_archive(options), tixport::fatal_error);
}

namespace {
void require_unreadable(const fs::path& path, const std::string& reason_part) {
  try {
    (void)verify(path);
    FAIL("no fatal_error");
  } catch (const tixport::fatal_error& e) {
    INFO(e.what());
    CHECK(e.code() == tixport::exit_code::input_error);
    CHECK(std::string(e.what()).rfind("verify: ", 0) == 0);
    CHECK(std::string(e.what()).find(reason_part) != std::string::npos);
  }
}
}  // namespace

TEST_CASE("hostile: not an archive, empty file, truncated streams", "[archive_verifier]") {
  temp_dir dir;
  write_file(dir / "text.tar", "id,email\n1,a@b.c\n");
  require_unreadable(dir / "text.tar", "Unrecognized archive format");
  write_file(dir / "empty.tar", "");
  require_unreadable(dir / "empty.tar", "verify: ");

  // A big-enough body that the cut lands inside the compressed data.
  std::string body(200000, 'x');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 7919 % 26));
  const std::vector<entry_spec> entries = {
      {"backup_tickets_1.json", batch({ticket(1, 10)}, {comment(100, 1, 10, body)}, {user(10, "A", "a@x.org")})},
      {"backup_tickets_2.json", batch({ticket(2, 10)}, {}, {})},
  };
  for (const auto comp : {compression::zstd, compression::gzip, compression::none}) {
    write_archive(dir / "full", comp, entries);
    const std::string bytes = read_file(dir / "full");
    write_file(dir / "cut", bytes.substr(0, bytes.size() / 2));
    require_unreadable(dir / "cut", "verify: ");
  }
}

TEST_CASE("hostile: a huge declared size is neither allocated nor trusted", "[archive_verifier]") {
  temp_dir dir;
  // 8 GiB - 1 in octal, and 2^62 in the base-256 form; only 1 KiB follows.
  std::string base256(12, '\0');
  base256[0] = static_cast<char>(0x80);
  base256[4] = 0x40;
  for (const std::string& size_field : {std::string("77777777777\0", 12), base256}) {
    const std::string tar = ustar_header("backup_tickets_1.json", size_field) + std::string(1024, '{');
    write_file(dir / "huge.tar", tar);
    require_unreadable(dir / "huge.tar", "verify: ");
    // The same behind zstd.
    std::string packed(ZSTD_compressBound(tar.size()), '\0');
    packed.resize(ZSTD_compress(packed.data(), packed.size(), tar.data(), tar.size(), 3));
    write_file(dir / "huge.tar.zst", packed);
    require_unreadable(dir / "huge.tar.zst", "verify: ");
  }
}

TEST_CASE("an entry over the size cap is a problem and the rest is still checked", "[archive_verifier]") {
  temp_dir dir;
  const std::string big = one_batch("hello", std::string(3000, 'h'));
  for (const auto comp : {compression::none, compression::zstd}) {
    write_archive(dir / "a", comp,
                  {{"backup_tickets_1.json", big},
                   {"backup_tickets_2.json", batch({ticket(1, 10)}, {}, {user(10, "A", "a@x.org")})}});
    verify_options options;
    options.archive = dir / "a";
    options.max_entry_bytes = 2048;
    const verify_result r = tixport::verify_archive(options);
    require_single_problem(r, "entry_too_large", "backup_tickets_1.json", "");
    CHECK(r.first_problems[0].message == std::to_string(big.size()) + " bytes, more than the limit of 2048");
    CHECK(r.tickets == 1);  // only the second entry was parsed
    CHECK(r.entries == 2);
  }
}

TEST_CASE("hostile: invalid and deeply nested JSON", "[archive_verifier]") {
  SECTION("truncated JSON text") {
    const std::string text = one_batch();
    const verify_result r = verify_one(text.substr(0, text.size() - 3));
    require_single_problem(r, "json", "backup_tickets_1.json", "");
  }
  SECTION("an empty entry") {
    const verify_result r = verify_one("");
    require_single_problem(r, "json", "backup_tickets_1.json", "");
    CHECK(r.first_problems[0].message == "empty entry: no JSON value");
  }
  SECTION("nesting 100000 deep in organizations") {
    const verify_result r = verify_one(one_batch(R"("organizations":[])", R"("organizations":)" +
                                                                              std::string(100000, '[') +
                                                                              std::string(100000, ']')));
    require_single_problem(r, "json", "backup_tickets_1.json", "");
    CHECK(r.first_problems[0].message == "JSON nested deeper than 16 levels");
  }
  SECTION("a lone surrogate escape") {
    const verify_result r = verify_one(one_batch("hello", R"(\ud800)"));
    require_single_problem(r, "json", "backup_tickets_1.json", "");
  }
}

TEST_CASE("hostile: invalid UTF-8 is located and the rest still checked", "[archive_verifier]") {
  const std::string text =
      batch({ticket(1, 10)}, {comment(100, 1, 10, "ok"), comment(101, 1, 10, "bad \xff\xfe bytes")},
            {user(10, "Ann", "ann@example.org"), user(10, "B\xc3", "b@example.org")});
  const verify_result r = verify_one(text);
  // One utf8 problem for the entry (at its first bad byte), and the duplicate
  // user id behind it is still found.
  CHECK(r.problems_by_kind == std::map<std::string, std::uint64_t>{{"utf8", 1}, {"duplicate_user_id", 1}});
  REQUIRE(r.first_problems.size() == 2);
  CHECK(r.first_problems[0].kind == "utf8");
  CHECK(r.first_problems[0].json_path == "/data/tickets/comments/1/html_body");
  CHECK(r.first_problems[0].message ==
        "invalid UTF-8 at byte " + std::to_string(text.find('\xff')) + " (3 invalid bytes in this entry)");
  CHECK(r.first_problems[1].json_path == "/data/tickets/users/1/id");

  SECTION("in a key") {
    const verify_result k = verify_one(one_batch(R"("public")", "\"pub\xe2\x82lic\""));
    CHECK(k.problems_by_kind.at("utf8") == 1);
    CHECK(k.first_problems[0].json_path == "/data/tickets/comments/0/pub\\xe2\\x82lic");
  }
}

TEST_CASE("the first problems are listed in archive order, all are counted", "[archive_verifier]") {
  // Entry 1: a comment whose ticket is missing (found only in the final
  // pass); entry 2: a bad timestamp and a bad email. Archive order puts the
  // entry-1 reference first even though it is found last.
  const std::vector<entry_spec> entries = {
      {"backup_tickets_1.json", batch({ticket(1, 10)}, {comment(100, 9, 10)}, {user(10, "Ann", "ann@example.org")})},
      {"backup_tickets_2.json",
       batch({ticket(2, 10, "2024-13-01T00:00:00Z")}, {}, {user(11, "Bob", "bob"), user(12, "Cy", "cy")})},
  };
  const verify_result r = verify_entries(entries, 2);
  CHECK(r.problems_by_kind == std::map<std::string, std::uint64_t>{{"unknown_ticket_id", 1}, {"value", 3}});
  REQUIRE(r.first_problems.size() == 2);
  CHECK(r.first_problems[0].kind == "unknown_ticket_id");
  CHECK(r.first_problems[0].entry == "backup_tickets_1.json");
  CHECK(r.first_problems[1].json_path == "/data/tickets/data/0/created_at");
  CHECK(verify_entries(entries, 0).first_problems.empty());
  // "All of them" is a valid request too.
  const verify_result all = verify_entries(entries, std::numeric_limits<std::size_t>::max());
  REQUIRE(all.first_problems.size() == 4);
  CHECK(all.first_problems[3].json_path == "/data/tickets/users/1/email");
}

TEST_CASE("many entries on many workers give the single-thread result", "[archive_verifier][parallel]") {
  temp_dir dir;
  std::vector<entry_spec> entries;
  for (int k = 1; k <= 60; ++k) {
    std::vector<std::string> tickets;
    std::vector<std::string> comments;
    std::vector<std::string> users;
    for (int i = 0; i < 10; ++i) {
      const int id = k * 10 + i;
      tickets.push_back(ticket(id, id));
      // Every 7th comment points at a ticket two batches ahead (fine) or,
      // in the last batches, past the end (dangling).
      comments.push_back(comment(id, i % 7 == 0 ? id + 20 : id, id));
      // (append, not "u" + to_string(): GCC 12 -O3 warns falsely on the latter, -Wrestrict)
      users.push_back(user(id, std::string("U").append(std::to_string(id)),
                           std::string("u").append(std::to_string(id)).append("@x.org")));
    }
    entries.push_back({std::string("backup_tickets_").append(std::to_string(k * 10)).append(".json"),
                       batch(tickets, comments, users)});
  }
  write_archive(dir / "a.tar.zst", compression::zstd, entries);
  const verify_result one = verify(dir / "a.tar.zst", 5, 1);
  const verify_result many = verify(dir / "a.tar.zst", 5, 4);
  CHECK(one.entries == 60);
  CHECK(one.tickets == 600);
  CHECK(one.problems_by_kind == std::map<std::string, std::uint64_t>{{"unknown_ticket_id", 4}});
  CHECK(many.problems_by_kind == one.problems_by_kind);
  REQUIRE(many.first_problems.size() == one.first_problems.size());
  for (std::size_t i = 0; i < one.first_problems.size(); ++i) {
    CHECK(many.first_problems[i].entry == one.first_problems[i].entry);
    CHECK(many.first_problems[i].json_path == one.first_problems[i].json_path);
  }
  CHECK(one.first_problems[0].entry == "backup_tickets_590.json");
}

TEST_CASE("print_verify_result prints the summary and the first problems", "[archive_verifier]") {
  tixport::verify_result r;
  r.entries = 2;
  r.tickets = 3;
  r.comments = 4;
  r.users = 5;
  r.bytes = 600;
  r.problems_by_kind = {{"json", 1}, {"utf8", 2}};
  r.first_problems = {{"backup_tickets_1.json", "", "json", "not valid JSON"},
                      {"backup_tickets_2.json", "/data/tickets/users/0/name", "utf8", "invalid UTF-8"}};
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  tixport::print_verify_result(r, f);
  std::rewind(f);
  std::string text;
  for (int c = 0; (c = std::fgetc(f)) != EOF;) text += static_cast<char>(c);
  std::fclose(f);
  CHECK(text.rfind("verify: INVALID\n", 0) == 0);
  CHECK(text.find("  entries   2\n") != std::string::npos);
  CHECK(text.find("  problems  3\n") != std::string::npos);
  CHECK(text.find("    utf8                   2\n") != std::string::npos);
  CHECK(text.find("first problems (2 of 3):\n") != std::string::npos);
  CHECK(text.find("  backup_tickets_1.json: json: not valid JSON\n") != std::string::npos);
  CHECK(text.find("  backup_tickets_2.json /data/tickets/users/0/name: utf8: invalid UTF-8\n") !=
        std::string::npos);
}

TEST_CASE("verify agrees with run: only run's dangling references are flagged", "[archive_verifier]") {
  // The generator plants dangling authors and requesters (SPEC 2.2 writes them
  // unchanged and counts them); verify must find exactly those, and nothing
  // else, whatever the format, numbering, batch size or JSON style.
  temp_dir dir;
  tixport::generate_options gen;
  gen.rows = 25000;  // the first dangling references of seed 11 appear past row 12000
  gen.output = dir / "export.csv";
  gen.users_output = dir / "users.csv";
  gen.seed = 11;
  (void)tixport::generate_sample(gen);

  struct variant {
    std::string output;
    unsigned batch_size;
    tixport::batch_name_style names;
    tixport::json_style style;
  };
  for (const variant& v : std::vector<variant>{
           {"out.tar.zst", 100, tixport::batch_name_style::offset, tixport::json_style::compact},
           {"out.tar.gz", 37, tixport::batch_name_style::index, tixport::json_style::compact},
           {"out.tar", 7, tixport::batch_name_style::offset, tixport::json_style::pretty},
       }) {
    INFO(v.output);
    tixport::run_options run;
    run.input = gen.output;
    run.output = dir / v.output;
    run.index_source = gen.users_output.string();
    run.load_index = [&] { return tixport::user_index::build(tixport::read_index_csv(gen.users_output, 1)); };
    run.batches.batch_size = v.batch_size;
    run.batches.name_style = v.names;
    run.batches.style = v.style;
    run.mtime = 0;
    tixport::run_outcome outcome = tixport::run_migration(run);
    outcome.commit();
    const tixport::run_report& report = outcome.report;
    REQUIRE(report.batches > 0);

    verify_options options;
    options.archive = run.output;
    options.users_file = gen.users_output;
    const verify_result r = tixport::verify_archive(options);
    CHECK(r.entries == report.batches);
    CHECK(r.tickets == report.tickets);
    CHECK(r.comments == report.comments);
    CHECK(r.users == report.users);
    CHECK(r.bytes == report.json_bytes);
    std::map<std::string, std::uint64_t> expected;
    const auto expect = [&](const char* kind, tixport::row_issue issue) {
      if (const std::uint64_t n = report.issues.count(issue); n > 0) expected[kind] = n;
    };
    expect("unknown_author_id", tixport::row_issue::dangling_author_ref);
    expect("unknown_requester_id", tixport::row_issue::dangling_requester_ref);
    expect("unknown_ticket_id", tixport::row_issue::orphan_comment);
    CHECK(r.problems_by_kind == expected);
    CHECK(r.valid == expected.empty());
    // The seed plants some: the comparison above is not between two empty maps.
    CHECK(expected.count("unknown_author_id") == 1);
  }
}
