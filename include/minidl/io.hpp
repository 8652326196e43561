// minidl — persistence, in safetensors files that PyTorch tooling reads:
//   save_weights / load_weights   io/weights.hpp
//   save_model / load_model       io/model.hpp (the architecture in the metadata)
//   load_pytorch_state_dict       io/pytorch.hpp
//   ModelCheckpoint               callbacks/model_checkpoint.hpp
//   read/write_safetensors        io/safetensors.hpp (the format itself)
// Every save is atomic (io/atomic_file.hpp); every load validates the whole
// file before it changes the model. Needs nlohmann/json (Debian
// nlohmann-json3-dev), which <minidl/minidl.hpp> does not.
#pragma once

#include "callbacks/model_checkpoint.hpp"
#include "io/model.hpp"
#include "io/pytorch.hpp"
#include "io/safetensors.hpp"
#include "io/weights.hpp"
#include "minidl.hpp"
