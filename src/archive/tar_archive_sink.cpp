// File: tar_archive_sink.cpp
//
// libarchive writes the tar stream (restricted pax, deterministic headers) into
// our own write callback, which owns compression and all file I/O:
//  - .tar.zst: ZSTD_compressStream2 in zstd's multi-threaded mode, so every core
//    works and the bytes do not depend on the worker count.
//  - .tar.gz: parallel_gzip below, pigz's scheme on zlib: the tar stream is cut
//    into fixed 128 KiB blocks, each compressed on its own (raw deflate, primed
//    with the previous 32 KiB, ended by a sync flush, the last by Z_FINISH), and
//    the pieces are concatenated in order behind our own gzip header, with the
//    CRC-32 combined per block. One gzip member, readable by any gzip reader;
//    the block boundaries never depend on the thread count, so neither do the
//    bytes. (libarchive's gzip filter was single-threaded: ~43 MB/s.)
// The callback buffers, writes the temporary file and records errno, so errors
// read "output: write: <path>: <reason>".
//
//   tar_archive_sink sink(path, options);
//   sink.add_entry(name, data);
//   sink.finish();
#include "tixport/archive/tar_archive_sink.hpp"

#include "tixport/common/atomic_output.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
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
#include <zlib.h>
#include <zstd.h>

#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"
#include "tixport/common/parallelism.hpp"

namespace tixport {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kOutputBufferBytes = std::size_t{1} << 20;  // one write(2) per MiB
constexpr mode_t kFileMode = 0644;                                // before umask
constexpr int kMinGzipLevel = 1;
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


unsigned resolve_workers(unsigned requested) noexcept {
  const unsigned workers = resolve_threads(requested);
  // zstd's multi-threaded mode (>= 1 worker) gives the same bytes for any worker
  // count; 0 workers is a different (single-threaded) encoder, so never use it.
  const ZSTD_bounds bounds = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers);
  const unsigned max_workers = ZSTD_isError(bounds.error) ? 1U : static_cast<unsigned>(std::max(bounds.upperBound, 1));
  return std::clamp(workers, 1U, max_workers);
}

// ---- parallel gzip ---------------------------------------------------------

// Fixed, never derived from the thread count: the block boundaries decide the bytes.
// 128 KiB as in pigz: big enough that the sync-flush marker and the reset Huffman
// statistics cost ~0.1% of ratio, small enough for ~3 ms of work per block.
constexpr std::size_t kGzipBlockBytes = std::size_t{128} << 10;
constexpr std::size_t kGzipDictionaryBytes = std::size_t{32} << 10;  // deflate's whole window
constexpr int kRawDeflateWindowBits = -15;  // negative: raw deflate, we write header and trailer
constexpr int kDeflateMemLevel = 8;         // zlib's default (as gzip(1) and libarchive)
constexpr std::size_t kFlushSlack = 64;     // deflateBound() is for Z_FINISH; a sync flush adds <= ~10 bytes
constexpr unsigned kMaxGzipWorkers = 256;   // --threads beyond this only costs thread stacks
// RFC 1952 header: ID1 ID2 CM=8 (deflate), FLG=0 (no name, comment, extra, header CRC).
constexpr unsigned char kGzipMagic0 = 0x1f;
constexpr unsigned char kGzipMagic1 = 0x8b;
constexpr unsigned char kGzipMethodDeflate = 8;
// OS byte: always 3 (Unix), what gzip(1), pigz and zlib write on Linux, fixed here so
// the bytes do not depend on the host that built tixport.
constexpr unsigned char kGzipOsUnix = 3;
constexpr std::size_t kGzipHeaderBytes = 10;
constexpr std::size_t kGzipTrailerBytes = 8;

/// RFC 1952 XFL as zlib and pigz set it: 2 = maximum compression, 4 = fastest.
constexpr unsigned char gzip_extra_flags(int level) noexcept {
  return level >= 9 ? 2 : (level == 1 ? 4 : 0);
}

/// One block of the tar stream on its way through the gzip workers. Filled by the
/// writer thread, compressed by one worker, written out by the writer thread; the
/// hand-offs go through parallel_gzip::mutex_ (see there).
struct gzip_block {
  std::vector<unsigned char> input;       ///< tar bytes: kGzipBlockBytes, the last block fewer
  std::vector<unsigned char> dictionary;  ///< last 32 KiB of the previous block's input; empty for block 0
  bool last = false;                      ///< end with Z_FINISH (final deflate block), else Z_SYNC_FLUSH
  std::vector<unsigned char> output;      ///< raw deflate bytes of `input`
  uLong crc = 0;                          ///< CRC-32 of `input`
  std::string error;                      ///< non-empty: compression failed, this says why
  bool done = false;                      ///< output/crc/error are final (guarded by the mutex)
};

/// A raw-deflate z_stream reused for block after block (deflateReset keeps its memory).
class block_deflater {
 public:
  explicit block_deflater(int level) noexcept {
    init_rc_ = deflateInit2(&stream_, level, Z_DEFLATED, kRawDeflateWindowBits, kDeflateMemLevel, Z_DEFAULT_STRATEGY);
  }
  ~block_deflater() {
    if (init_rc_ == Z_OK) deflateEnd(&stream_);
  }
  block_deflater(const block_deflater&) = delete;
  block_deflater& operator=(const block_deflater&) = delete;

  /// Compress `block.input` into `block.output` and set its CRC; on failure set `block.error`.
  /// The result is a pure function of (level, dictionary, input, last): this is what makes
  /// the archive independent of which thread compressed which block.
  void compress(gzip_block& block) noexcept {
    block.error.clear();
    block.crc = crc32_z(crc32_z(0, nullptr, 0), block.input.data(), block.input.size());
    if (init_rc_ != Z_OK) {
      block.error = std::string("deflateInit2: ") + zError(init_rc_);
      return;
    }
    if (deflateReset(&stream_) != Z_OK) {
      block.error = "deflateReset failed";
      return;
    }
    if (!block.dictionary.empty() &&
        deflateSetDictionary(&stream_, block.dictionary.data(), static_cast<uInt>(block.dictionary.size())) != Z_OK) {
      block.error = "deflateSetDictionary failed";
      return;
    }
    try {
      // The size depends only on the input length, so even a regrow below happens
      // identically for every thread count.
      block.output.resize(deflateBound(&stream_, static_cast<uLong>(block.input.size())) + kFlushSlack);
      stream_.next_in = block.input.data();
      stream_.avail_in = static_cast<uInt>(block.input.size());
      const int flush = block.last ? Z_FINISH : Z_SYNC_FLUSH;
      std::size_t produced = 0;
      for (;;) {
        stream_.next_out = block.output.data() + produced;
        stream_.avail_out = static_cast<uInt>(block.output.size() - produced);
        const int rc = deflate(&stream_, flush);
        produced = block.output.size() - stream_.avail_out;
        if (rc == Z_STREAM_ERROR) {
          block.error = "deflate: stream error";
          return;
        }
        // Done: Z_FINISH says so; a sync flush is complete once the input is taken
        // and deflate left output space unused (zlib's documented condition).
        if (block.last ? rc == Z_STREAM_END : (stream_.avail_in == 0 && stream_.avail_out != 0)) break;
        block.output.resize(block.output.size() * 2);
      }
      block.output.resize(produced);
    } catch (const std::bad_alloc&) {
      block.error = "deflate: out of memory";
    }
  }

 private:
  z_stream stream_{};
  int init_rc_ = Z_STREAM_ERROR;
};

/// pigz-style gzip over an ordered pool of worker threads.
///
/// The writer thread (the sink's libarchive callback) appends tar bytes to the block
/// being filled; a full block is handed to the workers, and finished blocks are
/// written through `put` strictly in block order. At most `slots_.size()` =
/// 2 x workers + 2 blocks exist (each ~128 KiB in, 32 KiB dictionary, ~128 KiB out),
/// so memory is bounded; the writer waits for the oldest block when all are busy.
/// With one worker requested there are no threads: blocks compress on the writer thread.
///
/// Plain threads and one mutex rather than oneTBB, like sample_generator's ordered
/// ring: the sink is called from inside the run's TBB arena, and a TBB worker that
/// blocks on compression tasks queued in that same arena could wait for work nobody
/// runs; and Debian's libtbb is not built with ThreadSanitizer, whereas every hand-off
/// here is visible to it. zstd's path likewise runs its own worker threads.
class parallel_gzip {
 public:
  /// Receives finished gzip bytes in order; returns false after recording its own error.
  using put_fn = std::function<bool(const char*, std::size_t)>;

  /// Start `workers` threads (none when `workers` is 1). Throws std::system_error when
  /// a thread cannot be started.
  parallel_gzip(int level, unsigned workers, put_fn put)
      : level_(level), put_(std::move(put)), slots_(workers > 1 ? 2 * std::size_t{workers} + 2 : 2) {
    if (workers > 1) {
      threads_.reserve(workers);
      try {
        for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
      } catch (...) {
        stop();
        throw;
      }
    } else {
      inline_deflater_ = std::make_unique<block_deflater>(level_);
    }
    start_block();
  }

  ~parallel_gzip() { stop(); }
  parallel_gzip(const parallel_gzip&) = delete;
  parallel_gzip& operator=(const parallel_gzip&) = delete;

  /// Append tar bytes. False on an error: error() says why, unless `put` recorded it.
  bool write(const char* data, std::size_t size) {
    if (!header_written_ && !write_header()) return false;
    while (size > 0) {
      gzip_block& block = filling();
      // Hand over a full block only when more bytes follow: the last block, even a
      // full one, must end with Z_FINISH.
      if (block.input.size() == kGzipBlockBytes) {
        if (!submit(false)) return false;
        continue;
      }
      const std::size_t n = std::min(size, kGzipBlockBytes - block.input.size());
      block.input.insert(block.input.end(), data, data + n);
      total_in_ += n;
      data += n;
      size -= n;
    }
    return true;
  }

  /// Compress the last block, write everything still pending and the trailer.
  bool finish() {
    if (!header_written_ && !write_header()) return false;
    if (!submit(true)) return false;
    if (!write_finished(submitted_)) return false;
    unsigned char trailer[kGzipTrailerBytes];
    put_le32(trailer, static_cast<std::uint32_t>(crc_));
    put_le32(trailer + 4, static_cast<std::uint32_t>(total_in_ & 0xffffffffU));  // ISIZE: mod 2^32
    return put_(reinterpret_cast<const char*>(trailer), sizeof trailer);
  }

  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  static void put_le32(unsigned char* out, std::uint32_t value) noexcept {
    for (int i = 0; i < 4; ++i) out[i] = static_cast<unsigned char>(value >> (8 * i));
  }

  bool write_header() {
    header_written_ = true;
    const unsigned char header[kGzipHeaderBytes] = {
        kGzipMagic0, kGzipMagic1, kGzipMethodDeflate, 0,  // no FNAME/FCOMMENT/FEXTRA/FHCRC
        0, 0, 0, 0,                                       // MTIME 0: no time stamp, reproducible
        gzip_extra_flags(level_), kGzipOsUnix};
    return put_(reinterpret_cast<const char*>(header), sizeof header);
  }

  gzip_block& filling() noexcept { return slots_[submitted_ % slots_.size()]; }

  /// Make the slot of block `submitted_` ready to fill: empty input, the previous
  /// block's tail as dictionary. Its old contents were written out (write_finished keeps
  /// fewer than slots_.size() blocks pending), and the previous block's slot is still
  /// intact because slots_.size() >= 2; a worker may read that input concurrently, which
  /// is fine for a read.
  void start_block() {
    gzip_block& block = filling();
    block.input.clear();
    block.input.reserve(kGzipBlockBytes);
    block.done = false;
    block.last = false;
    if (submitted_ == 0) {
      block.dictionary.clear();
    } else {
      const std::vector<unsigned char>& previous = slots_[(submitted_ - 1) % slots_.size()].input;
      const std::size_t n = std::min(previous.size(), kGzipDictionaryBytes);
      block.dictionary.assign(previous.end() - static_cast<std::ptrdiff_t>(n), previous.end());
    }
  }

  /// Hand the filling block to the workers (or compress it here), write out what is
  /// finished, and start the next block unless this was the last.
  bool submit(bool last) {
    gzip_block& block = filling();
    block.last = last;
    if (threads_.empty()) {
      inline_deflater_->compress(block);
      block.done = true;
      ++submitted_;
    } else {
      {
        const std::lock_guard lock(mutex_);
        ++submitted_;
      }
      changed_.notify_all();
    }
    if (last) return true;
    // Keep one slot free for the next block: wait for the oldest while all are pending.
    if (!write_finished(submitted_ - written_ == slots_.size() ? written_ + 1 : written_)) return false;
    start_block();
    return true;
  }

  /// Write finished blocks in order: all that are done, and wait for those before `until`.
  bool write_finished(std::uint64_t until) {
    while (written_ < submitted_) {
      gzip_block& block = slots_[written_ % slots_.size()];
      if (!threads_.empty()) {
        std::unique_lock lock(mutex_);
        if (written_ < until) {
          changed_.wait(lock, [&] { return block.done; });
        } else if (!block.done) {
          break;
        }
      }
      if (!block.error.empty()) {
        error_ = "gzip: " + block.error;
        return false;
      }
      if (!put_(reinterpret_cast<const char*>(block.output.data()), block.output.size())) return false;
      crc_ = crc32_combine(crc_, block.crc, static_cast<z_off_t>(block.input.size()));
      ++written_;
    }
    return true;
  }

  void work() noexcept {
    block_deflater deflater(level_);
    for (;;) {
      gzip_block* block = nullptr;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stop_ || taken_ < submitted_; });
        if (stop_) return;
        block = &slots_[taken_++ % slots_.size()];
      }
      deflater.compress(*block);
      {
        const std::lock_guard lock(mutex_);
        block->done = true;
      }
      changed_.notify_all();
    }
  }

  /// Stop the workers after their current block and join them.
  void stop() noexcept {
    {
      const std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    threads_.clear();  // each jthread joins
  }

  int level_;
  put_fn put_;
  std::vector<gzip_block> slots_;  ///< block b lives in slots_[b % slots_.size()]
  std::unique_ptr<block_deflater> inline_deflater_;  ///< only without worker threads
  std::mutex mutex_;               ///< guards submitted_, taken_, stop_ and every block's `done`
  std::condition_variable changed_;
  std::uint64_t submitted_ = 0;  ///< blocks handed to compression (written by the writer thread only)
  std::uint64_t taken_ = 0;      ///< blocks a worker has started
  bool stop_ = false;
  std::uint64_t written_ = 0;    ///< blocks written out (writer thread only)
  uLong crc_ = crc32_z(0, nullptr, 0);  ///< CRC-32 of the blocks written so far
  std::uint64_t total_in_ = 0;   ///< uncompressed bytes taken (ISIZE is this mod 2^32)
  bool header_written_ = false;
  std::string error_;
  std::vector<std::jthread> threads_;  ///< last: joined (by stop()) before the state above dies
};

unsigned resolve_gzip_workers(unsigned requested) noexcept {
  const unsigned workers = resolve_threads(requested);
  return std::clamp(workers, 1U, kMaxGzipWorkers);
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
  enum class state { open, failed, completed, finished };

  fs::path output_;
  std::unique_ptr<atomic_output_file> file_;  ///< the temp file beside output_
  archive_options options_;
  int fd_ = -1;                               ///< file_'s descriptor while writing
  state state_ = state::open;
  exit_code failure_code_ = exit_code::output_error;  ///< code of the error that failed the sink
  std::string failure_;  ///< the message thrown when the sink failed, rethrown by later calls

  std::unique_ptr<archive, archive_deleter> archive_;
  std::unique_ptr<archive_entry, entry_deleter> entry_;
  std::unique_ptr<ZSTD_CCtx, cctx_deleter> zstd_;  ///< only for tar_zst
  std::unique_ptr<parallel_gzip> gzip_;            ///< only for tar_gz, until finish()

  std::vector<char> out_buf_;     ///< bytes on their way to fd_
  std::size_t out_used_ = 0;      ///< filled prefix of out_buf_
  std::uint64_t archive_bytes_ = 0;       ///< written to fd_, or reserved there (.tar framed entries)
  std::uint64_t framed_bytes_ = 0;        ///< tar bytes of the framed entries (libarchive counts the rest)
  std::atomic<bool> framed_failed_{false};  ///< a write_framed_at failed (the message is below)
  std::mutex framed_failure_mutex_;
  std::string framed_failure_;
  std::uint64_t uncompressed_final_ = 0;  ///< tar stream size, cached once archive_ is freed
  std::string io_error_;  ///< reason recorded by the write callback (it must not throw)
  bool compression_interrupted_ = false;  ///< compress() stopped for a signal: fail() reports the interrupt
  bool discard_ = false;  ///< abandoning: the callback drops what libarchive's close still writes

  impl(fs::path output, archive_options options) : output_(std::move(output)), options_(options) {}

  [[noreturn]] void fail(const std::string& reason) {
    if (compression_interrupted_) check_interrupt();
    state_ = state::failed;
    failure_ = "output: write: " + output_.string() + ": " + reason;
    throw fatal_error(exit_code::output_error, failure_);
  }

  /// The reason of a failed gzip step: the file's if writing failed, else the compressor's.
  std::string gzip_reason() const { return io_error_.empty() ? gzip_->error() : io_error_; }

  /// The reason of the last libarchive failure: ours from the callback if it failed there.
  std::string archive_reason() const {
    if (!io_error_.empty()) return io_error_;
    const char* text = archive_ ? archive_error_string(archive_.get()) : nullptr;
    return text != nullptr ? text : "libarchive error";
  }

  void check_usable() const {
    if (state_ == state::failed) throw fatal_error(failure_code_, failure_);
    if (state_ == state::finished || state_ == state::completed) {
      throw std::logic_error("tar_archive_sink: used after complete()/finish()");
    }
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
    file_ = std::make_unique<atomic_output_file>(output_, "output");
    fd_ = file_->fd();
  }

  /// Write all of out_buf_ to the file at its end; false (io_error_ set) on failure. pwrite, not
  /// write: .tar framed entries are placed by offset, by other threads, past this buffer.
  bool flush_buffer() noexcept {
    std::size_t done = 0;
    while (done < out_used_) {
      const ssize_t n = ::pwrite(fd_, out_buf_.data() + done, out_used_ - done, static_cast<off_t>(archive_bytes_));
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        io_error_ = n < 0 ? errno_text(errno) : "no bytes written";  // 0: would loop for ever
        return false;
      }
      done += static_cast<std::size_t>(n);
      archive_bytes_ += static_cast<std::uint64_t>(n);
    }
    out_used_ = 0;
    return true;
  }

  /// Append already-final bytes (tar, or gzip's output) to the file.
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
      // zstd's workers may lag far behind (level 19 runs at a few MB/s): the frame's end can
      // take many seconds, so a signal is honoured between the blocks it hands back.
      if (interrupt_requested()) {
        compression_interrupted_ = true;
        io_error_ = "interrupted";
        return false;
      }
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

  /// Feed tar bytes to the compressor or the file; false (io_error_ set) on failure.
  bool feed(const char* bytes, std::size_t length) noexcept {
    if (zstd_) return compress(bytes, length, ZSTD_e_continue);
    if (gzip_) {
      try {
        if (gzip_->write(bytes, length)) return true;
        io_error_ = gzip_reason();
      } catch (const std::bad_alloc&) {  // a new block's buffers; libarchive must see an error, not a throw
        io_error_ = "gzip: out of memory";
      }
      return false;
    }
    return put(bytes, length);
  }

  static la_ssize_t on_write(archive* a, void* client, const void* buffer, std::size_t length) noexcept {
    auto* self = static_cast<impl*>(client);
    if (self->discard_) return static_cast<la_ssize_t>(length);
    const bool ok = self->feed(static_cast<const char*>(buffer), length);
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
      try {
        gzip_ = std::make_unique<parallel_gzip>(options_.gzip_level, resolve_gzip_workers(options_.threads),
                                                [this](const char* data, std::size_t size) { return put(data, size); });
      } catch (const std::system_error& error) {
        fail(std::string("gzip: start workers: ") + error.what());
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
    // Unblocked: libarchive hands each header, entry and padding straight to on_write instead
    // of copying the whole tar through its 10 KiB block buffer first. That copy was on the
    // write stage's serial path (perf/SCALING.md); the bytes are the same.
    if (archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK) fail(archive_reason());
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
    // The padding now, not with the next header: a framed entry may come next.
    if (archive_write_finish_entry(a) != ARCHIVE_OK) fail(archive_reason());
  }

  bool frame_header(std::string_view name, std::uint64_t size, char* header) const noexcept {
    constexpr std::uint64_t kMaxOctal11 = 077777777777;  // 11 octal digits: 8 GiB - 1
    // libarchive's pax writer adds a pax mtime record from 2^31 - 1 on (2038-01-19), not only
    // past the 11 digits.
    constexpr std::int64_t kMaxPlainMtime = 0x7ffffffe;
    const auto plain = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
             c == '-';
    };
    if (name.empty() || name.size() >= 100 || name == "." || name == ".." ||
        !std::all_of(name.begin(), name.end(), plain) || size > kMaxOctal11 || options_.mtime < 0 ||
        options_.mtime > kMaxPlainMtime) {
      return false;
    }
    // libarchive's ustar header (archive_write_set_format_pax_restricted, plain case): numbers
    // in octal, zero-filled, each field ended as it ends them.
    std::memset(header, 0, tar_archive_sink::kTarBlockBytes);
    const auto octal = [header](std::size_t at, std::size_t digits, std::uint64_t value) {
      for (std::size_t i = digits; i-- > 0; value >>= 3) header[at + i] = static_cast<char>('0' + (value & 7));
    };
    std::memcpy(header, name.data(), name.size());  // name[100], NUL-filled
    octal(100, 6, kFileMode);                       // mode[8]: "000644 \0"
    header[106] = ' ';
    octal(108, 6, 0);                               // uid[8]
    header[114] = ' ';
    octal(116, 6, 0);                               // gid[8]
    header[122] = ' ';
    octal(124, 11, size);                           // size[12]: 11 digits and a space
    header[135] = ' ';
    octal(136, 11, static_cast<std::uint64_t>(options_.mtime));  // mtime[12]
    header[147] = ' ';
    header[156] = '0';                              // typeflag: regular file
    std::memcpy(header + 257, "ustar\0" "00", 8);   // magic and version
    octal(329, 6, 0);                               // devmajor[8]
    header[335] = ' ';
    octal(337, 6, 0);                               // devminor[8]
    header[343] = ' ';
    // The checksum: the sum of the header's bytes with its own field read as spaces, then
    // written as 6 digits, a NUL and a space.
    std::uint32_t sum = 8 * ' ';
    for (std::size_t i = 0; i < tar_archive_sink::kTarBlockBytes; ++i) {
      if (i < 148 || i >= 156) sum += static_cast<unsigned char>(header[i]);
    }
    octal(148, 6, sum);
    header[154] = '\0';
    header[155] = ' ';
    return true;
  }

  std::optional<std::uint64_t> add_framed_entry(std::string_view entry) {
    check_usable();
    check_interrupt();
    if (entry.size() % tar_archive_sink::kTarBlockBytes != 0 || entry.empty()) {
      throw std::invalid_argument("tar_archive_sink: a framed entry is whole 512-byte blocks");
    }
    framed_bytes_ += entry.size();
    if (options_.format != archive_format::tar) {
      if (!feed(entry.data(), entry.size())) fail(io_error_);
      return std::nullopt;
    }
    // The buffer goes out first, so that the reserved range starts where it ends.
    if (!flush_buffer()) fail(io_error_);
    const std::uint64_t offset = archive_bytes_;
    archive_bytes_ += entry.size();
    return offset;
  }

  void write_framed_at(std::uint64_t offset, std::string_view entry) {
    std::size_t done = 0;
    while (done < entry.size()) {
      const ssize_t n = ::pwrite(fd_, entry.data() + done, entry.size() - done, static_cast<off_t>(offset + done));
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        const std::string message =
            "output: write: " + output_.string() + ": " + (n < 0 ? errno_text(errno) : "no bytes written");
        {
          std::lock_guard lock(framed_failure_mutex_);
          if (framed_failure_.empty()) framed_failure_ = message;
        }
        framed_failed_.store(true);
        throw fatal_error(exit_code::output_error, message);
      }
      done += static_cast<std::size_t>(n);
    }
  }

  std::uint64_t complete() {
    check_usable();
    check_interrupt();
    if (framed_failed_.load()) {
      std::lock_guard lock(framed_failure_mutex_);
      state_ = state::failed;
      failure_ = framed_failure_;
      throw fatal_error(exit_code::output_error, failure_);
    }
    archive* a = archive_.get();
    if (archive_write_close(a) != ARCHIVE_OK) fail(archive_reason());
    uncompressed_final_ = static_cast<std::uint64_t>(archive_filter_bytes(a, 0)) + framed_bytes_;
    archive_.reset();
    if (zstd_ && !compress(nullptr, 0, ZSTD_e_end)) fail(io_error_);
    if (gzip_) {
      if (!gzip_->finish()) fail(gzip_reason());
      gzip_.reset();  // joins the workers
    }
    if (!flush_buffer()) fail(io_error_);
    fd_ = -1;
    try {
      file_->complete();
    } catch (const fatal_error& e) {
      state_ = state::failed;
      failure_ = e.what();
      throw;
    }
    state_ = state::completed;
    return archive_bytes_;
  }

  void commit(bool check_interrupt) {
    if (state_ != state::completed) throw std::logic_error("tar_archive_sink: commit() before complete()");
    try {
      file_->commit(check_interrupt);
    } catch (const fatal_error& e) {
      state_ = state::failed;
      failure_code_ = e.code();
      failure_ = e.what();
      throw;
    }
    state_ = state::finished;
  }

  void abandon() noexcept {
    if (archive_) {
      // Let archive_write_free() close normally (it frees everything it allocated) but
      // drop what the close still writes, the end-of-archive blocks: nothing of an
      // abandoned archive may reach the file or the compressors. After a write error
      // libarchive's state is already fatal and it skips the close anyway.
      discard_ = true;
      archive_.reset();
    }
    gzip_.reset();  // stops and joins the workers; their blocks are dropped
    fd_ = -1;
    if (file_) file_->abandon();
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
                      "output: options: gzip level " + std::to_string(options.gzip_level) + " outside 1..9");
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

bool tar_archive_sink::frame_header(std::string_view name, std::uint64_t size, char* header) const noexcept {
  return impl_->frame_header(name, size, header);
}

std::optional<std::uint64_t> tar_archive_sink::add_framed_entry(std::string_view entry) {
  return impl_->add_framed_entry(entry);
}

void tar_archive_sink::write_framed_at(std::uint64_t offset, std::string_view entry) {
  impl_->write_framed_at(offset, entry);
}

std::uint64_t tar_archive_sink::finish() {
  const std::uint64_t bytes = impl_->complete();
  impl_->commit(true);
  return bytes;
}

std::uint64_t tar_archive_sink::complete() { return impl_->complete(); }

void tar_archive_sink::commit() { impl_->commit(false); }

std::uint64_t tar_archive_sink::uncompressed_bytes() const noexcept {
  if (impl_->archive_) {
    return static_cast<std::uint64_t>(archive_filter_bytes(impl_->archive_.get(), 0)) + impl_->framed_bytes_;
  }
  return impl_->uncompressed_final_;
}

std::uint64_t tar_archive_sink::archive_bytes() const noexcept { return impl_->archive_bytes_; }

const std::filesystem::path& tar_archive_sink::temp_path() const noexcept { return impl_->file_->temp_path(); }

const std::filesystem::path& tar_archive_sink::output_path() const noexcept { return impl_->output_; }

}  // namespace tixport
