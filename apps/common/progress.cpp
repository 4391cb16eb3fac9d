#include "apps/common/progress.h"

#include <unistd.h>

#include <cstdio>

namespace dd::app {

std::string format_duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, (static_cast<int>(s) % 3600) / 60);
  return buf;
}

Progress::Progress(std::string label, int64_t total, int64_t start)
    : label_(std::move(label)),
      total_(total),
      start_(start),
      plain_every_(std::max<int64_t>(1, total / 20)),
      tty_(isatty(fileno(stderr))),
      t0_(std::chrono::steady_clock::now()),
      last_draw_(t0_) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

std::string Progress::line(int64_t done, const std::string& extra) const {
  const double el = elapsed_s();
  const double rate = done > start_ ? (done - start_) / el : 0.0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0.0;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %lld/%lld (%.0f%%)", label_.c_str(), static_cast<long long>(done),
                static_cast<long long>(total_), total_ > 0 ? 100.0 * done / total_ : 100.0);
  std::string out = buf;
  if (!extra.empty()) out += "  " + extra;
  out += "  elapsed " + format_duration(el);
  if (done < total_ && rate > 0) out += "  ETA " + format_duration(eta);
  return out;
}

void Progress::update(int64_t done, const std::string& extra) {
  if (tty_) {
    auto now = std::chrono::steady_clock::now();
    if (done < total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
    last_draw_ = now;
    std::fprintf(stderr, "\r\033[K%s", line(done, extra).c_str());
    std::fflush(stderr);
  } else if (done - std::max<int64_t>(last_printed_, start_) >= plain_every_ || done == total_) {
    last_printed_ = done;
    std::fprintf(stderr, "%s\n", line(done, extra).c_str());
  }
}

void Progress::finish(const std::string& extra) {
  if (tty_) std::fprintf(stderr, "\r\033[K%s\n", line(total_, extra).c_str());
  else if (last_printed_ != total_) std::fprintf(stderr, "%s\n", line(total_, extra).c_str());
}

}  // namespace dd::app
