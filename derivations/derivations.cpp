#include "derivations/derivations.h"

#include <algorithm>
#include <stdexcept>

#include "ddpm/schedule.h"
#include "derivations/bound_by_hand.h"
#include "derivations/checks.h"

namespace dd::derivations {

const std::vector<std::string>& groups() {
  static const std::vector<std::string> g = {"1",  "2",  "3",  "4",   "5",    "6",    "7",    "8",    "9",
                                             "10", "11", "12", "13", "14", "bpd", "alg1", "alg2", "bound", "lemmas", "views", "seeds"};
  return g;
}

std::vector<CheckRecord> run_checks(const std::string& only, bool verbose, std::FILE* out) {
  if (!only.empty() && std::find(groups().begin(), groups().end(), only) == groups().end()) {
    std::string list;
    for (const std::string& g : groups()) list += (list.empty() ? "" : ", ") + g;
    throw std::invalid_argument("expected a group among " + list + ", found '" + only + "'");
  }
  const ddpm::Schedule s = ddpm::linear_schedule(kT, 0.05, 0.5);
  if (out) {
    std::fprintf(out, "teaching schedule: T = %lld, beta_t = 0.05 t:", static_cast<long long>(kT));
    for (int64_t t = 1; t <= kT; ++t) std::fprintf(out, " %.2f", s.betas[t]);
    std::fprintf(out, "\n  abar_t:");
    for (int64_t t = 1; t <= kT; ++t) std::fprintf(out, " %.4f", s.abar[t]);
    std::fprintf(out, "\n");
  }
  Checker c(only, verbose, out);
  const ForwardMC f = c.wants("4") || c.wants("seeds") ? forward_mc() : ForwardMC{};
  const BoundMC b = c.wants("3") || c.wants("5") || c.wants("seeds") ? bound_mc(s) : BoundMC{};
  if (c.wants("1")) check_eq1(c, s);
  if (c.wants("2")) check_eq2(c, s);
  if (c.wants("3")) check_eq3(c, b);
  if (c.wants("4")) check_eq4(c, s, f);
  if (c.wants("5")) check_eq5(c, s, b);
  if (c.wants("6")) check_eq6(c, s);
  if (c.wants("7")) check_eq7(c, s);
  if (c.wants("8")) check_eq8(c, s);
  if (c.wants("9")) check_eq9(c, s);
  if (c.wants("10")) check_eq10(c, s);
  if (c.wants("11")) check_eq11(c, s);
  if (c.wants("12")) check_eq12(c, s);
  if (c.wants("13")) check_eq13(c);
  if (c.wants("bpd")) check_bpd(c, s);
  if (c.wants("14")) check_eq14(c, s);
  if (c.wants("alg1")) check_alg1(c, s);
  if (c.wants("alg2")) check_alg2(c, s);
  if (c.wants("bound")) check_bound_by_hand(c, s, ddpm::variational_bound);
  if (c.wants("lemmas")) check_lemmas(c);
  if (c.wants("views")) check_views(c, s);
  if (c.wants("seeds")) check_seeds(c, s, f, b);
  return c.records();
}

}  // namespace dd::derivations
