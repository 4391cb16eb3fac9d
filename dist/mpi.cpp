// The MPI communicator (built only with `make MPI=1`; the one file that includes mpi.h). Errors are
// returned rather than fatal (MPI_ERRORS_RETURN) and become exceptions naming the call; every
// collective is started non-blocking and polled against a deadline, so that a rank that died or
// hangs makes the others stop with a message instead of waiting forever.
// The C API only: skip the deprecated C++ bindings (and their warnings).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "dist/comm.h"

namespace dd::dist {

namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw std::runtime_error(std::string(what) + ": expected MPI_SUCCESS, got " + std::string(text, len));
}

class MpiComm final : public Comm {
 public:
  MpiComm() {
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_dup(MPI_COMM_WORLD, &work_), "MPI_Comm_dup");
    check(MPI_Comm_dup(MPI_COMM_WORLD, &control_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(work_, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(control_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(work_, &rank_);
    MPI_Comm_size(work_, &size_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, len);
    v = v.substr(0, v.find_first_of(",\n"));
    return "MPI (" + v + "), " + std::to_string(size_) + " ranks";
  }

  void allreduce_sum(float* data, int64_t n) override { allreduce(data, n, MPI_FLOAT, MPI_SUM, "MPI_Allreduce(float sum)"); }
  void allreduce_sum(double* data, int64_t n) override {
    allreduce(data, n, MPI_DOUBLE, MPI_SUM, "MPI_Allreduce(double sum)");
  }
  int64_t allreduce_max(int64_t value) override {
    long long v = value;
    allreduce(&v, 1, MPI_LONG_LONG, MPI_MAX, "MPI_Allreduce(max)");
    return v;
  }

  std::vector<std::vector<char>> gather_to_root(const std::vector<char>& bytes) override {
    long long mine = static_cast<long long>(bytes.size());
    std::vector<long long> sizes(size_);
    MPI_Request req;
    check(MPI_Igather(&mine, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, 0, work_, &req), "MPI_Igather");
    wait(req, "MPI_Igather (sizes)");
    std::vector<int> counts(size_), displs(size_);
    std::vector<char> all;
    if (rank_ == 0) {
      long long total = 0;
      for (int r = 0; r < size_; ++r) {
        if (total + sizes[r] > 0x7fffffffLL) throw std::runtime_error("gather_to_root: expected under 2 GiB in total");
        counts[r] = static_cast<int>(sizes[r]);
        displs[r] = static_cast<int>(total);
        total += sizes[r];
      }
      all.resize(static_cast<size_t>(total));
    }
    check(MPI_Igatherv(bytes.data(), static_cast<int>(mine), MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, 0,
                       work_, &req),
          "MPI_Igatherv");
    wait(req, "MPI_Igatherv");
    std::vector<std::vector<char>> out;
    if (rank_ == 0)
      for (int r = 0; r < size_; ++r) out.emplace_back(all.begin() + displs[r], all.begin() + displs[r] + counts[r]);
    return out;
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

  // After an error on some rank: wait a little for the others on a communicator of its own (it
  // cannot be mistaken for a collective of the run); when they all arrive they all failed alike
  // (e.g. a bad flag) and the run finalizes; else some rank is stuck and the run is aborted.
  bool all_arrive(double seconds) {
    MPI_Request req;
    if (MPI_Ibarrier(control_, &req) != MPI_SUCCESS) return false;
    return poll(req, seconds);
  }

 private:
  template <class T>
  void allreduce(T* data, int64_t n, MPI_Datatype type, MPI_Op op, const char* what) {
    // MPI counts are int: large buffers go in chunks of 2^30 elements.
    for (int64_t off = 0; off < n; off += (int64_t{1} << 30)) {
      const int count = static_cast<int>(std::min<int64_t>(n - off, int64_t{1} << 30));
      MPI_Request req;
      check(MPI_Iallreduce(MPI_IN_PLACE, data + off, count, type, op, work_, &req), what);
      wait(req, what);
    }
  }

  // Polls until done: spins briefly (a collective between busy ranks finishes in microseconds),
  // then sleeps between tests so that a rank waiting for a slower one leaves the core to it.
  bool poll(MPI_Request& req, double seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int tries = 0;; ++tries) {
      int done = 0;
      check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done) return true;
      if (tries > 200) std::this_thread::sleep_for(std::chrono::microseconds(200));
      if ((tries & 63) == 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds)
        return false;
    }
  }
  void wait(MPI_Request& req, const char* what) {
    if (poll(req, timeout_s)) return;
    std::fprintf(stderr, "\nrank %d: %s waited %.0f s for the other ranks (one died or hangs); aborting the run "
                         "(the last checkpoint written is intact)\n", rank_, what, timeout_s);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 4);
    std::exit(4);
  }

  MPI_Comm work_ = MPI_COMM_NULL, control_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Comm> init(int& argc, char**& argv) {
  int provided = 0;
  // FUNNELED: only the main thread calls MPI (OpenMP threads compute between the calls).
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    std::fprintf(stderr, "MPI_Init failed: expected an MPI runtime (run under mpirun), got none\n");
    std::exit(1);
  }
  return std::make_unique<MpiComm>();
}

int finish(std::unique_ptr<Comm> comm, int rc) {
  auto* mpi = dynamic_cast<MpiComm*>(comm.get());
  if (rc != 0 && mpi && mpi->size() > 1) {
    // Every rank but the failing one may still be inside a collective: give them 10 s to fail too.
    if (!mpi->all_arrive(10)) {
      std::fprintf(stderr, "rank %d: exiting with code %d while other ranks still run; aborting the run\n", mpi->rank(), rc);
      mpi->abort(rc);
    }
  }
  comm.reset();
  MPI_Finalize();
  return rc;
}

}  // namespace dd::dist
