#include "tensor/profile.h"

#include <chrono>

namespace dd {

namespace {
bool g_on = false;
double g_mark = 0;
std::vector<ProfileEntry> g_entries;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

ProfileEntry& entry(const char* phase, const char* kind) {
  for (auto& e : g_entries)
    if (e.phase == phase && e.kind == kind) return e;
  g_entries.push_back({phase, kind, 0.0, 0});
  return g_entries.back();
}
}  // namespace

bool profiling() { return g_on; }
void set_profiling(bool on) {
  g_on = on;
  g_mark = now_s();
}
void profile_reset() { g_entries.clear(); }

void profile_mark(const char* phase, const char* kind) {
  if (!g_on) return;
  const double t = now_s();
  profile_add(phase, kind, t - g_mark);
  g_mark = t;
}

void profile_restart() {
  if (g_on) g_mark = now_s();
}

void profile_add(const char* phase, const char* kind, double seconds) {
  if (!g_on) return;
  ProfileEntry& e = entry(phase, kind);
  e.seconds += seconds;
  e.calls += 1;
}

std::vector<ProfileEntry> profile_entries() { return g_entries; }

ProfileScope::ProfileScope(const char* phase, const char* kind) : phase_(phase), kind_(kind) {
  if (g_on) start_ = now_s();
}

ProfileScope::~ProfileScope() {
  if (g_on && start_ >= 0) {
    const double t = now_s();
    profile_add(phase_, kind_, t - start_);
    g_mark = t;  // whatever follows a scope starts its own interval
  }
}

}  // namespace dd
