// moe-harness command line. Exit codes: 0 ok, 1 a check failed or a run error,
// 2 bad input (unknown option, malformed value, bad file).
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "moe/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"moe-harness: Mixture-of-Experts GPU kernels, each checked against an Eigen CPU reference."};
  app.set_version_flag("--version", std::string("moe-harness ") + MOE_VERSION);
  app.require_subcommand(1);
  moe::cli::CommonOptions common;
  std::vector<moe::cli::Command> commands;
  moe::cli::add_commands(app, common, commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    // One line and exit code 2, whatever CLI11's own code would be.
    std::cerr << "moe-harness: error: " << e.what() << " (see moe-harness --help)\n";
    return 2;
  }
  try {
    for (const auto& c : commands)
      if (c.app->parsed()) return c.run(common);
    std::cerr << "moe-harness: error: no command given (see moe-harness --help)\n";
    return 2;
  } catch (const moe::InputError& e) {
    std::cerr << "moe-harness: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "moe-harness: failed: " << e.what() << "\n";
    return 1;
  }
}
