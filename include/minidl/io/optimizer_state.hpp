// minidl — a compiled model's optimizer state in a safetensors file, beside
// its weights: what save_model writes with SaveModelOptions::include_optimizer
// (io/model.hpp), what load_optimizer_state reads back, and part of what
// BackupAndRestore backs up (io/backup_and_restore.hpp).
//
// Tensors "optimizer/slot_<i>/<k>": state vector k of slot i (OptimizerState,
// optimizers/optimizer.hpp; slot i belongs to the model's i-th trainable
// tensor, layer by layer in parameters() order, and has its shape), always in
// the model's scalar dtype, so that a restored run continues bit for bit even
// when the weights are saved as another dtype. Metadata "minidl.optimizer":
//   {"type": "Adam", "iterations": 12, "learning_rate": 0.001 (null with a schedule),
//    "slots": 4, "vectors_per_slot": 2}
// The optimizer's settings (betas, clipping, schedule) are not saved: the
// state goes into a model compiled with the same optimizer, as in Keras,
// whose .keras file restores the variables of the optimizer it rebuilds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../optimizers/optimizer.hpp"
#include "weights.hpp"

namespace minidl {
namespace detail {

inline const char* const optimizer_key = "minidl.optimizer";

inline std::string optimizer_tensor_name(std::size_t slot, std::size_t k) {
  return message(optimizer_prefix, "slot_", slot, "/", k);
}

/// For each optimizer slot, the shape of its tensor and how messages name it.
template <class Scalar>
std::vector<std::pair<std::vector<std::int64_t>, std::string>> optimizer_slots(const Sequential<Scalar>& model) {
  std::vector<std::pair<std::vector<std::int64_t>, std::string>> out;
  for (std::size_t i = 0; i < model.size(); ++i)
    for (const auto& p : const_cast<Layer<Scalar>&>(model.layer(i)).parameters())  // parameters() only takes addresses
      out.emplace_back(dims_of(p.shape), model.layer(i).describe() + " " + p.name);
  return out;
}

/// `state`'s tensors (pointing into it: keep it alive until written) and its
/// metadata entry. ValueError if the state's slot count is not the model's.
template <class Scalar>
std::vector<TensorToWrite> optimizer_tensors(const Sequential<Scalar>& model, const OptimizerState<Scalar>& state,
                                             std::map<std::string, std::string>& metadata) {
  const auto slots = optimizer_slots(model);
  const std::size_t per_slot = slots.empty() ? 0 : state.slots.size() / slots.size();
  if (per_slot * slots.size() != state.slots.size())
    throw ValueError(message("save_model: the ", state.type, " state has ", state.slots.size(),
                             " vectors, not a whole number per trainable tensor (", slots.size(), ")"));
  std::vector<TensorToWrite> tensors;
  for (std::size_t s = 0; s < slots.size(); ++s)
    for (std::size_t k = 0; k < per_slot; ++k)
      tensors.push_back({optimizer_tensor_name(s, k), dtype_of<Scalar>(), slots[s].first,
                         state.slots[s * per_slot + k].data()});
  nlohmann::json meta = {{"type", state.type},
                         {"iterations", state.iterations},
                         {"learning_rate", nullptr},
                         {"slots", slots.size()},
                         {"vectors_per_slot", per_slot}};
  if (state.learning_rate) meta["learning_rate"] = static_cast<double>(*state.learning_rate);
  metadata[optimizer_key] = meta.dump();
  return tensors;
}

/// Metadata `key` of `file` parsed as a JSON object no deeper than `max_depth`;
/// FormatError naming `source` and the key if it is missing or malformed.
inline nlohmann::json metadata_json(const SafetensorsFile& file, const std::string& source, const char* key,
                                    int max_depth, const char* missing_hint) {
  const auto text = file.metadata().find(key);
  if (text == file.metadata().end())
    throw FormatError(message(source, ": no '", key, "' metadata", missing_hint));
  int depth = 0;
  const nlohmann::json::parser_callback_t bound = [&](int, nlohmann::json::parse_event_t event, nlohmann::json&) {
    using E = nlohmann::json::parse_event_t;
    if ((event == E::object_start || event == E::array_start) && ++depth > max_depth)
      throw FormatError(message(source, ": metadata '", key, "' is nested deeper than ", max_depth, " levels"));
    if (event == E::object_end || event == E::array_end) --depth;
    return true;
  };
  nlohmann::json out;
  try {
    out = nlohmann::json::parse(text->second, bound);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(message(source, ": metadata '", key, "' is not valid JSON: ", st_short(e.what(), 300)));
  }
  if (!out.is_object()) throw FormatError(message(source, ": metadata '", key, "' is not a JSON object"));
  return out;
}

/// Field `name` of metadata object `json`, which `check` must accept; else FormatError naming the file, the key
/// and the field.
template <class Check>
const nlohmann::json& metadata_field(const nlohmann::json& json, const char* name, Check check, const char* expected,
                                     const std::string& source, const char* key) {
  const auto it = json.find(name);
  if (it == json.end() || !check(*it))
    throw FormatError(message(source, ": metadata '", key, "' field '", name, "' must be ", expected, ", got ",
                              it == json.end() ? std::string("nothing") : st_short(it->dump())));
  return *it;
}

/// The optimizer state `file` holds for `model` (compiled), read and checked
/// against the model's optimizer: its type, slot count and shapes; FormatError
/// naming `source` otherwise. Changes nothing.
template <class Scalar>
OptimizerState<Scalar> read_optimizer_state(const Sequential<Scalar>& model, const SafetensorsFile& file,
                                            const std::string& source) {
  const Optimizer<Scalar>& optimizer = model.optimizer();  // StateError if not compiled
  const nlohmann::json meta =
      metadata_json(file, source, optimizer_key, 1, ": the file holds no optimizer state (save_model writes it "
                                                    "with SaveModelOptions::include_optimizer)");
  const auto field = [&](const char* name, auto check, const char* expected) -> const nlohmann::json& {
    return metadata_field(meta, name, check, expected, source, optimizer_key);
  };
  const auto count = [](const nlohmann::json& v) { return v.is_number_unsigned(); };  // a JSON integer >= 0
  const auto text = [](const nlohmann::json& v) { return v.is_string(); };
  OptimizerState<Scalar> state;
  state.type = field("type", text, "a string").template get<std::string>();
  if (state.type != optimizer.type())
    throw FormatError(message(source, ": the optimizer state is a ", st_short(state.type), "'s, the model is compiled "
                              "with ", optimizer.type(), " (compile it with the optimizer the state was saved from)"));
  state.iterations = field("iterations", count, "an integer >= 0").template get<std::int64_t>();
  const auto& rate = field("learning_rate", [](const nlohmann::json& v) { return v.is_null() || v.is_number(); },
                           "a number or null");
  if (!rate.is_null()) state.learning_rate = static_cast<Scalar>(rate.template get<double>());
  const auto slots = optimizer_slots(model);
  const auto saved_slots = field("slots", count, "an integer >= 0").template get<std::uint64_t>();
  if (saved_slots != slots.size())
    throw FormatError(message(source, ": the optimizer state has ", saved_slots, " slots, the model has ",
                              slots.size(), " trainable tensors (a state of another architecture?)"));
  const auto per_slot = field("vectors_per_slot", count, "an integer >= 0").template get<std::uint64_t>();
  for (std::size_t s = 0; s < slots.size(); ++s)
    for (std::size_t k = 0; k < per_slot; ++k) {
      const std::string name = optimizer_tensor_name(s, k);
      check_file_tensor(file, source, name, slots[s].first,
                        message(optimizer.type(), " state ", k, " of ", slots[s].second));
      Vector<Scalar> values(static_cast<Index>(file.find(name)->element_count()));
      file.read(*file.find(name), values.data());
      state.slots.push_back(std::move(values));
    }
  return state;
}

/// optimizer.set_state(state), its errors naming `source`.
template <class Scalar>
void restore_optimizer_state(Optimizer<Scalar>& optimizer, const OptimizerState<Scalar>& state,
                             const std::string& source) {
  try {
    optimizer.set_state(state);
  } catch (const Error& e) {
    throw FormatError(message(source, ": ", e.what()));
  }
}

}  // namespace detail

/// Restores into compiled `model` the optimizer state that save_model wrote
/// to `path` with include_optimizer: the next training steps are those the
/// saved model would have taken (with its weights: load_weights(model, path)).
/// Throws IOError if the file cannot be read, FormatError naming the file and
/// what mismatched (no state, another optimizer type, slot count, a tensor's
/// shape, a NaN) and StateError for an uncompiled model; the optimizer is then
/// unchanged.
template <class Scalar>
void load_optimizer_state(Sequential<Scalar>& model, const SafetensorsFile& file, const std::string& source) {
  const OptimizerState<Scalar> state = detail::read_optimizer_state(model, file, source);
  detail::restore_optimizer_state(model.optimizer(), state, source);
}
template <class Scalar>
void load_optimizer_state(Sequential<Scalar>& model, const std::string& path) {
  load_optimizer_state(model, read_safetensors(path), path);
}

}  // namespace minidl
