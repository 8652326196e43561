// minidl — data-parallel fit on MPI: the ReplicaGroup (replicas.hpp) that
// FitOptions::replicas takes, made of the processes of an MPI communicator.
// Not included by <minidl/minidl.hpp>: only this header needs MPI (CMake:
// minidl::distributed; Debian: libopenmpi-dev, openmpi-bin).
//
//   int main(int argc, char** argv) {
//     minidl::MpiSession mpi(argc, argv);              // MPI_Init_thread ... MPI_Finalize
//     auto replicas = std::make_shared<minidl::MpiReplicas>();  // MPI_COMM_WORLD
//     options.replicas = replicas;                      // the same fit on every process
//     model.fit(x, y, options);                         // mpirun -np 2 ./program
//   }
//
// Every collective is an MPI call on a duplicate of the communicator (so
// minidl's messages never meet the program's own): MPI_Allreduce with MPI_SUM
// for the gradients and BatchNorm's statistics, MPI_MAX for the replicas'
// agreement on a status, MPI_Bcast for replica 0's weights. The MPI standard
// advises that a reduction give every process the same result, and Open MPI's
// do: that keeps the replicas bitwise equal, which replicas_identical() checks
// (the tests, after every epoch).
//
// MPI errors (a process that died, a broken link) abort the job, MPI's
// default: a data-parallel fit cannot go on without one of its replicas.
#pragma once

// MPI's C API only: the C++ bindings (removed from the standard in MPI-3) are not used, and warn.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "replicas.hpp"
#include "sequential.hpp"

namespace minidl {

/// MPI for the lifetime of the object: MPI_Init_thread (funneled: only the
/// main thread calls MPI; Eigen's OpenMP threads never do) unless MPI is
/// already initialized, and then MPI_Finalize.
class MpiSession {
 public:
  MpiSession(int& argc, char**& argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    owns_ = true;
  }
  ~MpiSession() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_ && !finalized) MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  bool owns_ = false;
};

/// What the replicas sent each other so far: collective calls, the bytes each
/// process contributed (a sum of n floats counts 4n) and the seconds spent in
/// MPI, waiting for the others included.
struct CommunicationStats {
  std::uint64_t calls = 0;
  std::uint64_t bytes = 0;
  double seconds = 0;
};

class MpiReplicas : public ReplicaGroup {
 public:
  /// The replicas are the processes of `comm` (duplicated). MPI must be initialized (MpiSession).
  explicit MpiReplicas(MPI_Comm comm = MPI_COMM_WORLD) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) throw StateError("MpiReplicas: MPI is not initialized; make an MpiSession first");
    MPI_Comm_dup(comm, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiReplicas() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  MpiReplicas(const MpiReplicas&) = delete;
  MpiReplicas& operator=(const MpiReplicas&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(float* values, std::size_t n) override { allreduce(values, n, MPI_FLOAT, MPI_SUM, sizeof(float)); }
  void sum(double* values, std::size_t n) override { allreduce(values, n, MPI_DOUBLE, MPI_SUM, sizeof(double)); }
  void broadcast(void* bytes, std::size_t n, int root) override {
    timed(n, [&] {
      for_chunks(static_cast<char*>(bytes), n, [&](char* p, int count) {
        MPI_Bcast(p, count, MPI_BYTE, root, comm_);
      });
    });
  }
  std::int64_t max(std::int64_t value) override {
    allreduce(&value, 1, MPI_INT64_T, MPI_MAX, sizeof value);
    return value;
  }

  const CommunicationStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }
  MPI_Comm communicator() const { return comm_; }

 private:
  template <class T>
  void allreduce(T* values, std::size_t n, MPI_Datatype type, MPI_Op op, std::size_t size) {
    timed(n * size, [&] {
      for_chunks(values, n, [&](T* p, int count) { MPI_Allreduce(MPI_IN_PLACE, p, count, type, op, comm_); });
    });
  }
  // MPI counts are ints: a buffer of more than INT_MAX elements goes in pieces.
  template <class T, class Call>
  static void for_chunks(T* p, std::size_t n, Call call) {
    constexpr auto most = static_cast<std::size_t>(INT_MAX);
    do {
      const std::size_t count = n < most ? n : most;
      call(p, static_cast<int>(count));
      p += count;
      n -= count;
    } while (n > 0);
  }
  template <class Call>
  void timed(std::size_t bytes, Call call) {
    const auto start = std::chrono::steady_clock::now();
    call();
    stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++stats_.calls;
    stats_.bytes += bytes;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  CommunicationStats stats_;
};

/// Collective: whether every replica's model holds bitwise the same weights, moving statistics and generator
/// states as replica 0's (what a data-parallel fit keeps; tests check it after every epoch).
template <class Scalar>
bool replicas_identical(const Sequential<Scalar>& model, ReplicaGroup& replicas) {
  std::uint64_t h = 0;
  for (const auto& tensor : model.get_weights())
    h = detail::fingerprint(h, tensor.data(), sizeof(Scalar) * static_cast<std::size_t>(tensor.size()));
  for (std::size_t i = 0; i < model.size(); ++i) {
    const std::vector<std::uint64_t> words = model.layer(i).generator_state();
    h = detail::fingerprint(h, words.data(), words.size() * sizeof(std::uint64_t));
  }
  std::uint64_t replica0 = h;
  replicas.broadcast(&replica0, sizeof replica0, 0);
  return replicas.max(replica0 != h ? 1 : 0) == 0;
}

}  // namespace minidl
