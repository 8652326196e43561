// minidl — BackupAndRestore: a fit that dies (killed, out of memory, a power
// cut) goes on, when the program runs again, from its last completed epoch,
// as keras.callbacks.BackupAndRestore (Keras 3) — and bit for bit as if it had
// never stopped.
//
//   options.callbacks.push_back(std::make_shared<BackupAndRestore<float>>("run1_backup"));
//   model.fit(x, y, options);  // killed in epoch 7; the same program, run again, resumes after epoch 6
//
// At the end of every epoch (on_epoch_state, after every on_epoch_end) the
// callback writes one file, <backup_dir>/backup.safetensors, atomically (a
// temporary file renamed over the old one: safetensors/atomic_file.hpp), so a
// process killed while writing leaves the previous backup whole. One file
// holds everything, so no backup can mix two epochs:
//   - the weights and BatchNorm moving statistics, named as save_weights names
//     them, in the model's scalar dtype;
//   - the optimizer state (optimizer_state.hpp);
//   - metadata "minidl.architecture", as save_model writes it, to recognize the model;
//   - metadata "minidl.backup": {"scalar": "F32" or "F64", "epoch": the next epoch, "shuffle_generator": [4 words],
//       "generators": {layer name: words}, "num_batches_tracked": {BatchNorm name: n},
//       "history": [the History's names]}
//   - tensors "fit/order" (I64, the sample order the next shuffle permutes) and
//     "fit/history/<i>" (F64, the values of the i-th History name).
// When fit starts (on_train_restore) and a backup exists, it is checked
// against the model before anything changes — the architecture (layer types,
// names, configs, the scalar type), every tensor's shape, the optimizer's type
// and slots, the generators, the number of training samples — and a mismatch
// throws FormatError naming the file and what differs, the model unchanged (a
// damaged backup too, which atomic writes should never leave: delete it to
// start afresh; Keras's double_checkpoint falls back to the one before). Then the
// weights, optimizer, generators and BatchNorm counters are restored, and fit
// goes on at the saved epoch with the saved shuffle generator, sample order
// and History: weights, optimizer state and History end as an uninterrupted
// run's. The data, FitOptions and callbacks must be the first run's.
// When fit ends normally (on_train_end, also after stop_training), the backup
// is deleted if delete_checkpoint, and backup_dir too if that leaves it empty.
// When fit ends through an exception, on_train_end does not run: the backup
// stays for the next run (Keras: the same).
//
// Differences from Keras 3: Keras backs up the weights (with the optimizer's
// variables) and the epoch; its resumed fit's History holds only the epochs
// that fit ran, and its random generators start afresh, so a resumed run
// differs from an uninterrupted one. Here the History and the generators are
// restored too. Only save_freq "epoch": Keras's save_freq = N batches restores
// mid-epoch weights but restarts that epoch, which no uninterrupted run does;
// no double_checkpoint: the atomic rename leaves no half-written backup.
// Not backed up, as in Keras: other callbacks' own state (EarlyStopping's wait
// and best, ReduceLROnPlateau's wait and cooldown, ModelCheckpoint's best):
// after a resume they count from scratch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../callbacks/callback.hpp"
#include "../layers/batch_norm.hpp"
#include "model.hpp"

namespace minidl {
namespace detail {

inline const char* const backup_key = "minidl.backup";
inline const char* const fit_order_tensor = "fit/order";
inline std::string history_tensor(std::size_t i) { return "fit/history/" + std::to_string(i); }

/// Undo steps, run in reverse order unless dismissed: how a restore that
/// fails half-way leaves the model as it was.
class Rollback {
 public:
  ~Rollback() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
  }
  void add(std::function<void()> undo) { undo_.push_back(std::move(undo)); }
  void dismiss() { undo_.clear(); }

 private:
  std::vector<std::function<void()>> undo_;
};

/// Throws FormatError naming `source` and the first difference between a
/// backup's architecture and the model's.
inline void check_same_architecture(const Json& saved, const Json& model, const std::string& source) {
  const auto differ = [&](const std::string& what, const Json& a, const Json& b) {
    throw FormatError(message(source, ": the backup is of another model: ", what, " is ", st_short(a.dump(), 200),
                              " in the backup, ", st_short(b.dump(), 200), " in the model"));
  };
  const ConfigReader top(saved, source + ": architecture");
  if (top.at("input_shape") != model.at("input_shape"))
    differ("the input shape", top.at("input_shape"), model.at("input_shape"));
  const Json& layers = top.at("layers");
  if (!layers.is_array() || layers.size() != model.at("layers").size())
    differ("the number of layers", layers.is_array() ? Json(layers.size()) : layers, model.at("layers").size());
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const Json& a = layers[i];
    const Json& b = model.at("layers")[i];
    std::set<std::string> fields;  // type, name, frozen, and the optional ones (inference_pinned, ...)
    for (const Json* layer : {&a, &b})
      if (layer->is_object())
        for (const auto& item : layer->items()) fields.insert(item.key());
    for (const auto& field : fields)
      if (field != "config" && a.value(field, Json()) != b.value(field, Json()))
        differ(message("layer ", i, "'s ", field), a.value(field, Json()), b.value(field, Json()));
    for (const auto& [key, value] : b.at("config").items())
      if (!a.contains("config") || a["config"].value(key, Json()) != value)
        differ(message("layer ", i, " (", b["type"].get<std::string>(), " '", b["name"].get<std::string>(),
                       "') config '", key, "'"),
               a.contains("config") ? a["config"].value(key, Json()) : Json(), value);
  }
}

/// Generator words from JSON: an array of unsigned 64-bit integers, else FormatError naming `what`.
inline std::vector<std::uint64_t> words_from_json(const nlohmann::json& v, const std::string& source,
                                                  const std::string& what) {
  std::vector<std::uint64_t> out;
  if (v.is_array())
    for (const auto& w : v) {
      if (!w.is_number_unsigned()) break;
      out.push_back(w.get<std::uint64_t>());
    }
  if (!v.is_array() || out.size() != v.size())
    throw FormatError(message(source, ": ", what, " must be a list of unsigned 64-bit integers, got ",
                              st_short(v.dump())));
  return out;
}

}  // namespace detail

template <class Scalar>
class BackupAndRestore : public Callback<Scalar> {
 public:
  /// Backs up into `backup_dir` (created when needed), which no other run or
  /// callback should use. Throws ValueError for an empty directory name.
  explicit BackupAndRestore(std::string backup_dir, bool delete_checkpoint = true)
      : dir_(std::move(backup_dir)), delete_checkpoint_(delete_checkpoint) {
    if (dir_.empty()) throw ValueError("BackupAndRestore: backup_dir is empty");
  }

  /// The backup file: <backup_dir>/backup.safetensors.
  std::string backup_path() const { return (std::filesystem::path(dir_) / "backup.safetensors").string(); }
  bool delete_checkpoint() const { return delete_checkpoint_; }

  /// Restores the backup, if there is one (see the top of the file). Without
  /// one, checks that the model can be backed up (its layers have names of
  /// their own and registered types), so that a fit fails before training.
  void on_train_restore(Sequential<Scalar>& model, FitState& state) override {
    const detail::Json architecture = detail::architecture_json(model);
    const auto bindings = detail::minidl_bindings(model, "BackupAndRestore");
    const std::string path = backup_path();
    std::error_code error;
    if (!std::filesystem::exists(path, error)) return;
    restore(model, state, bindings, architecture, read_safetensors(path), path);
  }

  void on_epoch_state(Sequential<Scalar>& model, const FitState& state) override {
    if (!this->main_replica()) return;  // replica 0 of a data-parallel fit writes the backup every replica reads
    std::map<std::string, std::string> metadata{{detail::format_key, "backup"},
                                                {detail::architecture_key, detail::architecture_json(model).dump()}};
    const OptimizerState<Scalar> optimizer = model.optimizer().state();
    std::vector<TensorToWrite> tensors = detail::optimizer_tensors(model, optimizer, metadata);
    const std::vector<std::int64_t> order(state.order.begin(), state.order.end());
    tensors.push_back({detail::fit_order_tensor, DType::I64, {std::int64_t(order.size())}, order.data()});
    nlohmann::json generators = nlohmann::json::object(), counters = nlohmann::json::object();
    for (std::size_t i = 0; i < model.size(); ++i) {
      const Layer<Scalar>& layer = model.layer(i);
      if (const auto words = layer.generator_state(); !words.empty()) generators[layer.name()] = words;
      if (const auto* bn = dynamic_cast<const BatchNorm<Scalar>*>(&layer))
        counters[layer.name()] = bn->num_batches_tracked();
    }
    const auto& names = state.history.names();
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::vector<double>& values = state.history[names[i]];
      tensors.push_back({detail::history_tensor(i), DType::F64, {std::int64_t(values.size())}, values.data()});
    }
    const Rng::State shuffle = state.shuffle_rng.state();
    metadata[detail::backup_key] = nlohmann::json{{"scalar", dtype_name(dtype_of<Scalar>())},
                                                  {"epoch", state.epoch},
                                                  {"shuffle_generator", shuffle},
                                                  {"generators", generators},
                                                  {"num_batches_tracked", counters},
                                                  {"history", names}}
                                       .dump();
    std::error_code error;
    if (!std::filesystem::create_directories(dir_, error) && error)
      throw IOError("BackupAndRestore: cannot create the directory '" + dir_ + "': " + error.message());
    detail::save_bindings(detail::minidl_bindings(model, "BackupAndRestore"), backup_path(), dtype_of<Scalar>(),
                          metadata, tensors);
  }

  /// Deletes the backup (and backup_dir, if then empty) if delete_checkpoint.
  void on_train_end(Sequential<Scalar>& /*model*/, const Logs& /*logs*/) override {
    if (!delete_checkpoint_ || !this->main_replica()) return;
    std::error_code error;
    if (!std::filesystem::remove(backup_path(), error) && error)
      throw IOError("BackupAndRestore: cannot delete the backup '" + backup_path() + "': " + error.message());
    if (std::filesystem::is_directory(dir_, error) && std::filesystem::is_empty(dir_, error))
      std::filesystem::remove(dir_, error);  // only an empty one: the directory may hold the user's files
  }

 private:
  void restore(Sequential<Scalar>& model, FitState& state, const std::vector<detail::TensorBinding<Scalar>>& bindings,
               const detail::Json& architecture, const SafetensorsFile& file, const std::string& path) const {
    using detail::message;
    const auto text = file.metadata().find(detail::architecture_key);
    if (text == file.metadata().end())
      throw FormatError(message(path, ": no '", detail::architecture_key, "' metadata: not a backup"));
    detail::check_same_architecture(detail::parse_architecture(text->second, path), architecture, path);
    const nlohmann::json meta = detail::metadata_json(file, path, detail::backup_key, 3, ": not a backup");
    const auto field = [&](const char* name, auto check, const char* expected) -> const nlohmann::json& {
      return detail::metadata_field(meta, name, check, expected, path, detail::backup_key);
    };
    const auto is_object = [](const nlohmann::json& v) { return v.is_object(); };

    // Everything read and checked before anything changes.
    const char* scalar = dtype_name(dtype_of<Scalar>());
    const auto& saved_scalar = field("scalar", [](const nlohmann::json& v) { return v.is_string(); }, "F32 or F64");
    if (saved_scalar != scalar)  // converted values would not resume the run bit for bit
      throw FormatError(message(path, ": the backup is of a model of ", detail::st_short(saved_scalar.dump()),
                                " values, this model's are ", scalar));
    FitState restored;
    restored.epoch = field("epoch", [](const nlohmann::json& v) { return v.is_number_unsigned() && v <= 1u << 30; },
                           "an epoch number >= 0")
                         .template get<int>();
    const auto shuffle = detail::words_from_json(field("shuffle_generator", [](auto&&) { return true; }, ""), path,
                                                 "the shuffle generator");
    Rng::State words{};
    if (shuffle.size() == words.size()) std::copy(shuffle.begin(), shuffle.end(), words.begin());
    if (shuffle.size() != words.size() || words == Rng::State{})
      throw FormatError(message(path, ": the shuffle generator's state must be 4 words, not all zero"));
    restored.shuffle_rng.set_state(words);
    restored.order = read_order(file, path, state.order.size());
    restored.history = read_history(file, path, field("history", [](const nlohmann::json& v) { return v.is_array(); },
                                                      "a list of names"));

    const nlohmann::json& generators = field("generators", is_object, "an object");
    const nlohmann::json& counters = field("num_batches_tracked", is_object, "an object");
    std::vector<std::vector<std::uint64_t>> layer_words(model.size());
    std::vector<std::int64_t> tracked(model.size(), -1);
    std::set<std::string> known;
    for (std::size_t i = 0; i < model.size(); ++i) {
      const Layer<Scalar>& layer = model.layer(i);
      const std::size_t expected = layer.generator_state().size();
      const std::string what = "the generator of " + layer.describe();
      if (expected > 0) {
        if (!generators.contains(layer.name())) throw FormatError(message(path, ": ", what, " is missing"));
        layer_words[i] = detail::words_from_json(generators[layer.name()], path, what);
        if (layer_words[i].size() != expected)
          throw FormatError(message(path, ": ", what, " has ", layer_words[i].size(), " words, expected ", expected));
        known.insert(layer.name());
      }
      if (dynamic_cast<const BatchNorm<Scalar>*>(&layer)) {
        const auto it = counters.find(layer.name());
        if (it == counters.end() || !it->is_number_unsigned())
          throw FormatError(message(path, ": num_batches_tracked of ", layer.describe(), " is missing or not >= 0"));
        tracked[i] = it->template get<std::int64_t>();
      }
    }
    for (const auto& item : generators.items())
      if (!known.count(item.key()))
        throw FormatError(message(path, ": a generator of layer '", detail::st_short(item.key()),
                                  "', which has none in the model"));
    const OptimizerState<Scalar> optimizer = detail::read_optimizer_state(model, file, path);
    std::set<std::string> fit_tensors{detail::fit_order_tensor};
    for (std::size_t i = 0; i < restored.history.names().size(); ++i) fit_tensors.insert(detail::history_tensor(i));

    // The changes; a failing one undoes those before it.
    const OptimizerState<Scalar> before = model.optimizer().state();  // outlives the rollback that may use it
    detail::Rollback rollback;
    for (std::size_t i = 0; i < model.size(); ++i) {
      if (layer_words[i].empty()) continue;
      Layer<Scalar>& layer = model.layer(i);
      const auto words_before = layer.generator_state();
      try {
        layer.set_generator_state(layer_words[i]);
      } catch (const Error& e) {
        throw FormatError(message(path, ": ", e.what()));
      }
      rollback.add([&layer, words_before] { layer.set_generator_state(words_before); });
    }
    detail::restore_optimizer_state(model.optimizer(), optimizer, path);
    rollback.add([&model, &before] { model.optimizer().set_state(before); });
    detail::load_bindings(bindings, file, path, LoadOptions{}, fit_tensors);  // the last step that can fail
    rollback.dismiss();
    for (std::size_t i = 0; i < model.size(); ++i)
      if (tracked[i] >= 0) static_cast<BatchNorm<Scalar>&>(model.layer(i)).set_num_batches_tracked(tracked[i]);
    state = std::move(restored);
  }

  // The sample order the next shuffle permutes: a permutation of the fit's `samples` rows.
  static std::vector<Index> read_order(const SafetensorsFile& file, const std::string& path, std::size_t samples) {
    const TensorEntry* entry = file.find(detail::fit_order_tensor);
    if (!entry || entry->dtype != DType::I64 || entry->shape.size() != 1)
      throw FormatError(detail::message(path, ": tensor '", detail::fit_order_tensor,
                                        "' (the sample order) is missing or not a list of I64"));
    if (static_cast<std::size_t>(entry->shape[0]) != samples)
      throw FormatError(detail::message(path, ": the backup was made by a fit on ", entry->shape[0],
                                        " training samples, this fit has ", samples));
    std::vector<double> raw(samples);
    file.read(*entry, raw.data());  // exact: indices are far below 2^53
    std::vector<Index> order(samples);
    std::vector<bool> seen(samples, false);
    for (std::size_t i = 0; i < samples; ++i) {
      const double v = raw[i];
      if (!(v >= 0 && v < static_cast<double>(samples)) || seen[static_cast<std::size_t>(v)])
        throw FormatError(detail::message(path, ": the sample order is not a permutation of 0 .. ", samples - 1));
      seen[static_cast<std::size_t>(v)] = true;
      order[i] = static_cast<Index>(v);
    }
    return order;
  }

  // The History of the epochs done: name i's values from tensor fit/history/<i>.
  static History read_history(const SafetensorsFile& file, const std::string& path, const nlohmann::json& names) {
    History history;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const TensorEntry* entry = file.find(detail::history_tensor(i));
      if (!names[i].is_string() || !entry || entry->dtype != DType::F64 || entry->shape.size() != 1)
        throw FormatError(detail::message(path, ": History entry ", i, " (tensor '", detail::history_tensor(i),
                                          "', a list of F64) is missing or malformed"));
      std::vector<double> values(static_cast<std::size_t>(entry->shape[0]));
      file.read(*entry, values.data());
      Logs one;  // one value at a time: History keeps the names in the order they first came
      for (double v : values) {
        one.set(names[i].get<std::string>(), v);
        history.append(one);
      }
    }
    return history;
  }

  std::string dir_;
  bool delete_checkpoint_;
};

}  // namespace minidl
