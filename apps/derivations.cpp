// derivations: every equation of docs/derivations.md checked with small numbers (the checks live in
// derivations/); exits 1 if any check fails. --plots DIR also draws the doc's pictures.
//
//   ./apps/derivations [--eq GROUP] [--verbose] [--plots DIR] [--data DIR]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "apps/common/main.h"
#include "derivations/derivations.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"derivations: every DDPM equation (docs/derivations.md) checked with small numbers"};
  std::string eq, plots, data = "data";
  bool verbose = false, index = false;
  std::string list;
  for (const std::string& g : dd::derivations::groups()) list += (list.empty() ? "" : ", ") + g;
  app.add_option("--eq", eq, "only this group: " + list + " (default: all)")
      ->transform([](std::string v) { return v == "typos" ? std::string("seeds") : v; })
      ->check(CLI::IsMember(dd::derivations::groups()));
  app.add_flag("--verbose", verbose, "print the derivation steps and every element compared, labelled (t, pixel)");
  app.add_flag("--index", index, "print the index of checks (a Markdown table: check, label, what it compares) and exit");
  app.add_option("--plots", plots, "write the doc's pictures (PNG) to DIR");
  app.add_option("--data", data, "folder with the MNIST IDX files for the q(x_t|x0) picture (default data/)");
  if (const auto code = dd::app::parse_flags(app, "derivations", argc, argv)) return *code;

  if (index) {
    std::printf("| Check | Label | What it compares |\n|---|---|---|\n");
    for (const dd::derivations::CheckRecord& r : dd::derivations::run_checks(eq, false, nullptr)) {
      std::string what;
      for (char ch : r.what) what += ch == '|' ? std::string("\\|") : std::string(1, ch);  // a cell may not hold a bare |
      std::printf("| `%s` | %s | %s |\n", r.name.c_str(), dd::derivations::to_string(r.label), what.c_str());
    }
    return 0;
  }
  int run = 0, failed = 0;
  for (const dd::derivations::CheckRecord& r : dd::derivations::run_checks(eq, verbose, stdout)) {
    ++run;
    failed += !r.ok;
  }
  if (!plots.empty()) dd::derivations::write_plots(plots, data, stdout);
  std::printf("\nderivations: %d checks, %d passed, %d failed\n", run, run - failed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return dd::app::run_main("derivations", run, argc, argv); }
