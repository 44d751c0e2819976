#pragma once
// What this rank knows about whether its peers are alive. The heartbeat channel (progress thread)
// writes it; threads in Work::waitAlive read it. Silence is counted only while this rank's own progress
// thread runs (up to its last read of the heartbeats), so a rank that was itself descheduled or
// stopped does not blame its peers for the gap.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mpibert {

using SteadyClock = std::chrono::steady_clock;

// Set in HeartbeatMessage::flags on the last message a rank sends on a link (see heartbeat_channel.h).
constexpr int32_t kHeartbeatGoodbye = 1;

// One heartbeat, as sent over MPI (plain bytes).
struct HeartbeatMessage {
  uint64_t seq = 0;        // the sender's heartbeats so far, this one included
  uint64_t echo = 0;       // rank 0 -> rank r: the last seq rank 0 read from rank r
  uint64_t issued = 0;     // collectives the sender has issued on this backend
  uint64_t completed = 0;  // ... and completed
  // Sent by rank 0 only: the peer it has heard from least recently, how long ago, and that peer's counts,
  // so that every rank learns of a silent rank without hearing from it directly.
  int32_t quiet_rank = -1;
  int32_t flags = 0;  // kHeartbeatGoodbye
  int64_t quiet_us = 0;
  uint64_t quiet_issued = 0, quiet_completed = 0;
};

struct SilentPeer {
  int rank = -1;
  double seconds = 0;
  bool relayed = false;  // learnt from rank 0, not heard directly
  uint64_t issued = 0, completed = 0;
};

class PeerLiveness {
 public:
  PeerLiveness(int rank, int size, SteadyClock::time_point start);

  // Progress thread: a heartbeat from `peer` was read at `at`.
  void heard(int peer, const HeartbeatMessage& message, SteadyClock::time_point at);
  // Progress thread: every heartbeat that had arrived by `at` has been read; own counts at that time.
  void serviced(SteadyClock::time_point at, uint64_t issued, uint64_t completed);
  // Progress thread: the heartbeat to send to `peer` now (rank 0's carry the peer heard from least
  // recently).
  HeartbeatMessage outgoing(int peer, uint64_t issued, uint64_t completed);

  // A mark taken when a wait starts: rank 0's reports about other ranks count for that wait only once
  // they echo a heartbeat this rank sent after the mark, i.e. once rank 0 made them after the wait began
  // (an older report may be stale: the rank it named may be back, and rank 0 quiet since).
  uint64_t waitMark() const;
  // The peer silent longest, if it has been silent for at least `limit`: heard directly, or as rank 0
  // reported it after `mark`.
  std::optional<SilentPeer> silentFor(std::chrono::milliseconds limit, uint64_t mark) const;
  // "rank 2 has not been heard from for 1.3 s (...)": for a CollectiveTimeout message.
  std::string describe(const SilentPeer& peer, std::chrono::milliseconds limit) const;
  // Who keeps collective number `seq` (1-based, in issue order) from finishing, as far as this rank
  // knows: rank 0 hears every rank, the others hear rank 0 and the rank it reports quietest. E.g.
  // "rank 1 (host h2) has not issued it: its last heartbeat, 20.3 s ago, reported 56 collective(s)
  // issued and 56 completed".
  std::string missingFor(uint64_t seq) const;

  // Every rank's host name (index = rank), once the heartbeat channel has exchanged them.
  void setHosts(std::vector<std::string> hosts);
  // A wait longer than this prints a warning naming the missing ranks (0: never).
  void setStallWarning(std::chrono::milliseconds after) { stall_warning_ms_.store(after.count()); }
  std::chrono::milliseconds stallWarning() const { return std::chrono::milliseconds(stall_warning_ms_.load()); }

 private:
  struct Peer {
    SteadyClock::time_point heard;
    uint64_t issued = 0, completed = 0;
    uint64_t seq = 0;  // of its last heartbeat read
  };
  double silenceOf(int peer) const;    // seconds, under mutex_
  std::string nameOf(int peer) const;  // "rank 1 (host h2)", under mutex_

  mutable std::mutex mutex_;
  const int rank_, size_;
  SteadyClock::time_point serviced_;
  uint64_t issued_ = 0, completed_ = 0;
  uint64_t sent_ = 0;  // heartbeats sent
  std::vector<Peer> peers_;
  HeartbeatMessage relayed_;  // rank 0's last heartbeat (ranks other than 0)
  std::vector<std::string> hosts_;
  std::atomic<int64_t> stall_warning_ms_{60000};
};

}  // namespace mpibert
