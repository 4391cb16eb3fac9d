#include "apps/common/dist_eval.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace dd::app {

namespace {
// One BoundResult as doubles: N, T, dims, clip_x0, decoder, mean, then terms [N, T+1] and the four
// per-image vectors. Doubles carry every field exactly (the integers are far below 2^53).
void pack(const ddpm::BoundResult& r, std::vector<double>& out) {
  const int64_t N = static_cast<int64_t>(r.total_nats.size());
  out.insert(out.end(), {static_cast<double>(N), static_cast<double>(r.T), static_cast<double>(r.dims), r.clip_x0 ? 1.0 : 0.0,
                         static_cast<double>(static_cast<int>(r.decoder)), r.mean_bits_per_dim});
  const Tensor<double> terms = r.terms.contiguous();
  out.insert(out.end(), terms.data(), terms.data() + terms.numel());
  for (const auto* v : {&r.prior_nats, &r.decoder_nats, &r.total_nats, &r.bits_per_dim}) out.insert(out.end(), v->begin(), v->end());
}

ddpm::BoundResult unpack(const std::vector<double>& in, size_t& pos) {
  auto need = [&](size_t k) {
    if (pos + k > in.size())
      throw std::runtime_error("gather_bound_results: expected " + std::to_string(k) + " more values from a rank, got " +
                               std::to_string(in.size() - pos));
  };
  need(6);
  ddpm::BoundResult r;
  const int64_t N = static_cast<int64_t>(in[pos]);
  r.T = static_cast<int64_t>(in[pos + 1]);
  r.dims = static_cast<int64_t>(in[pos + 2]);
  r.clip_x0 = in[pos + 3] != 0;
  r.decoder = static_cast<ddpm::DecoderType>(static_cast<int>(in[pos + 4]));
  r.mean_bits_per_dim = in[pos + 5];
  pos += 6;
  need(static_cast<size_t>(N * (r.T + 1) + 4 * N));
  r.terms = Tensor<double>({N, r.T + 1});
  std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(pos), N * (r.T + 1), r.terms.data());
  pos += static_cast<size_t>(N * (r.T + 1));
  for (auto* v : {&r.prior_nats, &r.decoder_nats, &r.total_nats, &r.bits_per_dim}) {
    v->assign(in.begin() + static_cast<std::ptrdiff_t>(pos), in.begin() + static_cast<std::ptrdiff_t>(pos + N));
    pos += static_cast<size_t>(N);
  }
  return r;
}
}  // namespace

std::vector<ddpm::BoundResult> gather_bound_results(dist::Comm& comm, const std::vector<ddpm::BoundResult>& mine) {
  if (comm.size() == 1) return mine;
  std::vector<double> packed;
  for (const auto& r : mine) pack(r, packed);
  std::vector<ddpm::BoundResult> all;
  for (const auto& bytes : comm.gather_to_root(dist::to_bytes(packed))) {
    const std::vector<double> values = dist::from_bytes<double>(bytes);
    for (size_t pos = 0; pos < values.size();) all.push_back(unpack(values, pos));
  }
  return all;
}

void gather_images(dist::Comm& comm, const Tensor<float>& mine, Tensor<float>& images) {
  const Tensor<float> local = mine.contiguous();
  const std::vector<float> values(local.data(), local.data() + local.numel());
  if (comm.size() == 1) {
    if (images.numel() != local.numel())
      throw std::invalid_argument("gather_images: expected " + std::to_string(images.numel()) + " values, got " +
                                  std::to_string(local.numel()));
    std::copy(values.begin(), values.end(), images.data());
    return;
  }
  const auto parts = comm.gather_to_root(dist::to_bytes(values));
  if (!comm.root()) return;
  int64_t at = 0;
  for (const auto& bytes : parts) {
    const std::vector<float> v = dist::from_bytes<float>(bytes);
    if (at + static_cast<int64_t>(v.size()) > images.numel())
      throw std::runtime_error("gather_images: expected " + std::to_string(images.numel()) + " values over the ranks, got more");
    std::copy(v.begin(), v.end(), images.data() + at);
    at += static_cast<int64_t>(v.size());
  }
  if (at != images.numel())
    throw std::runtime_error("gather_images: expected " + std::to_string(images.numel()) + " values over the ranks, got " +
                             std::to_string(at));
}

}  // namespace dd::app
