// minidl — the replicas of a data-parallel fit: what fit and the layers need
// from the processes they run on, with no dependency on how the bytes travel.
// <minidl/distributed.hpp> implements ReplicaGroup on MPI; the core headers
// never include MPI.
//
// A data-parallel fit (FitOptions::replicas) runs the same model on every
// replica. Each global batch of batch_size rows (the same shuffled order on
// every replica) is split into contiguous shards, replica r taking rows
// [r·n/R, (r+1)·n/R); each replica computes its shard's part of the global
// batch's loss and gradient (scaled by its rows / n, so that the sum over
// replicas is what one process computes on the whole batch), the parts are
// summed with one collective per step, and every replica applies the same
// update. The layers that look at more than one row see where their rows lie
// in the global batch through a BatchShard (Dropout draws the global batch's
// mask; a synchronized BatchNorm sums its statistics over the replicas).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "error.hpp"
#include "tensor.hpp"

namespace minidl {

/// One replica's view of the processes a data-parallel fit runs on. Every call
/// is collective: each replica makes the same calls, in the same order, with
/// buffers of the same size. The results are the same on every replica.
class ReplicaGroup {
 public:
  virtual ~ReplicaGroup() = default;
  /// This replica's index in [0, size()); replica 0 prints and writes files.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// values[i] = the sum over the replicas of their values[i], in place.
  virtual void sum(float* values, std::size_t n) = 0;
  virtual void sum(double* values, std::size_t n) = 0;
  /// Replica `root`'s n bytes, written into every replica's buffer.
  virtual void broadcast(void* bytes, std::size_t n, int root) = 0;
  /// The largest of the replicas' values.
  virtual std::int64_t max(std::int64_t value) = 0;
};

/// A data-parallel fit stopped because some replica failed: every replica
/// throws one with the same message, which names the replica and its error.
class DistributedError : public Error {
 public:
  DistributedError(const std::string& what, int failed_rank) : Error(what), failed_rank_(failed_rank) {}
  /// The lowest-ranked replica that failed.
  int failed_rank() const { return failed_rank_; }

 private:
  int failed_rank_;
};

/// Where a replica's training batch lies in the global batch, which a
/// data-parallel fit shows every layer for its duration (Layer::batch_shard()).
struct BatchShard {
  Index first_row = 0;              ///< this replica's first row in the global batch
  Index global_rows = 0;            ///< rows of the global batch
  ReplicaGroup* replicas = nullptr;  ///< for the layers that sum over the global batch
};

namespace detail {

/// A pointer that copies as null: what a layer holds of the fit that runs it, which a copy must not keep.
template <class T>
struct FitOnlyPointer {
  FitOnlyPointer() = default;
  FitOnlyPointer(const FitOnlyPointer&) {}
  FitOnlyPointer& operator=(const FitOnlyPointer&) { return *this; }
  const T* pointer = nullptr;
};

/// The rows [begin, end) of `rows` that replica `rank` of `replicas` takes: contiguous, sizes differing by at
/// most one, the larger shards first.
inline std::pair<Index, Index> shard_bounds(Index rows, int rank, int replicas) {
  const Index base = rows / replicas, extra = rows % replicas;
  const auto bound = [&](Index r) { return r * base + std::min(r, extra); };
  return {bound(rank), bound(rank + 1)};
}

}  // namespace detail
}  // namespace minidl
