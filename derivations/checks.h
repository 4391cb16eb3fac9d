// The groups of checks, one function each (inside the derivations folder; the public entry is
// derivations/derivations.h).
#pragma once

#include "ddpm/schedule.h"
#include "derivations/checker.h"
#include "derivations/toy.h"

namespace dd::derivations {

void check_eq1(Checker& c, const ddpm::Schedule& s);
void check_eq2(Checker& c, const ddpm::Schedule& s);
void check_eq3(Checker& c, const BoundMC& b);
void check_eq4(Checker& c, const ddpm::Schedule& s, const ForwardMC& f);
void check_eq5(Checker& c, const ddpm::Schedule& s, const BoundMC& b);
void check_eq6(Checker& c, const ddpm::Schedule& s);
void check_eq7(Checker& c, const ddpm::Schedule& s);
void check_eq8(Checker& c, const ddpm::Schedule& s);
void check_eq9(Checker& c, const ddpm::Schedule& s);
void check_eq10(Checker& c, const ddpm::Schedule& s);
void check_eq11(Checker& c, const ddpm::Schedule& s);
void check_eq12(Checker& c, const ddpm::Schedule& s);
void check_eq13(Checker& c);
void check_eq14(Checker& c, const ddpm::Schedule& s);
void check_bpd(Checker& c, const ddpm::Schedule& s);
void check_alg1(Checker& c, const ddpm::Schedule& s);
void check_alg2(Checker& c, const ddpm::Schedule& s);
void check_lemmas(Checker& c);
void check_views(Checker& c, const ddpm::Schedule& s);
void check_seeds(Checker& c, const ddpm::Schedule& s, const ForwardMC& f, const BoundMC& b);

}  // namespace dd::derivations
