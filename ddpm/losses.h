// Training losses (docs/equations.md "Training and sampling") and timestep samplers.
//   Simple: L_simple, eq. (14), the mean over pixels of (eps - eps_theta)^2.
//   Vlb:    T * vb_t, vb_t = the bound term L_{t-1} (Gaussian KL, t >= 2) or L_0 (discretized decoder,
//           eq. 13, t = 1) in bits per dimension; its mean over uniform t is the bound minus L_T in bits/dim.
//           Gradients reach both the mean and (if learned) the variance; for a fixed variance it is the
//           eq. (12)-weighted MSE plus a constant.
//   Hybrid: MSE + (T/1000) vb_t with the mean held fixed (stop-gradient) inside vb_t, so vb_t trains only
//           the learned variance (Nichol & Dhariwal 2021) = L_simple + 0.001 L_vlb.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "ddpm/schedule.h"
#include "tensor/random.h"

namespace dd::ddpm {

// The denoiser for training: x_t as a (constant) Var, the network's 1-based timesteps (see Denoiser
// in diffusion.h) -> a Var of [N, C, H, W] (eps) or [N, 2C, H, W] (eps, then v) on the tape.
template <class T>
using TrainDenoiserT = std::function<Var<T>(const Var<T>& x_t, const std::vector<int64_t>& t)>;
using TrainDenoiser = TrainDenoiserT<float>;

enum class LossType { Simple, Hybrid, Vlb };
std::string to_string(LossType l);
LossType loss_type_from_string(const std::string& s);  // "simple", "hybrid", "vlb" (also the old "kl")

struct LossOptions {
  LossType type = LossType::Simple;
  VarianceType variance = VarianceType::Large;  // Learned: the network outputs 2C channels
};

template <class T>
struct TrainingLossT {
  Var<T> loss;                     // scalar: mean over the batch of weight_n * term_n (call backward() on it)
  std::vector<double> per_sample;  // term_n (unweighted): what the importance sampler records
  std::vector<double> mse;         // mean over pixels of (eps - eps_theta)^2, per sample
  std::vector<double> vb;          // vb_t in bits/dim per sample (NaN for Simple, which does not compute it)
};
using TrainingLoss = TrainingLossT<float>;

// The loss of one batch: x_t = q_sample(x0, t, noise) (eq. 4), one call of `model`. `weights` (one per
// sample, empty = all 1) are the importance weights of a TimestepSampler.
template <class T>
TrainingLossT<T> training_loss(const Schedule& s, const TrainDenoiserT<T>& model, const Tensor<T>& x0,
                               const std::vector<int64_t>& t, const Tensor<T>& noise,
                               const std::vector<double>& weights = {}, const LossOptions& options = {});

// Timesteps for a batch with importance weights 1 / (T p_t), so that the weighted loss has the same
// expectation as under uniform t.
struct TimestepDraw {
  std::vector<int64_t> t;        // 1-based
  std::vector<double> weights;
};

class TimestepSampler {
 public:
  explicit TimestepSampler(int64_t T) : T_(T) {}
  virtual ~TimestepSampler() = default;
  // p_t for t = 1..T (index 0 = 0).
  virtual std::vector<double> probabilities() const = 0;
  // Records the per-sample losses of a batch (no-op for the uniform sampler).
  virtual void update(const std::vector<int64_t>& t, const std::vector<double>& losses) {}
  TimestepDraw sample(int64_t n, Rng& rng) const;
  int64_t T() const { return T_; }
  // Everything that decides the next draws, as one float64 tensor (undefined when there is none),
  // so that a checkpoint can keep it and a resumed run draws what an uninterrupted one would.
  virtual Tensor<double> state() const { return {}; }
  // Restores state(); throws std::invalid_argument naming the expected and found shape or value.
  virtual void set_state(const Tensor<double>& state);

 protected:
  int64_t T_;
};

// t ~ U{1..T} (Algorithm 1), all weights 1.
class UniformTimesteps : public TimestepSampler {
 public:
  using TimestepSampler::TimestepSampler;
  std::vector<double> probabilities() const override;
};

// Importance sampling by the loss second moment (Nichol & Dhariwal 2021, sec. 3.3): p_t proportional
// to sqrt(E[L_t^2]) over the last `history` losses at t, mixed with `uniform_prob` of uniform; uniform
// until every t has `history` losses.
class LossSecondMomentTimesteps : public TimestepSampler {
 public:
  LossSecondMomentTimesteps(int64_t T, int history = 10, double uniform_prob = 0.001);
  std::vector<double> probabilities() const override;
  void update(const std::vector<int64_t>& t, const std::vector<double>& losses) override;
  bool warmed_up() const;
  // [T + 1, 1 + history]: row t holds the count of losses seen at t, then the ring buffer (row 0 unused).
  Tensor<double> state() const override;
  void set_state(const Tensor<double>& state) override;

 private:
  int history_;
  double uniform_prob_;
  std::vector<std::vector<double>> losses_;  // ring buffer per t
  std::vector<int64_t> count_;               // losses seen per t
};

// "uniform" (UniformTimesteps) or "loss-second-moment" (LossSecondMomentTimesteps with its defaults).
std::unique_ptr<TimestepSampler> make_timestep_sampler(const std::string& name, int64_t T);

}  // namespace dd::ddpm
