// apps/bench: the JSON contract of its last line and its flag errors, on a batch of 2 so
// it takes seconds. No timing is asserted (the numbers of a shared machine are not a test), only
// that every promised field is there and holds a positive, finite time or ratio.
#include <nlohmann/json.hpp>

#include <cmath>
#include <string>

#include "tests/apps/app_test_util.h"

using namespace dd_apps_test;
using nlohmann::json;

TEST_CASE("bench: train and sample steps at 1 and 2 threads, the JSON last line, the machine probe") {
  RunResult r = run("./apps/bench --mode both --no-torch --batch 2 --steps 2 --rounds 1 --warmup 1 --threads 1,2");
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  const auto out = lines_of(r.out);
  REQUIRE(!out.empty());
  const json j = json::parse(out.back());
  auto positive = [&](const json& o, const std::string& key) {
    CAPTURE(key);
    REQUIRE(o.contains(key));
    CHECK(std::isfinite(o.at(key).get<double>()));
    CHECK(o.at(key).get<double>() > 0);
  };
  CHECK(j.at("threads") == 2);  // the top level is the last thread count
  CHECK(j.at("batch") == 2);
  for (const char* key : {"train_s_per_step", "sample_s_per_step", "peak_rss_mib", "train_thread_scaling",
                          "sample_thread_scaling"})
    positive(j, key);
  REQUIRE(j.at("by_threads").size() == 2);
  CHECK(j.at("by_threads")[0].at("threads") == 1);
  for (const json& jt : j.at("by_threads")) {
    positive(jt, "train_s_per_step");
    positive(jt, "sample_s_per_step");
    CHECK(jt.at("train_s_per_step_min").get<double>() <= jt.at("train_s_per_step").get<double>());
    CHECK(jt.at("train_s_per_step").get<double>() <= jt.at("train_s_per_step_max").get<double>());
  }
  // the scaling is the ratio of the 1- and 2-thread medians
  CHECK(j.at("train_thread_scaling").get<double>() ==
        doctest::Approx(j.at("by_threads")[0].at("train_s_per_step").get<double>() /
                        j.at("by_threads")[1].at("train_s_per_step").get<double>()));
  for (const char* key : {"machine_compute_scaling", "machine_stream_scaling"}) {
    CAPTURE(key);
    REQUIRE(j.at(key).size() == 2);  // before and after the steps
    for (const json& v : j.at(key)) CHECK(v.get<double>() > 0);
  }
  CHECK(!j.contains("torch_train_s_per_step"));  // --no-torch
  CHECK(contains(r.out, "train: 1 -> 2 threads"));
}

TEST_CASE("bench: bad flags give one-line errors and a non-zero exit") {
  check_one_line_error(run("./apps/bench --mode nope"), {"--mode", "nope"});
  check_one_line_error(run("./apps/bench --threads 0"), {"--threads", "0"});
  check_one_line_error(run("./apps/bench --batch 0 --mode sample"), {"--batch"});
}
