// File: tar_archive_sink.hpp
//
// The single writer of the output archive (SPEC 2.6): a tar stream of regular
// files at the archive's root, optionally gzip- or zstd-compressed, written to a
// temporary file beside the output and renamed into place only by finish().
// An unfinished sink (error, exception, interrupt) removes its temporary file in
// its destructor, so an existing output file is never touched.
//
// The bytes depend only on the entries and on archive_options::format, mtime and
// the compression levels (and the zlib / zstd versions), never on `threads`:
// zstd always runs in its multi-threaded mode with >= 1 worker, whose output does
// not depend on the worker count, and gzip is compressed pigz-style in fixed
// 128 KiB blocks (each primed with the previous 32 KiB) whose boundaries do not
// depend on it either. A .tar.gz is one gzip member: MTIME 0, no file name,
// OS byte 3 (Unix), XFL 2 at level 9 and 4 at level 1 (else 0), as zlib sets it.
//
//   auto format = archive_format_from_name(path);       // nullopt: usage error
//   tar_archive_sink sink(path, {.format = *format, .mtime = epoch});
//   sink.add_entry("backup_tickets_100.json", json);   // in batch order
//   std::uint64_t bytes = sink.finish();               // fsync + rename
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>

namespace tixport {

/// The archive's container format, chosen from the output name.
enum class archive_format { tar, tar_gz, tar_zst };

/// Return the format for an output name ending in ".tar", ".tar.gz" or ".tgz", ".tar.zst".
///
/// The suffix is compared ASCII case-insensitively ("A.TAR.ZST" is zstd), the file
/// name must have at least one character before the suffix, and anything else
/// (".zip", ".tar.zstd", ".gz", a bare ".tar", a path ending in '/') is nullopt,
/// which the CLI reports as a usage error.
std::optional<archive_format> archive_format_from_name(std::string_view path) noexcept;

/// Settings of one archive; the defaults are the CLI's.
struct archive_options {
  archive_format format = archive_format::tar_zst;  ///< container and compression
  std::int64_t mtime = 0;  ///< every entry's mtime (SOURCE_DATE_EPOCH or input mtime; caller decides)
  unsigned threads = 0;    ///< compression workers; 0 = all cores (never changes the bytes)
  int zstd_level = 3;      ///< zstd compression level (zstd's range; the CLI allows 1..19)
  int gzip_level = 6;      ///< gzip compression level, 1..9 (else the constructor throws input_error)
};

/// Single writer of the output archive.
///
/// Writes to a temporary file `.<output-name>.tmp.<pid>.<random>` beside `output`
/// and renames it into place only in finish(); the destructor of an unfinished
/// sink removes the temporary file, and an existing output file is never touched
/// before the rename. The temporary file is registered with interrupt_guard so a
/// second SIGINT/SIGTERM removes it too. Not thread-safe: calls must not overlap, but
/// they may come from different threads in turn (e.g. a TBB serial_in_order filter).
///
/// Compression runs on `options.threads` worker threads (gzip: none for 1, the
/// blocks then compress on the calling thread) with a bounded number of blocks in
/// flight; the workers are joined by finish() and by the destructor.
///
/// Entries are ustar-compatible pax ("restricted pax": extended headers only if a
/// name or size does not fit ustar, never for times), regular files at the root,
/// mode 0644, uid/gid 0, empty uname/gname, mtime `options.mtime`, no atime/ctime.
class tar_archive_sink {
 public:
  /// Create the temporary file. Throws fatal_error(output_error,
  /// "output: create: <dir>: <strerror>") when it cannot be created, and
  /// fatal_error(input_error, "output: options: ...") for a level outside its range.
  tar_archive_sink(std::filesystem::path output, archive_options options);

  /// Append a regular file `name` (a plain file name: non-empty, no '/', not "." or "..",
  /// else std::invalid_argument) holding `data`. Throws fatal_error(interrupted) when an
  /// interrupt was requested, fatal_error(output_error, "output: write: <path>: <reason>")
  /// on a write error; after any throw the sink is failed and only its destructor is useful.
  void add_entry(std::string_view name, std::string_view data);

  // ---- Framed entries: the tar bytes of an entry made off the ordered path ----------------
  // A writer with many threads builds each entry's complete tar bytes (frame_header, then the
  // data, then zeros to a 512-byte boundary) in parallel, and hands them over in order with
  // add_framed_entry: the ordered part is then one append (or, for .tar, one reservation:
  // the bytes are placed with write_framed_at, in parallel). The bytes are libarchive's own
  // for the same entry (tested byte for byte), so framed and add_entry entries may be mixed.

  /// Size of a tar block: a header, and the unit the data is padded to.
  static constexpr std::size_t kTarBlockBytes = 512;

  /// Zero bytes after `size` bytes of data up to the next block boundary.
  static constexpr std::size_t padding_after(std::uint64_t size) noexcept {
    return static_cast<std::size_t>((kTarBlockBytes - size % kTarBlockBytes) % kTarBlockBytes);
  }

  /// Write into `header` (kTarBlockBytes bytes) the ustar header add_entry(name, data) writes for
  /// data of `size` bytes. False when the entry needs more than a plain ustar header (a name of
  /// 100 bytes or more or with bytes other than [A-Za-z0-9._-], a size of 8 GiB or more, this
  /// sink's mtime before 1970 or from 2038-01-19 03:14:07 UTC on, where libarchive writes pax
  /// records): then use add_entry. Thread-safe.
  [[nodiscard]] bool frame_header(std::string_view name, std::uint64_t size, char* header) const noexcept;

  /// Append one framed entry: its header from frame_header, its data, its padding (a multiple of
  /// kTarBlockBytes bytes). For .tar the sink only reserves the entry's place in the file and
  /// returns its offset, and the caller must then write it there with write_framed_at before
  /// complete(); for the compressed formats it is compressed now and nullopt is returned.
  /// Ordered like add_entry, and throws like it.
  std::optional<std::uint64_t> add_framed_entry(std::string_view entry);

  /// Write a reserved .tar entry at `offset`. Thread-safe: may run alongside other
  /// write_framed_at calls and one add_entry / add_framed_entry. Throws fatal_error(output_error)
  /// on a write error (complete() then fails too).
  void write_framed_at(std::uint64_t offset, std::string_view entry);

  /// Write the end of the archive, flush, fsync and rename the temporary file onto the
  /// output. Returns the archive file's size in bytes. Throws like add_entry. Call once.
  /// Same as complete() then commit().
  std::uint64_t finish();

  /// Write the end of the archive, flush and fsync the temporary file, which is then whole
  /// but not yet in place. Returns the archive's size in bytes. Call once.
  std::uint64_t complete();

  /// Rename the completed temporary file onto the output (and fsync the directory). A run
  /// with several outputs completes them all first and commits them last, under a
  /// commit_guard, checking for an interrupt once before the first rename: commit() itself
  /// does not check (finish() does).
  void commit();

  /// Remove the temporary file unless finish() / commit() succeeded.
  ~tar_archive_sink();

  tar_archive_sink(const tar_archive_sink&) = delete;
  tar_archive_sink& operator=(const tar_archive_sink&) = delete;
  tar_archive_sink(tar_archive_sink&&) = delete;
  tar_archive_sink& operator=(tar_archive_sink&&) = delete;

  /// Bytes of the uncompressed tar stream so far (headers, data, padding; after
  /// finish() also the end-of-archive blocks).
  [[nodiscard]] std::uint64_t uncompressed_bytes() const noexcept;

  /// Bytes written to the archive file so far, with the ranges reserved for .tar framed entries
  /// (after finish(): its final size).
  [[nodiscard]] std::uint64_t archive_bytes() const noexcept;

  /// The temporary file being written (it no longer exists after finish() or destruction).
  [[nodiscard]] const std::filesystem::path& temp_path() const noexcept;

  /// The final output path.
  [[nodiscard]] const std::filesystem::path& output_path() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace tixport
