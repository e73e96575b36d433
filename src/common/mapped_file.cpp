// File: mapped_file.cpp
//
// mapped_file: mmap a regular file read-only (MADV_SEQUENTIAL, the reader
// streams through it twice), or read a pipe / FIFO / character device fully
// into memory, since those cannot be mapped. Errors are input errors (exit 2).
//
//   auto f = tixport::mapped_file::open("/dev/stdin");   // read, not mapped
#include "tixport/common/mapped_file.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace tixport {
namespace {

constexpr std::size_t kReadStep = 1u << 20;  // growth step when reading an unmappable stream

constexpr std::int64_t kNanosPerSecond = 1'000'000'000;

std::int64_t mtime_ns(const struct stat& st) noexcept {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * kNanosPerSecond + st.st_mtim.tv_nsec;
}

[[noreturn]] void fail(std::string_view step, const std::filesystem::path& path, int err) {
  throw fatal_error(exit_code::input_error,
                    "input: " + std::string(step) + ": " + path.string() + ": " + std::strerror(err));
}

// Closes the descriptor on every path out of open(); the mapping outlives it.
struct fd_guard {
  int fd;
  ~fd_guard() {
    // A close error on a read-only descriptor loses no data; nothing to report.
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

mapped_file mapped_file::open(const std::filesystem::path& path) {
  fd_guard guard{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (guard.fd < 0) fail("open", path, errno);
  struct stat st {};
  if (::fstat(guard.fd, &st) != 0) fail("open", path, errno);
  if (S_ISDIR(st.st_mode)) fail("open", path, EISDIR);

  mapped_file file;
  file.mtime_seconds_ = static_cast<std::int64_t>(st.st_mtime);
  if (S_ISREG(st.st_mode)) {
    file.size_ = static_cast<std::uint64_t>(st.st_size);
    file.open_size_ = static_cast<std::int64_t>(st.st_size);
    file.open_mtime_ns_ = mtime_ns(st);
    // Kept open so changed_since_open() asks about this very file, even if the path is replaced.
    file.fd_ = std::exchange(guard.fd, -1);
    if (file.size_ == 0) return file;  // mmap of length 0 is EINVAL; an empty view needs none
    void* addr = ::mmap(nullptr, static_cast<std::size_t>(file.size_), PROT_READ, MAP_PRIVATE, file.fd_, 0);
    if (addr == MAP_FAILED) fail("mmap", path, errno);
    // Advice only: a failure costs read-ahead, never correctness.
    (void)::madvise(addr, static_cast<std::size_t>(file.size_), MADV_SEQUENTIAL);
    file.data_ = static_cast<const char*>(addr);
    file.mapped_ = true;
    // A SIGBUS in here means the file shrank under the mapping; the guard reports it by name.
    file.guard_slot_ = register_mapped_input(addr, static_cast<std::size_t>(file.size_), path);
    return file;
  }

  // FIFO, pipe, character device, socket: read until EOF into a growing buffer.
  std::size_t capacity = 0;
  std::size_t used = 0;
  std::unique_ptr<char[]> buffer;
  for (;;) {
    if (used == capacity) {
      const std::size_t grown = capacity == 0 ? kReadStep : capacity * 2;
      auto bigger = std::make_unique_for_overwrite<char[]>(grown);
      if (used != 0) std::memcpy(bigger.get(), buffer.get(), used);
      buffer = std::move(bigger);
      capacity = grown;
    }
    const ssize_t got = ::read(guard.fd, buffer.get() + used, capacity - used);
    if (got < 0) {
      if (errno == EINTR) continue;
      fail("read", path, errno);
    }
    if (got == 0) break;
    used += static_cast<std::size_t>(got);
  }
  file.size_ = used;
  if (used != 0) {
    file.buffer_ = std::move(buffer);
    file.data_ = file.buffer_.get();
  }
  return file;
}

mapped_file::mapped_file(mapped_file&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mtime_seconds_(std::exchange(other.mtime_seconds_, 0)),
      mapped_(std::exchange(other.mapped_, false)),
      fd_(std::exchange(other.fd_, -1)),
      guard_slot_(std::exchange(other.guard_slot_, -1)),
      open_size_(std::exchange(other.open_size_, 0)),
      open_mtime_ns_(std::exchange(other.open_mtime_ns_, 0)),
      buffer_(std::move(other.buffer_)) {}

mapped_file& mapped_file::operator=(mapped_file&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mtime_seconds_ = std::exchange(other.mtime_seconds_, 0);
    mapped_ = std::exchange(other.mapped_, false);
    fd_ = std::exchange(other.fd_, -1);
    guard_slot_ = std::exchange(other.guard_slot_, -1);
    open_size_ = std::exchange(other.open_size_, 0);
    open_mtime_ns_ = std::exchange(other.open_mtime_ns_, 0);
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

mapped_file::~mapped_file() { release(); }

bool mapped_file::changed_since_open() const noexcept {
  if (fd_ < 0) return false;
  struct stat st {};
  // A file we can no longer even fstat cannot be vouched for.
  if (::fstat(fd_, &st) != 0) return true;
  return static_cast<std::int64_t>(st.st_size) != open_size_ || mtime_ns(st) != open_mtime_ns_;
}

void mapped_file::release() noexcept {
  // Unregister before unmapping: the range may be reused by the next mapping.
  unregister_mapped_input(std::exchange(guard_slot_, -1));
  if (mapped_ && data_ != nullptr) {
    // munmap only fails for an invalid range, which would be our bug; nothing to recover.
    (void)::munmap(const_cast<char*>(data_), static_cast<std::size_t>(size_));
  }
  // A close error on a read-only descriptor loses no data; nothing to report.
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  open_size_ = 0;
  open_mtime_ns_ = 0;
  buffer_.reset();
}

}  // namespace tixport
