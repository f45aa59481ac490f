// moe-harness command line. Exit codes: 0 ok, 1 a check failed or a run error,
// 2 bad input (unknown option, malformed value, bad file).
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "moe/error.hpp"

namespace {

// CLI11's message, except that leftover words are named plainly: the first
// unknown option, or a stray word where a command belongs.
std::string parse_error_line(const CLI::App& app, const CLI::ParseError& e) {
  if (dynamic_cast<const CLI::ExtrasError*>(&e) == nullptr) return e.what();
  const std::vector<std::string> left = app.remaining(true);
  if (left.empty() || left.front().empty()) return e.what();
  const std::string& w = left.front();
  const std::string more = left.size() > 1 ? " (and " + std::to_string(left.size() - 1) + " more argument(s))" : "";
  if (w[0] == '-') return "unknown option '" + w + "'" + more;
  if (app.get_subcommands().empty()) {
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({})) names += (names.empty() ? "" : ", ") + sub->get_name();
    return "unknown command '" + w + "' (commands: " + names + ")" + more;
  }
  return "unexpected argument '" + w + "'" + more;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moe-harness: Mixture-of-Experts GPU kernels, each checked against an Eigen CPU reference."};
  app.set_version_flag("--version", std::string("moe-harness ") + MOE_VERSION);
  // At most one subcommand. Not require_subcommand(1): CLI11 2.1 checks that
  // requirement before leftover arguments, so `moe-harness --bogus` would report
  // "A subcommand is required" instead of the unknown option. A missing command
  // is reported below, after parsing.
  app.require_subcommand(0, 1);
  moe::cli::CommonOptions common;
  std::vector<moe::cli::Command> commands;
  moe::cli::add_commands(app, common, commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    // One line and exit code 2, whatever CLI11's own code would be.
    std::cerr << "moe-harness: error: " << moe::utf8_sanitized(parse_error_line(app, e)) << " (see moe-harness --help)\n";
    return 2;
  }
  try {
    for (const auto& c : commands)
      if (c.app->parsed()) return c.run(common);
    std::cerr << "moe-harness: error: no command given (see moe-harness --help)\n";
    return 2;
  } catch (const moe::InputError& e) {
    std::cerr << "moe-harness: error: " << moe::utf8_sanitized(e.what()) << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "moe-harness: failed: " << moe::utf8_sanitized(e.what()) << "\n";
    return 1;
  }
}
