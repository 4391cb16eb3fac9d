// Every equation of docs/derivations.md checked with small numbers a reader can follow (the toy model
// of derivations/toy.h), and the doc's pictures. apps/derivations parses the flags and calls these.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "derivations/checker.h"

namespace dd::derivations {

// The groups --eq accepts, in the order they run: "1".."14", "bpd", "alg1", "alg2", "bound", "lemmas",
// "views", "seeds".
const std::vector<std::string>& groups();

// Runs the checks of `only` (empty: every group), printing to `out` (nullptr: silent); the records
// say which passed. Throws std::invalid_argument for an unknown group.
std::vector<CheckRecord> run_checks(const std::string& only, bool verbose, std::FILE* out);

// The pictures of docs/derivations.md into dir (q_xt_digit.png needs MNIST in data_dir, else it is
// skipped with a message).
void write_plots(const std::string& dir, const std::string& data_dir, std::FILE* out);

}  // namespace dd::derivations
