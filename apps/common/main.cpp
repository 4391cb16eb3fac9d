#include "apps/common/main.h"

#include <CLI/CLI.hpp>

#include <new>

#include "apps/common/flag_checks.h"
#include "tensor/io/atomic_file.h"

#include <cstdio>
#include <exception>

namespace dd::app {

int run_main(const char* name, int (*run)(int, char**), int argc, char** argv) {
  ignore_file_size_signal();  // a file-size limit becomes a "file too large" error, not a silent death
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory (a smaller --batch, --n or model needs less)\n", name);
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

std::optional<int> parse_flags(CLI::App& app, const char* name, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", name, e.what());
    return 2;
  }
  if (const auto repeated = repeated_list_flag(app, argc, argv)) {
    std::fprintf(stderr, "%s: %s (see --help)\n", name, repeated->c_str());
    return 2;
  }
  return std::nullopt;
}

}  // namespace dd::app
