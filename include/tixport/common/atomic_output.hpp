// File: atomic_output.hpp
//
// Every file a command writes goes through here (the "nothing lost" rule of
// SPEC 2.6 and 4.1): the bytes go to a temporary file beside the target,
// registered with interrupt_guard, and only commit() renames it into place.
// An output_plan checks all of a command's outputs before the first byte is
// written (no two the same file, none the same file as an input, every
// directory there), and commits them together: a failure anywhere before the
// commit leaves every old file as it was.
//
//   output_plan plan;
//   plan.add_input(opts.input, "--input");
//   plan.add_output(opts.output, "--output");
//   plan.add_output(opts.report, "--report");
//   plan.check();                                   // usage error (exit 2) on a clash
//   atomic_output_file ledger(path, "ledger");      // temp file, registered
//   ledger.write(bytes);
//   ledger.complete();                              // fsync + close; still the temp file
//   ledger.commit();                                // rename onto path, fsync the directory
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tixport {

/// One output written atomically: temp file beside the target, renamed only by commit().
/// A target that is a symlink is written through: the temp file goes beside the file the link
/// (chain) points to and is renamed onto it, so the link stays and its file is replaced whole.
/// An uncommitted file's temp is removed by the destructor (and by a second SIGINT/SIGTERM).
/// Errors throw fatal_error(output_error, "<what>: <step>: <target>: <reason>").
class atomic_output_file {
 public:
  /// Create `.<name>.tmp.<pid>.<random>` beside `target`, or beside the file a symlink
  /// `target` points to (O_EXCL, mode 0644).
  atomic_output_file(std::filesystem::path target, std::string what);
  ~atomic_output_file();
  atomic_output_file(const atomic_output_file&) = delete;
  atomic_output_file& operator=(const atomic_output_file&) = delete;

  /// Append bytes to the temp file.
  void write(std::string_view bytes);
  /// Flush to disk (fsync) and close; the temp file is then complete. Idempotent.
  void complete();
  /// complete() if needed, then rename onto the target and fsync the directory. Throws
  /// fatal_error(interrupted) instead when an interrupt was requested first and
  /// `check_interrupt` (false inside a commit_guard, where the renames must all happen).
  void commit(bool check_interrupt = true);
  /// Remove the temp file now (an uncommitted output is given up). Idempotent.
  void abandon() noexcept;

  /// The descriptor of the open temp file (-1 after complete()), for writers that stream.
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] const std::filesystem::path& target() const noexcept { return target_; }
  [[nodiscard]] const std::filesystem::path& temp_path() const noexcept { return temp_; }
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return bytes_; }
  [[nodiscard]] bool committed() const noexcept { return committed_; }
  /// Throw fatal_error(output_error, "<what>: <step>: <target>: <reason>").
  [[noreturn]] void fail(std::string_view step, const std::string& reason) const;

 private:
  std::filesystem::path target_;       ///< as given: named in messages
  std::filesystem::path destination_;  ///< target_ with its symlinks followed: renamed onto
  std::string what_;
  std::filesystem::path temp_;
  int fd_ = -1;
  int guard_handle_ = -1;
  std::uint64_t bytes_ = 0;
  bool committed_ = false;
};

/// True when `path` names something that must be written in place rather than replaced by
/// rename: an existing non-regular file (a character device such as /dev/stdout or /dev/null,
/// a FIFO, a socket) or a symlink (its link must not be replaced). "-" is not special here.
bool is_write_through_target(const std::filesystem::path& path);

/// All the files one command reads and writes, checked together before anything is written.
class output_plan {
 public:
  /// An input (`option` names it in messages, e.g. "--input").
  void add_input(const std::filesystem::path& path, std::string option);
  /// An output. `may_replace_input` names an input option the output may be the same file as
  /// (`run --since L --ledger L`). `write_through`: an existing device, FIFO or symlink is written
  /// in place (the report); otherwise only a regular file or a new path is accepted, since the
  /// output is renamed into place. Empty paths are ignored.
  void add_output(const std::filesystem::path& path, std::string option, std::string may_replace_input = {},
                  bool write_through = false);
  /// Throw fatal_error(input_error) naming both paths when two outputs are one file or an output
  /// is an input (same device and inode: hard links, symlinks and other spellings count), and
  /// fatal_error(output_error) when an output's directory is missing or not writable.
  /// Write-through targets (devices, FIFOs: see is_write_through_target) are exempt.
  void check() const;

 private:
  struct entry {
    std::filesystem::path path;
    std::string option;
    std::string may_replace;
    bool write_through = false;
  };
  std::vector<entry> inputs_;
  std::vector<entry> outputs_;
};

/// strerror-style text of an errno value.
std::string errno_text(int err);

}  // namespace tixport
