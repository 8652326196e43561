// BackupAndRestore in one process: a fit that ends through an exception keeps
// its backup, and the next fit resumes from it with the result of an
// uninterrupted run; wrong or damaged backups are refused with nothing
// changed. Also save_model's include_optimizer and generator states. (The
// run killed with SIGKILL is in test_resume_kill.cpp.)
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "resume_model.hpp"
#include "support.hpp"

using minidl::BackupAndRestore;
using minidl::FitOptions;
using minidl::History;
using minidl::Index;
using minidl::Matrix;
using minidl::OptimizerState;
using minidl::Sequential;
using minidl::test::bitwise_equal;
using minidl::test::resume_data;
using minidl::test::resume_model;
using minidl::test::resume_options;
using minidl::test::TempDir;

namespace {

// Thrown by a callback to end a fit as a crash would (no on_train_end).
struct Crash : std::runtime_error {
  Crash() : std::runtime_error("crash") {}
};

template <class Scalar>
struct CrashAtEpoch : minidl::Callback<Scalar> {
  explicit CrashAtEpoch(int epoch_) : epoch(epoch_) {}
  void on_epoch_begin(Sequential<Scalar>&, int e) override {
    if (e == epoch) throw Crash();
  }
  int epoch;
};

bool same_history(const History& a, const History& b) {
  if (a.names() != b.names()) return false;
  for (const auto& name : a.names())
    if (a[name] != b[name]) return false;  // exact: the same doubles
  return true;
}

template <class Scalar>
bool same_optimizer(Sequential<Scalar>& a, Sequential<Scalar>& b) {
  const OptimizerState<Scalar> sa = a.optimizer().state(), sb = b.optimizer().state();
  return sa.type == sb.type && sa.iterations == sb.iterations && sa.learning_rate == sb.learning_rate &&
         bitwise_equal(sa.slots, sb.slots);
}

template <class Scalar>
FitOptions<Scalar> with(FitOptions<Scalar> options, std::vector<std::shared_ptr<minidl::Callback<Scalar>>> callbacks) {
  options.callbacks = std::move(callbacks);
  return options;
}

}  // namespace

TEST_CASE_TEMPLATE("a fit that crashed resumes from its backup with an uninterrupted run's result", Scalar, float,
                   double) {
  const auto [x, y] = resume_data<Scalar>();
  Sequential<Scalar> reference = resume_model<Scalar>();
  const History expected = reference.fit(x, y, resume_options<Scalar>());
  REQUIRE(expected.epochs() == 5);
  REQUIRE(expected["val_loss"].size() == 2);  // validation_freq = 2: epochs 2 and 4

  TempDir dir;
  const std::string backup_dir = dir.file("backup");
  auto backup = std::make_shared<BackupAndRestore<Scalar>>(backup_dir);
  Sequential<Scalar> first = resume_model<Scalar>();
  CHECK_THROWS_AS(first.fit(x, y, with(resume_options<Scalar>(), {backup, std::make_shared<CrashAtEpoch<Scalar>>(3)})),
                  Crash);
  CHECK(std::filesystem::exists(backup->backup_path()));  // no on_train_end: the backup stays
  CHECK(first.optimizer().iterations() == 15);            // 3 epochs of 5 batches ran

  Sequential<Scalar> resumed = resume_model<Scalar>();  // a new process would make it again
  std::vector<int> epochs_run;
  auto record = std::make_shared<minidl::LambdaCallback<Scalar>>();
  record->epoch_begin = [&](Sequential<Scalar>&, int epoch) { epochs_run.push_back(epoch); };
  const History history = resumed.fit(x, y, with(resume_options<Scalar>(), {backup, record}));
  CHECK(epochs_run == std::vector<int>{3, 4});
  CHECK(same_history(history, expected));
  CHECK(bitwise_equal(resumed.get_weights(), reference.get_weights()));
  CHECK(same_optimizer(resumed, reference));
  CHECK_FALSE(std::filesystem::exists(backup_dir));  // deleted at the normal end, with its empty directory

  // The same model without the restore (initial_epoch alone) differs: the restore is what makes it equal.
  Sequential<Scalar> restarted = resume_model<Scalar>();
  FitOptions<Scalar> options = resume_options<Scalar>();
  options.initial_epoch = 3;
  const History partial = restarted.fit(x, y, options);
  CHECK(partial.epochs() == 2);
  CHECK_FALSE(bitwise_equal(restarted.get_weights(), reference.get_weights()));
}

TEST_CASE_TEMPLATE("a backup write that dies leaves the previous backup usable", Scalar, float, double) {
  const auto [x, y] = resume_data<Scalar>();
  Sequential<Scalar> reference = resume_model<Scalar>();
  const History expected = reference.fit(x, y, resume_options<Scalar>());

  TempDir dir;
  auto backup = std::make_shared<BackupAndRestore<Scalar>>(dir.file("backup"));
  int renames = 0;
  minidl::detail::before_rename_hook = [&](const std::string&) {
    if (++renames == 3) throw Crash();  // the third backup (after epoch 3) dies before its rename
  };
  Sequential<Scalar> first = resume_model<Scalar>();
  CHECK_THROWS_AS(first.fit(x, y, with(resume_options<Scalar>(), {backup})), Crash);
  minidl::detail::before_rename_hook = nullptr;
  // What a SIGKILL during the write leaves: the temporary file beside the backup.
  std::ofstream(backup->backup_path() + ".tmp-12345-0") << "half a backup";

  Sequential<Scalar> resumed = resume_model<Scalar>();
  const History history = resumed.fit(x, y, with(resume_options<Scalar>(), {backup}));
  CHECK(same_history(history, expected));
  CHECK(bitwise_equal(resumed.get_weights(), reference.get_weights()));
  CHECK(same_optimizer(resumed, reference));
  CHECK_FALSE(std::filesystem::exists(backup->backup_path()));
  CHECK(std::filesystem::exists(dir.file("backup")));  // the stray file keeps the directory: only empty ones go
}

TEST_CASE_TEMPLATE("a backup of another model or a damaged one is refused, nothing changed", Scalar, float, double) {
  const auto [x, y] = resume_data<Scalar>();
  TempDir dir;
  auto backup = std::make_shared<BackupAndRestore<Scalar>>(dir.file("backup"));
  Sequential<Scalar> first = resume_model<Scalar>();
  CHECK_THROWS_AS(first.fit(x, y, with(resume_options<Scalar>(), {backup, std::make_shared<CrashAtEpoch<Scalar>>(2)})),
                  Crash);
  const std::string path = backup->backup_path();
  const auto refused = [&](Sequential<Scalar>& model, const FitOptions<Scalar>& options, const std::string& message) {
    const auto weights = model.get_weights();
    const auto iterations = model.optimizer().iterations();
    std::string what;
    try {
      model.fit(x, y, options);
    } catch (const minidl::FormatError& e) {
      what = e.what();
    }
    CHECK_MESSAGE(what.find(path) != std::string::npos, what);
    CHECK_MESSAGE(what.find(message) != std::string::npos, what);
    CHECK(bitwise_equal(model.get_weights(), weights));
    CHECK(model.optimizer().iterations() == iterations);
    CHECK(std::filesystem::exists(path));
  };
  SUBCASE("another layer size") {
    Sequential<Scalar> other = resume_model<Scalar>(9);
    refused(other, with(resume_options<Scalar>(), {backup}),
            "the backup is of another model: layer 0 (Dense 'dense') config 'units' is 8 in the backup, 9 in the "
            "model");
  }
  SUBCASE("a layer frozen") {
    Sequential<Scalar> other = resume_model<Scalar>();
    other.layer(3).set_frozen(true);
    refused(other, with(resume_options<Scalar>(), {backup}),
            "layer 3's frozen is false in the backup, true in the model");
  }
  SUBCASE("another optimizer") {
    Sequential<Scalar> other = resume_model<Scalar>();
    other.compile(minidl::CategoricalCrossentropy{}, minidl::SGD<Scalar>(Scalar(0.1)));
    refused(other, with(resume_options<Scalar>(), {backup}), "the optimizer state is a Adam's, the model is compiled "
                                                             "with SGD");
  }
  SUBCASE("other data") {
    Sequential<Scalar> other = resume_model<Scalar>();
    FitOptions<Scalar> options = with(resume_options<Scalar>(), {backup});
    options.validation_split = 0.4;
    refused(other, options, "the backup was made by a fit on 40 training samples, this fit has 30");
  }
  SUBCASE("another scalar type") {  // the same program built for the other type
    using Other = std::conditional_t<std::is_same_v<Scalar, float>, double, float>;
    Sequential<Other> other = resume_model<Other>();
    const auto [xo, yo] = resume_data<Other>();
    auto other_backup = std::make_shared<BackupAndRestore<Other>>(dir.file("backup"));
    FitOptions<Other> options = resume_options<Other>();
    options.callbacks = {other_backup};
    CHECK_THROWS_WITH_AS(other.fit(xo, yo, options), doctest::Contains("the backup is of a model of"),
                         minidl::FormatError);
    CHECK(other.optimizer().iterations() == 0);
  }
  SUBCASE("a truncated file") {
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
    Sequential<Scalar> other = resume_model<Scalar>();
    refused(other, with(resume_options<Scalar>(), {backup}), "");
  }
}

TEST_CASE_TEMPLATE("delete_checkpoint = false keeps the backup, the backup needs named, registered layers", Scalar,
                   float, double) {
  const auto [x, y] = resume_data<Scalar>();
  TempDir dir;
  auto backup = std::make_shared<BackupAndRestore<Scalar>>(dir.file("backup"), false);
  Sequential<Scalar> model = resume_model<Scalar>();
  model.fit(x, y, with(resume_options<Scalar>(2), {backup}));
  CHECK(std::filesystem::exists(backup->backup_path()));
  // A second fit resumes after the two epochs done: nothing left to run.
  const auto weights = model.get_weights();
  const History again = model.fit(x, y, with(resume_options<Scalar>(2), {backup}));
  CHECK(again.epochs() == 2);
  CHECK(bitwise_equal(model.get_weights(), weights));
  CHECK_THROWS_AS(BackupAndRestore<Scalar>(""), minidl::ValueError);

  Sequential<Scalar> unnamed = resume_model<Scalar>();
  unnamed.layer(1).set_name("dense");  // two layers named "dense"
  const auto before = unnamed.get_weights();
  CHECK_THROWS_WITH_AS(unnamed.fit(x, y, with(resume_options<Scalar>(2), {backup})),
                       doctest::Contains("needs a name of its own"), minidl::ValueError);
  CHECK(bitwise_equal(unnamed.get_weights(), before));
}

TEST_CASE_TEMPLATE("save_model with include_optimizer: load_optimizer_state continues the run", Scalar, float, double) {
  const auto [x, y] = resume_data<Scalar>();
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  Sequential<Scalar> model = resume_model<Scalar>();
  model.fit(x, y, resume_options<Scalar>(2));
  minidl::SaveModelOptions options;
  options.include_optimizer = true;
  options.dtype = minidl::DType::F64;  // the weights as F64; the state stays in the model's scalar dtype
  minidl::save_model(model, path, options);

  Sequential<Scalar> loaded = minidl::load_model<Scalar>(path);  // the optimizer tensors are not weights
  loaded.compile(minidl::CategoricalCrossentropy{}, minidl::Adam<Scalar>(Scalar(0.01)), {minidl::Metric::accuracy});
  minidl::load_optimizer_state(loaded, path);
  CHECK(same_optimizer(loaded, model));
  CHECK(bitwise_equal(loaded.get_weights(), model.get_weights()));
  minidl::load_weights(model, path);  // strict, and still accepts the file

  const std::string plain = dir.file("plain.safetensors");
  minidl::save_model(model, plain);
  const auto iterations = loaded.optimizer().iterations();
  CHECK_THROWS_WITH_AS(minidl::load_optimizer_state(loaded, plain),
                       doctest::Contains("no 'minidl.optimizer' metadata"), minidl::FormatError);
  Sequential<Scalar> sgd = resume_model<Scalar>();
  sgd.compile(minidl::CategoricalCrossentropy{}, minidl::SGD<Scalar>(Scalar(0.1), Scalar(0.9)));
  CHECK_THROWS_WITH_AS(minidl::load_optimizer_state(sgd, path),
                       doctest::Contains("the optimizer state is a Adam's, the model is compiled with SGD"),
                       minidl::FormatError);
  Sequential<Scalar> smaller = resume_model<Scalar>(7);
  CHECK_THROWS_WITH_AS(minidl::load_optimizer_state(smaller, path),
                       doctest::Contains("has shape [5, 8], expected [5, 7]"), minidl::FormatError);
  CHECK(smaller.optimizer().iterations() == 0);
  CHECK(loaded.optimizer().iterations() == iterations);
}

TEST_CASE_TEMPLATE("Dropout's generator state: read, restored, checked", Scalar, float, double) {
  minidl::Dropout<Scalar> a(0.5, 1), b(0.5, 2);
  const Matrix<Scalar> x = Matrix<Scalar>::Ones(4, 6);
  a.build(minidl::Shape{6});
  b.build(minidl::Shape{6});
  a.forward(x, minidl::Phase::training);
  b.set_generator_state(a.generator_state());
  CHECK(a.forward(x, minidl::Phase::training) == b.forward(x, minidl::Phase::training));
  const auto words = b.generator_state();
  CHECK(words.size() == 4);
  CHECK_THROWS_WITH_AS(b.set_generator_state({1, 2}), doctest::Contains("got 2 words, expected 4"),
                       minidl::ValueError);
  CHECK_THROWS_WITH_AS(b.set_generator_state({0, 0, 0, 0}), doctest::Contains("four zero words"), minidl::ValueError);
  CHECK(b.generator_state() == words);
  minidl::Dense<Scalar> dense(3, 2);
  CHECK(dense.generator_state().empty());
  CHECK_THROWS_AS(dense.set_generator_state(words), minidl::ValueError);
}
