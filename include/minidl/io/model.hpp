// minidl — a whole model in one safetensors file: the architecture as JSON in
// the metadata, the weights as save_weights writes them.
//
//   save_model(model, "model.safetensors");
//   auto copy = load_model<float>("model.safetensors");   // then compile() again
//
// The metadata key "minidl.architecture" holds
//   {"format": "minidl.Sequential", "version": 1, "input_shape": [...],
//    "layers": [{"type", "name", "frozen", ["inference_pinned",] ["activity_regularizer",] "config"}, ...]}
// (each layer as layer_config.hpp describes), next to "minidl.format": "model"
// and "minidl.format_version". The tensors are named and laid out as by
// save_weights (weights.hpp), so load_weights reads a model file too.
//
// With SaveModelOptions::include_optimizer the file also holds the compiled
// optimizer's state (its step count, slots and constant learning rate;
// optimizer_state.hpp), as Keras's .keras files do: compile the loaded model
// with the same optimizer, then load_optimizer_state(model, path), and its
// training goes on where the saved model's stopped. Never saved: the loss,
// the optimizer's type and settings, the metrics (load_model returns an
// uncompiled model), Dropout and weight-initializer generator states (a
// loaded unseeded Dropout draws other masks) and BatchNorm's update counter
// (with cumulative_average, the running average restarts counting);
// BackupAndRestore (backup_and_restore.hpp) saves all of those that a run
// needs to resume. Inference is unaffected: a loaded model predicts bit for
// bit what the saved one did.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "layer_config.hpp"
#include "optimizer_state.hpp"
#include "weights.hpp"

namespace minidl {

namespace detail {
inline const char* const architecture_key = "minidl.architecture";
inline const char* const architecture_format = "minidl.Sequential";
inline const int architecture_version = 1;
// Bounds on what a file may make load_model hold: the architecture needs 5
// levels of nesting (object > layers > layer > config > kernel_size) and
// about a dozen JSON values per layer; a layer name is quoted in messages
// and tensor names.
inline constexpr int architecture_max_depth = 8;
inline constexpr std::size_t architecture_max_values = std::size_t(1) << 20;
inline constexpr std::size_t layer_name_max_bytes = 256;
}  // namespace detail

namespace detail {
/// The architecture JSON of `model` (see the top of the file). Throws
/// ValueError if a layer has a type save_model cannot describe, StateError
/// for a model without layers.
template <class Scalar>
Json architecture_json(const Sequential<Scalar>& model) {
  const Shape& input = model.input_shape();
  Json shape = Json::array();
  for (int a = 0; a < input.rank(); ++a) shape.push_back(input[a]);
  Json layers = Json::array();
  for (std::size_t i = 0; i < model.size(); ++i) layers.push_back(layer_json(model.layer(i), i));
  return object({{"format", architecture_format}, {"version", architecture_version}, {"input_shape", shape},
                 {"layers", layers}});
}
}  // namespace detail

/// What save_model writes besides the architecture and the weights.
struct SaveModelOptions {
  std::optional<DType> dtype{};    ///< the weights' dtype; unset: the model's scalar (F32 for float, F64 for double)
  bool include_optimizer = false;  ///< also the compiled optimizer's state, in the model's scalar dtype
};

/// Writes `model`'s architecture and weights to `path`, atomically, and with
/// options.include_optimizer its optimizer's state (StateError for an
/// uncompiled model). Throws ValueError, writing nothing, if a layer has a
/// type save_model cannot describe (save_weights still works) or two layers
/// share a name.
template <class Scalar>
void save_model(const Sequential<Scalar>& model, const std::string& path, const SaveModelOptions& options) {
  const auto bindings = detail::minidl_bindings(model, "save_model");
  std::map<std::string, std::string> metadata{{detail::format_key, "model"},
                                              {detail::architecture_key, detail::architecture_json(model).dump()}};
  OptimizerState<Scalar> state;  // the tensors point into it until written
  std::vector<TensorToWrite> optimizer;
  if (options.include_optimizer) {
    state = model.optimizer().state();
    optimizer = detail::optimizer_tensors(model, state, metadata);
  }
  detail::save_bindings(bindings, path, options.dtype.value_or(dtype_of<Scalar>()), metadata, optimizer);
}
/// The architecture and the weights, as `dtype`.
template <class Scalar>
void save_model(const Sequential<Scalar>& model, const std::string& path, DType dtype = dtype_of<Scalar>()) {
  save_model(model, path, SaveModelOptions{dtype, false});
}

namespace detail {

inline Shape shape_from_json(const Json& dims, const ConfigReader& r) {
  if (!dims.is_array() || dims.empty() || dims.size() > static_cast<std::size_t>(Shape::max_rank))
    r.fail("input_shape", "must be a list of 1 to " + std::to_string(Shape::max_rank) + " sizes, got " +
                              ConfigReader::excerpt(dims));
  Index d[Shape::max_rank] = {};
  for (std::size_t a = 0; a < dims.size(); ++a) {
    if (!dims[a].is_number_integer() || dims[a].get<std::int64_t>() <= 0)
      r.fail("input_shape", "must hold integers > 0, got " + ConfigReader::excerpt(dims));
    d[a] = dims[a].get<Index>();
  }
  try {
    switch (dims.size()) {
      case 1: return Shape{d[0]};
      case 2: return Shape{d[0], d[1]};
      case 3: return Shape{d[0], d[1], d[2]};
      default: return Shape{d[0], d[1], d[2], d[3]};
    }
  } catch (const ShapeError& e) {  // more than max_elements values per sample
    r.fail("input_shape", e.what());
  }
}

/// The architecture JSON, parsed with bounded depth and size: a file cannot
/// make the parser (or a later dump() of a value) recurse without end, nor
/// hold more than architecture_max_values values however long the text is.
inline Json parse_architecture(const std::string& text, const std::string& source) {
  const auto fail = [&](const std::string& problem) {
    throw FormatError(message(source, ": metadata '", architecture_key, "' ", problem));
  };
  int depth = 0;
  std::size_t values = 0;
  const Json::parser_callback_t bound = [&](int, Json::parse_event_t event, Json&) {
    using E = Json::parse_event_t;
    if ((event == E::object_start || event == E::array_start) && ++depth > architecture_max_depth)
      fail(message("is nested deeper than ", architecture_max_depth, " levels (the format needs 5)"));
    if (event == E::object_end || event == E::array_end) --depth;
    const bool a_value = event == E::object_start || event == E::array_start || event == E::value;
    if (a_value && ++values > architecture_max_values)
      fail(message("has more than ", architecture_max_values, " JSON values"));
    return true;
  };
  try {
    return Json::parse(text, bound);
  } catch (const Json::exception& e) {
    throw FormatError(
        message(source, ": metadata '", architecture_key, "' is not valid JSON: ", st_short(e.what(), 300)));
  }
}

/// The model the architecture JSON of `file` describes, with fresh weights.
/// Every layer's weights are checked against the tensors of `file` before the
/// layer is built, so that the memory a load takes is proportional to the file.
template <class Scalar>
Sequential<Scalar> build_model(const SafetensorsFile& file, const std::string& source) {
  const auto text = file.metadata().find(architecture_key);
  if (text == file.metadata().end())
    throw FormatError(message(source, ": no '", architecture_key, "' metadata: not a file save_model wrote (a ",
                              "weights file goes into a model built in code, with load_weights)"));
  const Json arch = parse_architecture(text->second, source);
  const ConfigReader top(arch, source + ": architecture");
  if (top.string("format") != architecture_format)
    top.fail("format",
             "must be '" + std::string(architecture_format) + "', got '" + st_short(top.string("format")) + "'");
  if (!top.at("version").is_number_integer() || top.at("version").get<std::int64_t>() != architecture_version)
    top.fail("version", "must be " + std::to_string(architecture_version) + ", got " +
                            ConfigReader::excerpt(top.at("version")));
  const Shape input = shape_from_json(top.at("input_shape"), top);
  const Json& layers = top.at("layers");
  if (!layers.is_array() || layers.empty())
    top.fail("layers", "must be a non-empty list, got " + ConfigReader::excerpt(layers));
  Sequential<Scalar> model;
  std::set<std::string> names;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const ConfigReader entry(layers[i], message(source, ": layer ", i));
    const std::string type = entry.string("type"), name = entry.string("name");
    if (name.empty() || name.size() > layer_name_max_bytes || !names.insert(name).second)
      entry.fail("name", message("must be a name of 1 to ", layer_name_max_bytes,
                                 " bytes that no other layer has, got '", st_short(name), "' (", name.size(),
                                 " bytes)"));
    const bool frozen = entry.boolean("frozen"), pinned = entry.boolean_or("inference_pinned", false);
    const std::optional<Regularizer> activity = entry.regularizer_or_none("activity_regularizer");
    const std::string where = message(source, ": layer ", i, " (", st_short(type), " '", name, "'): config");
    if (!entry.at("config").is_object()) entry.fail("config", "must be a JSON object");
    const ExpectTensor expect = [&](const char* tensor, const Shape& shape, const char* layout) {
      check_file_tensor(file, source, name + "." + tensor, dims_of(shape),
                        type + " '" + name + "' " + tensor + layout_text(layout));
    };
    try {
      Layer<Scalar>& layer = add_layer(model, type, name, config_from_json(entry.at("config")), input, expect);
      layer.set_frozen(frozen);
      layer.set_inference_pinned(pinned);
      layer.set_activity_regularizer(activity);
    } catch (const FormatError&) {
      throw;
    } catch (const Error& e) {  // a value the layer rejects, or a shape that does not fit
      throw FormatError(message(where, ": ", e.what()));
    }
  }
  return model;
}

}  // namespace detail

/// The model save_model wrote to `path` (or that `file`, parsed from bytes in
/// memory by parse_safetensors, holds; `source` names it in messages), with
/// its weights converted to Scalar; uncompiled. Throws IOError if the file cannot be read, FormatError
/// (naming the layer index and field) for a malformed or unknown architecture
/// or weights that do not match it; no model is returned then.
template <class Scalar>
Sequential<Scalar> load_model(const SafetensorsFile& file, const std::string& source) {
  Sequential<Scalar> model = detail::build_model<Scalar>(file, source);
  detail::load_bindings(detail::minidl_bindings(model, "load_model"), file, source, LoadOptions{});
  return model;
}
template <class Scalar>
Sequential<Scalar> load_model(const std::string& path) {
  return load_model<Scalar>(read_safetensors(path), path);
}

}  // namespace minidl
