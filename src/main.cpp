// File: main.cpp
//
// The tixport command line: parses options with CLI11 and hands plain option
// structs to the library. Only this file includes CLI11.
#include <CLI/CLI.hpp>

#include "tixport/errors.hpp"

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"tixport: move a chat export into a ticketing-system import archive"};
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(tixport::exit_code::input_error);
  }
  return 0;
}
