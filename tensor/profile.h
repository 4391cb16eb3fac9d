// A switchable wall-clock profiler for `./apps/bench --profile`: time per (phase, kind), e.g.
// ("forward", "conv2d"), ("backward", "group_norm"), ("optimizer", "adam"). Off by default; when
// off a probe costs one branch. Not thread-safe by design: probes sit on the main thread, between
// parallel regions, and time whole ops.
//
// Forward ops are timed without a probe in every op: autograd's make_result() calls
// profile_mark(phase, op), which charges the time since the previous mark to that op (the op's
// own forward ran just before it recorded its result). profile_restart() sets the first mark.
#pragma once

#include <string>
#include <vector>

namespace dd {

struct ProfileEntry {
  std::string phase, kind;
  double seconds = 0;
  long calls = 0;
};

bool profiling();
void set_profiling(bool on);
void profile_reset();  // clears all totals

// Charges the time since the last mark (or restart) to (phase, kind), then moves the mark to now.
void profile_mark(const char* phase, const char* kind);
void profile_restart();  // moves the mark to now without charging anyone
// Adds a measured duration directly.
void profile_add(const char* phase, const char* kind, double seconds);
std::vector<ProfileEntry> profile_entries();  // in first-seen order

// Times its scope into (phase, kind) when profiling is on.
class ProfileScope {
 public:
  ProfileScope(const char* phase, const char* kind);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  const char* phase_;
  const char* kind_;
  double start_ = -1;
};

}  // namespace dd
