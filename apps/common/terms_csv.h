// The per-term CSV of apps/nll ("t,term,bits_per_dim", one row per t = 0..T: L_0, L_1, ..., L_T),
// read back to draw an old run's terms next to a new one's (apps/nll --compare).
#pragma once

#include <string>
#include <vector>

namespace dd::app {

struct BoundTerms {
  std::vector<double> t;             // 0..T
  std::vector<double> bits_per_dim;  // the mean term at each t
};

// Throws IoError naming the file, the line and what was expected on any malformed content.
BoundTerms read_terms_csv(const std::string& path);

}  // namespace dd::app
