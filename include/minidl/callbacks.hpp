// minidl — callbacks: hooks that fit calls around training, epochs and
// batches, as Keras callbacks (the interface and its call order are in
// callbacks/callback.hpp), and the Keras callbacks minidl provides:
//   LambdaCallback, LearningRateScheduler  callbacks/callback.hpp
//   EarlyStopping                          callbacks/early_stopping.hpp
//   ReduceLROnPlateau                      callbacks/reduce_lr_on_plateau.hpp
//   CSVLogger                              callbacks/csv_logger.hpp
//   TerminateOnNaN                         callbacks/terminate_on_nan.hpp
//   ModelCheckpoint                        io/model_checkpoint.hpp (next to persistence), in <minidl/io.hpp>
//                                          (saving needs nlohmann/json, which this header leaves out)
// A callback stops training with model.stop_training = true (Keras's flag).
#pragma once

#include "callbacks/callback.hpp"
#include "callbacks/csv_logger.hpp"
#include "callbacks/early_stopping.hpp"
#include "callbacks/reduce_lr_on_plateau.hpp"
#include "callbacks/terminate_on_nan.hpp"
