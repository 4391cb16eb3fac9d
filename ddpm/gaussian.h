// Gaussian building blocks of the bound (docs/equations.md "The variational bound", "Discretized decoder"):
// the KL between two Gaussians, log Phi in log space, the discretized decoder of eq. (13), and the
// continuous Gaussian log-density. Scalar functions compute in float64; the decoder also exists as a
// differentiable op (its gradient w.r.t. the mean and the log standard deviation) for the hybrid loss.
#pragma once

#include "autograd/var.h"
#include "tensor/tensor.h"

namespace dd::ddpm {

// KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) per dimension, in nats:
// 0.5 (logvar2 - logvar1 + exp(logvar1 - logvar2) + (mean1 - mean2)^2 exp(-logvar2) - 1).
double normal_kl(double mean1, double logvar1, double mean2, double logvar2);

// log Phi(z), Phi the standard normal CDF, finite for every finite z: erfc where it is accurate,
// log1p(-Phi(-z)) for z > 0, and for z < -20 the asymptotic series
// log Phi(z) = -z^2/2 - log(-z) - log(2 pi)/2 + log(1 - 1/z^2 + 3/z^4 - 15/z^6 + 105/z^8 - 945/z^10).
double log_ndtr(double z);

// log(Phi(b) - Phi(a)) for a < b (either may be infinite), computed in log space:
// log Phi(b) + log1p(-exp(log Phi(a) - log Phi(b))), mirrored (Phi(-a) - Phi(-b)) when a > 0.
double log_normal_cdf_diff(double a, double b);

// DDPM eq. (13) for one pixel: log of the mass of N(mean, exp(2 log_scale)) on the bin of x,
// [x - 1/255, x + 1/255], the edge bins x = -1 and x = 1 taking the tails (delta_- = -inf, delta_+ = +inf).
// x must be one of the 256 values 2k/255 - 1; an x within 1e-6 of -1 or 1 is an edge bin.
double discretized_gaussian_log_likelihood(double x, double mean, double log_scale);

// log N(x; mean, exp(logvar)) (the continuous decoder used by the analytic tests).
double gaussian_log_density(double x, double mean, double logvar);

// Differentiable eq. (13) elementwise: log-likelihood of the constant x under N(mean, exp(2 log_scale)),
// same shapes (no broadcasting). d/dmean = (phi(a) - phi(b)) / (sigma P), d/dlog_scale = (a phi(a) - b phi(b)) / P,
// a, b the standardized bin edges, P the bin mass.
template <class T>
Var<T> discretized_gaussian_log_likelihood(const Tensor<T>& x, const Var<T>& mean, const Var<T>& log_scale);

}  // namespace dd::ddpm
