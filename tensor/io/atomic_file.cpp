#include "tensor/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tensor/io/io_error.h"

namespace dd {

namespace {

std::string errno_text() { return std::strerror(errno); }

std::string folder_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void write_all(int fd, const std::string& temp_path, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t written = ::write(fd, p, n);
    if (written < 0) {
      if (errno == EINTR) continue;
      io_error(temp_path, "to write " + std::to_string(n) + " more bytes", "error: " + errno_text());
    }
    p += written;
    n -= static_cast<size_t>(written);
  }
}

// Owns the temporary file until commit(): destroying it before then closes and removes it.
class TempFile {
 public:
  explicit TempFile(const std::string& target) : target_(target) {
    std::string pattern = target + ".tmp.XXXXXX";
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

  void write(const void* data, size_t n) { write_all(fd_, path_, data, n); }

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

}  // namespace dd
