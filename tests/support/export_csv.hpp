// File: export_csv.hpp
//
// The chat export's header line (SPEC 1.1), spelled once for every test that writes
// an export by hand.
//
//   write_file(dir / "chat.csv", tixport::test::export_csv(
//       "2021-01-01 00:00:00,5,1,10,true,hello,2021-01-01 00:00:01,5,Ann,ann@x.org\n"));
#pragma once

#include <string>
#include <string_view>

namespace tixport::test {

/// The export's header line, with its line end.
inline constexpr std::string_view kExportHeader =
    "TICKET_CREATED_AT,TICKET_REQUESTER_ID,COMMENT_PART_ID,CONVERSATION_ID,COMMENT_PUBLIC,BODY,"
    "COMMENT_CREATED_AT,AUTHOR_ID,NAME,EMAIL\n";

/// An export: the header line, then `rows` (records with their line ends) as given.
inline std::string export_csv(std::string_view rows = {}) {
  std::string csv(kExportHeader);
  csv += rows;
  return csv;
}

}  // namespace tixport::test
