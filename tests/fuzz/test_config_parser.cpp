// The stored-config parser the config fuzz target drives (apps/common/run_config.h): exact types,
// value ranges, and the parameter count it uses for the memory limit, against real models.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>
#include <algorithm>

#include "apps/common/run_config.h"
#include "nn/unet.h"

using dd::app::TrainConfig;
using nlohmann::json;

namespace {
std::string error_of(const std::string& text) {
  try {
    TrainConfig::from_json(text).validate(false);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("stored config: a field must hold exactly its flag's type; values are range-checked") {
  TrainConfig c;
  c.steps = 10;
  const json good = json::parse(c.to_json());
  CHECK(error_of(good.dump()) == "");
  struct Case {
    const char* key;
    json value;
    const char* expect;
  };
  for (const Case& k : {Case{"T", 7.5, "key 'T'"}, Case{"T", "1000", "key 'T'"}, Case{"T", true, "key 'T'"},
                        Case{"seed", -1, "key 'seed'"}, Case{"ch", 4294967296.0, "key 'ch'"}, Case{"ch", json(int64_t{1} << 40), "key 'ch'"},
                        Case{"ch_mult", json::array({1, "2"}), "key 'ch_mult'"}, Case{"schedule", 3, "key 'schedule'"},
                        Case{"schedule", "quadratic", "--schedule"}, Case{"lr", -1, "--lr"}, Case{"T", 1000000, "--T"},
                        Case{"attn_res", json::array({5}), "--attn-res"}, Case{"threads", 100000, "--threads"},
                        Case{"ch", 1 << 20, "GiB"}}) {
    INFO(k.key << " = " << k.value.dump());
    json j = good;
    j[k.key] = k.value;
    CHECK(error_of(j.dump()).find(k.expect) != std::string::npos);
  }
  CHECK(error_of("[1, 2]").find("expected a JSON object") != std::string::npos);
  CHECK(error_of("{\"steps\": 1").find("unparsable") != std::string::npos);
  CHECK(error_of("{\"nope\": 1}").find("unknown key 'nope'") != std::string::npos);
  // A config stored on a bigger machine (more threads than cores here) still loads.
  json many = good;
  many["threads"] = 64;
  CHECK(error_of(many.dump()) == "");
}

TEST_CASE("unet_parameter_count equals the parameters of the model built from the config") {
  struct Case {
    int ch;
    std::vector<int> mult;
    int blocks;
    std::vector<int> attn;
    bool learned;
    bool cond = false;
  };
  for (const Case& k : {Case{32, {1, 2, 2}, 1, {7}, false}, Case{8, {1, 2}, 1, {0}, false}, Case{16, {1, 2, 2}, 2, {14, 7}, true},
                        Case{8, {1}, 1, {28}, false}, Case{24, {2, 1, 3}, 3, {28, 14, 7}, true},
                        Case{32, {1, 2, 2}, 1, {7}, false, true}}) {
    TrainConfig c;
    c.ch = k.ch;
    c.ch_mult = k.mult;
    c.num_res_blocks = k.blocks;
    c.attn_res = k.attn;
    c.variance = k.learned ? "learned" : "large";
    c.cond = k.cond;
    dd::Rng rng(0);
    dd::UNet<float> model(c.unet(), rng);
    INFO("ch " << k.ch << " blocks " << k.blocks << " cond " << k.cond);
    CHECK(dd::app::unet_parameter_count(c.unet()) == static_cast<double>(model.num_parameters()));
  }
}

TEST_CASE("fuzz finding: a stored model config with a number beyond int is an error, not undefined behaviour") {
  // tests/fuzz/regressions/config/crash-1b1f...: ch_mult [1e124, 2, 2] went through get<int>().
  for (const char* text : {"{\"ch_mult\": [1e124, 2, 2]}", "{\"ch\": 4294967296}", "{\"ch\": 32.5}", "{\"attn_resolutions\": [\"7\"]}",
                           "{\"num_classes\": 1e10}", "{\"num_classes\": 3.7}", "{\"num_classes\": 2147483647}"}) {
    INFO(text);
    CHECK_THROWS_AS(dd::UNetConfig::from_json(text), std::invalid_argument);
  }
}

TEST_CASE("--beta-start / --beta-end set the linear schedule's end points; 0 keeps DDPM's; --lr-decay is checked") {
  TrainConfig c;
  c.steps = 100;
  CHECK(c.beta_start == 1e-5);  // the project's default (docs/recipe.md)
  CHECK(c.make_schedule().betas[1] == doctest::Approx(1e-5).epsilon(1e-12));
  c.beta_start = 0;
  const dd::ddpm::Schedule ddpm_default = c.make_schedule();
  CHECK(ddpm_default.betas[1] == doctest::Approx(1e-4));
  CHECK(ddpm_default.betas[1000] == doctest::Approx(0.02));
  c.beta_start = 2e-5;
  const dd::ddpm::Schedule low_start = c.make_schedule();
  CHECK(low_start.betas[1] == doctest::Approx(2e-5).epsilon(1e-12));
  CHECK(low_start.betas[1000] == doctest::Approx(0.02).epsilon(1e-12));
  c.beta_end = 0.01;
  CHECK(c.make_schedule().betas[1000] == doctest::Approx(0.01).epsilon(1e-12));
  CHECK_NOTHROW(c.validate(false));
  // the stored config keeps them (sample and nll rebuild the same schedule)
  const TrainConfig back = TrainConfig::from_json(c.to_json());
  CHECK(back.beta_start == c.beta_start);
  CHECK(back.beta_end == c.beta_end);
  CHECK(back.make_schedule().betas[1] == low_start.betas[1]);

  c.beta_start = 0.05;  // above beta_T
  CHECK(error_of(c.to_json()).find("beta_1 <= beta_T") != std::string::npos);
  c.beta_start = 2e-5;
  c.schedule = "cosine";
  CHECK(error_of(c.to_json()).find("--schedule linear") != std::string::npos);
  c.schedule = "linear";
  c.lr_decay = "step";
  CHECK(error_of(c.to_json()).find("none or cosine") != std::string::npos);
  c.lr_decay = "cosine";
  c.steps = 100;
  c.warmup = 200;
  CHECK(error_of(c.to_json()).find("more --steps than --warmup") != std::string::npos);
}

TEST_CASE("--decoder-floor: the learned sigma_1's lower end in the schedule, kept in the stored config, checked") {
  TrainConfig c;
  c.steps = 100;
  c.variance = "learned";
  c.loss = "hybrid";
  const double clipped = c.make_schedule().learned_log_variance_min[1];  // log betatilde_2
  c.decoder_floor = 0.001;
  CHECK_NOTHROW(c.validate(false));
  CHECK(c.make_schedule().learned_log_variance_min[1] == doctest::Approx(std::log(1e-6)).epsilon(1e-12));
  CHECK(c.make_schedule().learned_log_variance_min[2] == c.make_schedule().posterior_log_variance_clipped[2]);
  const TrainConfig back = TrainConfig::from_json(c.to_json());
  CHECK(back.decoder_floor == 0.001);
  nlohmann::json j = nlohmann::json::parse(c.to_json());
  j.erase("decoder_floor");  // a config written before the flag: Nichol & Dhariwal's range
  CHECK(TrainConfig::from_json(j.dump()).make_schedule().learned_log_variance_min[1] == clipped);
  c.decoder_floor = 0.02;  // 0.02^2 > the default beta_1 = 1e-5
  CHECK(error_of(c.to_json()).find("below sqrt(beta_1)") != std::string::npos);
  c.decoder_floor = 0.001;
  c.variance = "small";
  c.loss = "simple";
  CHECK(error_of(c.to_json()).find("--variance learned") != std::string::npos);
}

TEST_CASE("cond: the default of a new run is class-conditional; a stored config without the key (written before --cond) is not") {
  const TrainConfig fresh;
  CHECK(fresh.cond);
  CHECK(fresh.unet().num_classes == 10);
  nlohmann::json j = nlohmann::json::parse(fresh.to_json());
  CHECK(TrainConfig::from_json(j.dump()).cond);
  j.erase("cond");
  CHECK_FALSE(TrainConfig::from_json(j.dump()).cond);
  CHECK(TrainConfig::from_json(j.dump()).unet().num_classes == 0);
  j["cond"] = false;
  CHECK_FALSE(TrainConfig::from_json(j.dump()).cond);
}

TEST_CASE("defaults: hybrid loss, learned variance, beta_1 = 1e-5, importance-sampled t; a stored config without those keys keeps DDPM's") {
  const TrainConfig fresh;
  CHECK(fresh.loss == "hybrid");
  CHECK(fresh.t_sampler == "loss-second-moment");
  CHECK(fresh.variance == "learned");
  CHECK(fresh.unet().learn_variance);
  nlohmann::json j = nlohmann::json::parse(fresh.to_json());
  const TrainConfig same = TrainConfig::from_json(j.dump());
  CHECK(same.beta_start == 1e-5);
  CHECK(same.loss == "hybrid");
  CHECK(same.variance == "learned");
  CHECK(same.t_sampler == "loss-second-moment");
  j.erase("beta_start");
  j.erase("loss");
  j.erase("variance");
  j.erase("t_sampler");
  const TrainConfig old = TrainConfig::from_json(j.dump());
  CHECK(old.beta_start == 0.0);
  CHECK(old.make_schedule().betas[1] == doctest::Approx(1e-4));
  CHECK(old.loss == "simple");
  CHECK(old.variance == "large");
  CHECK(old.t_sampler == "uniform");
  CHECK_FALSE(old.unet().learn_variance);
}

namespace {
TrainConfig parse_flags(std::vector<std::string> args) {
  CLI::App app;
  TrainConfig c;
  c.steps = 100;
  dd::app::add_train_flags(app, c);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  app.parse(args);
  return c;
}
}  // namespace

TEST_CASE("flags: a partner of the default is brought along; --schedule cosine alone drops the default beta_1") {
  const TrainConfig none = parse_flags({});
  CHECK(none.loss == "hybrid");
  CHECK(none.variance == "learned");
  CHECK(none.beta_start == 1e-5);
  CHECK(none.t_sampler == "loss-second-moment");
  const TrainConfig cosine = parse_flags({"--schedule", "cosine"});
  CHECK(cosine.beta_start == 0.0);
  CHECK_NOTHROW(cosine.validate(false));
  // an explicit --beta-start with cosine is still the error it was
  CHECK_THROWS_WITH_AS(parse_flags({"--schedule", "cosine", "--beta-start", "1e-5"}).validate(false),
                       doctest::Contains("--schedule linear"), std::invalid_argument);
  const TrainConfig simple = parse_flags({"--loss", "simple"});
  CHECK(simple.variance == "large");
  CHECK(simple.t_sampler == "uniform");  // DDPM's Algorithm 1
  CHECK_NOTHROW(simple.validate(false));
  CHECK(parse_flags({"--loss", "simple", "--t-sampler", "loss-second-moment"}).t_sampler == "loss-second-moment");
  CHECK(parse_flags({"--loss", "vlb"}).t_sampler == "loss-second-moment");
  const TrainConfig small = parse_flags({"--variance", "small"});
  CHECK(small.loss == "simple");
  CHECK(small.t_sampler == "uniform");
  CHECK_NOTHROW(small.validate(false));
  // both named: taken as given (and checked)
  const TrainConfig both = parse_flags({"--loss", "simple", "--variance", "learned"});
  CHECK(both.loss == "simple");
  CHECK(both.variance == "learned");
  // which a new run refuses (nothing would train the variance); a stored config still loads
  CHECK_THROWS_WITH_AS(both.validate(true), doctest::Contains("--loss simple"), std::invalid_argument);
  CHECK_NOTHROW(both.validate(false));
  CHECK_THROWS_AS(parse_flags({"--loss", "hybrid", "--variance", "small"}).validate(false), std::invalid_argument);
}
