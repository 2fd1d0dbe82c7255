// meridian: regional AI routing gateway. Subcommands are wired here explicitly.
#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>

#include "gateway/cli/audit_cli.h"
#include "gateway/cli/meter_cli.h"
#include "gateway/cli/policy_cli.h"
#include "gateway/cli/serve_cli.h"

int main(int argc, char** argv) {
  CLI::App app{"Meridian: a regional AI routing gateway with a data-residency policy engine",
               "meridian"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  std::function<int()> run;
  meridian::cli::AddServeCommand(app, run);
  meridian::cli::AddPolicyCommands(app, run);
  meridian::cli::AddMeterCommands(app, run);
  meridian::cli::AddAuditCommands(app, run);
  // CLI11 reports a mistyped command as "A subcommand is required"; name the word instead.
  const CLI::App* level = &app;
  std::string parents;  // "meridian policy" when level is `check`, for the usage line
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-' || level->get_subcommands({}).empty()) break;
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : level->get_subcommands({})) {
      if (sub->get_name() == word) next = sub;
    }
    if (next == nullptr) {
      std::cerr << "meridian: unknown command '" << word << "'\n\n" << level->help(parents);
      return 2;
    }
    parents += (parents.empty() ? "" : " ") + level->get_name();
    level = next;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    // help() shows the usage of the deepest subcommand the user reached.
    std::cerr << "meridian: " << e.what() << "\n\n" << app.help();
    return 2;
  }
  return run ? run() : 2;
}
