#include "tensor/parallel.h"

#include <omp.h>

#include <stdexcept>
#include <string>

extern "C" void openblas_set_num_threads(int);

namespace dd {

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("threads: expected >= 1, got " + std::to_string(n));
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace dd
