#pragma once
// Advisory directory locks that the kernel drops when the holder dies, so a crashed run never leaves
// a stale lock: fcntl open-file-description locks (F_OFD_SETLK) on DIR/.mpibert.lock, taken without
// waiting. A writer holds its directory exclusively, a reader shared; a second writer (or a writer
// while readers run, or a reader while a writer runs) fails at once with a one-line UsageError (exit 2)
// naming the directory and every holder:
//   DIR is in use: prepare_data shards by pid 4242 on host node1 since 2025-05-01T10:22:03Z
//   (lock file DIR/.mpibert.lock); wait for it or use another directory
// Take them on one process per job (rank 0) and agree the outcome across ranks (comm/agreement.h), so
// every rank exits 2 with the same message. The locks are as local as the file system's locking
// (directories need not be shared between hosts).
//
// Who holds what:
//   prepare_data (train-tokenizer, shards, all)  data.shards_dir  Exclusive   DirLock::acquire
//   run_mlm                                      output_dir       Exclusive   lock_training_dirs
//                                                data.shards_dir  Shared      (one call, both locks)
// Typical use (rank 0, for the whole run; the locks go when the object is destroyed or the process dies):
//   io::TrainingDirLocks locks;
//   agree(comm, RunOn::Root, [&] { locks = io::lock_training_dirs(output_dir, shards_dir, "run_mlm"); });
//
// The lock file (never deleted; deleting it while held lets another process lock a new file)
// records the holders, one JSON object per line:
//   {"mode":"exclusive","purpose":"prepare_data shards","pid":4242,"host":"node1",
//    "since":"2025-05-01T10:22:03Z","slot":0}
// Byte 0 of the file is the directory lock (write lock = exclusive, read lock = shared), byte 1
// serialises changes to the record, and each holder also write-locks its own byte at 16 + slot, so
// the record of a holder that died (its slot unlocked) is recognised and dropped.
#include <cstdint>
#include <string>
#include <vector>

namespace mpibert::io {

enum class LockMode { Exclusive, Shared };

// One holder, as recorded in the lock file.
struct LockHolder {
  LockMode mode = LockMode::Exclusive;
  std::string purpose;  // what the holder does, e.g. "prepare_data shards"
  int64_t pid = 0;
  std::string host;
  std::string since;  // UTC, ISO 8601 ("2025-05-01T10:22:03Z")
};

struct TrainingDirLocks;

class DirLock {
 public:
  static constexpr const char* kFileName = ".mpibert.lock";

  // Takes DIR's lock without waiting; `purpose` (e.g. "prepare_data shards") names this holder in
  // other processes' errors. Exclusive creates DIR (and its parents) when missing. Throws UsageError
  // "DIR is in use: <purpose> by pid P on host H since T (lock file DIR/.mpibert.lock); wait for it
  // or use another directory" when another holder's mode conflicts (every live holder is named),
  // UsageError when DIR cannot be created, std::runtime_error when locking fails (e.g. a file system
  // without locks).
  // Shared never creates anything but the lock file: when DIR does not exist, or this process may not
  // write it and it has no lock file, the result holds nothing (held() == false, not_held_reason()
  // says why) and the caller goes on unlocked (its own reading reports a missing directory). In a
  // directory it may not write, an existing lock file is read-locked without a record.
  static DirLock acquire(const std::string& dir, LockMode mode, const std::string& purpose);

  DirLock() = default;  // holds nothing
  ~DirLock();           // release()
  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  // Drops this holder's record and the lock (closing the file also drops it; so does death).
  void release() noexcept;
  bool held() const { return fd_ >= 0; }
  LockMode mode() const { return mode_; }
  const std::string& lock_file() const { return path_; }
  const std::string& not_held_reason() const { return not_held_reason_; }

 private:
  friend TrainingDirLocks lock_training_dirs(const std::string&, const std::string&, const std::string&);
  int fd_ = -1;
  int64_t slot_ = -1;  // -1: read-only fallback, no record
  LockMode mode_ = LockMode::Exclusive;
  std::string path_, not_held_reason_;
};

// What run_mlm holds for its whole run: its output directory exclusively (one writer of checkpoints
// and logs) and the shard directory shared (any number of readers; prepare_data is refused meanwhile).
struct TrainingDirLocks {
  DirLock output;  // Exclusive on output_dir
  DirLock shards;  // Shared on shards_dir; holds nothing when it is the same directory as output_dir
                   // (the exclusive lock covers reading), or see DirLock::acquire (Shared)
};

// Takes output_dir Exclusive (creating it), then shards_dir Shared, both with `purpose` (e.g.
// "run_mlm"). Throws like DirLock::acquire; when the second lock fails the first is released.
TrainingDirLocks lock_training_dirs(const std::string& output_dir, const std::string& shards_dir,
                                    const std::string& purpose);

// DIR/.mpibert.lock.
std::string dir_lock_file(const std::string& dir);

// The recorded holders of DIR's lock that are still alive, in the order they took it (empty when the
// lock file is missing or nobody holds it).
std::vector<LockHolder> dir_lock_holders(const std::string& dir);

// "prepare_data shards by pid 4242 on host node1 since 2025-05-01T10:22:03Z" (+ " (shared)").
std::string describe_holder(const LockHolder& holder);

}  // namespace mpibert::io
