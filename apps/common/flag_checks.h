// Flag checks CLI11 does not make itself, shared by the programs:
// - a negative value for an unsigned flag (CLI11 wraps --seed -1 to 2^64 - 1);
// - a count that must be positive or non-negative, with a readable message (CLI11's PositiveNumber
//   prints its range as two 300-digit doubles);
// - a list flag given twice (CLI11 appends the second list to the first) unless its help says
//   "repeatable".
#pragma once

#include <optional>
#include <string>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace dd::app {

CLI::Option* non_negative(CLI::Option* opt);  // "expected a value >= 0, got -1"
CLI::Option* positive(CLI::Option* opt);      // "expected a value >= 1, got 0"

// The message for the first list flag of argv given more than once, or nothing.
std::optional<std::string> repeated_list_flag(const CLI::App& app, int argc, char** argv);

}  // namespace dd::app
