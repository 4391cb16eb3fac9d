// train/classifier_training: the outlier-exposure step lowers the digits' cross-entropy on a fixed
// batch and pulls the outliers' prediction towards uniform; the outlier images and the cosine rate.
#include <doctest/doctest.h>

#include <cmath>

#include "nn/classifier.h"
#include "train/classifier_training.h"

using namespace dd;

TEST_CASE("classifier_train_step: the digits' cross-entropy falls and the outliers' entropy rises towards log 10") {
  Rng init(1), data(2);
  MnistClassifier<float> model(init);
  AdamConfig cfg;
  Adam<float> adam(model, cfg);
  const TensorF digits = data.uniform<float>({8, 1, 28, 28}, -1.0f, 1.0f);
  const std::vector<int64_t> labels{0, 1, 2, 3, 4, 5, 6, 7};
  const TensorF outliers = train::outlier_images(4, data);
  auto outlier_entropy = [&] {
    const ClassifierOutputs o = classify(model, outliers);
    double h = 0;
    for (int64_t i = 0; i < o.probs.numel(); ++i) h -= o.probs.data()[i] * std::log(std::max(o.probs.data()[i], 1e-300));
    return h / 4;
  };
  const double first = train::classifier_train_step(model, adam, digits, labels, outliers, 1.0, 2e-3, 1);
  double last = first;
  for (int64_t step = 2; step <= 30; ++step) last = train::classifier_train_step(model, adam, digits, labels, outliers, 1.0, 2e-3, step);
  CHECK(last < 0.5 * first);
  CHECK(outlier_entropy() > 0.9 * std::log(10.0));
  CHECK_THROWS_WITH(train::classifier_train_step(model, adam, digits, {0, 1}, outliers, 1.0, 2e-3, 31),
                    doctest::Contains("8 labels"));
}

TEST_CASE("outlier_images: in [-1, 1]; odd images are 4x4 blocks of a 7x7 image; cosine_lr runs from peak to 0") {
  Rng rng(3);
  const TensorF x = train::outlier_images(2, rng);
  for (int64_t i = 0; i < x.numel(); ++i) CHECK((x.data()[i] >= -1.0f && x.data()[i] <= 1.0f));
  const float* blocky = x.data() + 784;
  CHECK(blocky[0] == blocky[3]);
  CHECK(blocky[0] == blocky[3 * 28 + 3]);
  CHECK(blocky[0] != blocky[4]);
  CHECK(train::cosine_lr(1e-3, 0, 100) == doctest::Approx(1e-3));
  CHECK(train::cosine_lr(1e-3, 50, 100) == doctest::Approx(5e-4));
  CHECK(train::cosine_lr(1e-3, 100, 100) == doctest::Approx(0.0).scale(1.0));
}
