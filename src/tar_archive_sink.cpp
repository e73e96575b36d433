// File: tar_archive_sink.cpp
//
// libarchive writes the tar stream (restricted pax, deterministic headers) into
// our own write callback. For .tar.gz libarchive's gzip filter compresses before
// the callback (single-threaded, "!timestamp" for reproducible headers); for
// .tar.zst the callback compresses itself with ZSTD_compressStream2 in zstd's
// multi-threaded mode, so every core works and the bytes do not depend on the
// worker count. The callback owns all file I/O: it buffers, writes the
// temporary file and records errno, so errors read "output: write: <path>: <reason>".
//
//   tar_archive_sink sink(path, options);
//   sink.add_entry(name, data);
//   sink.finish();
#include "tixport/tar_archive_sink.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "tixport/errors.hpp"
#include "tixport/interrupt_guard.hpp"

namespace tixport {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kOutputBufferBytes = std::size_t{1} << 20;  // one write(2) per MiB
constexpr mode_t kFileMode = 0644;                                // before umask
constexpr int kTempNameAttempts = 16;  // O_EXCL collisions on pid + 32 random bits
constexpr int kMinGzipLevel = 0;
constexpr int kMaxGzipLevel = 9;

struct archive_deleter {
  void operator()(archive* a) const noexcept { archive_write_free(a); }
};
struct entry_deleter {
  void operator()(archive_entry* e) const noexcept { archive_entry_free(e); }
};
struct cctx_deleter {
  void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); }
};

bool ends_with_icase(std::string_view text, std::string_view suffix) noexcept {
  if (text.size() < suffix.size()) return false;
  const std::string_view tail = text.substr(text.size() - suffix.size());
  return std::equal(tail.begin(), tail.end(), suffix.begin(), [](char a, char b) {
    const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(a) == lower(b);
  });
}

std::string errno_text(int err) { return std::strerror(err); }

unsigned resolve_workers(unsigned requested) noexcept {
  unsigned workers = requested != 0 ? requested : std::thread::hardware_concurrency();
  // zstd's multi-threaded mode (>= 1 worker) gives the same bytes for any worker
  // count; 0 workers is a different (single-threaded) encoder, so never use it.
  const ZSTD_bounds bounds = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers);
  const unsigned max_workers = ZSTD_isError(bounds.error) ? 1U : static_cast<unsigned>(std::max(bounds.upperBound, 1));
  return std::clamp(workers, 1U, max_workers);
}

}  // namespace

std::optional<archive_format> archive_format_from_name(std::string_view path) noexcept {
  const std::size_t slash = path.find_last_of('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  // Longest suffix first: "x.tar.gz" must not be read as "x.tar" + ".gz".
  struct suffix_format {
    std::string_view suffix;
    archive_format format;
  };
  constexpr suffix_format kSuffixes[] = {
      {".tar.zst", archive_format::tar_zst},
      {".tar.gz", archive_format::tar_gz},
      {".tgz", archive_format::tar_gz},
      {".tar", archive_format::tar},
  };
  for (const auto& [suffix, format] : kSuffixes) {
    if (name.size() > suffix.size() && ends_with_icase(name, suffix)) return format;
  }
  return std::nullopt;
}

struct tar_archive_sink::impl {
  enum class state { open, failed, finished };

  fs::path output_;
  fs::path temp_;
  archive_options options_;
  int fd_ = -1;
  state state_ = state::open;
  exit_code failure_code_ = exit_code::output_error;  ///< code of the error that failed the sink
  std::string failure_;  ///< the message thrown when the sink failed, rethrown by later calls

  std::unique_ptr<archive, archive_deleter> archive_;
  std::unique_ptr<archive_entry, entry_deleter> entry_;
  std::unique_ptr<ZSTD_CCtx, cctx_deleter> zstd_;  ///< only for tar_zst

  std::vector<char> out_buf_;     ///< bytes on their way to fd_
  std::size_t out_used_ = 0;      ///< filled prefix of out_buf_
  std::uint64_t archive_bytes_ = 0;       ///< written to fd_
  std::uint64_t uncompressed_final_ = 0;  ///< tar stream size, cached once archive_ is freed
  std::string io_error_;  ///< reason recorded by the write callback (it must not throw)
  bool discard_ = false;  ///< abandoning: the callback drops what libarchive's close still writes

  impl(fs::path output, archive_options options) : output_(std::move(output)), options_(options) {}

  [[noreturn]] void fail(const std::string& reason) {
    state_ = state::failed;
    failure_ = "output: write: " + output_.string() + ": " + reason;
    throw fatal_error(exit_code::output_error, failure_);
  }

  /// The reason of the last libarchive failure: ours from the callback if it failed there.
  std::string archive_reason() const {
    if (!io_error_.empty()) return io_error_;
    const char* text = archive_ ? archive_error_string(archive_.get()) : nullptr;
    return text != nullptr ? text : "libarchive error";
  }

  void check_usable() const {
    if (state_ == state::failed) throw fatal_error(failure_code_, failure_);
    if (state_ == state::finished) throw std::logic_error("tar_archive_sink: used after finish()");
  }

  void check_interrupt() {
    if (interrupt_requested()) {
      state_ = state::failed;
      failure_code_ = exit_code::interrupted;
      failure_ = "interrupted";
      throw fatal_error(exit_code::interrupted, failure_);
    }
  }

  void create_temp_file() {
    const fs::path dir = output_.parent_path();
    const std::string dir_text = dir.empty() ? std::string(".") : dir.string();
    std::random_device entropy;
    std::uniform_int_distribution<std::uint32_t> pick;
    for (int attempt = 0; attempt < kTempNameAttempts; ++attempt) {
      char suffix[32];
      std::snprintf(suffix, sizeof suffix, ".tmp.%ld.%08x", static_cast<long>(::getpid()), pick(entropy));
      // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "." + std::string.
      std::string temp_name(1, '.');
      temp_name += output_.filename().string();
      temp_name += suffix;
      temp_ = dir / temp_name;
      // Registered before it exists: a second signal right after open() must find it.
      // Absolute, so the handler's unlink does not depend on the working directory.
      std::error_code cwd_error;
      const fs::path absolute_temp = fs::absolute(temp_, cwd_error);
      register_temp_file(cwd_error ? temp_ : absolute_temp);
      fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
      if (fd_ >= 0) return;
      const int err = errno;
      unregister_temp_file();
      if (err != EEXIST) {
        throw fatal_error(exit_code::output_error, "output: create: " + dir_text + ": " + errno_text(err));
      }
    }
    throw fatal_error(exit_code::output_error,
                      "output: create: " + dir_text + ": no unused temporary file name");
  }

  /// Write all of out_buf_ to the file; false (io_error_ set) on failure.
  bool flush_buffer() noexcept {
    std::size_t done = 0;
    while (done < out_used_) {
      const ssize_t n = ::write(fd_, out_buf_.data() + done, out_used_ - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        io_error_ = errno_text(errno);
        return false;
      }
      done += static_cast<std::size_t>(n);
      archive_bytes_ += static_cast<std::uint64_t>(n);
    }
    out_used_ = 0;
    return true;
  }

  /// Append already-final bytes (tar or gzip output) to the file.
  bool put(const char* data, std::size_t size) noexcept {
    while (size > 0) {
      if (out_used_ == out_buf_.size() && !flush_buffer()) return false;
      const std::size_t n = std::min(size, out_buf_.size() - out_used_);
      std::memcpy(out_buf_.data() + out_used_, data, n);
      out_used_ += n;
      data += n;
      size -= n;
    }
    return true;
  }

  /// Feed tar bytes to zstd; with ZSTD_e_end, also finish the frame.
  bool compress(const char* data, std::size_t size, ZSTD_EndDirective mode) noexcept {
    ZSTD_inBuffer in{data, size, 0};
    for (;;) {
      if (out_used_ == out_buf_.size() && !flush_buffer()) return false;
      ZSTD_outBuffer out{out_buf_.data(), out_buf_.size(), out_used_};
      const std::size_t remaining = ZSTD_compressStream2(zstd_.get(), &out, &in, mode);
      out_used_ = out.pos;
      if (ZSTD_isError(remaining)) {
        io_error_ = std::string("zstd: ") + ZSTD_getErrorName(remaining);
        return false;
      }
      // e_continue is done once the input is taken; e_end once zstd has nothing left to flush.
      if (mode == ZSTD_e_continue ? in.pos == in.size : remaining == 0) return true;
    }
  }

  static la_ssize_t on_write(archive* a, void* client, const void* buffer, std::size_t length) noexcept {
    auto* self = static_cast<impl*>(client);
    if (self->discard_) return static_cast<la_ssize_t>(length);
    const char* bytes = static_cast<const char*>(buffer);
    const bool ok = self->zstd_ ? self->compress(bytes, length, ZSTD_e_continue) : self->put(bytes, length);
    if (!ok) {
      archive_set_error(a, EIO, "%s", self->io_error_.c_str());
      return -1;
    }
    return static_cast<la_ssize_t>(length);
  }

  void open_archive() {
    archive_.reset(archive_write_new());
    entry_.reset(archive_entry_new());
    if (!archive_ || !entry_) throw std::bad_alloc();
    archive* a = archive_.get();
    // Restricted pax is plain ustar unless a name or size does not fit; it never
    // adds atime/ctime records, and libarchive's "PaxHeader/<name>" carries no pid.
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK) fail(archive_reason());
    if (options_.format == archive_format::tar_gz) {
      const std::string level = std::to_string(options_.gzip_level);
      if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
          archive_write_set_filter_option(a, "gzip", "compression-level", level.c_str()) != ARCHIVE_OK ||
          // "!timestamp": no mtime in the gzip header, else the bytes change every run.
          archive_write_set_filter_option(a, "gzip", "timestamp", nullptr) != ARCHIVE_OK) {
        fail(archive_reason());
      }
    }
    if (options_.format == archive_format::tar_zst) {
      zstd_.reset(ZSTD_createCCtx());
      if (!zstd_) throw std::bad_alloc();
      ZSTD_CCtx* c = zstd_.get();
      const int workers = static_cast<int>(resolve_workers(options_.threads));
      for (const auto& [param, value] : {std::pair{ZSTD_c_compressionLevel, options_.zstd_level},
                                         std::pair{ZSTD_c_checksumFlag, 1},  // libarchive's zstd writes none
                                         std::pair{ZSTD_c_nbWorkers, workers}}) {
        const std::size_t rc = ZSTD_CCtx_setParameter(c, param, value);
        if (ZSTD_isError(rc)) fail(std::string("zstd: ") + ZSTD_getErrorName(rc));
      }
    }
    // No zero padding after the last record: a padded .gz/.zst has trailing garbage,
    // and two 512-byte end blocks are all a tar reader needs.
    if (archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK) fail(archive_reason());
    if (archive_write_open2(a, this, nullptr, &impl::on_write, nullptr, nullptr) != ARCHIVE_OK) {
      fail(archive_reason());
    }
  }

  void add_entry(std::string_view name, std::string_view data) {
    check_usable();
    check_interrupt();
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos ||
        name.find('\0') != std::string_view::npos) {
      throw std::invalid_argument("tar_archive_sink: entry name is not a plain file name: " + std::string(name));
    }
    archive* a = archive_.get();
    archive_entry* e = entry_.get();
    archive_entry_clear(e);  // also clears atime/ctime/birthtime, which we never set
    const std::string path(name);
    archive_entry_copy_pathname(e, path.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, kFileMode);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, options_.mtime, 0);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    if (archive_write_header(a, e) != ARCHIVE_OK) fail(archive_reason());
    std::size_t done = 0;
    while (done < data.size()) {
      const la_ssize_t n = archive_write_data(a, data.data() + done, data.size() - done);
      if (n <= 0) fail(archive_reason());
      done += static_cast<std::size_t>(n);
    }
    // The entry's 512-byte padding is written by the next header or by close.
  }

  std::uint64_t finish() {
    check_usable();
    check_interrupt();
    archive* a = archive_.get();
    if (archive_write_close(a) != ARCHIVE_OK) fail(archive_reason());
    uncompressed_final_ = static_cast<std::uint64_t>(archive_filter_bytes(a, 0));
    archive_.reset();
    if (zstd_ && !compress(nullptr, 0, ZSTD_e_end)) fail(io_error_);
    if (!flush_buffer()) fail(io_error_);
    if (::fsync(fd_) != 0) fail("fsync: " + errno_text(errno));
    const int fd = std::exchange(fd_, -1);
    // On Linux the descriptor is released even when close() reports EINTR.
    if (::close(fd) != 0 && errno != EINTR) fail("close: " + errno_text(errno));
    // Last chance to keep the old output: after the rename the run is complete.
    check_interrupt();
    if (::rename(temp_.c_str(), output_.c_str()) != 0) fail("rename: " + errno_text(errno));
    state_ = state::finished;
    unregister_temp_file();
    sync_directory();
    return archive_bytes_;
  }

  /// Make the rename durable. Best effort: the output is already complete and in
  /// place, and reporting an error now would claim a failure that left it replaced.
  void sync_directory() const noexcept {
    const fs::path dir = output_.parent_path();
    const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return;
    static_cast<void>(::fsync(dir_fd));
    ::close(dir_fd);
  }

  void abandon() noexcept {
    if (archive_) {
      // Let archive_write_free() close normally but drop its output: archive_write_fail()
      // would skip the filters' close, and libarchive's gzip filter frees its deflate
      // state only there (a leak). After a write error libarchive's state is already
      // fatal and it skips the close anyway; that leak is libarchive's and happens once.
      discard_ = true;
      archive_.reset();
    }
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    // Unlink before unregistering: a second signal in between must still remove it.
    if (!temp_.empty()) ::unlink(temp_.c_str());
    unregister_temp_file();
  }
};

tar_archive_sink::tar_archive_sink(std::filesystem::path output, archive_options options)
    : impl_(std::make_unique<impl>(std::move(output), options)) {
  const ZSTD_bounds zstd_levels = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel);
  if (options.format == archive_format::tar_zst &&
      (options.zstd_level < zstd_levels.lowerBound || options.zstd_level > zstd_levels.upperBound)) {
    throw fatal_error(exit_code::input_error, "output: options: zstd level " + std::to_string(options.zstd_level) +
                                                  " outside " + std::to_string(zstd_levels.lowerBound) + ".." +
                                                  std::to_string(zstd_levels.upperBound));
  }
  if (options.format == archive_format::tar_gz &&
      (options.gzip_level < kMinGzipLevel || options.gzip_level > kMaxGzipLevel)) {
    throw fatal_error(exit_code::input_error,
                      "output: options: gzip level " + std::to_string(options.gzip_level) + " outside 0..9");
  }
  impl_->out_buf_.resize(kOutputBufferBytes);
  impl_->create_temp_file();
  try {
    impl_->open_archive();
  } catch (...) {
    impl_->abandon();
    throw;
  }
}

tar_archive_sink::~tar_archive_sink() {
  if (impl_->state_ != impl::state::finished) impl_->abandon();
}

void tar_archive_sink::add_entry(std::string_view name, std::string_view data) { impl_->add_entry(name, data); }

std::uint64_t tar_archive_sink::finish() { return impl_->finish(); }

std::uint64_t tar_archive_sink::uncompressed_bytes() const noexcept {
  if (impl_->archive_) return static_cast<std::uint64_t>(archive_filter_bytes(impl_->archive_.get(), 0));
  return impl_->uncompressed_final_;
}

std::uint64_t tar_archive_sink::archive_bytes() const noexcept { return impl_->archive_bytes_; }

const std::filesystem::path& tar_archive_sink::temp_path() const noexcept { return impl_->temp_; }

const std::filesystem::path& tar_archive_sink::output_path() const noexcept { return impl_->output_; }

}  // namespace tixport
