// The results writer: whole files replaced atomically, special files refused,
// no temporary left behind by a failed, interrupted or concurrent write.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "moe/atomic_file.hpp"
#include "moe/error.hpp"

using namespace moe;
namespace fs = std::filesystem;

namespace {

struct ScratchDir {
  fs::path dir;
  ScratchDir() {
    std::string t = (fs::temp_directory_path() / "moe-atomic-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    dir = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

// Temporaries are ".<name>.tmp.XXXXXX" beside the target.
int temporaries_in(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(".") && name.find(".tmp.") != std::string::npos) ++n;
  }
  return n;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "<payload length>\n<payload>": a reader can tell a complete file from a torn one.
std::string framed(char fill, size_t n) { return std::to_string(n) + "\n" + std::string(n, fill); }
bool is_complete_frame(const std::string& s) {
  const auto nl = s.find('\n');
  if (nl == std::string::npos || nl == 0) return false;
  const size_t n = std::stoul(s.substr(0, nl));
  if (s.size() != nl + 1 + n) return false;
  return s.find_first_not_of(s[nl + 1], nl + 1) == std::string::npos;
}

bool is_char_device(const char* p) {
  struct stat st{};
  return ::stat(p, &st) == 0 && S_ISCHR(st.st_mode);
}

}  // namespace

TEST_CASE("write_file_atomic: writes the content, keeps the old mode, leaves no temporary") {
  ScratchDir d;
  const std::string p = d.path("out.json");
  write_file_atomic(p, "first");
  CHECK(read_all(p) == "first");
  CHECK((fs::status(p).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write |
                                                            fs::perms::group_read | fs::perms::others_read));
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
  write_file_atomic(p, std::string(300000, 'x'));
  CHECK(read_all(p) == std::string(300000, 'x'));
  CHECK((fs::status(p).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  write_file_atomic(p, "");
  CHECK(read_all(p).empty());
  // Streamed: small pieces and one larger than the stream buffer.
  write_file_atomic(p, [](std::ostream& os) {
    for (int i = 0; i < 1000; ++i) os << i << ',';
    os << std::string(200000, 'y');
  });
  const std::string s = read_all(p);
  CHECK(s.starts_with("0,1,2,3,"));
  CHECK(s.size() == 3890 + 200000);
  CHECK(temporaries_in(d.dir) == 0);
}

TEST_CASE("write_file_atomic and check_output_target refuse targets that are not regular files") {
  ScratchDir d;
  for (const char* dev : {"/dev/null", "/dev/full"}) {
    if (!is_char_device(dev)) continue;
    CHECK_THROWS_AS(write_file_atomic(dev, "x"), InputError);
    CHECK_THROWS_AS(check_output_target(dev), InputError);
    CHECK(is_char_device(dev));
  }
  fs::create_directory(d.path("folder"));
  CHECK_THROWS_AS(write_file_atomic(d.path("folder"), "x"), InputError);
  CHECK_THROWS_AS(check_output_target(d.path("folder")), InputError);
  CHECK_THROWS_AS(check_output_target(d.path("folder") + "/"), InputError);
  CHECK(fs::is_directory(d.path("folder")));
  REQUIRE(::mkfifo(d.path("fifo").c_str(), 0644) == 0);
  CHECK_THROWS_AS(write_file_atomic(d.path("fifo"), "x"), InputError);
  CHECK_THROWS_AS(check_output_target(d.path("fifo")), InputError);
  CHECK(fs::is_fifo(d.path("fifo")));
  CHECK(temporaries_in(d.dir) == 0);
  try {
    write_file_atomic(d.path("folder"), "x");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find(d.path("folder")) != std::string::npos);
    CHECK(std::string(e.what()).find('\n') == std::string::npos);
  }
}

TEST_CASE("check_output_target: the folder must exist, be a folder and be writable") {
  ScratchDir d;
  CHECK_NOTHROW(check_output_target(d.path("new.json")));
  write_file_atomic(d.path("file"), "x");
  CHECK_NOTHROW(check_output_target(d.path("file")));  // a regular file is replaced
  CHECK_THROWS_AS(check_output_target(d.path("file/sub.json")), InputError);
  CHECK_THROWS_AS(check_output_target(d.path("missing/sub.json")), InputError);
  CHECK_THROWS_AS(check_output_target(""), InputError);
  CHECK_THROWS_AS(write_file_atomic(d.path("missing/sub.json"), "x"), InputError);
  CHECK_FALSE(fs::exists(d.path("missing")));
  CHECK(read_all(d.path("file")) == "x");
  if (::geteuid() != 0) {  // root writes anywhere
    fs::create_directory(d.path("ro"));
    fs::permissions(d.path("ro"), fs::perms::owner_read | fs::perms::owner_exec);
    CHECK_THROWS_AS(check_output_target(d.path("ro/x.json")), InputError);
    CHECK_THROWS_AS(write_file_atomic(d.path("ro/x.json"), "x"), InputError);
    fs::permissions(d.path("ro"), fs::perms::owner_all);
  }
}

TEST_CASE("check_output_not_input: the same file under any name is refused") {
  ScratchDir d;
  write_file_atomic(d.path("in.json"), "{}");
  CHECK_THROWS_AS(check_output_not_input(d.path("in.json"), {d.path("other.json"), d.path("in.json")}), InputError);
  CHECK_THROWS_AS(check_output_not_input((d.dir / "." / "in.json").string(), {d.path("in.json")}), InputError);
  fs::create_hard_link(d.path("in.json"), d.path("link.json"));
  CHECK_THROWS_AS(check_output_not_input(d.path("link.json"), {d.path("in.json")}), InputError);
  CHECK_THROWS_AS(check_output_not_input(d.path("new.json"), {(d.dir / "x" / ".." / "new.json").string()}), InputError);
  CHECK_NOTHROW(check_output_not_input(d.path("out.json"), {d.path("in.json")}));
  CHECK_NOTHROW(check_output_not_input(d.path("out.json"), {}));
}

TEST_CASE("a failing write leaves the old target and no temporary") {
  ScratchDir d;
  const std::string p = d.path("t.json");
  write_file_atomic(p, "old");
  // The content producer throws half way.
  CHECK_THROWS_WITH_AS(write_file_atomic(p,
                                         [](std::ostream& os) {
                                           os << std::string(200000, 'n');
                                           throw std::runtime_error("producer failed");
                                         }),
                       "producer failed", std::runtime_error);
  CHECK(read_all(p) == "old");
  CHECK(temporaries_in(d.dir) == 0);

  // The filesystem refuses the bytes (a file-size limit, as a full disk would).
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    int code = 1;
    try {
      write_file_atomic(p, std::string(1 << 20, 'z'));
    } catch (const InputError&) {
      code = 2;
    } catch (const Error&) {
      code = 0;  // a write error, not bad input
    }
    try {
      write_file_atomic(p, [](std::ostream& os) { os << std::string(1 << 20, 'z'); });
      code = 1;
    } catch (const InputError&) {
      code = 2;
    } catch (const Error&) {
    }
    ::_exit(code);
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(read_all(p) == "old");
  CHECK(temporaries_in(d.dir) == 0);
}

TEST_CASE("SIGINT or SIGTERM while writing removes the temporary") {
  for (int sig : {SIGTERM, SIGINT}) {
    ScratchDir d;
    const std::string p = d.path("t.json");
    write_file_atomic(p, "old");
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::signal(sig, SIG_DFL);  // whatever the test runner set
      ::close(ready[0]);
      write_file_atomic(p, [&](std::ostream& os) {
        os << std::string(100000, 'n') << std::flush;
        const char c = 'r';
        (void)::write(ready[1], &c, 1);
        for (;;) ::pause();
      });
      ::_exit(0);
    }
    ::close(ready[1]);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    CHECK(temporaries_in(d.dir) == 1);  // the write is in flight
    ::kill(pid, sig);
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st));
    CHECK(WTERMSIG(st) == sig);
    CHECK(read_all(p) == "old");
    CHECK(temporaries_in(d.dir) == 0);
  }
}

TEST_CASE("concurrent writers to one target always leave a complete file") {
  ScratchDir d;
  const std::string p = d.path("shared.json");
  write_file_atomic(p, framed('a', 10));
  // Two processes and, in each, two threads, 100 writes each, of different sizes.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  const bool child = pid == 0;
  int torn = 0;
  {
    std::vector<std::thread> writers;
    for (int t = 0; t < 2; ++t)
      writers.emplace_back([&, t] {
        const char fill = static_cast<char>((child ? 'p' : 'c') + t);
        for (int i = 0; i < 100; ++i) write_file_atomic(p, framed(fill, 1000 + 997 * static_cast<size_t>(i)));
      });
    // Meanwhile every read sees a whole file.
    for (int i = 0; i < 200; ++i)
      if (!is_complete_frame(read_all(p))) ++torn;
    for (auto& w : writers) w.join();
  }
  if (child) ::_exit(torn == 0 ? 0 : 1);
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(torn == 0);
  CHECK(is_complete_frame(read_all(p)));
  CHECK(temporaries_in(d.dir) == 0);
}
