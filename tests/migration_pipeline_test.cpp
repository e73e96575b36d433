// File: migration_pipeline_test.cpp
//
// SPEC 1.1-2.7 clause by clause, end to end through the CLI: small hand-written
// exports whose expected batch JSON is written out in full.
#include <catch2/catch.hpp>

#include "support/test_support.hpp"

#include <csignal>
#include <sys/stat.h>
#include <set>

using tixport::test::read_archive;
using tixport::test::read_file;
using tixport::test::run_tixport;
using tixport::test::sh_quote;
using tixport::test::temp_dir;
using tixport::test::write_file;

namespace {

using tixport::test::kExportHeader;

// Runs `tixport run` on `csv` and `index` in a fresh directory; returns the CLI result.
struct run_fixture {
  temp_dir dir;
  std::filesystem::path input = dir / "chat.csv";
  std::filesystem::path users = dir / "users.csv";
  std::filesystem::path output = dir / "out.tar";
  std::filesystem::path report = dir / "report.json";

  tixport::test::command_result run(const std::string& csv, const std::string& index, const std::string& extra = "") {
    write_file(input, csv);
    write_file(users, index);
    return run_tixport("run --input " + sh_quote(input) + " --users-file " + sh_quote(users) + " --output " +
                           sh_quote(output) + " --report " + sh_quote(report) + " --no-progress " + extra,
                       dir.path());
  }

  std::vector<tixport::test::archive_entry_data> entries() const { return read_archive(output); }
};

const std::string kBasicCsv = std::string(kExportHeader) +
    "2021-01-01 10:00:00,7,100,50,True,\"<p>Hi, there</p>\",2021-01-01 10:00:05,7,Ann,Ann@Example.com\n"
    "2021-01-01 10:00:00,7,101,50,false,\"<p>He said \"\"ok\"\"</p>\",2021-01-01T10:01:00+01:00,8,Bob,bob@example.com\n"
    "2021-01-01 10:00:00,7,100,50,True,\"<p>Hi, there</p>\",2021-01-01 10:00:05,7,Ann,Ann@Example.com\n"
    "2021-01-02 00:00:00,9,102,51,1,Multi,2021-01-02 00:00:00.5Z,9,Cy,cy@x.org\n";
const std::string kBasicIndex = "id,email\n500,ann@example.com\n8,someone@else.com\n";

const std::string kTicket50 = R"({"created_at":"2021-01-01T10:00:00Z","requester_id":500,"id":50})";
const std::string kTicket51 = R"({"created_at":"2021-01-02T00:00:00Z","requester_id":9,"id":51})";
const std::string kComment100 =
    R"({"created_at":"2021-01-01T10:00:05Z","ticket_id":50,"id":100,"public":true,"html_body":"<p>Hi, there</p>","author_id":500})";
const std::string kComment101 =
    R"({"created_at":"2021-01-01T09:01:00Z","ticket_id":50,"id":101,"public":false,"html_body":"<p>He said \"ok\"</p>","author_id":501})";
const std::string kComment102 =
    R"({"created_at":"2021-01-02T00:00:00Z","ticket_id":51,"id":102,"public":true,"html_body":"Multi","author_id":9})";
const std::string kUserAnn = R"({"name":"Ann","id":500,"email":"Ann@Example.com"})";
const std::string kUserBob = R"({"name":"Bob","id":501,"email":"bob@example.com"})";
const std::string kUserCy = R"({"name":"Cy","id":9,"email":"cy@x.org"})";

std::string batch(const std::string& tickets, const std::string& comments, const std::string& users) {
  return R"({"data":{"tickets":{"data":[)" + tickets + R"(],"comments":[)" + comments + R"(],"users":[)" + users +
         R"(],"organizations":[]}}})";
}

}  // namespace

TEST_CASE("run: users matched, new and re-id'd, references follow (SPEC 2.1-2.4, 2.6)", "[migration_pipeline]") {
  run_fixture f;
  const auto r = f.run(kBasicCsv, kBasicIndex);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto entries = f.entries();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].name == "backup_tickets_100.json");
  CHECK(entries[0].mode == 0644);
  CHECK(entries[0].uid == 0);
  CHECK(entries[0].gid == 0);
  CHECK(entries[0].data == batch(kTicket50 + "," + kTicket51, kComment100 + "," + kComment101 + "," + kComment102,
                                 kUserAnn + "," + kUserBob + "," + kUserCy));
  const std::string report = read_file(f.report);
  CHECK(report.find(R"("id_conflict":{"count":1,"sample_lines":[3]})") != std::string::npos);
  CHECK(report.find(R"("duplicate_comment":{"count":1,"sample_lines":[4]})") != std::string::npos);
  CHECK(report.find(R"("users":{"total":3,"matched":1,"new":2})") != std::string::npos);
}

TEST_CASE("run: batches of B with both name styles, exhausted lists give [] (SPEC 2.6)", "[migration_pipeline]") {
  run_fixture f;
  REQUIRE(f.run(kBasicCsv, kBasicIndex, "--batch-size 2").exit_code == 0);
  auto entries = f.entries();
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].name == "backup_tickets_2.json");
  CHECK(entries[0].data == batch(kTicket50 + "," + kTicket51, kComment100 + "," + kComment101, kUserAnn + "," + kUserBob));
  CHECK(entries[1].name == "backup_tickets_4.json");
  CHECK(entries[1].data == batch("", kComment102, kUserCy));

  std::filesystem::remove(f.output);
  REQUIRE(f.run(kBasicCsv, kBasicIndex, "--batch-size 2 --name-style index").exit_code == 0);
  entries = f.entries();
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].name == "backup_tickets_1.json");
  CHECK(entries[1].name == "backup_tickets_2.json");
}

TEST_CASE("run: --batch-size outside 1..100 and a bad output name are usage errors (SPEC 2.6)", "[migration_pipeline]") {
  run_fixture f;
  CHECK(f.run(kBasicCsv, kBasicIndex, "--batch-size 0").exit_code == 2);
  CHECK(f.run(kBasicCsv, kBasicIndex, "--batch-size 101").exit_code == 2);
  write_file(f.input, kBasicCsv);
  const auto r = run_tixport("run --input " + sh_quote(f.input) + " --users-file " + sh_quote(f.users) +
                                 " --output " + sh_quote(f.dir / "out.zip"),
                             f.dir.path());
  CHECK(r.exit_code == 2);
  CHECK_FALSE(std::filesystem::exists(f.dir / "out.zip"));
}

TEST_CASE("run: --pretty indents like json.dumps(indent=2)", "[migration_pipeline]") {
  run_fixture f;
  const std::string csv = std::string(kExportHeader) + "2021-01-02 00:00:00,9,102,51,1,Multi,2021-01-02 00:00:00,9,Cy,cy@x.org\n";
  REQUIRE(f.run(csv, "id,email\n", "--pretty").exit_code == 0);
  const auto entries = f.entries();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].data ==
        "{\n  \"data\": {\n    \"tickets\": {\n      \"data\": [\n        {\n"
        "          \"created_at\": \"2021-01-02T00:00:00Z\",\n          \"requester_id\": 9,\n          \"id\": 51\n"
        "        }\n      ],\n      \"comments\": [\n        {\n"
        "          \"created_at\": \"2021-01-02T00:00:00Z\",\n          \"ticket_id\": 51,\n          \"id\": 102,\n"
        "          \"public\": true,\n          \"html_body\": \"Multi\",\n          \"author_id\": 9\n"
        "        }\n      ],\n      \"users\": [\n        {\n          \"name\": \"Cy\",\n          \"id\": 9,\n"
        "          \"email\": \"cy@x.org\"\n        }\n      ],\n      \"organizations\": []\n    }\n  }\n}");
}

TEST_CASE("run: header-only export gives a valid empty archive (SPEC 2.6)", "[migration_pipeline]") {
  run_fixture f;
  REQUIRE(f.run(std::string(kExportHeader), "id,email\n").exit_code == 0);
  CHECK(f.entries().empty());
  CHECK(std::filesystem::file_size(f.output) > 0);
}

TEST_CASE("run: columns by name, any order and case, extras ignored, missing/repeated exit 2 (SPEC 1.1)",
          "[migration_pipeline]") {
  run_fixture f;
  const std::string reordered =
      "extra, email ,Name,author_id,COMMENT_CREATED_AT,body,comment_public,conversation_id,comment_part_id,"
      "ticket_requester_id,ticket_created_at\n"
      "x,cy@x.org,Cy,9,2021-01-02 00:00:00,Multi,1,51,102,9,2021-01-02 00:00:00\n";
  REQUIRE(f.run(reordered, "id,email\n").exit_code == 0);
  auto entries = f.entries();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].data == batch(kTicket51, kComment102, kUserCy));

  auto r = f.run("TICKET_CREATED_AT,TICKET_REQUESTER_ID,COMMENT_PART_ID,CONVERSATION_ID,COMMENT_PUBLIC,"
                 "COMMENT_CREATED_AT,AUTHOR_ID,NAME,EMAIL\n",
                 "id,email\n");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("BODY") != std::string::npos);
  r = f.run("body," + std::string(kExportHeader), "id,email\n");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("BODY") != std::string::npos);
  r = f.run(kBasicCsv, "id\n1\n");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("email") != std::string::npos);
}

TEST_CASE("run: malformed records are skipped and reported by their start line (SPEC 1.1)", "[migration_pipeline]") {
  run_fixture f;
  const std::string csv = std::string(kExportHeader) +
      "2021-01-02 00:00:00,9,102,51,1,\"two\nlines\",2021-01-02 00:00:00,9,Cy,cy@x.org\n"  // lines 2-3
      "too,few,fields\n"                                                                  // line 4
      "\n"                                                                                 // line 5: blank
      "2021-01-02 00:00:00,9,103,51,1,\"x,y\",2021-01-02 00:00:00,9,Cy,cy@x.org,extra\n"  // line 6
      "2021-01-02 00:00:00,9,104,51,1,ok,2021-01-02 00:00:00,9,Cy,cy@x.org";              // line 7, no LF
  const auto r = f.run(csv, "id,email\n");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string report = read_file(f.report);
  CHECK(report.find(R"("malformed_record":{"count":2,"sample_lines":[4,6]})") != std::string::npos);
  CHECK(report.find(R"("rows":4)") != std::string::npos);
  const auto entries = f.entries();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].data.find(R"("html_body":"two\nlines")") != std::string::npos);
  CHECK(entries[0].data.find(R"("id":104)") != std::string::npos);
  CHECK(entries[0].data.find(R"("id":103)") == std::string::npos);
}

TEST_CASE("run: an invalid row never hides a later valid one, \"False\" is false (SPEC 1.1, 2.3)",
          "[migration_pipeline]") {
  run_fixture f;
  const std::string csv = std::string(kExportHeader) +
      "2021-01-02 00:00:00,9,102,51,maybe,first,2021-01-02 00:00:00,9,Cy,cy@x.org\n"
      "2021-01-02 00:00:00,9,102,51,False,second,2021-01-02 00:00:00,9,Cy,cy@x.org\n";
  REQUIRE(f.run(csv, "id,email\n").exit_code == 0);
  const auto entries = f.entries();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].data ==
        batch(kTicket51,
              R"({"created_at":"2021-01-02T00:00:00Z","ticket_id":51,"id":102,"public":false,"html_body":"second","author_id":9})",
              kUserCy));
  CHECK(read_file(f.report).find(R"("comment_invalid_public":{"count":1,"sample_lines":[2]})") != std::string::npos);
}

TEST_CASE("run: identity map, dangling refs, orphans, author email conflicts (SPEC 2.2, 2.5)", "[migration_pipeline]") {
  run_fixture f;
  const std::string csv = std::string(kExportHeader) +
      // chat id 7 first with ann@, later with other@ (conflict); chat id 70 shares ann@ -> same user
      "2021-01-01 00:00:00,7,1,10,1,a,2021-01-01 00:00:00,7,Ann,ann@x.org\n"
      "2021-01-01 00:00:00,7,2,10,1,b,2021-01-01 00:00:00,7,Ann Two,other@x.org\n"
      "2021-01-01 00:00:00,7,3,10,1,c,2021-01-01 00:00:00,70,Ann Alias,ANN@x.org\n"
      // author 99 has no name: not a candidate, so its comment dangles; requester 98 dangles
      "2021-01-01 00:00:00,98,4,11,1,d,2021-01-01 00:00:00,99,,nobody@x.org\n"
      // ticket 12's only row has a bad TICKET_CREATED_AT: comment 5 is an orphan
      "yesterday,7,5,12,1,e,2021-01-01 00:00:00,7,Ann,ann@x.org\n";
  const auto r = f.run(csv, "id,email\n");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto entries = f.entries();
  REQUIRE(entries.size() == 1);
  const std::string t = R"({"created_at":"2021-01-01T00:00:00Z",)";
  const std::string c = R"({"created_at":"2021-01-01T00:00:00Z",)";
  CHECK(entries[0].data ==
        batch(t + R"("requester_id":7,"id":10},)" + t + R"("requester_id":98,"id":11})",
              c + R"("ticket_id":10,"id":1,"public":true,"html_body":"a","author_id":7},)" + c +
                  R"("ticket_id":10,"id":2,"public":true,"html_body":"b","author_id":7},)" + c +
                  R"("ticket_id":10,"id":3,"public":true,"html_body":"c","author_id":7},)" + c +
                  R"("ticket_id":11,"id":4,"public":true,"html_body":"d","author_id":99},)" + c +
                  R"("ticket_id":12,"id":5,"public":true,"html_body":"e","author_id":7})",
              R"({"name":"Ann","id":7,"email":"ann@x.org"},{"name":"Ann Two","id":100,"email":"other@x.org"})"));
  const std::string report = read_file(f.report);
  CHECK(report.find(R"("author_email_conflict":{"count":1,"sample_lines":[2]})") != std::string::npos);
  CHECK(report.find(R"("dangling_author_ref":{"count":1,"sample_lines":[5]})") != std::string::npos);
  CHECK(report.find(R"("dangling_requester_ref":{"count":1,"sample_lines":[5]})") != std::string::npos);
  CHECK(report.find(R"("orphan_comment":{"count":1,"sample_lines":[6]})") != std::string::npos);
  CHECK(report.find(R"("id_conflict":{"count":1,"sample_lines":[3]})") != std::string::npos);
}

TEST_CASE("run: --strict exits 1 but still writes the archive (SPEC 2.7)", "[migration_pipeline]") {
  run_fixture f;
  const std::string csv = std::string(kExportHeader) + "bad,row\n" +
                          "2021-01-02 00:00:00,9,102,51,1,Multi,2021-01-02 00:00:00,9,Cy,cy@x.org\n";
  CHECK(f.run(csv, "id,email\n").exit_code == 0);
  std::filesystem::remove(f.output);
  CHECK(f.run(csv, "id,email\n", "--strict").exit_code == 1);
  CHECK(f.entries().size() == 1);
  // A clean export passes --strict.
  std::filesystem::remove(f.output);
  CHECK(f.run(std::string(kExportHeader) + "2021-01-02 00:00:00,9,102,51,1,Multi,2021-01-02 00:00:00,9,Cy,cy@x.org\n",
              "id,email\n", "--strict")
            .exit_code == 0);
}

TEST_CASE("run: invalid UTF-8 is repaired with U+FFFD and counted (SPEC 1.1)", "[migration_pipeline]") {
  run_fixture f;
  const std::string csv = std::string(kExportHeader) +
                          "2021-01-02 00:00:00,9,102,51,1,a\xff" "b,2021-01-02 00:00:00,9,C\xc3y,cy@x.org\n";
  REQUIRE(f.run(csv, "id,email\n").exit_code == 0);
  const auto entries = f.entries();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].data.find("\"html_body\":\"a\xef\xbf\xbd" "b\"") != std::string::npos);
  CHECK(entries[0].data.find("\"name\":\"C\xef\xbf\xbdy\"") != std::string::npos);
  CHECK(read_file(f.report).find(R"("utf8_repaired_field":{"count":2,"sample_lines":[2]})") != std::string::npos);
}

TEST_CASE("run: invalid bodies among copied and in-place bodies of one batch are each repaired",
          "[migration_pipeline]") {
  // The write checks a batch's UTF-8 in one pass and encodes it again only when that fails:
  // every body must still come out as its own repair, whether it was re-read with "" (copied)
  // or is a slice of the input, and a body cut inside a character must be caught too.
  run_fixture f;
  const std::string row = "2021-01-02 00:00:00,9,";
  const std::string tail = ",2021-01-02 00:00:00,9,Cy,cy@x.org\n";
  const std::string csv = std::string(kExportHeader) +
                          row + "201,51,1,plain" + tail +
                          row + "202,51,1,\"say \"\"hi\"\"\"" + tail +
                          row + "203,51,1,\"bad \"\"\xff\"\" q\"" + tail +
                          row + "204,51,1,in\xc3place" + tail +
                          row + "205,51,1,\"caf\xc3\xa9 \"\"ok\"\"\"" + tail +
                          row + "206,51,1,cut\xe2\x82" + tail;
  REQUIRE(f.run(csv, "id,email\n").exit_code == 0);
  const auto entries = f.entries();
  REQUIRE(entries.size() == 1);
  const std::string& json = entries[0].data;
  CHECK(json.find(R"("id":201,"public":true,"html_body":"plain")") != std::string::npos);
  CHECK(json.find(R"("id":202,"public":true,"html_body":"say \"hi\"")") != std::string::npos);
  CHECK(json.find("\"id\":203,\"public\":true,\"html_body\":\"bad \\\"\xef\xbf\xbd\\\" q\"") != std::string::npos);
  CHECK(json.find("\"id\":204,\"public\":true,\"html_body\":\"in\xef\xbf\xbdplace\"") != std::string::npos);
  CHECK(json.find("\"id\":205,\"public\":true,\"html_body\":\"caf\xc3\xa9 \\\"ok\\\"\"") != std::string::npos);
  CHECK(json.find("\"id\":206,\"public\":true,\"html_body\":\"cut\xef\xbf\xbd\"") != std::string::npos);
  CHECK(read_file(f.report).find(R"("utf8_repaired_field":{"count":3,"sample_lines":[4,5,7]})") != std::string::npos);
}

TEST_CASE("run: a body the parse read with the exact parser and the write with the walker is the same text",
          "[migration_pipeline]") {
  // The stray quote in NAME sends the whole record to the exact parser during the parse (BODY
  // unescaped), but the write's re-read stops after AUTHOR_ID, before it: there the walker
  // takes the record and leaves BODY escaped for the encoder. Both must give the same JSON.
  run_fixture f;
  const std::string csv = std::string(kExportHeader) +
                          "2021-01-02 00:00:00,9,301,51,1,\"say \"\"hi\"\"\",2021-01-02 00:00:00Z,9,Bo\"b,bo@x.org\n" +
                          "2021-01-02 00:00:00,9,302,51,1,\"say \"\"hi\"\"\",2021-01-02 00:00:00+00:00,9,Bob,bo@x.org\n";
  REQUIRE(f.run(csv, "id,email\n").exit_code == 0);
  const auto entries = f.entries();
  REQUIRE(entries.size() == 1);
  const std::string& json = entries[0].data;
  CHECK(json.find(R"("created_at":"2021-01-02T00:00:00Z","ticket_id":51,"id":301,"public":true,"html_body":"say \"hi\"")") !=
        std::string::npos);
  CHECK(json.find(R"("created_at":"2021-01-02T00:00:00Z","ticket_id":51,"id":302,"public":true,"html_body":"say \"hi\"")") !=
        std::string::npos);
}

TEST_CASE("run: mtime is the input's, or SOURCE_DATE_EPOCH for every entry's mtime (SPEC 2.6)", "[migration_pipeline]") {
  run_fixture f;
  write_file(f.input, kBasicCsv);
  write_file(f.users, kBasicIndex);
  const auto r = run_tixport("run --input " + sh_quote(f.input) + " --users-file " + sh_quote(f.users) + " --output " +
                                 sh_quote(f.output) + " --batch-size 1",
                             f.dir.path());
  REQUIRE(r.exit_code == 0);
  struct stat st {};
  REQUIRE(::stat(f.input.c_str(), &st) == 0);
  for (const auto& e : f.entries()) CHECK(e.mtime == static_cast<long long>(st.st_mtime));
  std::filesystem::remove(f.output);
  const auto r2 = tixport::test::run_command(
      "SOURCE_DATE_EPOCH=1600000000 " + tixport::test::tixport_command("run --input " + sh_quote(f.input) +
          " --users-file " + sh_quote(f.users) + " --output " + sh_quote(f.output) + " --batch-size 1"),
      f.dir.path());
  REQUIRE(r2.exit_code == 0);
  const auto entries = f.entries();
  REQUIRE(entries.size() == 3);
  for (const auto& e : entries) CHECK(e.mtime == 1600000000);
}

TEST_CASE("run: a failed run leaves an existing output untouched and no temporary file (SPEC 2.6)",
          "[migration_pipeline]") {
  run_fixture f;
  write_file(f.output, "precious");
  const auto r = f.run("NOT,A,VALID,HEADER\n", "id,email\n");
  CHECK(r.exit_code == 2);
  CHECK(read_file(f.output) == "precious");
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(f.dir.path())) names.insert(e.path().filename().string());
  CHECK(names == std::set<std::string>{"chat.csv", "out.tar", "users.csv"});
}

TEST_CASE("run: unreadable input exits 2, unwritable output directory exits 3", "[migration_pipeline]") {
  run_fixture f;
  write_file(f.users, "id,email\n");
  auto r = run_tixport("run --input " + sh_quote(f.dir / "missing.csv") + " --users-file " + sh_quote(f.users) +
                           " --output " + sh_quote(f.output),
                       f.dir.path());
  CHECK(r.exit_code == 2);
  write_file(f.input, kBasicCsv);
  r = run_tixport("run --input " + sh_quote(f.input) + " --users-file " + sh_quote(f.users) + " --output " +
                      sh_quote(f.dir / "no" / "such" / "dir" / "out.tar"),
                  f.dir.path());
  CHECK(r.exit_code == 3);
}

namespace {

// Generates a sample export of `rows` rows into `dir` with the CLI's generator.
void generate_sample(const temp_dir& dir, std::uint64_t rows) {
  const auto r = run_tixport("generate --rows " + std::to_string(rows) + " --seed 7 --output " +
                                 sh_quote(dir / "chat.csv") + " --users-output " + sh_quote(dir / "users.csv"),
                             dir.path());
  REQUIRE(r.exit_code == 0);
}

std::string run_to(const temp_dir& dir, const std::string& output, unsigned threads) {
  const auto r = run_tixport("run --input " + sh_quote(dir / "chat.csv") + " --users-file " +
                                 sh_quote(dir / "users.csv") + " --output " + sh_quote(dir / output) +
                                 " --threads " + std::to_string(threads) + " --chunk-size 65536",
                             dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return read_file(dir / output);
}

void check_same_bytes_any_threads(std::uint64_t rows) {
  temp_dir dir;
  generate_sample(dir, rows);
  for (const std::string output : {"a.tar", "a.tar.gz", "a.tar.zst"}) {
    const std::string one = run_to(dir, output, 1);
    CHECK(run_to(dir, output, 2) == one);
    CHECK(run_to(dir, output, 8) == one);
  }
  // The system tools read all three formats back, with the same entries.
  const auto list = [&](const std::string& command) {
    return tixport::test::run_command(command, dir.path());
  };
  const auto tar = list("tar -tf " + sh_quote(dir / "a.tar"));
  const auto gz = list("gzip -dc " + sh_quote(dir / "a.tar.gz") + " | tar -tf -");
  const auto zst = list("zstd -dc " + sh_quote(dir / "a.tar.zst") + " | tar -tf -");
  REQUIRE(tar.exit_code == 0);
  REQUIRE(gz.exit_code == 0);
  REQUIRE(zst.exit_code == 0);
  CHECK(tar.out.rfind("backup_tickets_100.json\nbackup_tickets_200.json\n", 0) == 0);
  CHECK(gz.out == tar.out);
  CHECK(zst.out == tar.out);
  CHECK(list("zstd -dc " + sh_quote(dir / "a.tar.zst") + " | cmp - " + sh_quote(dir / "a.tar")).exit_code == 0);
  CHECK(list("gzip -dc " + sh_quote(dir / "a.tar.gz") + " | cmp - " + sh_quote(dir / "a.tar")).exit_code == 0);
}

}  // namespace

TEST_CASE("run: same bytes for --threads 1, 2 and 8 in all formats, system tools read them (SPEC 2.6)",
          "[migration_pipeline][parallel]") {
  check_same_bytes_any_threads(30000);
}

TEST_CASE("run: same bytes for any --threads on a few hundred thousand rows", "[migration_pipeline][.slow]") {
  check_same_bytes_any_threads(300000);
}

TEST_CASE("run: SIGINT stops the run with 130, no output and no temporary file (SPEC 2.6, 2.7)",
          "[migration_pipeline]") {
  temp_dir dir;
  generate_sample(dir, 200000);
  write_file(dir / "out.tar.zst", "previous archive");
  // Level 19 on one thread makes the write take many seconds, so the signal lands mid-run.
  const auto r = tixport::test::run_command(
      "timeout --preserve-status -s INT 1 " +
          tixport::test::tixport_command("run --input " + sh_quote(dir / "chat.csv") + " --users-file " +
                                         sh_quote(dir / "users.csv") + " --output " + sh_quote(dir / "out.tar.zst") +
                                         " --threads 1 --zstd-level 19"),
      dir.path());
  CHECK(r.exit_code == 130);
  CHECK(read_file(dir / "out.tar.zst") == "previous archive");
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) names.insert(e.path().filename().string());
  CHECK(names == std::set<std::string>{"chat.csv", "out.tar.zst", "users.csv"});
}
