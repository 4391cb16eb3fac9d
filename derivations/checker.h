// The checker behind docs/derivations.md: every check compares a left side with a right side (or
// states an inequality, or shows a seed note's version off and the corrected one right), prints
// PASS/FAIL with both sides, and keeps a record. Each check carries a label:
//   independent  one side is computed here without the library function under test (a formula
//                written out by hand, Bayes' rule pointwise, quadrature, Monte Carlo of eq. (2));
//   consistency  both sides come from the library (two routes, or an identity its numbers satisfy):
//                it catches a route that disagrees with another, not a formula wrong in both.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace dd::derivations {

enum class Label { Independent, Consistency };
const char* to_string(Label label);

// How the elements of a vector check are laid out, outermost first, to print each one's position
// with --verbose: {{"t", 2, 9}, {"pixel", 0, 4}} is t = 2..10 times pixel 0..3.
struct Axis {
  std::string name;
  int64_t first = 0, count = 1;
};
using Axes = std::vector<Axis>;

struct CheckRecord {
  std::string group, name, what;
  Label label = Label::Independent;
  bool ok = false;
  double excess = 0;  // |lhs - rhs| / tol at the worst element (an inequality: its violation / max(|rhs|, 1))
};

struct Stats {
  double mean = 0, var = 0, se_mean = 0, se_var = 0;  // sample mean and variance, their standard errors
};
Stats stats(const std::vector<double>& v);
double sq_err(const std::vector<double>& a, const std::vector<double>& b);  // sum of squared differences
// log of the mean of exp(r), and in *se_log its standard error (delta method)
double log_mean_exp(const std::vector<double>& r, double* se_log);
// printf into a string (for Checker::note and say)
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

class Checker {
 public:
  // out: where to print (nullptr: nowhere, for tests); only: run this group (empty: all).
  Checker(std::string only, bool verbose, std::FILE* out = stdout)
      : only_(std::move(only)), verbose_(verbose), out_(out) {}
  bool wants(const std::string& group) const { return only_.empty() || only_ == group; }
  void header(const std::string& group, const std::string& title);
  void say(const std::string& text) const;  // a derivation step, printed with --verbose
  void note(const std::string& text) const;  // a line printed always (a number the doc quotes)
  bool verbose() const { return verbose_; }

  // |lhs - rhs| <= tol at every element (NaN fails); prints the worst element, every one with --verbose.
  void equal(const std::string& name, Label label, const std::string& what, const std::vector<double>& lhs,
             const std::vector<double>& rhs, double tol, const std::string& tol_note = "", const Axes& axes = {});
  void equal(const std::string& name, Label label, const std::string& what, double lhs, double rhs, double tol,
             const std::string& tol_note = "");
  // lhs <= rhs
  void at_most(const std::string& name, Label label, const std::string& what, double lhs, double rhs);
  // A seed note's error: its value must miss the truth by more than tol, the corrected one hit it.
  void seed_error(const std::string& name, Label label, const std::string& what, double seed, double corrected,
                  double truth, double tol, const std::string& truth_note);

  int run() const { return static_cast<int>(records_.size()); }
  int failed() const;
  const std::vector<CheckRecord>& records() const { return records_; }

 private:
  void print(const char* fmt, ...) const;
  void record(const std::string& name, Label label, const std::string& what, bool ok, double excess);
  std::string only_, group_;
  bool verbose_;
  std::FILE* out_;
  std::vector<CheckRecord> records_;
};

}  // namespace dd::derivations
