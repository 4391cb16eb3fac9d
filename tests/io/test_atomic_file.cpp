// tensor/io/atomic_file: the temporary-file pattern and its clean-up after a killed process, the
// fault hook (ENOSPC mid-write keeps the old file), and a file-size limit as a "file too large"
// error instead of a SIGXFSZ death.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "tensor/io/atomic_file.h"
#include "tests/io/io_test_util.h"

using namespace dd;
using namespace dd_test;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
// A pid that is certainly not running: a child that has exited and been reaped.
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}
}  // namespace

TEST_CASE("atomic_file: temporary names carry the writer's pid; only those of dead processes are removed") {
  long pid = 0;
  CHECK(is_temp_file_name("last.safetensors.tmp.1234.aB3xYz", &pid));
  CHECK(pid == 1234);
  CHECK_FALSE(is_temp_file_name("last.safetensors"));
  CHECK_FALSE(is_temp_file_name("last.safetensors.tmp.12x4.aB3xYz"));
  CHECK_FALSE(is_temp_file_name("x.tmp..aB3xYz"));
  CHECK_FALSE(is_temp_file_name("x.tmp.12.short"));

  ScratchDir dir;
  const std::string dead = "ckpt.safetensors.tmp." + std::to_string(dead_pid()) + ".Q1w2E3";
  const std::string alive = "ckpt.safetensors.tmp." + std::to_string(static_cast<long>(::getpid())) + ".Q1w2E3";
  for (const std::string& name : {dead, alive, std::string("ckpt.safetensors"), std::string("notes.tmp")})
    write_file_atomic(dir.file(name), std::string("x"));
  const std::vector<std::string> removed = remove_stale_temp_files(dir.path());
  CHECK(removed == std::vector<std::string>{dead});
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors", alive, "notes.tmp"});
}

TEST_CASE("atomic_file: a kill -9 in the middle of a write leaves the old file and a recognisable temporary file") {
  ScratchDir dir;
  const std::string path = dir.file("data.bin");
  write_file_atomic(path, std::string("old content"));
  const pid_t child = ::fork();
  if (child == 0) {
    // The hook stands in for the kill at an exact moment: after half of the new bytes.
    set_write_fault_hook([](const std::string&, uint64_t written, size_t) {
      if (written > 0) ::kill(::getpid(), SIGKILL);
      return 0;
    });
    write_file_atomic(path, [](const ByteSink& sink) {
      sink("new ", 4);
      sink("content", 7);
    });
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  CHECK(slurp(path) == "old content");
  std::vector<std::string> names = dir.listing();
  REQUIRE(names.size() == 2);
  long pid = 0;
  CHECK(is_temp_file_name(names[1], &pid));
  CHECK(pid == child);
  CHECK(slurp(dir.file(names[1])) == "new ");
  CHECK(remove_stale_temp_files(dir.path()) == std::vector<std::string>{names[1]});
  CHECK(dir.listing() == std::vector<std::string>{"data.bin"});
}

TEST_CASE("atomic_file: ENOSPC injected mid-write is a one-line error and keeps the old file") {
  ScratchDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  write_file_atomic(path, std::string("the previous checkpoint"));
  set_write_fault_hook([](const std::string& target, uint64_t written, size_t) {
    return target.find("ckpt") != std::string::npos && written >= 3 ? ENOSPC : 0;
  });
  const std::string msg = io_error_message([&] {
    write_file_atomic(path, [](const ByteSink& sink) {
      for (int i = 0; i < 4; ++i) sink("abc", 3);
    });
  });
  set_write_fault_hook({});
  CHECK(contains(msg, "no space left"));
  CHECK(msg.find('\n') == std::string::npos);
  CHECK(slurp(path) == "the previous checkpoint");
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
  write_file_atomic(path, std::string("new"));  // the hook is gone
  CHECK(slurp(path) == "new");
}

TEST_CASE("atomic_file: with SIGXFSZ ignored, a file-size limit is a 'file too large' error, the old file stays") {
  ScratchDir dir;
  const std::string path = dir.file("big.bin");
  write_file_atomic(path, std::string("small"));
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    ignore_file_size_signal();
    struct rlimit limit{1000, 1000};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::string msg = "no error";
    try {
      write_file_atomic(path, std::string(5000, 'x'));
    } catch (const IoError& e) {
      msg = e.what();
    }
    (void)!::write(fds[1], msg.data(), msg.size());
    ::_exit(3);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t r; (r = ::read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(r));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));  // not killed by SIGXFSZ
  INFO(msg);
  CHECK(contains(msg, "file too large"));
  CHECK(slurp(path) == "small");
  CHECK(dir.listing() == std::vector<std::string>{"big.bin"});
}
