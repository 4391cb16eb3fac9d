// The single-process communicator: one rank, every collective is the identity.
#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "dist/comm.h"

namespace dd::dist {

namespace {
class SingleComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  int64_t allreduce_max(int64_t value) override { return value; }
  std::vector<std::vector<char>> gather_to_root(const std::vector<char>& bytes) override { return {bytes}; }
  [[noreturn]] void abort(int code) override { std::exit(code); }
};
}  // namespace

std::unique_ptr<Comm> single_process() { return std::make_unique<SingleComm>(); }

Share share_of(int64_t total, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size)
    throw std::invalid_argument("share_of: expected 0 <= rank < size, got rank " + std::to_string(rank) + " of " +
                                std::to_string(size));
  const int64_t base = total / size, extra = total % size;
  Share s;
  s.begin = rank * base + std::min<int64_t>(rank, extra);
  s.end = s.begin + base + (rank < extra ? 1 : 0);
  return s;
}

#ifndef DD_WITH_MPI
std::unique_ptr<Comm> init(int&, char**&) { return single_process(); }
int finish(std::unique_ptr<Comm>, int rc) { return rc; }
#endif

}  // namespace dd::dist
