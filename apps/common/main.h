// The programs' shared main(): any exception becomes one line "NAME: message" on stderr and exit 1;
// and their flag parsing: --help prints and exits 0, a bad flag is one line "NAME: ... (see --help)"
// and exit 2.
#pragma once

#include <optional>

namespace CLI {
class App;
}

namespace dd::app {

int run_main(const char* name, int (*run)(int, char**), int argc, char** argv);

// Parses argv into `app`: nothing when the program should go on, else the exit code to return.
std::optional<int> parse_flags(CLI::App& app, const char* name, int argc, char** argv);

}  // namespace dd::app
