#include "moe/atomic_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <streambuf>

#include <fmt/format.h>

#include "moe/error.hpp"

namespace moe {
namespace fs = std::filesystem;

namespace {

// ---- temporaries a signal must not leave behind -----------------------------------
// A signal handler can reach nothing but globals, so the temporaries being
// written live in a fixed table of lock-free slots the handler can walk.
enum SlotState : int { kFree = 0, kClaimed = 1, kLive = 2 };
struct LiveTemp {
  std::atomic<int> state{kFree};
  char path[PATH_MAX] = {};
};
std::array<LiveTemp, 64> g_live_temps;
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler reads the slot states");

constexpr std::array<int, 2> kCleanupSignals = {SIGINT, SIGTERM};
std::mutex g_handler_mutex;  // guards the three below
int g_active_writers = 0;
std::array<bool, kCleanupSignals.size()> g_handler_installed = {};

extern "C" void unlink_live_temps_and_reraise(int sig) {
  for (auto& t : g_live_temps)
    if (t.state.load() == kLive) ::unlink(t.path);
  ::signal(sig, SIG_DFL);
  ::raise(sig);  // blocked until the handler returns, then the default action
}

// While any write is in flight, SIGINT/SIGTERM remove the temporaries and then
// act as by default. A signal the process handles itself (tune's graceful
// SIGINT) is left alone: that handler lets the write finish.
class CleanupOnSignal {
 public:
  CleanupOnSignal() {
    std::lock_guard lock(g_handler_mutex);
    if (g_active_writers++ > 0) return;
    for (size_t i = 0; i < kCleanupSignals.size(); ++i) {
      struct sigaction cur{};
      g_handler_installed[i] = false;
      if (::sigaction(kCleanupSignals[i], nullptr, &cur) != 0) continue;
      if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL) continue;
      struct sigaction ours{};
      ours.sa_handler = unlink_live_temps_and_reraise;
      sigemptyset(&ours.sa_mask);
      g_handler_installed[i] = ::sigaction(kCleanupSignals[i], &ours, nullptr) == 0;
    }
  }
  ~CleanupOnSignal() {
    std::lock_guard lock(g_handler_mutex);
    if (--g_active_writers > 0) return;
    for (size_t i = 0; i < kCleanupSignals.size(); ++i) {
      if (!g_handler_installed[i]) continue;
      struct sigaction cur{};
      if (::sigaction(kCleanupSignals[i], nullptr, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
          cur.sa_handler == unlink_live_temps_and_reraise)
        ::signal(kCleanupSignals[i], SIG_DFL);
      g_handler_installed[i] = false;
    }
  }
  CleanupOnSignal(const CleanupOnSignal&) = delete;
  CleanupOnSignal& operator=(const CleanupOnSignal&) = delete;
};

// Blocks SIGINT/SIGTERM in this thread between creating a temporary and
// registering it, so no signal can fall in between.
class BlockCleanupSignals {
 public:
  BlockCleanupSignals() {
    sigset_t s;
    sigemptyset(&s);
    for (int sig : kCleanupSignals) sigaddset(&s, sig);
    ::pthread_sigmask(SIG_BLOCK, &s, &old_);
  }
  ~BlockCleanupSignals() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  BlockCleanupSignals(const BlockCleanupSignals&) = delete;
  BlockCleanupSignals& operator=(const BlockCleanupSignals&) = delete;

 private:
  sigset_t old_;
};

// A temporary file: created beside the target, registered for signal cleanup,
// unlinked on destruction unless released by a successful rename.
class TempFile {
 public:
  TempFile(const std::string& target, const std::string& dir) {
    std::string name = fmt::format("{}/.{}.tmp.XXXXXX", dir, fs::path(target).filename().string());
    {
      BlockCleanupSignals blocked;
      fd_ = ::mkostemp(name.data(), O_CLOEXEC);
      if (fd_ < 0)
        throw InputError(fmt::format("{}: cannot create a file in folder {}: {}", target, dir, std::strerror(errno)));
      path_ = name;
      if (path_.size() < PATH_MAX)
        for (auto& t : g_live_temps) {
          int expected = kFree;
          if (!t.state.compare_exchange_strong(expected, kClaimed)) continue;
          std::memcpy(t.path, path_.c_str(), path_.size() + 1);
          t.state.store(kLive);
          slot_ = &t;
          break;
        }
    }
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!renamed_) ::unlink(path_.c_str());
    if (slot_) slot_->state.store(kFree);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void set_mode(mode_t mode) const {
    if (::fchmod(fd_, mode) != 0) fail("cannot set the mode of");
  }

  [[noreturn]] void fail(const char* what, int err = errno) const {
    throw Error(fmt::format("{} {}: {}", what, path_, std::strerror(err)));
  }
  void write_all(const char* data, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("cannot write");
      }
      data += w, n -= static_cast<size_t>(w);
    }
  }
  // fsync, close, rename over `target`.
  void commit(const std::string& target) {
    if (::fsync(fd_) != 0) fail("cannot flush");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("cannot close");
    if (::rename(path_.c_str(), target.c_str()) != 0) {
      const int e = errno;
      throw Error(fmt::format("cannot rename {} to {}: {}", path_, target, std::strerror(e)));
    }
    renamed_ = true;
  }

 private:
  int fd_ = -1;
  std::string path_;
  LiveTemp* slot_ = nullptr;
  bool renamed_ = false;
};

// The ostream a write callback fills; write errors are kept for the caller.
class FdStreambuf : public std::streambuf {
 public:
  explicit FdStreambuf(TempFile& f) : file_(f) { setp(buf_.data(), buf_.data() + buf_.size()); }
  void flush_all() {
    file_.write_all(pbase(), static_cast<size_t>(pptr() - pbase()));
    setp(buf_.data(), buf_.data() + buf_.size());
  }

 protected:
  int_type overflow(int_type ch) override {
    flush_all();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n >= static_cast<std::streamsize>(buf_.size())) {
      flush_all();
      file_.write_all(s, static_cast<size_t>(n));
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }
  int sync() override {
    flush_all();
    return 0;
  }

 private:
  TempFile& file_;
  std::array<char, 1 << 16> buf_;
};

std::string folder_of(const std::string& path) {
  const fs::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : ".";
}

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// The mode the new file gets: the old file's, else rw-r--r--. InputError when
// the target exists and is not a regular file.
mode_t target_mode(const std::string& path) {
  MOE_REQUIRE(!path.empty(), "output path is empty");
  MOE_REQUIRE(!fs::path(path).filename().empty(), fmt::format("{}: output path names a folder, not a file", path));
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return 0644;
    if (errno == ENOTDIR) throw InputError(fmt::format("{}: cannot write: a part of the path is not a folder", path));
    throw InputError(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode))
    throw InputError(fmt::format("{}: exists and is {}; refusing to replace it", path, file_kind(st.st_mode)));
  return st.st_mode & 07777;
}

void fsync_folder(const std::string& dir) {
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw Error(fmt::format("cannot open folder {} to flush it: {}", dir, std::strerror(errno)));
  const int rc = ::fsync(dfd);
  const int e = errno;
  ::close(dfd);
  // Some filesystems cannot fsync a folder (EINVAL); the rename is done either way.
  if (rc != 0 && e != EINVAL) throw Error(fmt::format("cannot flush folder {}: {}", dir, std::strerror(e)));
}

template <class Fill>
void write_with(const std::string& path, Fill&& fill) {
  const mode_t mode = target_mode(path);
  const std::string dir = folder_of(path);
  CleanupOnSignal cleanup;
  TempFile tmp(path, dir);
  tmp.set_mode(mode);
  fill(tmp);
  tmp.commit(path);
  fsync_folder(dir);
}

}  // namespace

void check_output_target(const std::string& path) {
  MOE_REQUIRE(!path.empty(), "output path is empty");
  const std::string dir = folder_of(path);
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) throw InputError(fmt::format("{}: cannot write: folder {} does not exist", path, dir));
    if (errno == ENOTDIR) throw InputError(fmt::format("{}: cannot write: a part of the path is not a folder", path));
    throw InputError(fmt::format("{}: cannot write: folder {}: {}", path, dir, std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) throw InputError(fmt::format("{}: cannot write: {} is not a folder", path, dir));
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw InputError(fmt::format("{}: cannot write: folder {} is not writable ({})", path, dir, std::strerror(errno)));
  target_mode(path);
}

void check_output_not_input(const std::string& output, const std::vector<std::string>& inputs) {
  std::error_code ec;
  const fs::path out_canon = fs::weakly_canonical(output, ec);
  for (const auto& in : inputs) {
    std::error_code e1, e2;
    bool same = fs::exists(output, e1) && fs::exists(in, e2) && fs::equivalent(output, in, e1);
    if (!same && !ec) {
      const fs::path in_canon = fs::weakly_canonical(in, e2);
      same = !e2 && in_canon == out_canon;
    }
    if (same) throw InputError(fmt::format("{}: output is the input file {}; refusing to overwrite it", output, in));
  }
}

void write_file_atomic(const std::string& path, std::string_view content) {
  write_with(path, [&](TempFile& f) { f.write_all(content.data(), content.size()); });
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  write_with(path, [&](TempFile& f) {
    FdStreambuf buf(f);
    std::ostream os(&buf);
    os.exceptions(std::ios::badbit);
    write(os);
    buf.flush_all();
  });
}

void update_file_locked(const std::string& path, const std::function<void()>& update) {
  const fs::path target(path);
  const std::string lock_path = (fs::path(folder_of(path)) / ("." + target.filename().string() + ".lock")).string();
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(fmt::format("{}: cannot open the lock file {}: {}", path, lock_path, std::strerror(errno)));
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }  // closing releases the flock
  } unlock{fd};
  int rc;
  while ((rc = ::flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
  }
  if (rc != 0) throw Error(fmt::format("{}: cannot lock {}: {}", path, lock_path, std::strerror(errno)));
  update();
}

}  // namespace moe
