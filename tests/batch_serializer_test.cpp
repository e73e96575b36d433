// File: batch_serializer_test.cpp
#include <catch2/catch.hpp>

#include "tixport/run/batch_serializer.hpp"

#include "../src/csv/csv_reader_internal.hpp"

#include <array>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace tixport;

TEST_CASE("read_record_fields: every kernel's walk and the exact parser give the parsed fields",
          "[batch_serializer][csv_reader]") {
  // The write reads each comment's record again with the SIMD walker, falling back to the exact
  // parser for a record the walker cannot take. Random records with the hard pieces, several
  // wanted fields in any order (one twice), owned strings left long and stale by earlier reads,
  // and records past the walker's 64 KiB speculation window. Half the reads ask for one wanted
  // field to be left escaped, as the write does for BODY: its text must be the same.
  using namespace tixport::csv_internal;
  constexpr std::array<std::string_view, 15> kPieces = {
      "a", "bc", ",", "\"", "\"\"", "\"x\"", "\"y,z\"", "\"p\"\"q\"", "\"l\nm\"", "\"r\r\ns\"", "\r", "\n", "\r\n",
      "\"t\"u", "\"a\"\"b\"\"c\"\"d\"\"e\"\"f\"\"g\"\"h\"\"i\"\"j\"\"k\"\"l\"\"m\"\"n\"\"o\"\"p\"\"q\"\"r\"\"s\""};
  constexpr std::uint32_t kFields = 4;
  const simd_level saved = active_simd_level();
  std::mt19937_64 rng(77);
  std::vector<std::string> inputs;
  for (int iter = 0; iter < 300; ++iter) {
    std::string data;
    const std::size_t pieces = 1 + rng() % 160;
    for (std::size_t i = 0; i < pieces; ++i) data += kPieces[rng() % kPieces.size()];
    inputs.push_back(std::move(data));
  }
  for (int iter = 0; iter < 50; ++iter) {
    // Well-formed records too, their quoted fields holding pairs: the walker takes these.
    std::string data;
    for (int row = 0; row < 20; ++row) {
      for (std::uint32_t k = 0; k < kFields; ++k) {
        if (k != 0) data += ',';
        data += rng() % 2 == 0 ? "\"<a href=\"\"x\"\">\nb</a>\"" : "plain";
      }
      data += '\n';
    }
    inputs.push_back(std::move(data));
  }
  std::string huge = "\"";
  for (int i = 0; i < 5000; ++i) huge += "0123456789abc\"\"";
  huge += "\"";
  inputs.push_back("h1,h2,h3,h4\n1," + huge + ",3,4\n5,6," + huge + ",8\n");
  inputs.push_back("x," + huge.substr(0, 70000) + "\n");  // unterminated: the rest of the file is one record
  std::uint64_t checked = 0;
  std::uint64_t left_escaped = 0;
  for (const simd_level level : {simd_level::portable, simd_level::sse2, simd_level::avx2}) {
    if (level != simd_level::portable && best_simd_level() == simd_level::portable) continue;
    if (level == simd_level::avx2 && best_simd_level() != simd_level::avx2) continue;
    set_simd_level(level);
    std::string a(5000, 's');
    std::string b(3, 's');
    std::string c(70000, 's');
    std::string* const owned[3] = {&a, &b, &c};
    for (const std::string& data : inputs) {
      const csv_chunk chunk = parse_range(data, 0, 1, data.size(), kFields, parse_mode::exact);
      for (std::size_t r = 0; r < chunk.record_count(); ++r) {
        const std::size_t wanted[3] = {rng() % kFields, rng() % kFields, rng() % (kFields + 1)};
        std::string_view views[3];
        // Left escaped: a wanted field, any field (maybe not wanted: never escaped then), or none.
        const std::size_t choice = rng() % 4;
        const std::size_t keep = choice < 2    ? wanted[rng() % 3]
                                 : choice == 2 ? rng() % kFields
                                               : tixport::csv_read_options::kNoColumn;
        const bool escaped = read_record_fields(data, chunk.record_offsets[r], wanted, views, owned, keep);
        if (std::find(std::begin(wanted), std::end(wanted), keep) == std::end(wanted)) CHECK_FALSE(escaped);
        left_escaped += escaped ? 1 : 0;
        for (std::size_t i = 0; i < 3; ++i) {
          INFO("level " << simd_level_name(level) << " input " << data.substr(0, 300) << " record " << r
                        << " field " << wanted[i] << " keep " << keep);
          const std::string_view expected = wanted[i] < kFields ? chunk.record(r)[wanted[i]] : std::string_view();
          if (escaped && wanted[i] == keep) {
            CHECK(views[i].find("\"\"") != std::string_view::npos);
            CHECK(tixport::csv_unescape_pairs(views[i]) == expected);
          } else {
            CHECK(views[i] == expected);
          }
          ++checked;
        }
      }
    }
  }
  set_simd_level(saved);
  CHECK(checked > 1000);
  CHECK(left_escaped > 100);
}

TEST_CASE("batch_count is max of the ceilings (SPEC 2.6)", "[batch_serializer]") {
  CHECK(batch_count(0, 0, 0, 100) == 0);
  CHECK(batch_count(1, 0, 0, 100) == 1);
  CHECK(batch_count(100, 100, 100, 100) == 1);
  CHECK(batch_count(101, 5, 0, 100) == 2);
  CHECK(batch_count(3, 250, 7, 100) == 3);
  CHECK(batch_count(3, 5, 7, 1) == 7);
}

TEST_CASE("batch_entry_name: offset and index styles (SPEC 2.6)", "[batch_serializer]") {
  CHECK(batch_entry_name(1, 100, batch_name_style::offset) == "backup_tickets_100.json");
  CHECK(batch_entry_name(3, 100, batch_name_style::offset) == "backup_tickets_300.json");
  CHECK(batch_entry_name(3, 7, batch_name_style::offset) == "backup_tickets_21.json");
  CHECK(batch_entry_name(3, 7, batch_name_style::index) == "backup_tickets_3.json");
}

TEST_CASE("reread_field unescapes one field of a record (SPEC 1.1)", "[batch_serializer]") {
  const std::string data = "a,\"b\"\"c, d\nx\",e\r\n\"q\"tail,\"\",last";
  std::string out;
  reread_field(data, 0, 0, out);
  CHECK(out == "a");
  reread_field(data, 0, 1, out);
  CHECK(out == "b\"c, d\nx");
  reread_field(data, 0, 2, out);
  CHECK(out == "e");
  const std::size_t second = data.find("\"q\"");
  reread_field(data, second, 0, out);
  CHECK(out == "qtail");
  reread_field(data, second, 1, out);
  CHECK(out == "");
  reread_field(data, second, 2, out);
  CHECK(out == "last");
  reread_field("lone\rcr,z", 0, 0, out);
  CHECK(out == "lone\rcr");
}

TEST_CASE("reread_field gives every field exactly as the CSV reader parsed it", "[batch_serializer]") {
  // Random records built from the pieces that make CSV hard: quotes, doubled quotes, bytes
  // after a closing quote, separators and line ends inside quotes, CRLF, lone CR, blank lines.
  constexpr std::array<std::string_view, 14> kPieces = {
      "a", "bc", ",", "\"", "\"\"", "\"x\"", "\"y,z\"", "\"p\"\"q\"", "\"l\nm\"", "\"r\r\ns\"", "\r", "\n", "\r\n",
      "\"t\"u"};
  constexpr std::uint32_t kFields = 3;
  std::mt19937_64 rng(2024);
  std::uint64_t checked = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::string data;
    const std::size_t pieces = 1 + rng() % 120;
    for (std::size_t i = 0; i < pieces; ++i) data += kPieces[rng() % kPieces.size()];
    const tixport::csv_chunk chunk =
        tixport::csv_internal::parse_range(data, 0, 1, data.size(), kFields, tixport::csv_internal::parse_mode::fast);
    for (std::size_t r = 0; r < chunk.record_count(); ++r) {
      for (std::uint32_t f = 0; f < kFields; ++f) {
        INFO("input " << data << " record " << r << " field " << f);
        std::string out = "stale";
        reread_field(data, chunk.record_offsets[r], f, out);
        CHECK(out == chunk.record(r)[f]);
        ++checked;
      }
    }
  }
  CHECK(checked > 300);
}
