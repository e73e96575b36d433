// File: cli_install_test.cpp
//
// Install and package, from the build directory under test: `cmake --install` puts the
// binary, tixport(1) and the bash / zsh completions in the usual places; the man page and
// completions hold every option of every command (they are generated from the option
// tables); the bash completion completes; `cpack -G DEB` builds a .deb with the shared
// libraries' packages as Depends. (Installing the .deb needs root and changes the machine:
// the README shows it, this test does not do it.)
//
//   ./tixport_tests "[cli_install]"
#include <catch2/catch.hpp>

#include "support/test_support.hpp"

#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using tixport::test::read_file;
using tixport::test::run_command;
using tixport::test::run_tixport;
using tixport::test::sh_quote;
using tixport::test::temp_dir;
using tixport::test::write_file;

namespace {

bool has(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

const fs::path kBuildDir = TIXPORT_BUILD_DIR;

/// Every command path ("run", "ledger show") from the man page's section titles.
std::vector<std::string> man_commands(const std::string& man) {
  std::vector<std::string> out;
  const std::regex title(R"re(\.SS "tixport ([a-z\\ -]+)")re");
  std::set<std::string> seen;
  for (std::sregex_iterator it(man.begin(), man.end(), title), end; it != end; ++it) {
    std::string name = (*it)[1];
    for (std::size_t at = 0; (at = name.find("\\-", at)) != std::string::npos;) name.erase(at, 1);
    if (seen.insert(name).second) out.push_back(name);
  }
  return out;
}

/// The long options `tixport <command> --help` lists.
std::set<std::string> help_options(const std::string& help) {
  std::set<std::string> out;
  const std::regex option(R"(^  (?:-h,)?(--[a-z][a-z0-9-]*))");
  std::istringstream lines(help);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_search(line, m, option)) out.insert(m[1]);
  }
  return out;
}

/// roff's spelling of an option: every '-' is "\-".
std::string roff_option(const std::string& option) {
  std::string out;
  for (const char c : option) out += c == '-' ? std::string("\\-") : std::string(1, c);
  return out;
}

/// What the installed bash completion offers for `words` (the last one being completed).
std::string bash_complete(const fs::path& script, const std::string& words, const fs::path& dir) {
  const auto r = run_command("bash -c " + sh_quote("source " + sh_quote(script.string()) + "; COMP_WORDS=(" + words +
                                                   "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _tixport; "
                                                   "echo \"${COMPREPLY[*]}\""),
                             dir);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

}  // namespace

TEST_CASE("cmake --install: the binary, tixport(1) and the completions in the usual places", "[cli_install]") {
  temp_dir dir;
  const fs::path prefix = dir / "prefix";
  const auto install = run_command("cmake --install " + sh_quote(kBuildDir) + " --prefix " + sh_quote(prefix), dir.path());
  INFO(install.out << install.err);
  REQUIRE(install.exit_code == 0);
  const fs::path bin = prefix / "bin" / "tixport";
  const fs::path man = prefix / "share" / "man" / "man1" / "tixport.1";
  const fs::path bash = prefix / "share" / "bash-completion" / "completions" / "tixport";
  const fs::path zsh = prefix / "share" / "zsh" / "vendor-completions" / "_tixport";
  for (const fs::path& p : {bin, man, bash, zsh}) {
    INFO(p);
    CHECK(fs::is_regular_file(p));
  }
  CHECK(run_command(sh_quote(bin) + " --version", dir.path()).out == "tixport 0.1.0\n");

  // What is installed is what the program prints now.
  CHECK(read_file(man) == run_tixport("man", dir.path()).out);
  CHECK(read_file(bash) == run_tixport("completion bash", dir.path()).out);
  CHECK(read_file(zsh) == run_tixport("completion zsh", dir.path()).out);

  // man finds the page under the prefix and renders it without warnings.
  const auto where = run_command("MANPATH=" + sh_quote(prefix / "share" / "man") + " man -w tixport", dir.path());
  CHECK(where.out == man.string() + "\n");
  const auto rendered = run_command("MANWIDTH=80 man --warnings -l " + sh_quote(man), dir.path());
  CHECK(rendered.exit_code == 0);
  CHECK(rendered.err.empty());
  CHECK(has(rendered.out, "tixport - move a chat export into a ticketing-system import archive"));
  CHECK(has(rendered.out, "EXIT STATUS"));

  // The scripts parse, and the bash one completes commands, options and their values.
  CHECK(run_command("bash -n " + sh_quote(bash), dir.path()).exit_code == 0);
  if (run_command("command -v zsh", dir.path()).exit_code == 0) {
    CHECK(run_command("zsh -n " + sh_quote(zsh), dir.path()).exit_code == 0);
  } else {
    WARN("zsh not installed: the zsh completion's syntax is not checked");
  }
  CHECK(bash_complete(bash, "tixport r", dir.path()) == "run\n");
  CHECK(bash_complete(bash, "tixport run --gz", dir.path()) == "--gzip-level\n");
  CHECK(bash_complete(bash, "tixport run --name-style ''", dir.path()) == "offset index\n");
  CHECK(bash_complete(bash, "tixport fetch-users --pagination c", dir.path()) == "cursor\n");
  CHECK(bash_complete(bash, "tixport verify --j", dir.path()) == "--json\n");
  CHECK(bash_complete(bash, "tixport completion ''", dir.path()) == "bash zsh\n");
  CHECK(bash_complete(bash, "tixport ledger s", dir.path()) == "show\n");
  write_file(dir / "chat.csv", "x");
  CHECK(bash_complete(bash, "tixport run --input " + sh_quote((dir / "cha").string()), dir.path()) ==
        (dir / "chat.csv").string() + "\n");
}

TEST_CASE("the man page and completions hold every option of every command", "[cli_install]") {
  temp_dir dir;
  const std::string man = run_tixport("man", dir.path()).out;
  const std::string bash = run_tixport("completion bash", dir.path()).out;
  const std::string zsh = run_tixport("completion zsh", dir.path()).out;
  const std::vector<std::string> commands = man_commands(man);
  for (const char* expected : {"run", "fetch-users", "verify", "generate", "completion"}) {
    INFO(expected);
    CHECK(std::find(commands.begin(), commands.end(), expected) != commands.end());
  }
  std::size_t options = 0;
  for (const std::string& command : commands) {
    const auto help = run_tixport(command + " --help", dir.path());
    REQUIRE(help.exit_code == 0);
    for (const std::string& option : help_options(help.out)) {
      INFO(command << " " << option);
      ++options;
      CHECK(has(man, roff_option(option)));
      CHECK(has(bash, option));
      CHECK(has(zsh, option));
    }
    // Each command's examples are in the man page too.
    const auto examples = help.out.find("Examples:\n");
    if (examples != std::string::npos) {
      const std::string first = help.out.substr(examples + 12, help.out.find('\n', examples + 12) - examples - 12);
      INFO(first);
      CHECK(has(man, roff_option(first)));
    }
  }
  CHECK(options > 40);
}

TEST_CASE("cpack -G DEB: a .deb with the binary, the man page, the completions and Depends", "[cli_install]") {
  temp_dir dir;
  if (run_command("command -v dpkg-shlibdeps && command -v file", dir.path()).exit_code != 0) {
    FAIL("dpkg-dev and file are needed (scripts/install-deps.sh)");
  }
  const auto pack = run_command("cpack --config " + sh_quote(kBuildDir / "CPackConfig.cmake") + " -G DEB -B " +
                                    sh_quote(dir / "pkg"),
                                dir.path());
  INFO(pack.out << pack.err);
  REQUIRE(pack.exit_code == 0);
  const fs::path deb = dir / "pkg" / "tixport_0.1.0-1_amd64.deb";
  REQUIRE(fs::is_regular_file(deb));
  const std::string depends = run_command("dpkg-deb -f " + sh_quote(deb) + " Depends", dir.path()).out;
  for (const char* package : {"libarchive13", "libc6", "libsimdjson14", "libssl3", "libstdc++6", "libtbb12", "libzstd1",
                              "zlib1g"}) {
    INFO(depends);
    CHECK(has(depends, std::string(package) + " (>= "));
  }
  CHECK(run_command("dpkg-deb -f " + sh_quote(deb) + " Package Version Section", dir.path()).out ==
        "Package: tixport\nVersion: 0.1.0-1\nSection: utils\n");
  const std::string files = run_command("dpkg-deb -c " + sh_quote(deb), dir.path()).out;
  for (const char* path : {" ./usr/bin/tixport\n", " ./usr/share/man/man1/tixport.1\n",
                           " ./usr/share/bash-completion/completions/tixport\n",
                           " ./usr/share/zsh/vendor-completions/_tixport\n"}) {
    INFO(path);
    CHECK(has(files, path));
  }
}
