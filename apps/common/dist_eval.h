// The evaluation programs over several ranks (dist/comm.h): each rank evaluates a contiguous share
// of the batches with the batch's own seed, and rank 0 gathers the results in batch order, so the
// numbers are those of one process.
#pragma once

#include <vector>

#include "ddpm/bound.h"
#include "dist/comm.h"
#include "tensor/tensor.h"

namespace dd::app {

// Every rank's BoundResults, gathered to rank 0 in rank order (= batch order for contiguous
// shares); the other ranks get {}. A single process gets its own results back.
std::vector<ddpm::BoundResult> gather_bound_results(dist::Comm& comm, const std::vector<ddpm::BoundResult>& mine);

// Every rank's images [n_r, C, H, W] concatenated on rank 0 in rank order into `images`
// (already shaped [sum n_r, C, H, W]); nothing on the other ranks.
void gather_images(dist::Comm& comm, const Tensor<float>& mine, Tensor<float>& images);

}  // namespace dd::app
