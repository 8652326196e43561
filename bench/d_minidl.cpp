// Workload D with minidl (bench/workloads.hpp): a briefly pretrained,
// then frozen convolutional base and a Dense head with Dropout, fit for 10
// epochs. --cache on runs fit with PrefixCache::always (the base's outputs
// are computed once per fit), --cache off with PrefixCache::never (the base
// runs on every batch, as before the cache existed). Prints the epochs' and
// the fit's seconds, the losses, the test figures, the peak RSS and the size
// of the cache.
#include <memory>
#include <minidl/minidl.hpp>

#include "workloads.hpp"

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  minidl::set_num_threads(options.threads);
  namespace D = bench::d;
  const auto data = D::load(options);
  const minidl::Matrix<float> train_y = minidl::one_hot<float>(data.train_y, D::classes);
  const minidl::Matrix<float> test_y = minidl::one_hot<float>(data.test_y, D::classes);

  minidl::Conv2DOptions same;
  same.padding = minidl::Padding::same;
  minidl::BatchNormOptions bn;
  bn.momentum = D::bn_momentum;
  minidl::Sequential<float> model(/*seed=*/42);
  model.add(minidl::Conv2D<float>(minidl::Shape{D::height, D::width, 1}, D::filters[0], D::kernel, same));
  model.add(minidl::BatchNorm<float>(bn));
  model.add(minidl::ReLU<float>());
  model.add(minidl::MaxPooling2D<float>({D::pool, D::pool}));
  model.add(minidl::Conv2D<float>(D::filters[1], D::kernel, same));
  model.add(minidl::BatchNorm<float>(bn));
  model.add(minidl::ReLU<float>());
  model.add(minidl::MaxPooling2D<float>({D::pool, D::pool}));
  model.add(minidl::Conv2D<float>(D::filters[2], D::kernel, same));
  model.add(minidl::BatchNorm<float>(bn));
  model.add(minidl::ReLU<float>());
  model.add(minidl::GlobalAveragePooling2D<float>());
  const std::size_t base = model.size();
  const Eigen::Index features = model.output_shape().size();
  model.add(minidl::Dense<float>(D::hidden, minidl::Activation::relu));
  model.add(minidl::Dropout<float>(D::dropout));
  model.add(minidl::Dense<float>(D::classes, minidl::Activation::softmax));

  // "Pretrained briefly": one epoch of the whole model on the first images, untimed.
  model.compile(minidl::CategoricalCrossentropy{}, minidl::Adam<float>{D::learning_rate}, {minidl::Metric::accuracy});
  minidl::FitOptions<float> pretrain;
  pretrain.batch_size = D::batch;
  pretrain.verbose = 0;
  const Eigen::Index pretrain_rows = std::min<Eigen::Index>(D::pretrain_samples, data.train_x.rows());
  model.fit(data.train_x.topRows(pretrain_rows), train_y.topRows(pretrain_rows), pretrain);

  // Then the base is frozen and the head trained with a fresh optimizer, as a Keras user recompiles.
  model.freeze(0, base);
  model.compile(minidl::CategoricalCrossentropy{}, minidl::Adam<float>{D::learning_rate}, {minidl::Metric::accuracy});
  if (model.frozen_prefix() != base) {
    std::cerr << argv[0] << ": the frozen prefix is " << model.frozen_prefix() << " layers, expected the base's "
              << base
              << "\n";
    return 1;
  }

  // The cache is built between on_train_begin and the first on_epoch_begin:
  // the first epoch is timed from on_train_begin so that it includes it.
  std::vector<double> epoch_seconds;
  double first_epoch_seconds = 0, before_first_epoch = 0;
  bench::Stopwatch train_clock, epoch_clock;
  auto timer = std::make_shared<minidl::LambdaCallback<float>>();
  timer->train_begin = [&](minidl::Sequential<float>&) { train_clock.restart(); };
  timer->epoch_begin = [&](minidl::Sequential<float>&, int epoch) {
    if (epoch == 0) before_first_epoch = train_clock.seconds();
    epoch_clock.restart();
  };
  timer->epoch_end = [&](minidl::Sequential<float>&, int epoch, const minidl::Logs&) {
    epoch_seconds.push_back(epoch_clock.seconds());
    if (epoch == 0) first_epoch_seconds = train_clock.seconds();
  };
  minidl::FitOptions<float> fit;
  fit.batch_size = D::batch;
  fit.epochs = D::fit_epochs(options);
  fit.verbose = 0;
  fit.seed = 1;
  fit.cache_frozen_prefix = options.cache ? minidl::PrefixCache::always : minidl::PrefixCache::never;
  fit.callbacks = {timer};
  bench::Stopwatch fit_clock;
  const minidl::History history = model.fit(data.train_x, train_y, fit);
  const double fit_seconds = fit_clock.seconds();
  const std::vector<double> later(epoch_seconds.begin() + 1, epoch_seconds.end());

  const minidl::Logs test = model.evaluate_all(data.test_x, test_y, D::batch);
  // What the cache holds (or would hold): every training image's output of the base.
  const double cache_bytes = static_cast<double>(data.train_x.rows()) * static_cast<double>(features) * sizeof(float);

  bench::JsonLine()
      .add("workload", "D").add("impl", options.cache ? "minidl-cache" : "minidl-nocache")
      .add("threads", options.threads).add("cache", options.cache)
      .add("train_samples", static_cast<long>(data.train_x.rows())).add("epochs", fit.epochs)
      .add("epoch_s", epoch_seconds).add("first_epoch_s", first_epoch_seconds)
      .add("before_first_epoch_s", before_first_epoch)
      .add("later_epoch_median_s", later.empty() ? 0.0 : bench::median(later)).add("fit_s", fit_seconds)
      .add("last_loss", history.loss().back())
      .add("test_samples", static_cast<long>(data.test_x.rows())).add("test_loss", test["loss"])
      .add("test_accuracy", test["accuracy"])
      .add("cache_bytes", cache_bytes)
      .add("default_cache_budget_bytes", static_cast<double>(minidl::detail::default_cache_budget()))
      .add("max_rss_kib", bench::max_rss_kib())
      .print();
}
