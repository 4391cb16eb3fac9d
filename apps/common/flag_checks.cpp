#include "apps/common/flag_checks.h"

#include <CLI/CLI.hpp>

#include <map>

namespace dd::app {

namespace {
// The value as a (possibly negative) integer, or nothing for other text (CLI11 reports that itself).
std::optional<long double> number(const std::string& text) {
  try {
    size_t used = 0;
    const long double v = std::stold(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}
}  // namespace

CLI::Option* non_negative(CLI::Option* opt) {
  return opt->check([](const std::string& text) -> std::string {
    const auto v = number(text);
    if ((v && *v < 0) || (!text.empty() && text[0] == '-')) return "expected a value >= 0, got " + text;
    return "";
  }, "", "NONNEGATIVE");
}

CLI::Option* positive(CLI::Option* opt) {
  return opt->check([](const std::string& text) -> std::string {
    const auto v = number(text);
    if (v && *v < 1) return "expected a value >= 1, got " + text;
    return "";
  }, "", "POSITIVE");
}

std::optional<std::string> repeated_list_flag(const CLI::App& app, int argc, char** argv) {
  std::map<std::string, int> seen;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0) continue;
    const std::string name = arg.substr(0, arg.find('='));
    const CLI::Option* opt = app.get_option_no_throw(name);
    if (!opt || opt->get_expected_max() <= 1 || opt->get_description().find("repeatable") != std::string::npos) continue;
    if (++seen[name] == 2)
      return name + ": expected once (a list is one comma-separated value, e.g. " + name + " 1,2), got it twice";
  }
  return std::nullopt;
}

}  // namespace dd::app
