#include "ddpm/schedule.h"

#include <cmath>
#include <sstream>
#include <limits>
#include <stdexcept>

namespace dd::ddpm {

namespace {
[[noreturn]] void fail(const std::string& op, const std::string& expected, const std::string& found) {
  throw std::invalid_argument(op + ": expected " + expected + ", got " + found);
}
std::string num(double x) {
  std::ostringstream o;
  o.precision(17);
  o << x;
  return o.str();
}
}  // namespace

std::string to_string(VarianceType v) {
  switch (v) {
    case VarianceType::Large: return "large";
    case VarianceType::Small: return "small";
    case VarianceType::Learned: return "learned";
  }
  return "?";
}

VarianceType variance_type_from_string(const std::string& s) {
  if (s == "large") return VarianceType::Large;
  if (s == "small") return VarianceType::Small;
  if (s == "learned") return VarianceType::Learned;
  fail("variance type", "one of large, small, learned", "'" + s + "'");
}

void Schedule::check_t(int64_t t, const char* op) const {
  if (t < 1 || t > T) fail(op, "a timestep t in [1, " + std::to_string(T) + "]", std::to_string(t));
}

void Schedule::set_decoder_floor(double std) {
  if (!(std > 0.0 && std * std < betas[1]))
    fail("set_decoder_floor", "0 < floor and floor^2 < beta_1 = " + num(betas[1]), num(std));
  learned_log_variance_min[1] = std::log(std * std);
}

double Schedule::model_variance(VarianceType v, int64_t t) const {
  check_t(t, "model_variance");
  if (v == VarianceType::Large) return model_variance_large[t];
  if (v == VarianceType::Small) return model_variance_small[t];
  fail("model_variance", "a fixed variance type (large or small)", "learned (read it from the network)");
}

double Schedule::model_log_variance(VarianceType v, int64_t t) const {
  check_t(t, "model_log_variance");
  if (v == VarianceType::Large) return model_log_variance_large[t];
  if (v == VarianceType::Small) return model_log_variance_small[t];
  fail("model_log_variance", "a fixed variance type (large or small)", "learned (read it from the network)");
}

Schedule schedule_from_betas(const std::vector<double>& b, std::vector<int64_t> timesteps) {
  const int64_t T = static_cast<int64_t>(b.size());
  if (T < 2) fail("schedule", "T >= 2 betas (sigma_1^2 = betatilde_2 needs t = 2)", std::to_string(T));
  for (int64_t i = 0; i < T; ++i)
    if (!(b[i] > 0.0 && b[i] < 1.0))
      fail("schedule", "every beta_t in (0, 1)", "beta_" + std::to_string(i + 1) + " = " + num(b[i]));
  if (timesteps.empty()) {
    timesteps.resize(T);
    for (int64_t i = 0; i < T; ++i) timesteps[i] = i + 1;
  }
  if (static_cast<int64_t>(timesteps.size()) != T)
    fail("schedule", std::to_string(T) + " timesteps", std::to_string(timesteps.size()));

  Schedule s;
  s.T = T;
  const size_t n = T + 1;
  s.timesteps.assign(n, 0);
  for (int64_t t = 1; t <= T; ++t) s.timesteps[t] = timesteps[t - 1];
  s.betas.assign(n, 0.0);
  for (int64_t t = 1; t <= T; ++t) s.betas[t] = b[t - 1];
  s.alphas.assign(n, 1.0);
  s.abar.assign(n, 1.0);
  const double inf = std::numeric_limits<double>::infinity();
  for (auto* v : {&s.sqrt_abar, &s.sqrt_one_minus_abar, &s.log_one_minus_abar, &s.sqrt_recip_abar,
                  &s.sqrt_recipm1_abar, &s.log_betas, &s.posterior_variance, &s.posterior_log_variance_clipped,
                  &s.posterior_mean_coef1, &s.posterior_mean_coef2, &s.model_variance_large,
                  &s.model_log_variance_large, &s.model_variance_small, &s.model_log_variance_small,
                  &s.eps_weight_large, &s.eps_weight_small})
    v->assign(n, 0.0);
  s.sqrt_abar[0] = 1.0;
  s.sqrt_recip_abar[0] = 1.0;
  s.log_one_minus_abar[0] = -inf;
  s.log_betas[0] = -inf;
  for (int64_t t = 1; t <= T; ++t) {
    s.alphas[t] = 1.0 - s.betas[t];
    s.abar[t] = s.abar[t - 1] * s.alphas[t];  // abar_t = prod_{s<=t} alpha_s
    s.sqrt_abar[t] = std::sqrt(s.abar[t]);
    s.sqrt_one_minus_abar[t] = std::sqrt(1.0 - s.abar[t]);
    s.log_one_minus_abar[t] = std::log(1.0 - s.abar[t]);
    s.sqrt_recip_abar[t] = std::sqrt(1.0 / s.abar[t]);
    s.sqrt_recipm1_abar[t] = std::sqrt(1.0 / s.abar[t] - 1.0);
    s.log_betas[t] = std::log(s.betas[t]);
    // DDPM eq. (7): betatilde_t and the two coefficients of mutilde_t
    s.posterior_variance[t] = (1.0 - s.abar[t - 1]) / (1.0 - s.abar[t]) * s.betas[t];
    s.posterior_mean_coef1[t] = std::sqrt(s.abar[t - 1]) * s.betas[t] / (1.0 - s.abar[t]);
    s.posterior_mean_coef2[t] = std::sqrt(s.alphas[t]) * (1.0 - s.abar[t - 1]) / (1.0 - s.abar[t]);
  }
  // sigma_1^2 = betatilde_2 for the clipped log posterior variance and both fixed choices (docs/equations.md, "Reverse process").
  const double betatilde_2 = s.posterior_variance[2];
  for (int64_t t = 1; t <= T; ++t) {
    s.posterior_log_variance_clipped[t] = std::log(t == 1 ? betatilde_2 : s.posterior_variance[t]);
    s.model_variance_large[t] = t == 1 ? betatilde_2 : s.betas[t];
    s.model_variance_small[t] = t == 1 ? betatilde_2 : s.posterior_variance[t];
    s.model_log_variance_large[t] = std::log(s.model_variance_large[t]);
    s.model_log_variance_small[t] = std::log(s.model_variance_small[t]);
  }
  s.learned_log_variance_min = s.posterior_log_variance_clipped;
  // DDPM eq. (12) weight beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)), t >= 2
  for (int64_t t = 2; t <= T; ++t) {
    s.eps_weight_large[t] = s.betas[t] / (2.0 * s.alphas[t] * (1.0 - s.abar[t]));
    s.eps_weight_small[t] = s.betas[t] / (2.0 * s.alphas[t] * (1.0 - s.abar[t - 1]));
  }
  return s;
}

Schedule linear_schedule(int64_t T, double beta_1, double beta_T) {
  if (T < 2) fail("linear_schedule", "T >= 2", std::to_string(T));
  if (!(beta_1 > 0.0 && beta_1 <= beta_T && beta_T < 1.0))
    fail("linear_schedule", "0 < beta_1 <= beta_T < 1", "beta_1 = " + num(beta_1) + ", beta_T = " + num(beta_T));
  std::vector<double> b(T);
  for (int64_t i = 0; i < T; ++i) b[i] = beta_1 + (beta_T - beta_1) * static_cast<double>(i) / static_cast<double>(T - 1);
  return schedule_from_betas(b);
}

std::pair<double, double> linear_schedule_default_ends(int64_t T) {
  const double scale = 1000.0 / static_cast<double>(T);  // improved-diffusion's scaling of both ends
  return {1e-4 * scale, 0.02 * scale};
}

Schedule linear_schedule(int64_t T) {
  if (T < 2) fail("linear_schedule", "T >= 2", std::to_string(T));
  const auto [beta_1, beta_T] = linear_schedule_default_ends(T);
  if (beta_T >= 1.0)
    fail("linear_schedule(T)", "T > 20 so that beta_T = 0.02 * 1000 / T < 1 (give the ends explicitly for a tiny T)",
         "T = " + std::to_string(T) + ", beta_T = " + num(beta_T));
  return linear_schedule(T, beta_1, beta_T);
}

Schedule cosine_schedule(int64_t T, double s, double max_beta) {
  if (T < 2) fail("cosine_schedule", "T >= 2", std::to_string(T));
  if (!(s >= 0.0) || !(max_beta > 0.0 && max_beta < 1.0))
    fail("cosine_schedule", "s >= 0 and 0 < max_beta < 1", "s = " + num(s) + ", max_beta = " + num(max_beta));
  const double pi = 3.14159265358979323846;
  auto f = [&](double t) {
    double c = std::cos((t / static_cast<double>(T) + s) / (1.0 + s) * pi / 2.0);
    return c * c;
  };
  std::vector<double> b(T);
  for (int64_t t = 1; t <= T; ++t) b[t - 1] = std::min(1.0 - f(t) / f(t - 1), max_beta);  // abar(t)/abar(t-1) = f(t)/f(t-1)
  return schedule_from_betas(b);
}

Schedule respace(const Schedule& base, const std::vector<int64_t>& kept) {
  if (kept.size() < 2) fail("respace", "at least 2 kept timesteps", std::to_string(kept.size()));
  std::vector<double> b;
  std::vector<int64_t> ts;
  double last_abar = 1.0;
  int64_t prev = 0;
  for (int64_t k : kept) {
    if (k <= prev || k > base.T)
      fail("respace", "strictly increasing timesteps in [1, " + std::to_string(base.T) + "]",
           std::to_string(k) + " after " + std::to_string(prev));
    b.push_back(1.0 - base.abar[k] / last_abar);
    last_abar = base.abar[k];
    ts.push_back(base.timesteps[k]);
    prev = k;
  }
  return schedule_from_betas(b, ts);
}

std::vector<int64_t> strided_timesteps(int64_t T, int64_t count) {
  if (count < 2 || count > T)
    fail("strided_timesteps", "2 <= count <= T = " + std::to_string(T), std::to_string(count));
  std::vector<int64_t> out(count);
  for (int64_t j = 0; j < count; ++j)
    out[j] = 1 + static_cast<int64_t>(std::llround(static_cast<double>(j) * static_cast<double>(T - 1) / static_cast<double>(count - 1)));
  return out;  // strictly increasing: the step (T-1)/(count-1) >= 1
}

}  // namespace dd::ddpm
