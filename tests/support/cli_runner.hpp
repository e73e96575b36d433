// File: cli_runner.hpp
//
// Running a shell command, or the built tixport CLI, with its exit code, stdout and
// stderr captured (through files in the test's directory, so binary output and a
// whole pipeline's output are kept).
//
//   const auto r = run_tixport("verify " + sh_quote(dir / "out.tar"), dir.path());
//   CHECK(r.exit_code == 0);
//   const auto s = run_command("TZ=UTC " + tixport_command("ledger show x") + " | head -1", dir.path());
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tixport::test {

/// Result of running a command.
struct command_result {
  int exit_code = -1;  ///< the exit status; 128 + the signal if killed
  std::string out;     ///< stdout
  std::string err;     ///< stderr
};

/// Quote `s` for /bin/sh.
inline std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

/// The built tixport CLI, quoted, followed by `args` (already shell-quoted as needed):
/// for commands that add an environment, a wrapper or a pipe around it.
inline std::string tixport_command(const std::string& args) {
  return sh_quote(TIXPORT_CLI_PATH) + " " + args;
}

/// Run `command` with /bin/sh, capturing stdout and stderr into files under `dir`.
inline command_result run_command(const std::string& command, const std::filesystem::path& dir) {
  const auto out_path = dir / "cmd.stdout";
  const auto err_path = dir / "cmd.stderr";
  // The group makes the redirections apply to a whole pipeline, not its last command.
  const std::string full = "{ " + command + " ; } >" + out_path.string() + " 2>" + err_path.string() + " </dev/null";
  const int status = std::system(full.c_str());
  const auto slurp = [](const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  command_result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return r;
}

/// Run the built tixport CLI with `args` (already shell-quoted as needed).
inline command_result run_tixport(const std::string& args, const std::filesystem::path& dir) {
  return run_command(tixport_command(args), dir);
}

}  // namespace tixport::test
