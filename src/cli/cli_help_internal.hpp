// File: cli_help_internal.hpp
//
// The conventions every tixport command follows, applied to the whole CLI11 option
// tree at once so that a command or option added later gets them too: --help shows
// each option's default, the command's examples and its exit codes; every error
// (CLI11's parse errors included) reads `tixport: error: ...` with a hint to --help;
// a mistyped command or option gets "did you mean". Included by main.cpp only (CLI11
// is slow to compile); cli_docs_internal.hpp renders the same tables as a man page
// and shell completions.
//
//   tixport::cli::command_docs docs = {{"run", {{{"tixport run ...", "what it does"}}, {}}}};
//   tixport::cli::apply_conventions(app, docs);   // after every option is added
//   if (const auto rc = tixport::cli::parse(app, argc, argv, [&] { check(...); })) return *rc;
#pragma once

#include <CLI/CLI.hpp>

#include "tixport/common/errors.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tixport::cli {

/// One example command line and what it does.
struct example {
  std::string command;  ///< e.g. "tixport run --input chat.csv ..."
  std::string meaning;  ///< one line
};

/// One exit code and what it means for this command.
struct exit_status {
  int code = 0;         ///< the process exit code
  std::string meaning;  ///< one line
};

/// What a command's help, man page section and completion show beyond its option table.
struct command_doc {
  std::vector<example> examples;         ///< a few typical uses
  std::vector<exit_status> exit_codes;   ///< empty: the program's table (docs[""])
};

/// Docs by command key, the command's path after "tixport " ("run", "ledger show"); "" is the
/// program itself (its exit codes are the default of every command without its own).
using command_docs = std::map<std::string, command_doc>;

/// Every subcommand of `app` in definition order, hidden ones (group "") only when `hidden`.
inline std::vector<const CLI::App*> commands_of(const CLI::App& app, bool hidden = false) {
  return app.get_subcommands([hidden](const CLI::App* sub) { return hidden || !sub->get_group().empty(); });
}

/// Every visible command under `app` at any depth, each before its own subcommands.
inline std::vector<const CLI::App*> all_commands(const CLI::App& app) {
  std::vector<const CLI::App*> out;
  for (const CLI::App* sub : commands_of(app)) {
    out.push_back(sub);
    for (const CLI::App* nested : all_commands(*sub)) out.push_back(nested);
  }
  return out;
}

/// The key of `cmd` in command_docs: "ledger show" for `tixport ledger show`, "" for the program.
inline std::string command_key(const CLI::App& cmd) {
  const CLI::App* parent = cmd.get_parent();
  if (parent == nullptr) return {};
  const std::string above = command_key(*parent);
  return above.empty() ? cmd.get_name() : above + " " + cmd.get_name();
}

/// The names of `cmd`'s visible subcommands, ", "-separated.
inline std::string command_list(const CLI::App& cmd) {
  std::string all;
  for (const CLI::App* sub : commands_of(cmd)) all += (all.empty() ? "" : ", ") + sub->get_name();
  return all;
}

/// The exit codes that apply to `name`.
inline const std::vector<exit_status>& exit_codes_of(const command_docs& docs, const std::string& name) {
  static const std::vector<exit_status> kNone;
  const auto it = docs.find(name);
  if (it != docs.end() && !it->second.exit_codes.empty()) return it->second.exit_codes;
  const auto program = docs.find("");
  return program == docs.end() ? kNone : program->second.exit_codes;
}

/// Help formatter: each option's default goes at the end of its description
/// ("[default: 16]") instead of CLI11's "UINT=16" that is easy to miss.
class help_formatter : public CLI::Formatter {
 public:
  std::string make_option_opts(const CLI::Option* opt) const override {
    std::ostringstream out;
    if (!opt->get_option_text().empty()) return " " + opt->get_option_text();
    if (opt->get_type_size() != 0) {
      if (!opt->get_type_name().empty()) out << " " << get_label(opt->get_type_name());
      if (opt->get_required()) out << " " << get_label("REQUIRED");
    }
    if (!opt->get_envname().empty()) out << " (" << get_label("Env") << ":" << opt->get_envname() << ")";
    for (const CLI::Option* other : opt->get_needs()) out << " " << get_label("Needs") << ": " << other->get_name();
    for (const CLI::Option* other : opt->get_excludes()) {
      out << " " << get_label("Excludes") << ": " << other->get_name();
    }
    return out.str();
  }
  std::string make_option_desc(const CLI::Option* opt) const override {
    std::string text = opt->get_description();
    if (opt->get_type_size() != 0 && !opt->get_required() && !opt->get_default_str().empty()) {
      text += " [default: " + opt->get_default_str() + "]";
    }
    return text;
  }
};

/// The footer of `name`'s help: its examples and exit codes.
inline std::string help_footer(const command_docs& docs, const std::string& name) {
  std::string out;
  const auto it = docs.find(name);
  if (it != docs.end() && !it->second.examples.empty()) {
    out += "Examples:\n";
    for (const example& e : it->second.examples) out += "  " + e.command + "\n      " + e.meaning + "\n";
    out += "\n";
  }
  const auto& codes = exit_codes_of(docs, name);
  if (!codes.empty()) {
    out += "Exit codes:\n";
    for (const exit_status& s : codes) {
      std::string code = std::to_string(s.code);
      code.resize(5, ' ');
      out += "  " + code + s.meaning + "\n";
    }
  }
  return out;
}

/// Give `app` and every command under it the help formatter and its footer. Call it once
/// every option has been added; set `option_defaults()->always_capture_default()` before
/// adding any, so that every option's default is known.
inline void apply_conventions(CLI::App& app, const command_docs& docs) {
  auto formatter = std::make_shared<help_formatter>();
  formatter->column_width(32);
  const std::function<void(CLI::App&)> apply = [&](CLI::App& cmd) {
    cmd.formatter(formatter);
    cmd.footer(help_footer(docs, command_key(cmd)));
    for (CLI::App* sub : cmd.get_subcommands([](CLI::App*) { return true; })) apply(*sub);
  };
  apply(app);
}

/// Levenshtein distance of two short words.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

/// The candidate nearest to `word`, when near enough to be a typo (or a prefix of it).
inline std::optional<std::string> nearest(std::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    const std::size_t d = c.starts_with(word) && word.size() >= 3 ? 1 : edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

/// The deepest command the parse reached ("tixport run" -> run's App).
inline const CLI::App* parsed_command(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->parsed()) return parsed_command(*sub);
  }
  return &app;
}

/// "tixport run" for run's App.
inline std::string command_path(const CLI::App& cmd) {
  const CLI::App* parent = cmd.get_parent();
  return parent == nullptr ? std::string("tixport") : command_path(*parent) + " " + cmd.get_name();
}

/// Print `message` as `tixport: error: ...` with the hint to `cmd`'s --help; returns exit code 2.
inline int usage_failure(const CLI::App& cmd, const std::string& message) {
  std::fprintf(stderr, "tixport: error: %s\n", message.c_str());
  std::fprintf(stderr, "Run '%s --help' for the options, examples and exit codes.\n", command_path(cmd).c_str());
  return static_cast<int>(exit_code::input_error);
}

/// A usage error found after parsing, e.g. an option that cannot apply to this run.
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parse the command line; then run `check` (which throws usage_error). Returns the exit code
/// when the process is done (help or version printed: 0; a usage error printed: 2), nullopt
/// when the command is to run.
inline std::optional<int> parse(CLI::App& app, int argc, char** argv, const std::function<void()>& check = {}) {
  // 1. A first word that is no command: say so, with the nearest one (CLI11 would say only
  //    "A subcommand is required" or that the word was not expected).
  if (argc > 1 && argv[1][0] != '-') {
    const std::string word = argv[1];
    std::vector<std::string> names;
    for (const CLI::App* sub : commands_of(app, true)) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), word) == names.end()) {
      std::vector<std::string> visible;
      for (const CLI::App* sub : commands_of(app)) visible.push_back(sub->get_name());
      std::string message = "unknown command '" + word + "'";
      if (const auto guess = nearest(word, visible)) message += " (did you mean '" + *guess + "'?)";
      return usage_failure(app, message + "; the commands are " + command_list(app));
    }
  }
  try {
    app.parse(argc, argv);
    if (check) check();
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ExtrasError& e) {
    // 2. An unknown option: name the nearest option of the command.
    const CLI::App& cmd = *parsed_command(app);
    std::vector<std::string> options;
    for (const CLI::Option* opt : cmd.get_options()) {
      for (const std::string& name : opt->get_lnames()) options.push_back("--" + name);
    }
    std::string message = e.what();
    for (const std::string& extra : app.remaining(true)) {
      if (!extra.starts_with("--")) continue;
      const std::string flag = extra.substr(0, extra.find('='));
      if (const auto guess = nearest(flag, options)) {
        message += " (did you mean " + *guess + "?)";
        break;
      }
    }
    return usage_failure(cmd, message);
  } catch (const CLI::RequiredError& e) {
    // A command that needs a subcommand got none, or a word that is none of them.
    const CLI::App& cmd = *parsed_command(app);
    if (!commands_of(cmd).empty()) {
      for (const std::string& word : cmd.remaining()) {
        if (word.starts_with("-")) continue;
        std::vector<std::string> names;
        for (const CLI::App* sub : commands_of(cmd)) names.push_back(sub->get_name());
        std::string message = "unknown command '" + word + "' for '" + command_path(cmd) + "'";
        if (const auto guess = nearest(word, names)) message += " (did you mean '" + *guess + "'?)";
        return usage_failure(cmd, message + "; the commands are " + command_list(cmd));
      }
      return usage_failure(cmd, (&cmd == &app ? "" : command_path(cmd).substr(8) + ": ") +
                                    "a command is required: " + command_list(cmd));
    }
    return usage_failure(cmd, e.what());
  } catch (const CLI::ParseError& e) {
    return usage_failure(*parsed_command(app), e.what());
  } catch (const usage_error& e) {
    return usage_failure(*parsed_command(app), e.what());
  }
  return std::nullopt;
}

}  // namespace tixport::cli
