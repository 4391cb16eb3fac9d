#include "ddpm/losses.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "autograd/ops.h"
#include "ddpm/diffusion.h"
#include "ddpm/gaussian.h"
#include "tensor/shape.h"

namespace dd::ddpm {

std::string to_string(LossType l) {
  switch (l) {
    case LossType::Simple: return "simple";
    case LossType::Vlb: return "vlb";
    case LossType::Hybrid: return "hybrid";
  }
  return "?";
}

LossType loss_type_from_string(const std::string& s) {
  if (s == "simple") return LossType::Simple;
  // "kl" is how the library named the bound loss before the flags' "vlb" was adopted everywhere.
  if (s == "vlb" || s == "kl") return LossType::Vlb;
  if (s == "hybrid") return LossType::Hybrid;
  throw std::invalid_argument("loss type: expected one of simple, hybrid, vlb, got '" + s + "'");
}

namespace {
// A constant [N, 1, ..., 1] holding one value per sample (broadcasts over the other axes).
template <class T>
Var<T> per_sample_const(const std::vector<double>& v, int64_t ndim) {
  Shape sh(ndim, 1);
  sh[0] = static_cast<int64_t>(v.size());
  Tensor<T> out(sh);
  for (size_t i = 0; i < v.size(); ++i) out.data()[i] = static_cast<T>(v[i]);
  return Var<T>(out, false);
}
std::vector<int> non_batch_axes(int64_t ndim) {
  std::vector<int> a;
  for (int i = 1; i < ndim; ++i) a.push_back(i);
  return a;
}
std::vector<double> to_doubles(const Tensor<float>& x) {
  auto v = x.to_vector();
  return std::vector<double>(v.begin(), v.end());
}
std::vector<double> to_doubles(const Tensor<double>& x) { return x.to_vector(); }
}  // namespace

template <class T>
TrainingLossT<T> training_loss(const Schedule& s, const TrainDenoiserT<T>& model, const Tensor<T>& x0,
                               const std::vector<int64_t>& t, const Tensor<T>& noise,
                               const std::vector<double>& weights, const LossOptions& options) {
  check_batch(s, x0, t, "training_loss");
  if (noise.shape() != x0.shape()) shape_error("training_loss", "noise of shape " + shape_str(x0.shape()), shape_str(noise.shape()));
  const int64_t N = x0.size(0), C = x0.size(1), nd = x0.dim();
  if (!weights.empty() && static_cast<int64_t>(weights.size()) != N)
    shape_error("training_loss", std::to_string(N) + " importance weights (or none)", std::to_string(weights.size()));
  const bool learned = options.variance == VarianceType::Learned;
  const auto axes = non_batch_axes(nd);

  // Algorithm 1: x_t by eq. (4), one network call
  const Tensor<T> x_t = q_sample(s, x0, t, noise);
  std::vector<int64_t> network_t(N);
  for (int64_t n = 0; n < N; ++n) network_t[n] = s.timesteps[t[n]];
  const Var<T> out = model(Var<T>(x_t, false), network_t);
  Shape want = x0.shape();
  if (learned) want[1] = 2 * C;
  if (out.shape() != want)
    shape_error("training_loss: denoiser output", shape_str(want) + (learned ? " (eps and v: 2C channels)" : " (eps)"),
                shape_str(out.shape()));
  const Var<T> eps = learned ? slice(out, 1, 0, C) : out;

  // DDPM eq. (14), per sample: mean over pixels of (eps - eps_theta)^2
  const Var<T> mse = mean(square(sub(eps, Var<T>(noise, false))), axes);
  TrainingLossT<T> r;
  r.mse = to_doubles(mse.value());
  r.vb.assign(N, std::numeric_limits<double>::quiet_NaN());
  Var<T> term = mse;

  if (options.type != LossType::Simple) {
    // vb_t: L_{t-1} (t >= 2) or L_0 (t = 1) in bits/dim. Hybrid holds the mean fixed (stop-gradient).
    const Var<T> eps_for_mean = options.type == LossType::Hybrid ? eps.detach() : eps;
    std::vector<double> coef_x(N), coef_eps(N), post_logvar(N), min_log(N), max_log(N), is_t1(N), fixed_logvar(N);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t ti = t[n];
      coef_x[n] = 1.0 / std::sqrt(s.alphas[ti]);                                       // eq. (11)
      coef_eps[n] = s.betas[ti] / (s.sqrt_one_minus_abar[ti] * std::sqrt(s.alphas[ti]));  // eq. (11)
      post_logvar[n] = s.posterior_log_variance_clipped[ti];
      min_log[n] = s.learned_log_variance_min[ti];
      max_log[n] = s.log_betas[ti];
      is_t1[n] = ti == 1 ? 1.0 : 0.0;
      if (!learned) fixed_logvar[n] = s.model_log_variance(options.variance, ti);
    }
    // DDPM eq. (11): mu_theta = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t)
    const Var<T> model_mean = sub(mul(per_sample_const<T>(coef_x, nd), Var<T>(x_t, false)),
                                  mul(per_sample_const<T>(coef_eps, nd), eps_for_mean));
    Var<T> model_logvar;
    if (learned) {
      // log sigma^2 = frac log beta_t + (1 - frac) log betatilde_t, frac = (v + 1) / 2
      const Var<T> frac = mul_scalar(add_scalar(slice(out, 1, C, 2 * C), T(1)), T(0.5));
      std::vector<double> span(N);
      for (int64_t n = 0; n < N; ++n) span[n] = max_log[n] - min_log[n];
      model_logvar = add(per_sample_const<T>(min_log, nd), mul(frac, per_sample_const<T>(span, nd)));
    } else {
      model_logvar = expand(per_sample_const<T>(fixed_logvar, nd), x0.shape());
    }
    // Gaussian KL(q(x_{t-1}|x_t,x0) || p_theta(x_{t-1}|x_t)) per pixel (DDPM eq. 5, L_{t-1})
    const Posterior<T> post = q_posterior(s, x0, x_t, t);
    const Var<T> true_logvar = per_sample_const<T>(post_logvar, nd);
    const Var<T> diff = sub(Var<T>(post.mean, false), model_mean);
    const Var<T> kl = mul_scalar(
        add_scalar(add(add(sub(model_logvar, true_logvar), exp(sub(true_logvar, model_logvar))),
                       mul(square(diff), exp(neg(model_logvar)))),
                   T(-1)),
        T(0.5));
    // L_0 = -log p_theta(x0 | x1), DDPM eq. (13), log scale = log sigma / 1 = logvar / 2
    Var<T> vb_elem = kl;
    bool any_t1 = false;
    for (double f : is_t1) any_t1 = any_t1 || f > 0;
    if (any_t1) {
      const Var<T> decoder_nll = neg(discretized_gaussian_log_likelihood(x0, model_mean, mul_scalar(model_logvar, T(0.5))));
      std::vector<double> not_t1(N);
      for (int64_t n = 0; n < N; ++n) not_t1[n] = 1.0 - is_t1[n];
      vb_elem = add(mul(per_sample_const<T>(is_t1, nd), decoder_nll), mul(per_sample_const<T>(not_t1, nd), kl));
    }
    const Var<T> vb = mul_scalar(mean(vb_elem, axes), T(1.0 / std::log(2.0)));  // nats -> bits, mean over pixels
    r.vb = to_doubles(vb.value());
    const T scale_T = static_cast<T>(s.T);
    if (options.type == LossType::Vlb) term = mul_scalar(vb, scale_T);
    else term = add(mse, mul_scalar(vb, static_cast<T>(static_cast<double>(s.T) / 1000.0)));  // hybrid
  }
  r.per_sample = to_doubles(term.value());
  std::vector<double> w = weights.empty() ? std::vector<double>(N, 1.0) : weights;
  r.loss = mean(mul(term, per_sample_const<T>(w, 1)));
  return r;
}

template TrainingLossT<float> training_loss(const Schedule&, const TrainDenoiserT<float>&, const Tensor<float>&,
                                            const std::vector<int64_t>&, const Tensor<float>&,
                                            const std::vector<double>&, const LossOptions&);
template TrainingLossT<double> training_loss(const Schedule&, const TrainDenoiserT<double>&, const Tensor<double>&,
                                             const std::vector<int64_t>&, const Tensor<double>&,
                                             const std::vector<double>&, const LossOptions&);

// ---- timestep samplers ----------------------------------------------------------------------------

TimestepDraw TimestepSampler::sample(int64_t n, Rng& rng) const {
  const std::vector<double> p = probabilities();
  std::vector<double> cdf(T_ + 1, 0.0);
  for (int64_t t = 1; t <= T_; ++t) cdf[t] = cdf[t - 1] + p[t];
  TimestepDraw d;
  for (int64_t i = 0; i < n; ++i) {
    const double u = rng.uniform1() * cdf[T_];
    int64_t t = static_cast<int64_t>(std::upper_bound(cdf.begin() + 1, cdf.end(), u) - cdf.begin());
    if (t > T_) t = T_;
    while (p[t] <= 0.0 && t < T_) ++t;  // u on a zero-width step (never for the samplers here)
    d.t.push_back(t);
    d.weights.push_back(1.0 / (static_cast<double>(T_) * p[t] / cdf[T_]));
  }
  return d;
}

std::vector<double> UniformTimesteps::probabilities() const {
  std::vector<double> p(T_ + 1, 1.0 / static_cast<double>(T_));
  p[0] = 0.0;
  return p;
}

LossSecondMomentTimesteps::LossSecondMomentTimesteps(int64_t T, int history, double uniform_prob)
    : TimestepSampler(T), history_(history), uniform_prob_(uniform_prob), losses_(T + 1), count_(T + 1, 0) {
  if (history < 1 || !(uniform_prob >= 0.0 && uniform_prob <= 1.0))
    throw std::invalid_argument("LossSecondMomentTimesteps: expected history >= 1 and uniform_prob in [0, 1], got " +
                                std::to_string(history) + ", " + std::to_string(uniform_prob));
  for (auto& l : losses_) l.assign(history, 0.0);
}

bool LossSecondMomentTimesteps::warmed_up() const {
  for (int64_t t = 1; t <= T_; ++t)
    if (count_[t] < history_) return false;
  return true;
}

void LossSecondMomentTimesteps::update(const std::vector<int64_t>& t, const std::vector<double>& losses) {
  if (t.size() != losses.size())
    throw std::invalid_argument("LossSecondMomentTimesteps::update: expected one loss per timestep (" +
                                std::to_string(t.size()) + "), got " + std::to_string(losses.size()));
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] < 1 || t[i] > T_)
      throw std::invalid_argument("LossSecondMomentTimesteps::update: expected t in [1, " + std::to_string(T_) +
                                  "], got " + std::to_string(t[i]));
    losses_[t[i]][count_[t[i]] % history_] = losses[i];
    ++count_[t[i]];
  }
}

std::vector<double> LossSecondMomentTimesteps::probabilities() const {
  if (!warmed_up()) return UniformTimesteps(T_).probabilities();
  std::vector<double> p(T_ + 1, 0.0);
  double total = 0.0;
  for (int64_t t = 1; t <= T_; ++t) {
    double m2 = 0.0;
    for (double l : losses_[t]) m2 += l * l;
    p[t] = std::sqrt(m2 / history_);
    total += p[t];
  }
  for (int64_t t = 1; t <= T_; ++t)
    p[t] = (1.0 - uniform_prob_) * (total > 0 ? p[t] / total : 1.0 / T_) + uniform_prob_ / static_cast<double>(T_);
  return p;
}

void TimestepSampler::set_state(const Tensor<double>& state) {
  if (state.defined())
    throw std::invalid_argument("timestep sampler state: expected none (this sampler keeps no state), got a tensor of shape " +
                                shape_str(state.shape()));
}

Tensor<double> LossSecondMomentTimesteps::state() const {
  Tensor<double> s({T_ + 1, 1 + static_cast<int64_t>(history_)});
  double* p = s.data();
  for (int64_t t = 0; t <= T_; ++t) {
    p[t * (1 + history_)] = static_cast<double>(count_[t]);
    std::copy(losses_[t].begin(), losses_[t].end(), p + t * (1 + history_) + 1);
  }
  return s;
}

void LossSecondMomentTimesteps::set_state(const Tensor<double>& state) {
  const Shape want{T_ + 1, 1 + static_cast<int64_t>(history_)};
  if (!state.defined() || state.shape() != want)
    throw std::invalid_argument("loss-second-moment sampler state: expected shape " + shape_str(want) + " (T + 1, 1 + history), got " +
                                (state.defined() ? shape_str(state.shape()) : std::string("none")));
  const Tensor<double> s = state.contiguous();
  const double* p = s.data();
  std::vector<int64_t> count(T_ + 1);
  for (int64_t t = 0; t <= T_; ++t) {
    const double c = p[t * (1 + history_)];
    if (!(c >= 0 && c <= 9.0e15 && c == std::floor(c)))
      throw std::invalid_argument("loss-second-moment sampler state: expected a count >= 0 at t = " + std::to_string(t) +
                                  ", got " + std::to_string(c));
    count[t] = static_cast<int64_t>(c);
    for (int h = 0; h < history_; ++h)
      if (!std::isfinite(p[t * (1 + history_) + 1 + h]))
        throw std::invalid_argument("loss-second-moment sampler state: expected finite losses, got a non-finite one at t = " +
                                    std::to_string(t));
  }
  for (int64_t t = 0; t <= T_; ++t) std::copy_n(p + t * (1 + history_) + 1, history_, losses_[t].begin());
  count_ = std::move(count);
}

std::unique_ptr<TimestepSampler> make_timestep_sampler(const std::string& name, int64_t T) {
  if (name == "uniform") return std::make_unique<UniformTimesteps>(T);
  if (name == "loss-second-moment") return std::make_unique<LossSecondMomentTimesteps>(T);
  throw std::invalid_argument("timestep sampler: expected uniform or loss-second-moment, got '" + name + "'");
}

}  // namespace dd::ddpm
