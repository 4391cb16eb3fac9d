// The programs' shared main(): any exception becomes one line "NAME: message" on stderr and exit 1.
#pragma once

namespace dd::app {

int run_main(const char* name, int (*run)(int, char**), int argc, char** argv);

}  // namespace dd::app
