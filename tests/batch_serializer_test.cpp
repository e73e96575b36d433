// File: batch_serializer_test.cpp
#include <catch2/catch.hpp>

#include "tixport/batch_serializer.hpp"

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
