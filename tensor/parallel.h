// One thread pool for everything: OpenMP, which the OpenMP build of OpenBLAS shares.
#pragma once

namespace dd {

// Sets the OpenMP and OpenBLAS thread counts together (n >= 1).
void set_num_threads(int n);
int get_num_threads();

}  // namespace dd
