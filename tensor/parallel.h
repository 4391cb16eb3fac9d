// One thread pool for everything: OpenMP, which the OpenMP build of OpenBLAS shares.
//
// Scheduling policy: loops whose iterations are independent (images of a convolution, groups of
// a GroupNorm, Winograd chunks, attention items) hand iterations out dynamically. On the shared
// VMs this runs on one core is often slowed for a while by other tenants, and with a static split
// every such loop would wait for it at its end. Loops that reduce into per-thread partial sums
// keep a fixed partition instead, so that a fixed thread count gives bit-identical results.
#pragma once

namespace dd {

// Sets the OpenMP and OpenBLAS thread counts together (n >= 1).
void set_num_threads(int n);
int get_num_threads();

}  // namespace dd
