// The one seam between the programs and a message-passing runtime: a communicator of `size()`
// processes ("ranks") that run the same program on different shares of the work. A plain build
// links only the single-process implementation (size 1, every collective a copy); `make MPI=1`
// adds dist/mpi.cpp, the only file that includes mpi.h. Collectives are called by every rank in
// the same order; on a multi-rank run a rank that stops answering makes the others fail with a
// message after `timeout_s` instead of hanging.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dd::dist {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool root() const { return rank() == 0; }
  // "single process" or "MPI (Open MPI 4.1.4), 2 ranks"
  virtual std::string describe() const = 0;

  // In-place sums over the ranks, every rank gets the result (a ring or tree allreduce).
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // The largest of the ranks' values (e.g. "some rank was asked to stop").
  virtual int64_t allreduce_max(int64_t value) = 0;
  // Rank 0 receives every rank's bytes (any length, rank order); the other ranks get {}.
  virtual std::vector<std::vector<char>> gather_to_root(const std::vector<char>& bytes) = 0;
  // Ends the whole run with `code` (a multi-rank run cannot end one rank alone without the others
  // waiting for it in a collective).
  [[noreturn]] virtual void abort(int code) = 0;

  // Seconds a collective may wait for the slowest rank before the run is declared broken.
  double timeout_s = 600;
};

// The process's communicator: MPI when the program was built with MPI=1 and runs under mpirun
// (MPI_Init is called here with argc/argv), else the single-process one. Call once, first thing in main.
std::unique_ptr<Comm> init(int& argc, char**& argv);

// The end of main: MPI_Finalize after a clean exit (rc == 0 on every rank), else abort(rc) so that no
// rank is left waiting. Returns rc for a single process.
int finish(std::unique_ptr<Comm> comm, int rc);

// The single-process communicator (also what init() returns without MPI).
std::unique_ptr<Comm> single_process();

// Equal shares of `total` items over the ranks: rank r gets [begin, end), the first total % size
// ranks one more.
struct Share {
  int64_t begin = 0, end = 0;
};
Share share_of(int64_t total, int rank, int size);

// Typed helpers over gather_to_root.
template <class T>
std::vector<char> to_bytes(const std::vector<T>& v) {
  const char* p = reinterpret_cast<const char*>(v.data());
  return std::vector<char>(p, p + v.size() * sizeof(T));
}
template <class T>
std::vector<T> from_bytes(const std::vector<char>& b) {
  std::vector<T> v(b.size() / sizeof(T));
  std::copy(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(v.size() * sizeof(T)), reinterpret_cast<char*>(v.data()));
  return v;
}

}  // namespace dd::dist
