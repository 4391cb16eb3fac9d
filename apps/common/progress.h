// Progress reporting for long loops: a line redrawn in place on a terminal, plain lines otherwise
// (logs, CI), with rate and ETA.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace dd::app {

class Progress {
 public:
  // total = number of units of work (steps, images, ...); label prefixes every line.
  Progress(std::string label, int64_t total, int64_t start = 0);
  // Reports that `done` units are finished; `extra` is appended (e.g. "loss 0.031").
  // On a terminal redraws at most ~10 times a second; otherwise prints every `plain_every` units.
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  double elapsed_s() const;
  void set_plain_every(int64_t n) { plain_every_ = n; }

 private:
  std::string line(int64_t done, const std::string& extra) const;
  std::string label_;
  int64_t total_, start_, plain_every_, last_printed_ = -1;
  bool tty_;
  std::chrono::steady_clock::time_point t0_, last_draw_;
};

// "1h02m", "3m05s", "12.3s"
std::string format_duration(double seconds);

}  // namespace dd::app
