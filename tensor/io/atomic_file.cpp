#include "tensor/io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "tensor/io/io_error.h"

namespace dd {

namespace {

std::string errno_text(int err) {
  if (err == EFBIG) return std::string("file too large (") + std::strerror(err) + "; a file-size limit, ulimit -f?)";
  if (err == ENOSPC) return std::string("no space left on the device (") + std::strerror(err) + ")";
  return std::strerror(err);
}
std::string errno_text() { return errno_text(errno); }

// ---- fault injection (tests only) --------------------------------------------------------------
std::mutex g_hook_mutex;
WriteFaultHook g_hook;
std::atomic<uint64_t> g_total_written{0};

uint64_t env_bytes(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return UINT64_MAX;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  return (end && *end == '\0') ? n : UINT64_MAX;
}
const uint64_t g_enospc_after = env_bytes("DD_TEST_ENOSPC_AFTER_BYTES");
const uint64_t g_kill_after = env_bytes("DD_TEST_KILL_AFTER_BYTES");

// How many of the next n bytes may be written before a fault; *err gets the errno to fail with
// (0: none, all n may go). A kill fault does not return once its byte count is reached.
size_t allowed_bytes(const std::string& target, uint64_t written_to_file, size_t n, int* err, bool* kill_then) {
  *err = 0;
  *kill_then = false;
  const uint64_t total = g_total_written.load();
  size_t allowed = n;
  if (g_kill_after != UINT64_MAX && total + n >= g_kill_after) {
    allowed = static_cast<size_t>(g_kill_after > total ? g_kill_after - total : 0);
    *kill_then = true;
  }
  if (g_enospc_after != UINT64_MAX && total + n > g_enospc_after) {
    const size_t room = static_cast<size_t>(g_enospc_after > total ? g_enospc_after - total : 0);
    if (room <= allowed) {
      allowed = room;
      *err = ENOSPC;
      *kill_then = false;
    }
  }
  std::lock_guard<std::mutex> lock(g_hook_mutex);
  if (g_hook) {
    const int e = g_hook(target, written_to_file, n);
    if (e != 0) {
      allowed = 0;
      *err = e;
      *kill_then = false;
    }
  }
  return allowed;
}

std::string folder_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void write_raw(int fd, const std::string& temp_path, const char* p, size_t n) {
  while (n > 0) {
    ssize_t written = ::write(fd, p, n);
    if (written < 0) {
      if (errno == EINTR) continue;
      io_error(temp_path, "to write " + std::to_string(n) + " more bytes", "error: " + errno_text());
    }
    p += written;
    n -= static_cast<size_t>(written);
    g_total_written += static_cast<uint64_t>(written);
  }
}

void write_all(int fd, const std::string& target, const std::string& temp_path, uint64_t* written_to_file,
               const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  int err = 0;
  bool kill_then = false;
  const size_t allowed = allowed_bytes(target, *written_to_file, n, &err, &kill_then);
  write_raw(fd, temp_path, p, allowed);
  *written_to_file += allowed;
  if (kill_then) ::kill(::getpid(), SIGKILL);
  if (err != 0)
    io_error(temp_path, "to write " + std::to_string(n - allowed) + " more bytes", "error: " + errno_text(err));
}

// Owns the temporary file until commit(): destroying it before then closes and removes it.
class TempFile {
 public:
  explicit TempFile(const std::string& target) : target_(target) {
    std::string pattern = target + ".tmp." + std::to_string(static_cast<long>(::getpid())) + ".XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    fd_ = ::mkstemp(buf.data());
    if (fd_ < 0) io_error(target, "a temporary file beside it to be created", "error: " + errno_text());
    path_ = buf.data();
    // mkstemp creates mode 0600; give the file the usual permissions (subject to the umask).
    mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd_, 0666 & ~mask);
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, size_t n) { write_all(fd_, target_, path_, &written_, data, n); }

  void commit() {
    if (::fsync(fd_) != 0) io_error(path_, "fsync to succeed", "error: " + errno_text());
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) io_error(path_, "close to succeed", "error: " + errno_text());
    if (::rename(path_.c_str(), target_.c_str()) != 0)
      io_error(target_, "rename from " + path_ + " to succeed", "error: " + errno_text());
    committed_ = true;
    // Make the rename itself durable; a failure here does not undo it, so it is not an error.
    int dir = ::open(folder_of(target_).c_str(), O_RDONLY | O_DIRECTORY);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }

 private:
  std::string target_, path_;
  uint64_t written_ = 0;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce) {
  TempFile temp(path);
  produce([&temp](const void* data, size_t n) { temp.write(data, n); });
  temp.commit();
}

void write_file_atomic(const std::string& path, const void* data, size_t n) {
  write_file_atomic(path, [&](const ByteSink& sink) { sink(data, n); });
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) io_error(path, "a readable file", "error: " + errno_text());
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    io_error(path, "a regular file", "something else");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t r = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ::close(fd);
      io_error(path, std::to_string(bytes.size()) + " bytes", std::to_string(got) + " readable bytes");
    }
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  return bytes;
}

bool is_temp_file_name(const std::string& name, long* pid) {
  // NAME.tmp.PID.XXXXXX: six characters from mkstemp after the last dot, digits before it.
  const size_t last = name.rfind('.');
  if (last == std::string::npos || name.size() - last - 1 != 6) return false;
  const size_t tmp = name.rfind(".tmp.", last);
  if (tmp == std::string::npos || tmp == 0) return false;
  const std::string digits = name.substr(tmp + 5, last - tmp - 5);
  if (digits.empty() || digits.size() > 9) return false;
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  if (pid) *pid = std::stol(digits);
  return true;
}

std::vector<std::string> remove_stale_temp_files(const std::string& folder) {
  std::vector<std::string> removed;
  DIR* dir = ::opendir(folder.c_str());
  if (!dir) return removed;
  while (const dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    long pid = 0;
    if (!is_temp_file_name(name, &pid)) continue;
    // kill(pid, 0) fails with ESRCH only when no such process exists (EPERM: alive, not ours).
    const bool alive = pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
    if (alive) continue;
    if (::unlink((folder + "/" + name).c_str()) == 0) removed.push_back(name);
  }
  ::closedir(dir);
  return removed;
}

void ignore_file_size_signal() { ::signal(SIGXFSZ, SIG_IGN); }

void set_write_fault_hook(WriteFaultHook hook) {
  std::lock_guard<std::mutex> lock(g_hook_mutex);
  g_hook = std::move(hook);
}

}  // namespace dd
