// minidl — persistence, in safetensors files that PyTorch tooling reads:
//   save_weights / load_weights   io/weights.hpp
//   save_model / load_model       io/model.hpp (the architecture in the metadata)
//   load_pytorch_state_dict       io/pytorch.hpp
//   ModelCheckpoint               io/model_checkpoint.hpp
//   load_optimizer_state          io/optimizer_state.hpp (save_model's include_optimizer)
//   BackupAndRestore              io/backup_and_restore.hpp (resuming a killed fit)
//   read/write_safetensors        safetensors/safetensors.hpp (the format itself: dtypes,
//                                 reader, writer, atomic files; it knows no model)
// Every save is atomic (safetensors/atomic_file.hpp); every load validates the whole
// file before it changes the model. Needs nlohmann/json (Debian
// nlohmann-json3-dev), which <minidl/minidl.hpp> does not.
#pragma once

#include "io/backup_and_restore.hpp"
#include "io/model.hpp"
#include "io/model_checkpoint.hpp"
#include "io/optimizer_state.hpp"
#include "io/pytorch.hpp"
#include "io/weights.hpp"
#include "minidl.hpp"
#include "safetensors/safetensors.hpp"
