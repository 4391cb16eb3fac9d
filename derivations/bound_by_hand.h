// The whole variational bound of the toy model (DDPM eq. 5: L_T, every L_{t-1}, the discretized L_0
// of eq. 13, bits/dim) computed here with formulas written out independently of ddpm/, against a
// bound function (the library's variational_bound, or a copy of it with a bug planted, in tests).
#pragma once

#include <functional>

#include "ddpm/bound.h"
#include "derivations/checker.h"

namespace dd::derivations {

using BoundFunction = std::function<ddpm::BoundResult(const ddpm::Schedule&, const ddpm::Denoiser&,
                                                      const Tensor<float>&, Rng&, const ddpm::BoundOptions&)>;

// Group "bound": two images of four pixels on the 8-bit grid (edge bins included), T = 10, a poor
// linear network eps_theta = 0.3 x_t (so x0_hat leaves [-1, 1] and clipping matters), for the
// reported configuration (sigma 'large', x0_hat clipped) and for sigma 'small' unclipped. The
// checks replay the noise the bound draws (one N(0, I) of x0's shape per t, t = T..1, from the Rng
// it is given) and compare every x_t, every term and the bits/dim.
void check_bound_by_hand(Checker& c, const ddpm::Schedule& s, const BoundFunction& bound);

}  // namespace dd::derivations
