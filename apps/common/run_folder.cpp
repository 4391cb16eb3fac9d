#include "apps/common/run_folder.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tensor/io/atomic_file.h"

namespace dd::app {

namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

// What train_mnist writes (apps/train_mnist.cpp's header lists it).
bool is_run_file(const std::string& name) {
  if (name == "metrics.jsonl" || name == "last.safetensors" || name == "loss.png" || name == "bpd.png" || name == "fid.png")
    return true;
  if (starts_with(name, "ckpt-") && ends_with(name, ".safetensors")) return true;
  return starts_with(name, "samples-") && (ends_with(name, ".png") || ends_with(name, "-idx3-ubyte"));
}

std::string listed(const std::vector<std::string>& names) {
  std::string s;
  const size_t shown = std::min<size_t>(names.size(), 3);
  for (size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > shown) s += " and " + std::to_string(names.size() - shown) + " more";
  return s;
}

bool same_folder(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  const bool same = fs::equivalent(a, b, ec);
  return !ec && same;
}

long read_pid(int fd) {
  char buf[32] = {0};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  return n > 0 ? std::strtol(buf, nullptr, 10) : 0;
}

// True when `out` holds another run's files that --overwrite may remove; throws when it may not.
bool refuse_other_run(const std::string& out, const std::string& resume, bool overwrite, const std::vector<std::string>& existing) {
  const fs::path resume_folder = fs::path(resume).parent_path().empty() ? fs::path(".") : fs::path(resume).parent_path();
  const bool resuming_here = !resume.empty() && same_folder(resume_folder, out);
  if (existing.empty() || resuming_here) return false;
  if (!overwrite)
    throw std::runtime_error("--out " + out + ": expected a folder without another run's files, found " + listed(existing) +
                             " (continue that run with --resume " + (fs::path(out) / "last.safetensors").string() +
                             ", choose a new --out, or pass --overwrite to replace it)");
  return true;
}

}  // namespace

bool check_metrics_line(const std::string& path, int64_t line_number, const std::string& line, bool is_last, bool report) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  const std::string where = path + " line " + std::to_string(line_number);
  const std::string shown = "'" + (line.size() > 60 ? line.substr(0, 60) + "..." : line) + "'";
  if (j.is_discarded()) {
    if (is_last) {
      if (report) std::fprintf(stderr, "%s: dropping %s, a line cut short (the run was killed while writing it)\n", where.c_str(), shown.c_str());
      return false;
    }
    throw std::runtime_error(where + ": expected a JSON object, found " + shown);
  }
  if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer())
    throw std::runtime_error(where + ": expected a JSON object with an integer \"step\", found " + shown);
  for (const char* key : {"loss", "loss_smooth", "fid", "bpd_estimate"})
    if (j.contains(key) && !j[key].is_number())
      throw std::runtime_error(where + ": expected a number for \"" + key + "\", found " + shown);
  return true;
}

void precheck_run_folder(const std::string& out, const std::string& resume, bool overwrite) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  if (!fs::is_directory(out, ec)) throw std::runtime_error("--out " + out + ": expected a folder, found a file of that name");
  const std::string lock = (fs::path(out) / ".lock").string();
  const int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    const long pid = read_pid(fd);
    const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
    if (!held) ::flock(fd, LOCK_UN);
    ::close(fd);
    if (held)
      throw std::runtime_error("--out " + out + ": expected no other run writing into it, found one running there (pid " +
                               std::to_string(pid) + ", lock " + lock + ")");
  }
  refuse_other_run(out, resume, overwrite, run_files_in(out));
  const fs::path metrics = fs::path(out) / "metrics.jsonl";
  if (!resume.empty() && fs::exists(metrics, ec)) {
    std::ifstream in(metrics);
    std::string line;
    for (int64_t number = 1; std::getline(in, line); ++number) check_metrics_line(metrics.string(), number, line, in.peek() == EOF, false);
  }
}

void add_run_folder_flags(CLI::App& app, bool& overwrite) {
  app.add_flag("--overwrite", overwrite, "start a fresh run in an --out folder that holds another run's files, deleting them")
      ->group("Run");
}

std::vector<std::string> run_files_in(const std::string& folder) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_run_file(name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

RunFolder::RunFolder(const std::string& out, const std::string& resume, bool overwrite, const char* program) : out_(out) {
  const std::string flag = "--out " + out;
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    throw std::runtime_error(flag + ": expected a folder, found a file of that name");
  if (!fs::exists(out, ec)) {
    fs::create_directories(out, ec);
    if (ec) throw std::runtime_error(flag + ": expected a folder that can be created, got: " + ec.message());
    created_ = true;
  }
  // The lock first, so that nothing below races another process on the same folder.
  lock_path_ = (fs::path(out) / ".lock").string();
  lock_fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    const std::string why = std::strerror(errno);
    if (created_) fs::remove(out, ec);
    throw std::runtime_error(flag + ": expected a writable folder, could not create " + lock_path_ + " (" + why + ")");
  }
  const long previous = read_pid(lock_fd_);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw std::runtime_error(flag + ": expected no other run writing into it, found one running there (pid " +
                             std::to_string(previous) + ", lock " + lock_path_ + ")");
  }
  if (previous > 0)
    std::fprintf(stderr, "%s: %s was left locked by pid %ld, which is no longer running: taking it over\n", program,
                 out.c_str(), previous);
  const std::string pid = std::to_string(static_cast<long>(::getpid())) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    throw std::runtime_error(flag + ": expected a writable folder, could not write " + lock_path_);

  for (const std::string& name : remove_stale_temp_files(out))
    std::fprintf(stderr, "%s: removed %s, a temporary file of a run that was killed\n", program, (fs::path(out) / name).c_str());

  const std::vector<std::string> existing = run_files_in(out);
  if (refuse_other_run(out, resume, overwrite, existing)) {
    for (const std::string& name : existing) fs::remove(fs::path(out) / name, ec);
    std::fprintf(stderr, "%s: --overwrite: removed %zu files of the previous run in %s\n", program, existing.size(), out.c_str());
  }
}

RunFolder::~RunFolder() {
  std::error_code ec;
  // A folder this run created and left without a checkpoint holds nothing worth keeping (at most an
  // empty metrics.jsonl): an invalid or failed-at-once run leaves no trace.
  if (created_ && !fs::exists(fs::path(out_) / "last.safetensors", ec)) {
    const fs::path metrics = fs::path(out_) / "metrics.jsonl";
    if (fs::exists(metrics, ec) && fs::file_size(metrics, ec) == 0) fs::remove(metrics, ec);
  }
  if (lock_fd_ >= 0) {
    // Emptied, not removed: unlinking a lock file another process may have opened already would let
    // a third one lock a new file of the same name. An empty lock names no process to take over from.
    if (::ftruncate(lock_fd_, 0) != 0) ::unlink(lock_path_.c_str());
    ::close(lock_fd_);
  }
  if (created_) {
    bool only_lock = true;
    for (fs::directory_iterator it(out_, ec), end; !ec && it != end; it.increment(ec))
      only_lock = only_lock && it->path().filename() == ".lock";
    if (!ec && only_lock) fs::remove_all(out_, ec);
  }
}

}  // namespace dd::app
