#include "common/io/dir_lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

#include "common/error.h"

namespace mpibert::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr off_t kDirByte = 0;     // the directory lock
constexpr off_t kRecordByte = 1;  // serialises reading and rewriting the record
constexpr off_t kSlotBase = 16;   // holder k write-locks byte kSlotBase + k while it lives
constexpr int64_t kMaxSlots = 1 << 20;

std::string errno_text(int err) {
  return std::strerror(err);
}

// Locks (F_RDLCK / F_WRLCK) or unlocks (F_UNLCK) one byte; with `wait`, waits for conflicting holders.
// False when another holder conflicts and `wait` is false.
bool lock_byte(int fd, short type, off_t byte, bool wait, const std::string& path) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  while (::fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) != 0) {
    if (errno == EINTR) continue;
    if (!wait && (errno == EAGAIN || errno == EACCES)) return false;
    throw std::runtime_error(path + ": cannot lock (fcntl F_OFD_SETLK): " + errno_text(errno) +
                             " (does this file system support locks?)");
  }
  return true;
}

// Whether an open file description other than fd's holds a lock on `byte`.
bool byte_locked_by_another(int fd, off_t byte, const std::string& path) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) throw std::runtime_error(path + ": fcntl F_OFD_GETLK: " + errno_text(errno));
  return fl.l_type != F_UNLCK;
}

// Holds the record byte (F_WRLCK to change the record, F_RDLCK to read it) for one scope.
class RecordGuard {
 public:
  RecordGuard(int fd, short type, const std::string& path) : fd_(fd) { lock_byte(fd, type, kRecordByte, true, path); }
  ~RecordGuard() {
    struct flock fl {};
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = kRecordByte;
    fl.l_len = 1;
    ::fcntl(fd_, F_OFD_SETLK, &fl);
  }
  RecordGuard(const RecordGuard&) = delete;
  RecordGuard& operator=(const RecordGuard&) = delete;

 private:
  int fd_;
};

struct Record {
  LockHolder holder;
  int64_t slot = -1;
};

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string read_all(int fd, const std::string& path) {
  std::string text;
  char buf[4096];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(path + ": cannot read: " + errno_text(errno));
    if (n == 0) return text;
    text.append(buf, size_t(n));
    at += n;
  }
}

// Every well-formed line of the record (a line torn by a crash is skipped).
std::vector<Record> read_records(int fd, const std::string& path) {
  std::vector<Record> records;
  const std::string text = read_all(fd, path);
  for (size_t p = 0; p < text.size();) {
    size_t nl = text.find('\n', p);
    if (nl == std::string::npos) nl = text.size();
    const json j = json::parse(text.begin() + long(p), text.begin() + long(nl), nullptr, false);
    p = nl + 1;
    if (!j.is_object()) continue;
    try {
      Record r;
      r.holder.mode = j.at("mode").get<std::string>() == "shared" ? LockMode::Shared : LockMode::Exclusive;
      r.holder.purpose = j.at("purpose").get<std::string>();
      r.holder.pid = j.at("pid").get<int64_t>();
      r.holder.host = j.at("host").get<std::string>();
      r.holder.since = j.at("since").get<std::string>();
      r.slot = j.at("slot").get<int64_t>();
      if (r.slot >= 0 && r.slot < kMaxSlots) records.push_back(std::move(r));
    } catch (const json::exception&) {
    }
  }
  return records;
}

// The records whose holders still hold their slot (seen from fd: its own slot counts as free).
std::vector<Record> live_records(int fd, const std::string& path) {
  std::vector<Record> live;
  for (Record& r : read_records(fd, path))
    if (byte_locked_by_another(fd, kSlotBase + off_t(r.slot), path)) live.push_back(std::move(r));
  return live;
}

void write_records(int fd, const std::vector<Record>& records, const std::string& path) {
  std::string text;
  for (const Record& r : records) {
    const json j = {{"mode", r.holder.mode == LockMode::Shared ? "shared" : "exclusive"},
                    {"purpose", r.holder.purpose},
                    {"pid", r.holder.pid},
                    {"host", r.holder.host},
                    {"since", r.holder.since},
                    {"slot", r.slot}};
    text += j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, off_t(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(path + ": cannot write the lock record: " + errno_text(errno));
    done += size_t(n);
  }
  if (::ftruncate(fd, off_t(text.size())) != 0)
    throw std::runtime_error(path + ": cannot truncate the lock record: " + errno_text(errno));
}

int64_t take_free_slot(int fd, const std::string& path) {
  for (int64_t k = 0; k < kMaxSlots; ++k)
    if (lock_byte(fd, F_WRLCK, kSlotBase + off_t(k), false, path)) return k;
  throw std::runtime_error(path + ": no free holder slot among " + std::to_string(kMaxSlots));
}

bool is_path_error(int err) {
  return err == EACCES || err == EPERM || err == EROFS || err == ENOTDIR || err == ENOENT || err == EEXIST ||
         err == ENAMETOOLONG || err == ELOOP;
}

// mkdir -p that tolerates another process creating the same directories at the same time.
void make_directories(const std::string& dir) {
  fs::path prefix;
  for (const fs::path& part : fs::path(dir)) {
    prefix /= part;
    if (part.empty() || ::mkdir(prefix.c_str(), 0777) == 0 || errno == EEXIST) continue;
    const int err = errno;
    const std::string what = dir + ": cannot create directory " + prefix.string() + ": " + errno_text(err);
    if (is_path_error(err)) throw UsageError(what);
    throw std::runtime_error(what);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw UsageError(dir + ": not a directory");
}

std::string in_use_message(const std::string& dir, const std::string& path, const std::vector<Record>& holders) {
  std::string who;
  for (const Record& r : holders) who += (who.empty() ? "" : "; ") + describe_holder(r.holder);
  if (who.empty())
    return dir + " is in use by another process (lock file " + path +
           ", which records no holder: a reader that may not write there); wait for it or use another directory";
  return dir + " is in use: " + who + " (lock file " + path + "); wait for it or use another directory";
}

}  // namespace

std::string dir_lock_file(const std::string& dir) {
  return (fs::path(dir) / DirLock::kFileName).string();
}

std::string describe_holder(const LockHolder& h) {
  return h.purpose + " by pid " + std::to_string(h.pid) + " on host " + h.host + " since " + h.since +
         (h.mode == LockMode::Shared ? " (shared)" : "");
}

DirLock DirLock::acquire(const std::string& dir, LockMode mode, const std::string& purpose) {
  DirLock lock;
  lock.path_ = dir_lock_file(dir);
  lock.mode_ = mode;
  if (mode == LockMode::Exclusive) {
    make_directories(dir);
  } else if (struct stat st{}; ::stat(dir.c_str(), &st) != 0) {
    lock.not_held_reason_ = dir + ": " + errno_text(errno);  // "No such file or directory"
    return lock;
  } else if (!S_ISDIR(st.st_mode)) {
    lock.not_held_reason_ = dir + ": not a directory";
    return lock;
  }
  lock.fd_ = ::open(lock.path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (lock.fd_ < 0) {
    const int err = errno;
    if (mode == LockMode::Exclusive || !is_path_error(err))
      throw UsageError(lock.path_ + ": cannot create the lock file: " + errno_text(err));
    // A reader of a directory it may not write: read-lock the file if there is one, without a record.
    lock.fd_ = ::open(lock.path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (lock.fd_ < 0) {
      lock.not_held_reason_ = dir + " is not writable here (" + errno_text(err) + ") and has no lock file";
      return lock;
    }
    RecordGuard guard(lock.fd_, F_RDLCK, lock.path_);
    if (!lock_byte(lock.fd_, F_RDLCK, kDirByte, false, lock.path_))
      throw UsageError(in_use_message(dir, lock.path_, live_records(lock.fd_, lock.path_)));
    return lock;
  }
  RecordGuard guard(lock.fd_, F_WRLCK, lock.path_);
  if (!lock_byte(lock.fd_, mode == LockMode::Exclusive ? F_WRLCK : F_RDLCK, kDirByte, false, lock.path_))
    throw UsageError(in_use_message(dir, lock.path_, live_records(lock.fd_, lock.path_)));
  lock.slot_ = take_free_slot(lock.fd_, lock.path_);
  std::vector<Record> records = live_records(lock.fd_, lock.path_);
  records.push_back({LockHolder{mode, purpose, int64_t(::getpid()), host_name(), utc_now()}, lock.slot_});
  write_records(lock.fd_, records, lock.path_);
  return lock;
}

DirLock::~DirLock() {
  release();
}

DirLock::DirLock(DirLock&& other) noexcept
    : fd_(other.fd_),
      slot_(other.slot_),
      mode_(other.mode_),
      path_(std::move(other.path_)),
      not_held_reason_(std::move(other.not_held_reason_)) {
  other.fd_ = -1;
  other.slot_ = -1;
}

DirLock& DirLock::operator=(DirLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    slot_ = other.slot_;
    mode_ = other.mode_;
    path_ = std::move(other.path_);
    not_held_reason_ = std::move(other.not_held_reason_);
    other.fd_ = -1;
    other.slot_ = -1;
  }
  return *this;
}

void DirLock::release() noexcept {
  if (fd_ < 0) return;
  if (slot_ >= 0) {
    try {
      RecordGuard guard(fd_, F_WRLCK, path_);
      write_records(fd_, live_records(fd_, path_), path_);  // our own slot reads as free: dropped
    } catch (...) {
      // The record is advisory: a record left behind is dropped by the next holder (its slot is free).
    }
  }
  ::close(fd_);  // drops every lock of this open file description
  fd_ = -1;
  slot_ = -1;
}

TrainingDirLocks lock_training_dirs(const std::string& output_dir, const std::string& shards_dir,
                                    const std::string& purpose) {
  TrainingDirLocks locks;
  locks.output = DirLock::acquire(output_dir, LockMode::Exclusive, purpose);
  std::error_code ec;
  if (fs::equivalent(output_dir, shards_dir, ec)) {
    locks.shards.not_held_reason_ = shards_dir + " is the output directory (held exclusively)";
    return locks;
  }
  locks.shards = DirLock::acquire(shards_dir, LockMode::Shared, purpose);
  return locks;
}

std::vector<LockHolder> dir_lock_holders(const std::string& dir) {
  const std::string path = dir_lock_file(dir);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::vector<LockHolder> holders;
  try {
    RecordGuard guard(fd, F_RDLCK, path);
    for (Record& r : live_records(fd, path)) holders.push_back(std::move(r.holder));
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return holders;
}

}  // namespace mpibert::io
