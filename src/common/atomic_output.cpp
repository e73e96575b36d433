// File: atomic_output.cpp
#include "tixport/common/atomic_output.hpp"

#include "tixport/common/errors.hpp"
#include "tixport/common/interrupt_guard.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>
#include <random>
#include <system_error>
#include <utility>

namespace tixport {

namespace fs = std::filesystem;

namespace {

constexpr mode_t kFileMode = 0644;
constexpr int kTempNameAttempts = 16;

std::string directory_text(const fs::path& target) {
  const fs::path dir = target.parent_path();
  return dir.empty() ? std::string(".") : dir.string();
}

/// The directory holding `path` ("." for a bare name).
fs::path directory_of(const fs::path& path) { return path.parent_path().empty() ? fs::path(".") : path.parent_path(); }

/// Make a rename durable. Best effort: the file is already complete and in place, and
/// reporting an error now would claim a failure that left it replaced.
void sync_directory(const fs::path& target) noexcept {
  const int dir_fd = ::open(directory_of(target).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return;
  static_cast<void>(::fsync(dir_fd));
  ::close(dir_fd);
}

constexpr int kMaxLinks = 40;  // Linux's MAXSYMLINKS

/// A symlink the kernel would not follow for us (fs.protected_symlinks): in a sticky,
/// world-writable directory (/tmp), owned neither by us nor by the directory's owner. Following
/// it by hand would let anyone plant `/tmp/out.tar -> ~/precious` and have it replaced.
bool untrusted_link(const fs::path& link) {
  struct stat l {};
  struct stat d {};
  const fs::path dir = directory_of(link);
  if (::lstat(link.c_str(), &l) != 0 || ::stat(dir.c_str(), &d) != 0) return false;
  const bool shared_sticky = (d.st_mode & S_ISVTX) != 0 && (d.st_mode & S_IWOTH) != 0;
  return shared_sticky && l.st_uid != ::geteuid() && l.st_uid != d.st_uid;
}

/// Where writing `path` by rename lands: `path` with every symlink of its last component
/// followed (a relative link is relative to its directory; a dangling link gives the path it
/// names, created there as a write through the link would be). `refusal` says why a link must
/// not be followed (a loop, or an untrusted link); the plan refuses such an output.
struct followed_path {
  fs::path path;
  std::string refusal;
};
followed_path follow_symlinks(fs::path path) {
  for (int hop = 0; hop < kMaxLinks; ++hop) {
    std::error_code error;
    if (!fs::is_symlink(fs::symlink_status(path, error)) || error) return {path, {}};
    if (untrusted_link(path)) {
      return {path, "a symlink in a shared sticky directory, owned by another user: not followed"};
    }
    const fs::path link = fs::read_symlink(path, error);
    if (error) return {path, "cannot read the symlink: " + error.message()};
    path = link.is_absolute() ? link : path.parent_path() / link;
  }
  return {path, "too many levels of symbolic links"};
}

}  // namespace

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

atomic_output_file::atomic_output_file(fs::path target, std::string what)
    : target_(std::move(target)), what_(std::move(what)) {
  // The output plan refuses these first; an output written without a plan is refused here.
  followed_path followed = follow_symlinks(target_);
  if (!followed.refusal.empty()) fail("create", followed.refusal);
  struct stat st {};
  if (::lstat(followed.path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    fail("create", S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file (it would be replaced by a rename)");
  }
  destination_ = std::move(followed.path);
  std::random_device entropy;
  std::uniform_int_distribution<std::uint32_t> pick;
  for (int attempt = 0; attempt < kTempNameAttempts; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".tmp.%ld.%08x", static_cast<long>(::getpid()), pick(entropy));
    // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "." + std::string.
    std::string temp_name(1, '.');
    temp_name += destination_.filename().string();
    temp_name += suffix;
    temp_ = destination_.parent_path() / temp_name;
    // Registered before it exists: a second signal right after open() must find it.
    // Absolute, so the handler's unlink does not depend on the working directory.
    std::error_code cwd_error;
    const fs::path absolute_temp = fs::absolute(temp_, cwd_error);
    guard_handle_ = register_temp_file(cwd_error ? temp_ : absolute_temp);
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
    if (fd_ >= 0) return;
    const int err = errno;
    unregister_temp_file(std::exchange(guard_handle_, -1));
    if (err != EEXIST) {
      temp_.clear();
      throw fatal_error(exit_code::output_error, what_ + ": create: " + directory_text(destination_) + ": " + errno_text(err));
    }
  }
  temp_.clear();
  throw fatal_error(exit_code::output_error,
                    what_ + ": create: " + directory_text(destination_) + ": no unused temporary file name");
}

atomic_output_file::~atomic_output_file() {
  if (!committed_) abandon();
}

void atomic_output_file::fail(std::string_view step, const std::string& reason) const {
  throw fatal_error(exit_code::output_error, what_ + ": " + std::string(step) + ": " + target_.string() + ": " + reason);
}

void atomic_output_file::write(std::string_view bytes) {
  if (fd_ < 0) throw std::logic_error("atomic_output_file: write after complete()");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write", errno_text(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  bytes_ += bytes.size();
}

void atomic_output_file::complete() {
  if (fd_ < 0) return;
  if (::fsync(fd_) != 0) fail("fsync", errno_text(errno));
  const int fd = std::exchange(fd_, -1);
  // On Linux the descriptor is released even when close() reports EINTR.
  if (::close(fd) != 0 && errno != EINTR) fail("close", errno_text(errno));
}

void atomic_output_file::commit(bool check_interrupt) {
  if (committed_) return;
  complete();
  // Last chance to keep the old file: after the rename it is replaced.
  if (check_interrupt) throw_if_interrupted();
  if (::rename(temp_.c_str(), destination_.c_str()) != 0) fail("rename", errno_text(errno));
  committed_ = true;
  unregister_temp_file(std::exchange(guard_handle_, -1));
  sync_directory(destination_);
}

void atomic_output_file::abandon() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  // Unlink before unregistering: a second signal in between must still remove it.
  if (!temp_.empty() && !committed_) ::unlink(temp_.c_str());
  unregister_temp_file(std::exchange(guard_handle_, -1));
}

bool is_write_through_target(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return false;  // a new path: written by rename
  return !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

// ---- output_plan ----------------------------------------------------------

namespace {

/// What a path refers to: an existing file by device and inode (links and other spellings of
/// one file compare equal), a new one by its directory's device and inode plus its name.
struct file_identity {
  dev_t dev = 0;
  ino_t ino = 0;
  std::string new_name;  ///< empty for an existing file
  bool operator==(const file_identity&) const = default;
};

std::optional<file_identity> identify(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return file_identity{st.st_dev, st.st_ino, {}};
  // A dangling symlink (or chain): the file that writing would create is where it ends.
  const fs::path target = follow_symlinks(path).path;
  const fs::path dir = directory_of(target);
  if (::stat(dir.c_str(), &st) != 0) return std::nullopt;
  return file_identity{st.st_dev, st.st_ino, target.filename().string()};
}

}  // namespace

void output_plan::add_input(const fs::path& path, std::string option) {
  if (!path.empty()) inputs_.push_back({path, std::move(option), {}, false});
}

void output_plan::add_output(const fs::path& path, std::string option, std::string may_replace_input,
                             bool write_through) {
  if (!path.empty()) outputs_.push_back({path, std::move(option), std::move(may_replace_input), write_through});
}

void output_plan::check() const {
  const auto clash = [](const entry& out, const entry& other, std::string_view what) {
    throw fatal_error(exit_code::input_error, out.option + " " + out.path.string() + " is the same file as " +
                                                  other.option + " " + other.path.string() + std::string(what));
  };
  std::vector<std::optional<file_identity>> out_ids;
  out_ids.reserve(outputs_.size());
  for (const entry& out : outputs_) {
    // Devices and FIFOs (/dev/stdout, /dev/null) are written through, never replaced: two
    // outputs may share one, and one may even be the terminal an input came from. A symlink
    // is written through too, but to the file it names, which must not be an input.
    struct stat st {};
    if (out.write_through &&
        (out.path == "-" || (::stat(out.path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)))) {
      out_ids.emplace_back();
      continue;
    }
    // Renamed into place, onto the file a symlink names (atomic_output_file follows links):
    // every check below is of that file and its directory, as the rename will see them.
    const followed_path followed = follow_symlinks(out.path);
    const fs::path& dest = followed.path;
    const std::string named = out.path.string() + (dest == out.path ? "" : " (a symlink to " + dest.string() + ")");
    if (!followed.refusal.empty()) {
      throw fatal_error(exit_code::input_error, out.option + " " + out.path.string() + ": " + followed.refusal);
    }
    // Renaming over a device node or a FIFO would replace the node itself.
    if (::lstat(dest.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
      throw fatal_error(exit_code::input_error, out.option + " " + named +
                                                    ": not a regular file (this output is written to a temporary "
                                                    "file and renamed into place)");
    }
    if (::stat(dest.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      throw fatal_error(exit_code::output_error, out.option + ": " + named + ": is a directory");
    }
    const fs::path dir = directory_of(dest);
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      throw fatal_error(exit_code::output_error, out.option + ": " + named + ": directory " + dir.string() +
                                                     " does not exist");
    }
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      throw fatal_error(exit_code::output_error, out.option + ": " + named + ": directory " + dir.string() +
                                                     " is not writable: " + errno_text(errno));
    }
    out_ids.push_back(identify(dest));
  }
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    if (!out_ids[i]) continue;
    for (std::size_t j = 0; j < i; ++j) {
      if (out_ids[j] && *out_ids[j] == *out_ids[i]) clash(outputs_[i], outputs_[j], ": each output needs its own file");
    }
    for (const entry& in : inputs_) {
      const std::optional<file_identity> in_id = identify(in.path);
      if (!in_id || !(*in_id == *out_ids[i])) continue;
      if (!outputs_[i].may_replace.empty() && outputs_[i].may_replace == in.option) continue;
      clash(outputs_[i], in, ": writing it would destroy the input");
    }
  }
}

}  // namespace tixport
