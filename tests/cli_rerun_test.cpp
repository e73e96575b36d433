// File: cli_rerun_test.cpp
//
// SPEC 4 through the CLI, clause by clause: run --ledger, ledger show / dump,
// run --since (delta archive), bad ledgers, the same file for --since and
// --ledger, and the output plan (SPEC 2.6 / "nothing lost": every output
// checked before anything is written, committed only when all are complete).
#include <catch2/catch.hpp>

#include "support/test_support.hpp"
#include "tixport/ledger/run_ledger.hpp"

#include <simdjson.h>

#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using tixport::test::read_file;
using tixport::test::run_tixport;
using tixport::test::sh_quote;
using tixport::test::write_file;

using tixport::test::kExportHeader;

// The trial export: two conversations, three chat users (7 has no email yet).
constexpr std::string_view kTrialRows =
    "2021-01-01 00:00:00,7,1,100,true,hello,2021-01-01 00:00:00,7,,\n"
    "2021-01-01 00:00:00,7,2,100,true,\"hi, there\",2021-01-01 00:01:00,8,Agent Ann,ann@x.org\n"
    "2021-01-02 00:00:00,9,3,200,false,question,2021-01-02 00:00:00,9,Bob,Bob@X.org\n";

// What the refresh adds: a message in an old conversation, a new conversation with a new
// user, and chat user 7 with an email (7's old references now map).
constexpr std::string_view kNewRows =
    "2021-01-01 00:00:00,7,4,100,true,more,2021-01-03 00:00:00,8,Agent Ann,ann@x.org\n"
    "2021-01-04 00:00:00,11,5,300,true,new one,2021-01-04 00:00:00,11,Cy,cy@x.org\n"
    "2021-01-04 00:00:00,11,6,300,true,reply,2021-01-04 00:01:00,7,Seven,seven@x.org\n";

struct fixture {
  tixport::test::temp_dir dir;
  fs::path trial = dir / "trial.csv";
  fs::path refresh = dir / "refresh.csv";
  fs::path index = dir / "index.csv";

  fixture() {
    write_file(trial, std::string(kExportHeader) + std::string(kTrialRows));
    write_file(refresh, std::string(kExportHeader) + std::string(kTrialRows) + std::string(kNewRows));
    write_file(index, "id,email\n500,bob@x.org\n");
  }

  tixport::test::command_result tix(const std::string& args) {
    return run_tixport("run --no-progress --input " + args, dir.path());
  }
};

/// Entries' JSON of an archive, concatenated.
std::string archive_json(const fs::path& archive) {
  std::string all;
  for (const auto& e : tixport::test::read_archive(archive)) all += e.data + "\n";
  return all;
}

simdjson::dom::element parse_report(simdjson::dom::parser& parser, simdjson::padded_string& text) {
  return parser.parse(text);
}

}  // namespace

TEST_CASE("run --ledger writes a ledger that ledger show and ledger dump read", "[cli_rerun]") {
  fixture f;
  const auto r = f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " +
                       sh_quote(f.dir / "a.tar") + " --ledger " + sh_quote(f.dir / "a.ledger"));
  REQUIRE(r.exit_code == 0);
  const auto show = run_tixport("ledger show " + sh_quote(f.dir / "a.ledger"), f.dir.path());
  CHECK(show.exit_code == 0);
  CHECK(show.out.find("run 1, first run") != std::string::npos);
  CHECK(show.out.find("tickets         2") != std::string::npos);
  CHECK(show.out.find("comments        3") != std::string::npos);
  CHECK(show.out.find("users           2 (1 matched, 1 new, 0 fresh ids)") != std::string::npos);

  const auto users = run_tixport("ledger dump " + sh_quote(f.dir / "a.ledger") + " --what users", f.dir.path());
  CHECK(users.exit_code == 0);
  CHECK(users.out == "email_key,id,origin,run\nann@x.org,8,new,1\nbob@x.org,500,matched,1\n");
  const auto identity = run_tixport("ledger dump " + sh_quote(f.dir / "a.ledger") + " --what identity", f.dir.path());
  CHECK(identity.out == "chat_id,user_id,email_key\n8,8,ann@x.org\n9,500,bob@x.org\n");
  const auto tickets = run_tixport("ledger dump " + sh_quote(f.dir / "a.ledger") + " --what tickets", f.dir.path());
  CHECK(tickets.out.rfind("id,fingerprint,run,in_last_export\n100,", 0) == 0);
  CHECK(std::count(tickets.out.begin(), tickets.out.end(), '\n') == 3);
  const auto comments = run_tixport("ledger dump " + sh_quote(f.dir / "a.ledger") + " --what comments --output " +
                                        sh_quote(f.dir / "c.csv"),
                                    f.dir.path());
  CHECK(comments.exit_code == 0);
  const std::string dumped = read_file(f.dir / "c.csv");
  CHECK(std::count(dumped.begin(), dumped.end(), '\n') == 4);
}

TEST_CASE("run --since writes only what the ledger lacks, with ids that follow it", "[cli_rerun]") {
  fixture f;
  REQUIRE(f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " + sh_quote(f.dir / "a.tar") +
                " --ledger " + sh_quote(f.dir / "l"))
              .exit_code == 0);
  const std::string first_ledger = read_file(f.dir / "l");
  // --since and --ledger name the same file: the old one is read, the new one replaces it.
  const auto r = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                       sh_quote(f.dir / "b.tar") + " --since " + sh_quote(f.dir / "l") + " --ledger " +
                       sh_quote(f.dir / "l") + " --report " + sh_quote(f.dir / "r.json"));
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("appended path") != std::string::npos);
  // Only the new objects; comment 1's ticket (100) is on the platform, not an orphan; 7 now maps.
  CHECK(archive_json(f.dir / "b.tar") ==
        "{\"data\":{\"tickets\":{\"data\":[{\"created_at\":\"2021-01-04T00:00:00Z\",\"requester_id\":11,\"id\":300}],"
        "\"comments\":[{\"created_at\":\"2021-01-03T00:00:00Z\",\"ticket_id\":100,\"id\":4,\"public\":true,"
        "\"html_body\":\"more\",\"author_id\":8},{\"created_at\":\"2021-01-04T00:00:00Z\",\"ticket_id\":300,\"id\":5,"
        "\"public\":true,\"html_body\":\"new one\",\"author_id\":11},{\"created_at\":\"2021-01-04T00:01:00Z\","
        "\"ticket_id\":300,\"id\":6,\"public\":true,\"html_body\":\"reply\",\"author_id\":7}],\"users\":[{\"name\":"
        "\"Cy\",\"id\":11,\"email\":\"cy@x.org\"},{\"name\":\"Seven\",\"id\":7,\"email\":\"seven@x.org\"}],"
        "\"organizations\":[]}}}\n");
  simdjson::dom::parser parser;
  simdjson::padded_string text(read_file(f.dir / "r.json"));
  const simdjson::dom::element report = parse_report(parser, text);
  CHECK(std::string_view(report["rerun"]["path"]) == "appended");
  CHECK(uint64_t(report["rerun"]["skipped_already_imported"]["tickets"]) == 2);
  CHECK(uint64_t(report["rerun"]["skipped_already_imported"]["comments"]) == 3);
  CHECK(uint64_t(report["rerun"]["ledger_run"]) == 2);
  // Ticket 100 (requester 7) and comment 1 (author 7) were written with the raw 7, which now
  // maps to user 7: same ids, same JSON, nothing changed.
  CHECK(uint64_t(report["changed_since_ledger"]["tickets"]["count"]) == 0);
  CHECK(uint64_t(report["issues"]["orphan_comment"]["count"]) == 0);
  CHECK(uint64_t(report["issues"]["dangling_author_ref"]["count"]) == 0);

  const tixport::run_ledger next = tixport::load_ledger(f.dir / "l");
  CHECK(next.run == 2);
  CHECK(next.previous_checksum == tixport::parse_ledger(first_ledger, "first").checksum);
  CHECK(next.tickets.size() == 3);
  CHECK(next.comments.size() == 6);
  CHECK(next.users.size() == 4);

  // verify: the delta refers to ticket 100 and user 8 of the first archive.
  const auto alone = run_tixport("verify " + sh_quote(f.dir / "b.tar"), f.dir.path());
  CHECK(alone.exit_code == 1);
  const auto with_ledger =
      run_tixport("verify " + sh_quote(f.dir / "b.tar") + " --since " + sh_quote(f.dir / "l"), f.dir.path());
  CHECK(with_ledger.exit_code == 0);

  // The same refresh again: nothing new, an empty archive.
  const auto again = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                           sh_quote(f.dir / "c.tar") + " --since " + sh_quote(f.dir / "l"));
  CHECK(again.exit_code == 0);
  CHECK(tixport::test::read_archive(f.dir / "c.tar").empty());
}

TEST_CASE("run --since counts changed, missing and index conflicts, and never writes them", "[cli_rerun]") {
  fixture f;
  REQUIRE(f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " + sh_quote(f.dir / "a.tar") +
                " --ledger " + sh_quote(f.dir / "l"))
              .exit_code == 0);
  // Comment 2's body edited (line 3), conversation 200 (line 4) removed, Bob's index id changed.
  write_file(f.refresh, std::string(kExportHeader) +
                            "2021-01-01 00:00:00,7,1,100,true,hello,2021-01-01 00:00:00,7,,\n"
                            "2021-01-01 00:00:00,7,2,100,true,\"hi, edited\",2021-01-01 00:01:00,8,Agent Ann,ann@x.org\n" +
                            std::string(kNewRows));
  write_file(f.index, "id,email\n501,bob@x.org\n");
  const auto r = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                       sh_quote(f.dir / "b.tar") + " --since " + sh_quote(f.dir / "l") + " --report " +
                       sh_quote(f.dir / "r.json"));
  REQUIRE(r.exit_code == 0);
  simdjson::dom::parser parser;
  simdjson::padded_string text(read_file(f.dir / "r.json"));
  const simdjson::dom::element report = parse_report(parser, text);
  CHECK(std::string_view(report["rerun"]["path"]) == "full_compare");
  CHECK(uint64_t(report["changed_since_ledger"]["comments"]["count"]) == 1);
  CHECK(uint64_t(report["changed_since_ledger"]["comments"]["sample_lines"].at(0)) == 3);
  CHECK(uint64_t(report["missing_since_ledger"]["tickets"]) == 1);
  CHECK(uint64_t(report["missing_since_ledger"]["comments"]) == 1);
  CHECK(uint64_t(report["ledger_index_conflicts"]) == 1);
  const std::string json = archive_json(f.dir / "b.tar");
  CHECK(json.find("hi, edited") == std::string::npos);  // an import archive cannot update
  CHECK(json.find("\"id\":4,") != std::string::npos);
}

TEST_CASE("a bad --since ledger is an input error that names it, and nothing is written", "[cli_rerun]") {
  fixture f;
  REQUIRE(f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " + sh_quote(f.dir / "a.tar") +
                " --ledger " + sh_quote(f.dir / "l"))
              .exit_code == 0);
  const std::string good = read_file(f.dir / "l");
  write_file(f.dir / "out.tar", "old archive");
  struct bad_case {
    std::string name;
    std::string bytes;
    std::string message;
  };
  std::string corrupted = good;
  corrupted[corrupted.size() / 2] ^= 0x01;
  std::string version = good;
  version[8] = 9;
  const bad_case cases[] = {
      {"truncated", good.substr(0, good.size() - 10), "truncated"},
      {"header only", good.substr(0, 20), "truncated"},
      {"corrupted", corrupted, "corrupted: checksum mismatch"},
      {"other version", version, "ledger format version 9; this tixport reads versions 1 to 2"},
      {"not a ledger", "id,email\n1,a@b.c\n", "not a tixport ledger"},
      {"empty", "", "empty file"},
  };
  for (const bad_case& c : cases) {
    INFO(c.name);
    write_file(f.dir / "bad.ledger", c.bytes);
    const auto r = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                         sh_quote(f.dir / "out.tar") + " --since " + sh_quote(f.dir / "bad.ledger") + " --ledger " +
                         sh_quote(f.dir / "bad.ledger"));
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("ledger: " + (f.dir / "bad.ledger").string() + ": " + c.message) != std::string::npos);
    CHECK(read_file(f.dir / "out.tar") == "old archive");
    CHECK(read_file(f.dir / "bad.ledger") == c.bytes);
    const auto show = run_tixport("ledger show " + sh_quote(f.dir / "bad.ledger"), f.dir.path());
    CHECK(show.exit_code == 2);
  }
  const auto missing = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                             sh_quote(f.dir / "out.tar") + " --since " + sh_quote(f.dir / "nope.ledger"));
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("no such file") != std::string::npos);
  // No temporary file left behind anywhere.
  for (const auto& e : fs::directory_iterator(f.dir.path())) CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("a version 1 ledger of the previous release continues: a delta against it, the next ledger version 2",
          "[cli_rerun]") {
  // tests/data/ledger_v1_*: run 2 of a chain, written by the release before ledger format 2.
  tixport::test::temp_dir dir;
  const fs::path data = TIXPORT_TEST_DATA_DIR;
  const fs::path old_ledger = dir / "v1.ledger";
  fs::copy_file(data / "ledger_v1_run2.ledger", old_ledger);
  REQUIRE(run_tixport("generate --append-to " + sh_quote(data / "ledger_v1_export.csv") +
                          " --rows 20 --seed 5 --output " + sh_quote(dir / "refresh.csv"),
                      dir.path())
              .exit_code == 0);
  const auto delta = [&](const std::string& name, const std::string& extra) {
    return run_tixport("run --no-progress --input " + sh_quote(dir / "refresh.csv") + " --users-file " +
                           sh_quote(data / "ledger_v1_users.csv") + " --output " + sh_quote(dir / (name + ".tar")) +
                           " --since " + sh_quote(old_ledger) + " --ledger " + sh_quote(dir / (name + ".ledger")) +
                           extra,
                       dir.path());
  };
  const auto appended = delta("appended", "");
  REQUIRE(appended.exit_code == 0);
  CHECK(appended.err.find("appended path") != std::string::npos);
  const auto compared = delta("compared", " --full-compare");
  REQUIRE(compared.exit_code == 0);
  // Both paths agree on a version 1 ledger as on any: the same archive, the same next ledger.
  CHECK(read_file(dir / "appended.tar") == read_file(dir / "compared.tar"));
  CHECK(read_file(dir / "appended.ledger") == read_file(dir / "compared.ledger"));
  CHECK(read_file(old_ledger) == read_file(data / "ledger_v1_run2.ledger"));

  const tixport::run_ledger old = tixport::load_ledger(old_ledger);
  const tixport::run_ledger next = tixport::load_ledger(dir / "appended.ledger");
  CHECK(old.format == 1);
  CHECK(read_file(dir / "appended.ledger")[8] == 2);
  CHECK(next.format == 2);
  CHECK(next.run == 3);
  CHECK(next.previous_checksum == old.checksum);
  CHECK(next.comments.size() > old.comments.size());
  // Every object the old ledger holds is in the next one, as it was imported.
  for (const auto* lists : {&old.tickets, &old.comments}) {
    const auto& in_next = lists == &old.tickets ? next.tickets : next.comments;
    for (const tixport::ledger_object& o : *lists) {
      const tixport::ledger_object* n = tixport::ledger_lookup::find(in_next, o.id);
      REQUIRE(n != nullptr);
      CHECK(n->fingerprint == o.fingerprint);
      CHECK(n->run == o.run);
    }
  }
  CHECK(run_tixport("ledger show " + sh_quote(old_ledger), dir.path()).out.find("format          version 1") !=
        std::string::npos);
  CHECK(run_tixport("ledger show " + sh_quote(dir / "appended.ledger"), dir.path())
            .out.find("format          version 2") != std::string::npos);
  // And the version 2 ledger continues in turn: the same export again gives an empty delta.
  const auto again = run_tixport("run --no-progress --input " + sh_quote(dir / "refresh.csv") + " --users-file " +
                                     sh_quote(data / "ledger_v1_users.csv") + " --output " +
                                     sh_quote(dir / "again.tar") + " --since " + sh_quote(dir / "appended.ledger"),
                                 dir.path());
  REQUIRE(again.exit_code == 0);
  CHECK(archive_json(dir / "again.tar").find("\"id\":") == std::string::npos);
}

TEST_CASE("the output plan refuses an output that is an input or another output, before writing", "[cli_rerun]") {
  fixture f;
  const std::string trial_bytes = read_file(f.trial);
  const std::string base = sh_quote(f.trial) + " --users-file " + sh_quote(f.index);
  fs::create_hard_link(f.trial, f.dir / "hardlink.csv");
  fs::create_symlink(f.trial, f.dir / "symlink.csv");
  struct clash_case {
    std::string args;
    std::string message;
  };
  const clash_case cases[] = {
      {" --output " + sh_quote(f.dir / "o.tar") + " --report " + sh_quote(f.trial), "--report"},
      {" --output " + sh_quote(f.dir / "o.tar") + " --report " + sh_quote(f.index), "--users-file"},
      {" --output " + sh_quote(f.dir / "o.tar") + " --report " + sh_quote(f.dir / "hardlink.csv"), "--input"},
      {" --output " + sh_quote(f.dir / "o.tar") + " --report " + sh_quote(f.dir / "symlink.csv"), "--input"},
      {" --output " + sh_quote(f.dir / "o.tar") + " --report " + sh_quote(f.dir / "." / "o.tar"), "--output"},
      {" --output " + sh_quote(f.dir / "o.tar") + " --ledger " + sh_quote(f.dir / "o.tar"), "--ledger"},
      {" --output " + sh_quote(f.dir / "o.tar") + " --ledger " + sh_quote(f.trial), "--input"},
  };
  for (const clash_case& c : cases) {
    INFO(c.args);
    const auto r = f.tix(base + c.args);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("is the same file as") != std::string::npos);
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK(read_file(f.trial) == trial_bytes);
    CHECK_FALSE(fs::exists(f.dir / "o.tar"));
  }
}

TEST_CASE("an output that cannot be written leaves every existing output as it was", "[cli_rerun]") {
  fixture f;
  write_file(f.dir / "out.tar", "old archive");
  write_file(f.dir / "out.ledger", "old ledger");
  const std::string base = sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " +
                           sh_quote(f.dir / "out.tar") + " --ledger " + sh_quote(f.dir / "out.ledger");
  SECTION("the report's directory is missing") {
    const auto r = f.tix(base + " --report " + sh_quote(f.dir / "nodir" / "r.json"));
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("does not exist") != std::string::npos);
  }
  SECTION("the report is a directory") {
    fs::create_directory(f.dir / "rdir");
    const auto r = f.tix(base + " --report " + sh_quote(f.dir / "rdir"));
    CHECK(r.exit_code == 3);
  }
  SECTION("the report cannot be written (/dev/full)") {
    const auto r = f.tix(base + " --report /dev/full");
    CHECK(r.exit_code == 3);
  }
  SECTION("the ledger's directory is missing") {
    const auto r = f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " +
                         sh_quote(f.dir / "out.tar") + " --ledger " + sh_quote(f.dir / "nodir" / "l") + " --report " +
                         sh_quote(f.dir / "out.ledger"));
    CHECK(r.exit_code == 3);
  }
  SECTION("the archive's directory is missing") {
    const auto r = f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " +
                         sh_quote(f.dir / "nodir" / "out.tar") + " --ledger " + sh_quote(f.dir / "out.ledger"));
    CHECK(r.exit_code == 3);
  }
  SECTION("the ledger is a device: refused, never renamed over") {
    const auto r = f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " +
                         sh_quote(f.dir / "out.tar") + " --ledger /dev/null");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--ledger /dev/null: not a regular file") != std::string::npos);
    struct stat st {};
    REQUIRE(::stat("/dev/null", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
  }
  if (::geteuid() != 0) {
    SECTION("the ledger's directory is read-only") {
      fs::create_directory(f.dir / "ro");
      fs::permissions(f.dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
      const auto r = f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " +
                           sh_quote(f.dir / "out.tar") + " --ledger " + sh_quote(f.dir / "ro" / "l"));
      CHECK(r.exit_code == 3);
    }
  }
  CHECK(read_file(f.dir / "out.tar") == "old archive");
  CHECK(read_file(f.dir / "out.ledger") == "old ledger");
  for (const auto& e : fs::directory_iterator(f.dir.path())) CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("on the appended path, warnings speak of the rows parsed and name the old part's problems",
          "[cli_rerun]") {
  fixture f;
  // The trial export has a malformed record (line 5): a --strict problem of the part the
  // ledger will cover.
  write_file(f.trial, std::string(kExportHeader) + std::string(kTrialRows) + "only,three,fields\n");
  REQUIRE(f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " + sh_quote(f.dir / "a.tar") +
                " --ledger " + sh_quote(f.dir / "l"))
              .exit_code == 0);

  SECTION("--strict fails for the old part's problems and says where they are") {
    write_file(f.refresh, read_file(f.trial) + std::string(kNewRows));
    const auto appended = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                                sh_quote(f.dir / "b.tar") + " --since " + sh_quote(f.dir / "l") + " --strict");
    CHECK(appended.exit_code == 1);
    CHECK(appended.err.find("--strict: exit 1 because of problems in the first ") != std::string::npos);
    CHECK(appended.err.find("--full-compare counts and lists them") != std::string::npos);
    const auto compared = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                                sh_quote(f.dir / "c.tar") + " --since " + sh_quote(f.dir / "l") +
                                " --strict --full-compare");
    CHECK(compared.exit_code == 1);
    CHECK(compared.err.find("--strict: exit 1 because of malformed_record 1 (line 5)") != std::string::npos);
    CHECK(read_file(f.dir / "b.tar") == read_file(f.dir / "c.tar"));
  }

  SECTION("appended rows that are all invalid are called the rows after the ledger's part, not the export") {
    write_file(f.refresh, read_file(f.trial) + "bad,x,y,z,true,b,bad,q,,\n");
    const auto appended = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                                sh_quote(f.dir / "b.tar") + " --since " + sh_quote(f.dir / "l"));
    CHECK(appended.exit_code == 0);
    CHECK(appended.err.find("none of the 1 rows after the part of the export the ledger covers") != std::string::npos);
    CHECK(appended.err.find("none of the export's") == std::string::npos);
    const auto compared = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                                sh_quote(f.dir / "c.tar") + " --since " + sh_quote(f.dir / "l") + " --full-compare");
    CHECK(compared.exit_code == 0);
    CHECK(compared.err.find("none of the") == std::string::npos);  // the old rows are valid
  }
}

TEST_CASE("run warns when --ledger replaces an earlier ledger without --since, and when the --since ledger is "
          "of another export",
          "[cli_rerun]") {
  fixture f;
  const std::string trial_run = sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " +
                                sh_quote(f.dir / "a.tar") + " --ledger " + sh_quote(f.dir / "l");
  const auto first = f.tix(trial_run);
  REQUIRE(first.exit_code == 0);
  CHECK(first.err.find("--ledger replaced") == std::string::npos);  // nothing there to replace

  SECTION("a second run 1 over the ledger says what it replaced, and how to continue instead") {
    const auto again = f.tix(trial_run + " --report " + sh_quote(f.dir / "r.json"));
    CHECK(again.exit_code == 0);
    CHECK(again.err.find("--ledger replaced " + (f.dir / "l").string() + ", the ledger of run 1, without --since") !=
          std::string::npos);
    CHECK(read_file(f.dir / "r.json").find("the ledger of run 1, without --since") != std::string::npos);
    // With --since naming it, nothing to warn about.
    const auto delta = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                             sh_quote(f.dir / "b.tar") + " --since " + sh_quote(f.dir / "l") + " --ledger " +
                             sh_quote(f.dir / "l"));
    CHECK(delta.exit_code == 0);
    CHECK(delta.err.find("--ledger replaced") == std::string::npos);
    CHECK(delta.err.find("is it the ledger of this export") == std::string::npos);
  }

  SECTION("an export that lacks most of what the ledger holds gets a warning, and the run goes on") {
    const fs::path other = f.dir / "other.csv";
    write_file(other, std::string(kExportHeader) +
                          "2022-05-01 00:00:00,40,900,9000,true,unrelated,2022-05-01 00:00:00,40,Dee,dee@y.org\n");
    const auto r = f.tix(sh_quote(other) + " --users-file " + sh_quote(f.index) + " --output " +
                         sh_quote(f.dir / "o.tar") + " --since " + sh_quote(f.dir / "l"));
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("this export lacks 5 of the 5 tickets and comments the --since ledger") != std::string::npos);
  }
}

TEST_CASE("a --ledger or --output that is a symlink is written through: the link stays, its file is replaced whole",
          "[cli_rerun]") {
  fixture f;
  fs::create_directories(f.dir / "kept");
  REQUIRE(f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " --output " +
                sh_quote(f.dir / "kept" / "a.tar") + " --ledger " + sh_quote(f.dir / "kept" / "run1.ledger"))
              .exit_code == 0);
  fs::create_symlink("kept/run1.ledger", f.dir / "latest.ledger");  // relative, like `ln -s`
  fs::create_symlink(f.dir / "kept" / "delta.tar", f.dir / "delta.tar");  // dangling until written
  const auto r = f.tix(sh_quote(f.refresh) + " --users-file " + sh_quote(f.index) + " --output " +
                       sh_quote(f.dir / "delta.tar") + " --since " + sh_quote(f.dir / "latest.ledger") +
                       " --ledger " + sh_quote(f.dir / "latest.ledger"));
  REQUIRE(r.exit_code == 0);
  CHECK(fs::is_symlink(f.dir / "latest.ledger"));
  CHECK(fs::is_symlink(f.dir / "delta.tar"));
  CHECK(fs::is_regular_file(f.dir / "kept" / "delta.tar"));
  const auto show = run_tixport("ledger show " + sh_quote(f.dir / "kept" / "run1.ledger"), f.dir.path());
  CHECK(show.exit_code == 0);
  CHECK(show.out.find("run 2") != std::string::npos);  // the link's file now holds the next run
  for (const auto& entry : fs::directory_iterator(f.dir / "kept")) {
    CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);  // no temp left
  }
}

TEST_CASE("a symlink output is checked where it leads: FIFOs, loops, chains and untrusted links are refused",
          "[cli_rerun]") {
  fixture f;
  const auto run_to = [&](const std::string& outputs) {
    return f.tix(sh_quote(f.trial) + " --users-file " + sh_quote(f.index) + " " + outputs);
  };
  SECTION("a link to a FIFO: refused before anything is written, the FIFO stays") {
    REQUIRE(::mkfifo((f.dir / "fifo").c_str(), 0644) == 0);
    fs::create_symlink("fifo", f.dir / "out.tar");
    const auto r = run_to("--output " + sh_quote(f.dir / "out.tar"));
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("(a symlink to ") != std::string::npos);
    CHECK(r.err.find("not a regular file") != std::string::npos);
    CHECK(fs::is_fifo(f.dir / "fifo"));
  }
  SECTION("a chain of dangling links is the file it ends at, for the same-file check") {
    fs::create_symlink("m.ledger", f.dir / "l.ledger");
    fs::create_symlink("shared.csv", f.dir / "m.ledger");
    const auto r = run_to("--output " + sh_quote(f.dir / "a.tar") + " --ledger " + sh_quote(f.dir / "l.ledger") +
                          " --rejects " + sh_quote(f.dir / "shared.csv"));
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("is the same file as --ledger") != std::string::npos);
    CHECK_FALSE(fs::exists(f.dir / "shared.csv"));
  }
  SECTION("a link loop") {
    fs::create_symlink("b.tar", f.dir / "a.tar");
    fs::create_symlink("a.tar", f.dir / "b.tar");
    const auto r = run_to("--output " + sh_quote(f.dir / "a.tar"));
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("too many levels of symbolic links") != std::string::npos);
  }
  SECTION("a dangling link into a missing directory: refused up front, naming the directory it needs") {
    fs::create_symlink("missing/x.ledger", f.dir / "l.ledger");
    const auto r = run_to("--output " + sh_quote(f.dir / "a.tar") + " --ledger " + sh_quote(f.dir / "l.ledger"));
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("directory " + (f.dir / "missing").string() + " does not exist") != std::string::npos);
    CHECK_FALSE(fs::exists(f.dir / "a.tar"));
  }
  SECTION("a link another user planted in a sticky shared directory is not followed (fs.protected_symlinks)") {
    fs::create_directories(f.dir / "shared");
    fs::permissions(f.dir / "shared", fs::perms::all | fs::perms::sticky_bit);
    write_file(f.dir / "precious.tar", "keep me");
    fs::create_symlink(f.dir / "precious.tar", f.dir / "shared" / "out.tar");
    if (::geteuid() == 0) {
      REQUIRE(::lchown((f.dir / "shared" / "out.tar").c_str(), 65534, 65534) == 0);  // nobody's link
      const auto r = run_to("--output " + sh_quote(f.dir / "shared" / "out.tar"));
      CHECK(r.exit_code == 2);
      CHECK(r.err.find("owned by another user: not followed") != std::string::npos);
      CHECK(read_file(f.dir / "precious.tar") == "keep me");
    } else {
      // Not root: the link is ours, so it is trusted and followed.
      const auto r = run_to("--output " + sh_quote(f.dir / "shared" / "out.tar"));
      CHECK(r.exit_code == 0);
      CHECK(fs::is_symlink(f.dir / "shared" / "out.tar"));
      CHECK(read_file(f.dir / "precious.tar") != "keep me");
    }
  }
}
