// File: mapped_file.hpp
//
// A read-only view of a whole input file: mmap for regular files (RAII,
// move-only), a plain in-memory copy for pipes, FIFOs and character devices
// (which cannot be mapped). An empty file gives an empty view and no mapping.
// A mapping is registered with interrupt_guard, so a SIGBUS from a file truncated
// while mapped ends the run with a message naming it (exit 2), and
// changed_since_open() tells whether the file was rewritten in place meanwhile.
//
//   tixport::mapped_file input = tixport::mapped_file::open("export.csv");
//   std::string_view bytes = input.bytes();      // valid while `input` lives
//   std::int64_t mtime = input.mtime_seconds();  // archive entry times
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

namespace tixport {

/// A whole input file as bytes: mapped read-only, or read fully when it cannot be mapped.
class mapped_file {
 public:
  /// Open and map `path`. Throws fatal_error(input_error, "input: open: <path>: <strerror>")
  /// for a missing, unreadable or directory path, "input: mmap: ..." / "input: read: ..." after that.
  static mapped_file open(const std::filesystem::path& path);

  mapped_file() noexcept = default;
  mapped_file(mapped_file&& other) noexcept;
  mapped_file& operator=(mapped_file&& other) noexcept;
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file();

  /// The whole file; an empty view for an empty file.
  [[nodiscard]] std::string_view bytes() const noexcept { return {data_, static_cast<std::size_t>(size_)}; }
  /// The file size in bytes.
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  /// The file's st_mtime in seconds since the epoch (for the archive entries).
  [[nodiscard]] std::int64_t mtime_seconds() const noexcept { return mtime_seconds_; }
  /// The open regular file (for pread), or -1 for a stream read into memory or an empty file.
  [[nodiscard]] int fd() const noexcept { return fd_; }
  /// True when the bytes are an mmap of the file (false: read into memory, or empty).
  [[nodiscard]] bool is_mapped() const noexcept { return mapped_; }
  /// True when the open regular file's size or mtime differs from what open() saw: it was
  /// truncated, extended or rewritten in place, so the bytes read may mix old and new
  /// contents. False for streams read into memory (their bytes are a private copy) and
  /// when the path was only replaced by another file (the mapping keeps the old one).
  [[nodiscard]] bool changed_since_open() const noexcept;

 private:
  void release() noexcept;

  const char* data_ = nullptr;           ///< first byte (mapping or buffer_), nullptr when empty
  std::uint64_t size_ = 0;               ///< bytes in the view
  std::int64_t mtime_seconds_ = 0;       ///< st_mtime
  bool mapped_ = false;                  ///< true: data_ is an mmap to munmap
  int fd_ = -1;                          ///< the regular file, kept open for changed_since_open()
  int guard_slot_ = -1;                  ///< interrupt_guard handle of the mapping (SIGBUS report)
  std::int64_t open_size_ = 0;           ///< st_size at open
  std::int64_t open_mtime_ns_ = 0;       ///< st_mtim at open, in nanoseconds
  std::unique_ptr<char[]> buffer_;       ///< owned bytes of a file that could not be mapped
};

}  // namespace tixport
