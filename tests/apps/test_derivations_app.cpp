// apps/derivations as a user runs it: flags, labels in the output, --verbose positions, --index, --plots.
#include <doctest/doctest.h>

#include <string>

#include "tests/apps/app_test_util.h"

using namespace dd_apps_test;

TEST_CASE("derivations: a bad flag or group is one line and exit 2; 'typos' still names the seed group") {
  for (const char* args : {"--eq 99", "--nope", "--eq"}) {
    CAPTURE(args);
    const RunResult r = run(std::string("./apps/derivations ") + args);
    CHECK(r.code == 2);
    CHECK(lines_of(r.err).size() == 1);
    CHECK(contains(r.err, "derivations:"));
  }
  const RunResult typos = run("./apps/derivations --eq typos");
  CHECK(typos.code == 0);
  CHECK(contains(typos.out, "seed.000.betatilde"));
  CHECK(contains(typos.out, " 0 failed"));
}

TEST_CASE("derivations: every check prints its label; --verbose names each element by (t, pixel)") {
  const RunResult r = run("./apps/derivations --eq 7 --verbose");
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "eq7.mean_square                [independent]"));
  CHECK(contains(r.out, "t 2, pixel 0"));
  CHECK(contains(r.out, "t 10, pixel 3"));
  const RunResult c = run("./apps/derivations --eq 9");
  CHECK(contains(c.out, "[consistency]"));
}

TEST_CASE("derivations: --index prints the Markdown table of every check with its label") {
  const RunResult r = run("./apps/derivations --index");
  REQUIRE(r.code == 0);
  const std::vector<std::string> lines = lines_of(r.out);
  REQUIRE(lines.size() > 60);
  CHECK(lines[0] == "| Check | Label | What it compares |");
  CHECK(contains(r.out, "| `bound.kl_terms` | independent |"));
  CHECK(contains(r.out, "| `eq5.telescope_pointwise` | consistency |"));
}

TEST_CASE("derivations: --plots writes the toy pictures and says the digit picture needs MNIST") {
  const dd_test::ScratchDir scratch;
  const std::string dir = scratch.file("plots");
  const RunResult r = run("./apps/derivations --eq 1 --plots '" + dir + "' --data '" + dir + "/no-mnist'");
  CHECK(r.code == 0);
  for (const char* f : {"schedule_beta.png", "toy_trajectory.png", "posterior_vs_model.png", "decoder_bins.png"})
    CHECK_MESSAGE(fs::exists(fs::path(dir) / f), f);
  CHECK(contains(r.out, "skipped q_xt_digit.png"));
}
