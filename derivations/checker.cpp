#include "derivations/checker.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>

namespace dd::derivations {

const char* to_string(Label label) { return label == Label::Independent ? "independent" : "consistency"; }

Stats stats(const std::vector<double>& v) {
  Stats s;
  const double n = static_cast<double>(v.size());
  for (double a : v) s.mean += a;
  s.mean /= n;
  double m4 = 0;
  for (double a : v) {
    const double d = (a - s.mean) * (a - s.mean);
    s.var += d;
    m4 += d * d;
  }
  s.var /= (n - 1);
  m4 /= n;
  s.se_mean = std::sqrt(s.var / n);
  s.se_var = std::sqrt(std::max(m4 - s.var * s.var, 0.0) / n);
  return s;
}

double sq_err(const std::vector<double>& a, const std::vector<double>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (a[i] - b[i]) * (a[i] - b[i]);
  return e;
}

double log_mean_exp(const std::vector<double>& r, double* se_log) {
  const double mx = *std::max_element(r.begin(), r.end());
  std::vector<double> w(r.size());
  for (size_t i = 0; i < r.size(); ++i) w[i] = std::exp(r[i] - mx);
  const Stats st = stats(w);
  *se_log = st.se_mean / st.mean;
  return mx + std::log(st.mean);
}

std::string format(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

void Checker::print(const char* fmt, ...) const {
  if (!out_) return;
  va_list args;
  va_start(args, fmt);
  std::vfprintf(out_, fmt, args);
  va_end(args);
}

void Checker::header(const std::string& group, const std::string& title) {
  group_ = group;
  print("\n== %s\n", title.c_str());
}

void Checker::say(const std::string& text) const {
  if (verbose_) print("     %s\n", text.c_str());
}

void Checker::note(const std::string& text) const { print("        %s\n", text.c_str()); }

int Checker::failed() const {
  return static_cast<int>(std::count_if(records_.begin(), records_.end(), [](const CheckRecord& r) { return !r.ok; }));
}

void Checker::record(const std::string& name, Label label, const std::string& what, bool ok, double excess) {
  records_.push_back({group_, name, what, label, ok, excess});
}

namespace {
// "t = 3, pixel 2" for element i of a check laid out as `axes`; "[i]" without a layout.
std::string position(size_t i, const Axes& axes) {
  if (axes.empty()) return "[" + std::to_string(i) + "]";
  std::vector<int64_t> idx(axes.size());
  size_t rest = i;
  for (size_t k = axes.size(); k-- > 0;) {
    idx[k] = axes[k].first + static_cast<int64_t>(rest % static_cast<size_t>(axes[k].count));
    rest /= static_cast<size_t>(axes[k].count);
  }
  std::string s;
  for (size_t k = 0; k < axes.size(); ++k) s += (k ? ", " : "") + axes[k].name + " " + std::to_string(idx[k]);
  return s;
}
}  // namespace

void Checker::equal(const std::string& name, Label label, const std::string& what, const std::vector<double>& lhs,
                    const std::vector<double>& rhs, double tol, const std::string& tol_note, const Axes& axes) {
  const char* kind = to_string(label);
  if (lhs.size() != rhs.size() || lhs.empty()) {
    print("  FAIL  %-30s [%s] %s\n        (sizes differ: %zu and %zu)\n", name.c_str(), kind, what.c_str(), lhs.size(),
          rhs.size());
    record(name, label, what, false, INFINITY);
    return;
  }
  size_t worst = 0;
  double worst_d = -1;
  bool ok = true;
  for (size_t i = 0; i < lhs.size(); ++i) {
    const double d = std::abs(lhs[i] - rhs[i]);
    if (!(d <= tol)) ok = false;  // NaN fails
    if (!(d <= worst_d)) worst_d = d, worst = i;
  }
  print("  %-5s %-30s [%s] %s\n        lhs % .12g  rhs % .12g  diff % .3g  (tol %.3g%s%s%s%s)\n", ok ? "PASS" : "FAIL",
        name.c_str(), kind, what.c_str(), lhs[worst], rhs[worst], lhs[worst] - rhs[worst], tol,
        tol_note.empty() ? "" : ", ", tol_note.c_str(), lhs.size() > 1 ? "; worst at " : "",
        lhs.size() > 1 ? position(worst, axes).c_str() : "");
  if (verbose_ && lhs.size() > 1)
    for (size_t i = 0; i < lhs.size(); ++i)
      print("          %-16s lhs % .12g  rhs % .12g  diff % .3g\n", position(i, axes).c_str(), lhs[i], rhs[i],
            lhs[i] - rhs[i]);
  record(name, label, what, ok, worst_d / tol);
}

void Checker::equal(const std::string& name, Label label, const std::string& what, double lhs, double rhs, double tol,
                    const std::string& tol_note) {
  equal(name, label, what, std::vector<double>{lhs}, std::vector<double>{rhs}, tol, tol_note);
}

void Checker::at_most(const std::string& name, Label label, const std::string& what, double lhs, double rhs) {
  const bool ok = lhs <= rhs;
  print("  %-5s %-30s [%s] %s\n        lhs % .10g <= rhs % .10g   (rhs - lhs = %.3g)\n", ok ? "PASS" : "FAIL",
        name.c_str(), to_string(label), what.c_str(), lhs, rhs, rhs - lhs);
  record(name, label, what, ok, ok ? 0.0 : (lhs - rhs) / std::max(std::abs(rhs), 1.0));
}

void Checker::seed_error(const std::string& name, Label label, const std::string& what, double seed, double corrected,
                         double truth, double tol, const std::string& truth_note) {
  const double ds = std::abs(seed - truth), dc = std::abs(corrected - truth);
  const bool ok = ds > tol && dc <= tol;
  print("  %-5s %-30s [%s] %s\n", ok ? "PASS" : "FAIL", name.c_str(), to_string(label), what.c_str());
  print("        truth (%s) % .10g\n", truth_note.c_str(), truth);
  print("        seed's version % .10g  diff % .3g  %s tol %.3g  -> seed is %s\n", seed, seed - truth,
        ds > tol ? ">" : "<=", tol, ds > tol ? "wrong" : "NOT caught");
  print("        corrected      % .10g  diff % .3g  %s tol %.3g  -> corrected %s\n", corrected, corrected - truth,
        dc <= tol ? "<=" : ">", tol, dc <= tol ? "holds" : "FAILS");
  record(name, label, what, ok, dc / tol);
}

}  // namespace dd::derivations
