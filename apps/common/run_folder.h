// A run folder (train_mnist --out) belongs to one run at a time:
// - a fresh run into a folder that holds another run's files (metrics.jsonl, checkpoints, sample
//   grids, plots) stops with one line naming --resume, a new --out and --overwrite; with
//   --overwrite those files (and only those) are removed first;
// - --resume continues in the folder of its checkpoint; into another folder with run files it is
//   refused the same way;
// - a lock file (.lock, holding the PID, flock'ed) keeps a second process out while the first is
//   alive; the lock of a process that died (kill -9, a crash) is taken over with a message, and so
//   are the temporary files it left (tensor/io/atomic_file.h);
// - a folder the run created and left with neither a checkpoint nor a metrics line is removed
//   again, so an invalid run leaves nothing behind (a later failure keeps its logs to look at).
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dd::app {

// Registers --overwrite.
void add_run_folder_flags(CLI::App& app, bool& overwrite);

// The names in `folder` that belong to a training run (sorted; empty when none or no folder).
std::vector<std::string> run_files_in(const std::string& folder);

// One line of a run's metrics.jsonl, checked before --resume reads it: a JSON object whose "step"
// is an integer and whose loss_smooth / fid / bpd_estimate, when present, are numbers. A last line
// that is not JSON at all (torn by a kill mid-write) returns false: drop it; anything else wrong is
// a one-line std::runtime_error naming the file and the line.
bool check_metrics_line(const std::string& path, int64_t line_number, const std::string& line, bool is_last, bool report = true);

// The checks of RunFolder's constructor that need no change to the folder (another run's files, a
// live lock, a bad metrics.jsonl line when resuming there), so a program can make them before it
// does anything else. Throws std::runtime_error with a one-line message.
void precheck_run_folder(const std::string& out, const std::string& resume, bool overwrite);

class RunFolder {
 public:
  // Claims `out` for `program` (creating the folder when missing); resume: the checkpoint being
  // continued ("" for a fresh run). Throws std::runtime_error with a one-line message.
  RunFolder(const std::string& out, const std::string& resume, bool overwrite, const char* program);
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

 private:
  std::string out_, lock_path_;
  int lock_fd_ = -1;
  bool created_ = false;
};

}  // namespace dd::app
