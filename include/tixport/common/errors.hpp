// File: errors.hpp
//
// The exit codes of SPEC 2.7 and the one exception type that carries a fatal
// error to main(). Bad rows are data, never exceptions; a fatal_error means the
// run cannot go on (unreadable input, archive write failure, index fetch failed).
//
//   throw tixport::fatal_error(tixport::exit_code::output_error,
//                              "archive: write: " + reason);
#pragma once

#include <stdexcept>
#include <string>

namespace tixport {

/// Process exit codes, SPEC 2.7.
enum class exit_code : int {
  ok = 0,
  strict_failed = 1,   ///< archive written, but --strict found problems
  input_error = 2,     ///< usage or input error
  output_error = 3,    ///< archive could not be written
  user_index_error = 4,///< the user index could not be read or fetched
  interrupted = 130,   ///< SIGINT / SIGTERM
};

/// An error that ends the run with `code`; only main() catches it.
class fatal_error : public std::runtime_error {
 public:
  fatal_error(exit_code code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  [[nodiscard]] exit_code code() const noexcept { return code_; }

 private:
  exit_code code_;
};

}  // namespace tixport
