// Writing a file so that readers only ever see the old complete file or the new complete file:
// the bytes go to a temporary file in the same folder (same filesystem, so rename is atomic),
// which is flushed, fsync'ed and renamed over the target; the folder is fsync'ed too so the
// rename survives a power cut. On any failure the temporary file is removed, the old file is
// left untouched and IoError is thrown.
//
// Temporary files are named TARGET.tmp.PID.XXXXXX (PID: the writing process), so one left behind
// by a process that was killed (kill -9, a power cut) is recognisable and
// remove_stale_temp_files() can delete it once that process is gone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dd {

// Appends n bytes to the file being written (throws IoError when the write fails).
using ByteSink = std::function<void(const void* data, size_t n)>;

// Calls produce(sink) once; everything it passes to sink becomes the new content of path.
// If produce throws, the exception propagates and path is unchanged.
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce);
void write_file_atomic(const std::string& path, const void* data, size_t n);
void write_file_atomic(const std::string& path, const std::string& bytes);
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

// The whole content of a file; throws IoError naming the file when it cannot be opened or read.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Deletes the temporary files (NAME.tmp.PID.XXXXXX) in `folder` whose writing process PID is no
// longer running; returns their names. Files of live processes (and every other file) stay.
std::vector<std::string> remove_stale_temp_files(const std::string& folder);

// True when `name` (a file name, no folder) has the temporary-file pattern; *pid gets its PID.
bool is_temp_file_name(const std::string& name, long* pid = nullptr);

// A process killed by SIGXFSZ when a write crosses the file-size limit (ulimit -f) loses its run
// without a word; with the signal ignored the write fails with EFBIG, which write_file_atomic
// reports as "file too large". Programs call this once at start.
void ignore_file_size_signal();

// Test hooks into every write_file_atomic of this process, for fault tests. The hook sees the
// target path and the bytes written so far to it plus the ones about to be; returning an errno
// value (e.g. ENOSPC) makes that write fail as if the system had refused it, 0 lets it through.
// Programs also read the environment once, for tests that run them as child processes:
//   DD_TEST_ENOSPC_AFTER_BYTES=N   writes fail with ENOSPC once N bytes were written in total
//   DD_TEST_KILL_AFTER_BYTES=N     the process SIGKILLs itself once N bytes were written in total
//                                  (a kill -9 at a known moment, possibly inside a file write)
using WriteFaultHook = std::function<int(const std::string& target, uint64_t written, size_t n)>;
void set_write_fault_hook(WriteFaultHook hook);  // an empty function removes it

}  // namespace dd
