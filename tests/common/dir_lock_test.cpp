// DirLock: exclusive and shared holders in other processes (fork), the lock dropped by the kernel
// when its holder is killed, the holder named in the error, stale records dropped, directories
// created, and a reader of a directory it may not write.
#include "common/io/dir_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../usage_error_of.h"
#include "unique_temp_dir.h"

namespace mpibert::io {
namespace {

namespace fs = std::filesystem;
using mpibert::testing::UniqueTempDir;
using mpibert::testing::usage_error_of;

std::string this_host() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

std::string read_fd_to_eof(int fd) {
  std::string text;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return text;
    text.append(buf, size_t(n));
  }
}

// Runs `body` in a child process (dying with this one) that reports a string through a pipe, then
// waits for a byte from this process, runs `at_finish` and exits. The constructor returns once the
// report is in.
class ChildProcess {
 public:
  explicit ChildProcess(const std::function<std::string()>& body, const std::function<void()>& at_finish = {}) {
    int up[2], down[2];
    if (::pipe(up) != 0 || ::pipe(down) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::close(up[0]);
      ::close(down[1]);
      std::string report;
      try {
        report = body();
      } catch (const std::exception& e) {
        report = std::string("error: ") + e.what();
      }
      if (::write(up[1], report.data(), report.size()) < 0) ::_exit(3);
      ::close(up[1]);
      char c;
      while (::read(down[0], &c, 1) < 0 && errno == EINTR) {
      }
      if (at_finish) at_finish();
      ::_exit(0);
    }
    ::close(up[1]);
    ::close(down[0]);
    to_child_ = down[1];
    report_ = read_fd_to_eof(up[0]);
    ::close(up[0]);
  }
  ~ChildProcess() { kill_hard(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  const std::string& report() const { return report_; }
  pid_t pid() const { return pid_; }
  // SIGKILL, then wait until it is gone (its open files, and so its locks, are released by then).
  void kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    ::close(to_child_);
    pid_ = -1;
  }
  // Tells the child to finish, and waits for it.
  void finish() {
    if (pid_ <= 0) return;
    const char go = 'q';
    EXPECT_EQ(::write(to_child_, &go, 1), 1);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    ::close(to_child_);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  std::string report_;
};

// A child process that takes DIR's lock and holds it until killed or finished; finishing releases
// the lock explicitly (DirLock::release) before the child exits.
DirLock& child_lock() {
  static DirLock lock;  // in a child: outlives body(), held until finish() or death
  return lock;
}

class Holder : public ChildProcess {
 public:
  Holder(const std::string& dir, LockMode mode, const std::string& purpose)
      : ChildProcess(
            [=] {
              child_lock() = DirLock::acquire(dir, mode, purpose);
              return std::string("held");
            },
            [] { child_lock().release(); }) {}
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DirLock, ExclusiveExcludesASecondExclusiveHolderAndNamesTheFirst) {
  UniqueTempDir tmp("dir_lock");
  const std::string dir = tmp.dir() + "shards";
  Holder writer(dir, LockMode::Exclusive, "prepare_data shards");
  ASSERT_EQ(writer.report(), "held");
  const std::string message = usage_error_of([&] { DirLock::acquire(dir, LockMode::Exclusive, "prepare_data all"); });
  EXPECT_TRUE(contains(message, dir + " is in use: prepare_data shards by pid " + std::to_string(writer.pid()) +
                                    " on host " + this_host() + " since "))
      << message;
  EXPECT_TRUE(contains(message, "Z (lock file " + dir_lock_file(dir) + "); wait for it or use another directory"))
      << message;
  EXPECT_FALSE(contains(message, "(shared)")) << message;
}

TEST(DirLock, SharedHoldersShareAndAreAllRecorded) {
  UniqueTempDir tmp("dir_lock");
  const std::string dir = tmp.dir() + "shards";
  fs::create_directories(dir);  // readers create nothing
  Holder reader(dir, LockMode::Shared, "run_mlm (reading shards)");
  ASSERT_EQ(reader.report(), "held");
  DirLock mine = DirLock::acquire(dir, LockMode::Shared, "run_mlm (second job)");
  EXPECT_TRUE(mine.held());
  const std::vector<LockHolder> holders = dir_lock_holders(dir);
  ASSERT_EQ(holders.size(), 2u);
  EXPECT_EQ(holders[0].pid, reader.pid());
  EXPECT_EQ(holders[0].purpose, "run_mlm (reading shards)");
  EXPECT_EQ(holders[0].mode, LockMode::Shared);
  EXPECT_EQ(holders[1].pid, ::getpid());
  EXPECT_EQ(holders[1].host, this_host());
}

TEST(DirLock, SharedHoldersExcludeAWriterWhichNamesEveryOne) {
  UniqueTempDir tmp("dir_lock");
  const std::string dir = tmp.dir() + "shards";
  fs::create_directories(dir);
  Holder first(dir, LockMode::Shared, "run_mlm job A");
  Holder second(dir, LockMode::Shared, "run_mlm job B");
  ASSERT_EQ(first.report(), "held");
  ASSERT_EQ(second.report(), "held");
  const std::string message =
      usage_error_of([&] { DirLock::acquire(dir, LockMode::Exclusive, "prepare_data shards"); });
  EXPECT_TRUE(contains(message, " is in use: run_mlm job A by pid " + std::to_string(first.pid())));
  EXPECT_TRUE(contains(message, "(shared); run_mlm job B by pid " + std::to_string(second.pid()))) << message;
}

TEST(DirLock, AWriterExcludesReaders) {
  UniqueTempDir tmp("dir_lock");
  const std::string dir = tmp.dir() + "shards";
  Holder writer(dir, LockMode::Exclusive, "prepare_data all");
  ASSERT_EQ(writer.report(), "held");
  const std::string message = usage_error_of([&] { DirLock::acquire(dir, LockMode::Shared, "run_mlm"); });
  EXPECT_TRUE(contains(message, " is in use: prepare_data all by pid " + std::to_string(writer.pid()))) << message;
}

TEST(DirLock, TheKernelDropsTheLockOfAKilledHolderAndItsRecordIsIgnored) {
  UniqueTempDir tmp("dir_lock");
  const std::string dir = tmp.dir() + "out";
  Holder writer(dir, LockMode::Exclusive, "run_mlm (training)");
  ASSERT_EQ(writer.report(), "held");
  const pid_t dead = writer.pid();
  writer.kill_hard();
  std::ifstream in(dir_lock_file(dir));
  const std::string left((std::istreambuf_iterator<char>(in)), {});
  EXPECT_TRUE(contains(left, "\"pid\":" + std::to_string(dead))) << "the killed holder left its record: " << left;
  EXPECT_TRUE(dir_lock_holders(dir).empty());
  DirLock mine = DirLock::acquire(dir, LockMode::Exclusive, "run_mlm (resumed)");
  const auto holders = dir_lock_holders(dir);
  ASSERT_EQ(holders.size(), 1u);
  EXPECT_EQ(holders[0].pid, ::getpid());
  EXPECT_EQ(holders[0].purpose, "run_mlm (resumed)");
}

TEST(DirLock, ReleaseRemovesTheRecordAndLetsTheNextHolderIn) {
  UniqueTempDir tmp("dir_lock");
  const std::string dir = tmp.dir() + "shards";
  Holder writer(dir, LockMode::Exclusive, "first writer");
  ASSERT_EQ(writer.report(), "held");
  writer.finish();
  std::ifstream in(dir_lock_file(dir));
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), "");
  DirLock a = DirLock::acquire(dir, LockMode::Exclusive, "in-process writer");
  // Locks belong to open file descriptions: a second one conflicts even within one process.
  EXPECT_TRUE(contains(usage_error_of([&] { DirLock::acquire(dir, LockMode::Exclusive, "other"); }),
                       "in-process writer by pid " + std::to_string(::getpid())));
  DirLock moved = std::move(a);
  EXPECT_FALSE(a.held());
  EXPECT_TRUE(moved.held());
  moved.release();
  EXPECT_FALSE(moved.held());
  EXPECT_TRUE(DirLock::acquire(dir, LockMode::Exclusive, "next").held());
}

TEST(DirLock, AWriterCreatesMissingDirectoriesEvenWhenOthersCreateThemAtTheSameTime) {
  UniqueTempDir tmp("dir_lock");
  std::vector<std::unique_ptr<Holder>> writers;
  for (int i = 0; i < 4; ++i) {
    const std::string dir = tmp.dir() + "a/b/c/shards" + std::to_string(i);
    writers.push_back(std::make_unique<Holder>(dir, LockMode::Exclusive, "writer " + std::to_string(i)));
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(writers[size_t(i)]->report(), "held");
    const std::string dir = tmp.dir() + "a/b/c/shards" + std::to_string(i);
    EXPECT_TRUE(fs::is_directory(dir));
    ASSERT_EQ(dir_lock_holders(dir).size(), 1u);
    EXPECT_EQ(dir_lock_holders(dir)[0].purpose, "writer " + std::to_string(i));
  }
  fs::create_directories(tmp.dir() + "file_parent");
  std::ofstream(tmp.dir() + "file_parent/x") << "not a directory";
  EXPECT_TRUE(
      contains(usage_error_of([&] { DirLock::acquire(tmp.dir() + "file_parent/x/shards", LockMode::Exclusive, "w"); }),
               "cannot create directory"));
}

TEST(DirLock, AReaderCreatesNothingAndHoldsNothingWhenTheDirectoryIsMissing) {
  UniqueTempDir tmp("dir_lock");
  const std::string dir = tmp.dir() + "missing";
  DirLock lock = DirLock::acquire(dir, LockMode::Shared, "run_mlm");
  EXPECT_FALSE(lock.held());
  EXPECT_EQ(lock.not_held_reason(), dir + ": No such file or directory");
  EXPECT_FALSE(fs::exists(dir));
}

TEST(LockTrainingDirs, HoldsTheOutputExclusivelyAndTheShardsShared) {
  UniqueTempDir tmp("dir_lock");
  const std::string out = tmp.dir() + "out", shards = tmp.dir() + "shards";
  fs::create_directories(shards);
  TrainingDirLocks locks = lock_training_dirs(out, shards, "run_mlm");
  EXPECT_TRUE(locks.output.held());
  EXPECT_EQ(locks.output.mode(), LockMode::Exclusive);
  EXPECT_TRUE(locks.shards.held());
  EXPECT_EQ(locks.shards.mode(), LockMode::Shared);
  EXPECT_TRUE(fs::is_directory(out));
  // A second training job may read the shards but not write the same output directory.
  EXPECT_TRUE(DirLock::acquire(shards, LockMode::Shared, "run_mlm (other job)").held());
  EXPECT_TRUE(contains(usage_error_of([&] { lock_training_dirs(out, shards, "run_mlm (other job)"); }),
                       out + " is in use: run_mlm by pid " + std::to_string(::getpid())));
  // prepare_data may not rewrite the shards meanwhile.
  EXPECT_TRUE(contains(usage_error_of([&] { DirLock::acquire(shards, LockMode::Exclusive, "prepare_data shards"); }),
                       shards + " is in use: run_mlm by pid " + std::to_string(::getpid())));
  locks = TrainingDirLocks{};
  EXPECT_TRUE(DirLock::acquire(shards, LockMode::Exclusive, "prepare_data shards").held());
}

TEST(LockTrainingDirs, RefusedWhilePrepareDataWritesTheShardsAndReleasesTheOutputLock) {
  UniqueTempDir tmp("dir_lock");
  const std::string out = tmp.dir() + "out", shards = tmp.dir() + "shards";
  Holder writer(shards, LockMode::Exclusive, "prepare_data shards");
  ASSERT_EQ(writer.report(), "held");
  EXPECT_TRUE(contains(usage_error_of([&] { lock_training_dirs(out, shards, "run_mlm"); }),
                       shards + " is in use: prepare_data shards by pid " + std::to_string(writer.pid())));
  EXPECT_TRUE(dir_lock_holders(out).empty());
  EXPECT_TRUE(DirLock::acquire(out, LockMode::Exclusive, "next").held());
}

TEST(LockTrainingDirs, OneDirectoryForBothIsHeldExclusivelyOnce) {
  UniqueTempDir tmp("dir_lock");
  const std::string dir = tmp.dir() + "both";
  TrainingDirLocks locks = lock_training_dirs(dir, dir + "/.", "run_mlm");
  EXPECT_TRUE(locks.output.held());
  EXPECT_FALSE(locks.shards.held());
  EXPECT_EQ(locks.shards.not_held_reason(), dir + "/. is the output directory (held exclusively)");
  EXPECT_EQ(dir_lock_holders(dir).size(), 1u);
}

TEST(DirLock, TornOrForeignLinesInTheLockFileAreIgnored) {
  UniqueTempDir tmp("dir_lock");
  const std::string dir = tmp.dir() + "shards";
  fs::create_directories(dir);
  std::ofstream(dir_lock_file(dir))
      << "{\"mode\":\"exclusive\",\"purp\n"
      << "not json\n"
      << "{\"mode\":\"shared\",\"purpose\":\"x\",\"pid\":1,\"host\":\"h\",\"since\":\"t\","
         "\"slot\":3}\n";
  Holder writer(dir, LockMode::Exclusive, "writer");
  ASSERT_EQ(writer.report(), "held");
  const auto holders = dir_lock_holders(dir);
  ASSERT_EQ(holders.size(), 1u);
  EXPECT_EQ(holders[0].purpose, "writer");
}

// In a child process: takes away the right to write DIR and its lock file (by becoming another user
// when this test runs as root, else by making them read-only). "" when that worked.
std::string drop_write_access(const std::string& dir) {
  if (::geteuid() == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) return "setuid failed";
  } else {
    ::chmod(dir_lock_file(dir).c_str(), 0444);
    if (::chmod(dir.c_str(), 0555) != 0) return "chmod failed";
  }
  if (::access(dir.c_str(), W_OK) == 0) return "still writable";
  return "";
}

// In this process, after a child dropped write access.
void restore_write_access(const std::string& dir) {
  ::chmod(dir.c_str(), 0755);
  ::chmod(dir_lock_file(dir).c_str(), 0644);
}

// Runs `body` in a child that may not write DIR; returns its report.
std::string as_reader_without_write_access(const std::string& dir, const std::function<std::string()>& body) {
  ChildProcess child([&] {
    const std::string dropped = drop_write_access(dir);
    return dropped.empty() ? body() : dropped;
  });
  restore_write_access(dir);
  return child.report();
}

TEST(DirLock, AReaderOfADirectoryItMayNotWrite) {
  UniqueTempDir tmp("dir_lock");
  ::chmod(tmp.dir().c_str(), 0755);  // others may look inside
  const std::string dir = tmp.dir() + "readonly";
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  EXPECT_EQ(as_reader_without_write_access(dir,
                                           [&] {
                                             DirLock lock = DirLock::acquire(dir, LockMode::Shared, "reader");
                                             return lock.held() ? std::string("held") : lock.not_held_reason();
                                           }),
            dir + " is not writable here (Permission denied) and has no lock file");
  EXPECT_TRUE(contains(as_reader_without_write_access(dir,
                                                      [&] {
                                                        DirLock::acquire(dir, LockMode::Exclusive, "writer");
                                                        return std::string("held");
                                                      }),
                       "cannot create the lock file: Permission denied"));
  { DirLock::acquire(dir, LockMode::Exclusive, "made the lock file"); }
  EXPECT_EQ(as_reader_without_write_access(dir,
                                           [&] {
                                             DirLock lock = DirLock::acquire(dir, LockMode::Shared, "reader");
                                             if (!lock.held()) return lock.not_held_reason();
                                             // Held without a record: a writer is refused, naming nobody.
                                             return std::string(dir_lock_holders(dir).empty() ? "held" : "recorded");
                                           }),
            "held");
}

TEST(DirLock, AWriterRefusedByAnUnrecordedReaderSaysSo) {
  UniqueTempDir tmp("dir_lock");
  ::chmod(tmp.dir().c_str(), 0755);
  const std::string dir = tmp.dir() + "readonly";
  { DirLock::acquire(dir, LockMode::Exclusive, "made the lock file"); }
  restore_write_access(dir);
  ChildProcess reader([&] {
    const std::string dropped = drop_write_access(dir);
    if (!dropped.empty()) return dropped;
    static DirLock lock;  // held until the child exits
    lock = DirLock::acquire(dir, LockMode::Shared, "reader");
    return std::string(lock.held() ? "held" : lock.not_held_reason());
  });
  ASSERT_EQ(reader.report(), "held");
  restore_write_access(dir);
  EXPECT_TRUE(contains(usage_error_of([&] { DirLock::acquire(dir, LockMode::Exclusive, "prepare_data shards"); }),
                       dir + " is in use by another process (lock file " + dir_lock_file(dir) + ", which records "));
}

}  // namespace
}  // namespace mpibert::io
