// minidl — what a data-parallel fit (FitOptions::replicas) adds to
// Sequential::fit; the replicas' contract is in replicas.hpp, the MPI
// transport in distributed.hpp.
//
// Exact semantics: every replica holds the whole model and the whole data; at
// the start replica 0's weights, statistics and generator states are
// broadcast, and everything else a replica's run depends on (architecture,
// data, options, starting state, optimizer state) is checked to be the same.
// Each step: a replica runs forward and backward on its share of the global
// batch, with its loss gradient scaled by its rows / n, so that a sum over
// the replicas gives the global batch's gradient (large gradients where they
// lie, the rest in one buffer); that buffer also carries each replica's part
// of the loss and its metric sums, and replica 0's moving
// statistics of the BatchNorm layers that normalize with their own shard's
// statistics (the others add zeros: PyTorch DDP's broadcast_buffers). Every
// replica then applies the same update, so the replicas stay bitwise equal.
//
// Errors: every collective of a fit is preceded, at the points where a
// replica's own code (the callbacks, the checks) may have thrown, by an
// agreement on a status: a replica that failed joins the next agreement with
// a failure, and every replica then throws the same DistributedError with the
// lowest failed replica's message. Layers never throw once check_batch has
// passed, so no replica is left waiting in a layer's collective.
#pragma once

#include <cstdint>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "../sequential.hpp"

namespace minidl {
namespace detail {

/// A 64-bit fingerprint of bytes, chained through `h` (FNV-1a over 8-byte words, then splitmix64's mixer).
inline std::uint64_t fingerprint(std::uint64_t h, const void* data, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p + i, std::min<std::size_t>(8, bytes - i));
    h = (h ^ word) * 0x100000001b3ULL;
  }
  return splitmix64(h, bytes);
}
inline std::uint64_t fingerprint(std::uint64_t h, std::initializer_list<std::uint64_t> words) {
  for (const std::uint64_t word : words) h = fingerprint(h, &word, sizeof word);
  return h;
}
template <class Scalar>
std::uint64_t fingerprint(std::uint64_t h, ConstMatrixRef<Scalar> m) {
  h = fingerprint(h, {std::uint64_t(m.rows()), std::uint64_t(m.cols())});
  for (Index r = 0; r < m.rows(); ++r) h = fingerprint(h, m.row(r).data(), sizeof(Scalar) * std::size_t(m.cols()));
  return h;
}

template <class Scalar>
class ReplicaFit {
 public:
  explicit ReplicaFit(ReplicaGroup& group) : group_(group), rank_(group.rank()), size_(group.size()) {
    shard_.replicas = &group_;
  }
  ReplicaFit(const ReplicaFit&) = delete;
  ReplicaFit& operator=(const ReplicaFit&) = delete;
  ~ReplicaFit() { detach(); }

  bool main() const { return rank_ == 0; }

  /// Runs fit's work; an exception on this replica becomes, on every replica, the same DistributedError.
  template <class Body>
  auto guard(const char* call, Body body) -> decltype(body()) {
    try {
      return body();
    } catch (const DistributedError&) {
      throw;  // already agreed on
    } catch (const std::exception& e) {
      fail(call, e.what());
    } catch (...) {
      fail(call, "an exception of unknown type");
    }
  }

  /// Collective: true if some replica asks to stop; the DistributedError if some replica failed.
  bool agree(bool stop = false) { return status(stop ? stop_code : ok_code) == stop_code; }

  /// fit's check of its batch sizes, for this replica's shares of them: every replica needs a row of each batch.
  void check_batch_sizes(const Sequential<Scalar>& model, Index samples, Index batch_size) const {
    for (const Index n : {std::min(samples, batch_size), samples % batch_size}) {
      if (n == 0) continue;
      if (n < size_)
        throw ValueError(message("Sequential::fit: a batch of ", n, " samples cannot be split over ", size_,
                                 " replicas (each needs at least one row); batch_size = ", batch_size, " with ",
                                 samples, " training samples gives one: choose them so that every batch has at "
                                 "least ", size_));
      const auto [first, last] = shard_bounds(n, rank_, size_);
      model.check_batch(last - first, [](std::size_t) { return Phase::training; });
    }
  }

  /// After the callbacks' on_train_begin: checks that every replica runs the same fit, copies replica 0's
  /// weights, statistics and generator states to every replica, and shows the layers their shards.
  void begin(Sequential<Scalar>& model, const FitData<Scalar>& data, const FitState& state,
             const FitOptions<Scalar>& options) {
    agree();  // the callbacks' on_train_restore and on_train_begin succeeded everywhere
    const std::vector<std::pair<const char*, std::uint64_t>> facts = {
        {"model (layer types, names, shapes, frozen and pinned flags, tensor sizes)", architecture(model)},
        {"training data (x, y and sample weights)", training_data(data)},
        {"validation data", validation_data(data)},
        {"fit options (batch_size, epochs, shuffle, seed, validation_batch_size)", fit_options(options)},
        {"starting point (epoch, sample order, shuffle generator; a BackupAndRestore directory must be one "
         "that every replica reads)",
         starting_point(state)},
        {"optimizer state (type, iterations, learning rate, slots)", optimizer_state(model.optimizer().state())},
    };
    std::vector<std::uint64_t> mine, replica0;
    for (const auto& fact : facts) mine.push_back(fact.second);
    replica0 = mine;
    group_.broadcast(replica0.data(), replica0.size() * sizeof(std::uint64_t), 0);
    for (std::size_t i = 0; i < facts.size(); ++i)
      if (mine[i] != replica0[i])
        fail("Sequential::fit", message("this replica's ", facts[i].first, " differs from replica 0's; a "
                                        "data-parallel fit runs the same model on the same data everywhere"));
    agree();

    for (const auto& p : model.all_tensors()) group_.broadcast(p.value, sizeof(Scalar) * std::size_t(p.size), 0);
    for (const auto& layer : model.layers_)
      if (std::vector<std::uint64_t> words = layer->generator_state(); !words.empty()) {
        group_.broadcast(words.data(), words.size() * sizeof(std::uint64_t), 0);
        layer->set_generator_state(words);
      }
    model_ = &model;
    model.shard_ = &shard_;
    states_.clear();
    for (const auto& layer : model.layers_) {
      layer->set_batch_shard(&shard_);
      states_.push_back(layer->state());  // views, taken once: state() allocates
    }
  }

  /// At an epoch's end: agree on stop_training (true if some replica asks) after checking that every layer's
  /// generator is in the same state on every replica; a layer that drew another amount of random numbers on
  /// some replica (one of its own that draws per row of its shard, not per position in the global batch as
  /// Dropout) would give the replicas different models from then on: that is an error naming it.
  bool end_epoch(const Sequential<Scalar>& model, bool stop) {
    stop = agree(stop);  // first: a replica whose epoch-end callbacks failed is not at the broadcast below
    std::vector<std::uint64_t> mine;  // once per epoch: allocating here is not in a step
    for (const auto& layer : model.layers_) {
      const std::vector<std::uint64_t> words = layer->generator_state();
      mine.push_back(fingerprint(0, words.data(), words.size() * sizeof(std::uint64_t)));
    }
    std::vector<std::uint64_t> replica0 = mine;
    group_.broadcast(replica0.data(), replica0.size() * sizeof(std::uint64_t), 0);
    for (std::size_t i = 0; i < mine.size(); ++i)
      if (mine[i] != replica0[i])
        fail("Sequential::fit", message(model.layers_[i]->describe(), "'s random generator is not in replica 0's "
                                        "state: a layer that draws while training must draw the same numbers on "
                                        "every replica (one key per batch, positions from batch_shard(), as "
                                        "Dropout)"));
    agree();
    return stop;
  }

  /// This replica's rows [first, last) of a global batch of n rows, which the layers are now shown.
  std::pair<Index, Index> shard(Index n) {
    const auto bounds = shard_bounds(n, rank_, size_);
    shard_.first_row = bounds.first;
    shard_.global_rows = n;
    return bounds;
  }
  /// This replica's share [first, last) of `rows` validation rows.
  std::pair<Index, Index> share(Index rows) const { return shard_bounds(rows, rank_, size_); }
  void sum(std::vector<double>& values) { group_.sum(values.data(), values.size()); }

  /// After this replica's forward and backward of its shard: the sum over the replicas of the trainable
  /// layers' gradients (each large one in place, the rest in one buffer with replica 0's moving statistics, the
  /// loss parts and the metric sums). Returns the global
  /// batch's loss and adds the batch to `means`. Allocates nothing once the sizes are known.
  Scalar reduce_step(Sequential<Scalar>& model, Scalar loss_part, const Vector<Scalar>* sample_weight,
                     RunningMeans<Scalar>& means) {
    const auto& layers = model.layers_;
    std::size_t packed = 0;
    for_each_tensor(model, [&](Scalar*, Index size, bool statistics) {
      if (!own_sum(size, statistics)) packed += std::size_t(size);
    });
    const std::size_t tail = 2 + model.metrics_.size();  // loss, weights, metrics
    buffer_.resize(packed + tail);
    std::size_t k = 0;
    for_each_tensor(model, [&](Scalar* data, Index size, bool statistics) {
      if (own_sum(size, statistics)) return;
      // Statistics: replica 0's, the others add zeros.
      if (statistics && !main()) std::fill_n(buffer_.data() + k, size, Scalar(0));
      else std::copy_n(data, size, buffer_.data() + k);
      k += std::size_t(size);
    });
    Scalar* sums = buffer_.data() + packed;
    std::fill_n(sums, tail, Scalar(0));
    sums[0] = loss_part;
    RunningMeans<Scalar>::add_metric_sums(model.metrics_, layers.back()->output(), model.batch_y_, sample_weight,
                                          sums + 1);
    for_each_tensor(model, [&](Scalar* data, Index size, bool statistics) {
      if (own_sum(size, statistics)) group_.sum(data, std::size_t(size));
    });
    group_.sum(buffer_.data(), buffer_.size());
    k = 0;
    for_each_tensor(model, [&](Scalar* data, Index size, bool statistics) {
      if (own_sum(size, statistics)) return;
      std::copy_n(buffer_.data() + k, size, data);
      k += std::size_t(size);
    });
    const Scalar loss = sums[0] + Penalties<Scalar>::weights(layers, model.parameters_);
    means.add_sums(static_cast<double>(loss), static_cast<double>(shard_.global_rows), sums + 1);
    return loss;
  }

  /// A gradient of at least this many values is summed where it lies, in a collective of its own: copying it
  /// into the step's buffer and back costs more than one more collective's latency. Statistics always go in the
  /// buffer: the replicas other than 0 send zeros there in place of their own.
  static constexpr Index in_place_values = Index(1) << 16;

 private:
  enum : std::int64_t { ok_code = 0, stop_code = 1, failed_code = 2 };

  static bool own_sum(Index size, bool statistics) { return !statistics && size >= in_place_values; }

  // Every tensor a step sums: visit(data, size, is_statistics) for the gradients of the layers that train,
  // then the statistics of those layers (a frozen layer's never change).
  template <class Visit>
  void for_each_tensor(Sequential<Scalar>& model, Visit visit) const {
    for (std::size_t i = 0; i < model.layers_.size(); ++i)
      if (!model.layers_[i]->frozen())
        for (const auto& p : model.parameters_[i]) visit(p.grad, p.size, false);
    for (std::size_t i = 0; i < model.layers_.size(); ++i)
      if (!model.layers_[i]->frozen())
        for (const auto& s : states_[i]) visit(s.value, s.size, true);
  }

  /// The agreement: the largest status; on a failure, the lowest failed replica's message, thrown everywhere.
  std::int64_t status(std::int64_t code) {
    const std::int64_t worst = group_.max(code);
    if (worst < failed_code) return worst;
    const int root = static_cast<int>(-group_.max(code == failed_code ? -rank_ : -size_));
    std::uint64_t length = rank_ == root ? failure_.size() : 0;
    group_.broadcast(&length, sizeof length, root);
    std::string text(length, '\0');
    if (rank_ == root) text = failure_;
    group_.broadcast(text.data(), length, root);
    throw DistributedError(text, root);
  }
  [[noreturn]] void fail(const char* call, const std::string& what) {
    failure_ = message(call, ": replica ", rank_, " of ", size_, " failed: ", what);
    status(failed_code);
    throw DistributedError(failure_, rank_);  // not reached: status threw
  }

  void detach() {
    if (!model_) return;
    model_->shard_ = nullptr;
    for (const auto& layer : model_->layers_) layer->set_batch_shard(nullptr);
    model_ = nullptr;
  }

  static std::uint64_t architecture(const Sequential<Scalar>& model) {
    std::uint64_t h = fingerprint(0, {sizeof(Scalar)});
    for (const auto& layer : model.layers_) {
      const std::string text = std::string(layer->type()) + "/" + layer->name() + "/" + layer->input_shape().str() +
                               "/" + layer->output_shape().str();
      h = fingerprint(h, text.data(), text.size());
      h = fingerprint(h, {layer->frozen(), layer->inference_pinned(), std::uint64_t(layer->parameter_count()),
                          std::uint64_t(layer->state_count())});
    }
    return h;
  }
  static std::uint64_t training_data(const FitData<Scalar>& data) {
    std::uint64_t h = fingerprint<Scalar>(fingerprint<Scalar>(0, data.x), data.y);
    return data.weights ? fingerprint(h, data.weights->data(), sizeof(Scalar) * std::size_t(data.weights->size())) : h;
  }
  static std::uint64_t validation_data(const FitData<Scalar>& data) {
    if (!data.x_val) return 0;
    std::uint64_t h = fingerprint<Scalar>(fingerprint<Scalar>(1, *data.x_val), *data.y_val);
    const auto& w = data.val_weights;
    return w ? fingerprint(h, w->data(), sizeof(Scalar) * std::size_t(w->size())) : h;
  }
  static std::uint64_t fit_options(const FitOptions<Scalar>& o) {
    return fingerprint(0, {std::uint64_t(o.batch_size), std::uint64_t(o.epochs), o.seed, o.shuffle,
                           std::uint64_t(o.validation_batch_size.value_or(0))});
  }
  static std::uint64_t starting_point(const FitState& state) {
    const Rng::State shuffle = state.shuffle_rng.state();
    std::uint64_t h = fingerprint(0, {std::uint64_t(state.epoch), state.history.epochs()});
    h = fingerprint(h, shuffle.data(), sizeof shuffle);
    return fingerprint(h, state.order.data(), state.order.size() * sizeof(Index));
  }
  static std::uint64_t optimizer_state(const OptimizerState<Scalar>& o) {
    std::uint64_t h = fingerprint(fingerprint(0, o.type.data(), o.type.size()), {std::uint64_t(o.iterations)});
    const Scalar rate = o.learning_rate.value_or(Scalar(-1));
    h = fingerprint(h, &rate, sizeof rate);
    for (const auto& slot : o.slots) h = fingerprint(h, slot.data(), sizeof(Scalar) * std::size_t(slot.size()));
    return h;
  }

  ReplicaGroup& group_;
  const int rank_, size_;
  BatchShard shard_;                 // this replica's rows of the current batch, which the layers see
  Sequential<Scalar>* model_ = nullptr;  // the model whose layers see shard_, until detach()
  std::vector<std::vector<Parameter<Scalar>>> states_;  // per layer: its state() views
  std::vector<Scalar> buffer_;       // a step's sums
  std::string failure_;              // this replica's error, if it failed
};

}  // namespace detail
}  // namespace minidl
