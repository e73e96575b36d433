// File: batch_serializer_test.cpp
#include <catch2/catch.hpp>

#include "tixport/run/batch_serializer.hpp"

#include "../src/csv/csv_reader_internal.hpp"

#include <array>
#include <random>
#include <string>
#include <string_view>

using namespace tixport;

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
