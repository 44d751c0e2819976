#include "common/comm/peer_liveness.h"

#include <algorithm>
#include <cstdio>

namespace mpibert {
namespace {

double seconds(SteadyClock::duration d) {
  return std::max(0.0, std::chrono::duration<double>(d).count());
}

std::string format_seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", s);
  return text;
}

}  // namespace

PeerLiveness::PeerLiveness(int rank, int size, SteadyClock::time_point start)
    : rank_(rank), size_(size), serviced_(start), peers_(static_cast<size_t>(size)) {
  for (auto& p : peers_) p.heard = start;
}

void PeerLiveness::heard(int peer, const HeartbeatMessage& m, SteadyClock::time_point at) {
  std::lock_guard<std::mutex> lock(mutex_);
  Peer& p = peers_[static_cast<size_t>(peer)];
  p.heard = at;
  p.issued = m.issued;
  p.completed = m.completed;
  p.seq = m.seq;
  if (peer == 0 && rank_ != 0) relayed_ = m;
}

void PeerLiveness::serviced(SteadyClock::time_point at, uint64_t issued, uint64_t completed) {
  std::lock_guard<std::mutex> lock(mutex_);
  serviced_ = std::max(serviced_, at);
  issued_ = issued;
  completed_ = completed;
}

double PeerLiveness::silenceOf(int peer) const {
  return seconds(serviced_ - peers_[static_cast<size_t>(peer)].heard);
}

HeartbeatMessage PeerLiveness::outgoing(int peer, uint64_t issued, uint64_t completed) {
  std::lock_guard<std::mutex> lock(mutex_);
  HeartbeatMessage m;
  m.seq = ++sent_;
  m.echo = peers_[static_cast<size_t>(peer)].seq;
  m.issued = issued;
  m.completed = completed;
  if (rank_ != 0) return m;
  double longest = -1;
  for (int r = 1; r < size_; ++r) {
    const double s = silenceOf(r);
    if (s > longest) {
      longest = s;
      m.quiet_rank = r;
    }
  }
  if (m.quiet_rank > 0) {
    const Peer& p = peers_[static_cast<size_t>(m.quiet_rank)];
    m.quiet_us = static_cast<int64_t>(longest * 1e6);
    m.quiet_issued = p.issued;
    m.quiet_completed = p.completed;
  }
  return m;
}

uint64_t PeerLiveness::waitMark() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sent_ + 1;
}

std::optional<SilentPeer> PeerLiveness::silentFor(std::chrono::milliseconds limit, uint64_t mark) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const double limit_s = std::chrono::duration<double>(limit).count();
  std::optional<SilentPeer> worst;
  auto consider = [&](SilentPeer candidate) {
    if (candidate.seconds >= limit_s && (!worst || candidate.seconds > worst->seconds)) worst = candidate;
  };
  if (rank_ == 0) {
    for (int r = 1; r < size_; ++r) {
      const Peer& p = peers_[static_cast<size_t>(r)];
      consider({r, silenceOf(r), false, p.issued, p.completed});
    }
    return worst;
  }
  if (size_ < 2) return worst;
  const Peer& root = peers_[0];
  consider({0, silenceOf(0), false, root.issued, root.completed});
  if (worst || relayed_.echo < mark || relayed_.quiet_rank <= 0 || relayed_.quiet_rank == rank_) return worst;
  const double relayed_s = static_cast<double>(relayed_.quiet_us) / 1e6;
  consider({relayed_.quiet_rank, relayed_s, true, relayed_.quiet_issued, relayed_.quiet_completed});
  return worst;
}

std::string PeerLiveness::describe(const SilentPeer& peer, std::chrono::milliseconds limit) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string text = "rank " + std::to_string(peer.rank) + " has not been heard from for " +
                     format_seconds(peer.seconds) + (peer.relayed ? " (as rank 0 reports)" : "") + " (silence limit " +
                     format_seconds(std::chrono::duration<double>(limit).count()) +
                     "): it has stopped, died or is cut off; it last reported " + std::to_string(peer.issued) +
                     " collective(s) issued and " + std::to_string(peer.completed) + " completed, this rank " +
                     std::to_string(issued_) + " and " + std::to_string(completed_);
  return text;
}

void PeerLiveness::setHosts(std::vector<std::string> hosts) {
  std::lock_guard<std::mutex> lock(mutex_);
  hosts_ = std::move(hosts);
}

std::string PeerLiveness::nameOf(int peer) const {
  const auto i = static_cast<size_t>(peer);
  return "rank " + std::to_string(peer) + (i < hosts_.size() ? " (host " + hosts_[i] + ")" : "");
}

std::string PeerLiveness::missingFor(uint64_t seq) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto report = [&](int r, double heard_s, uint64_t issued, uint64_t completed, const char* source) {
    return nameOf(r) + " has not issued it: its last heartbeat" + source + ", " + format_seconds(heard_s) +
           " ago, reported " + std::to_string(issued) + " collective(s) issued and " + std::to_string(completed) +
           " completed";
  };
  std::string text;
  auto add = [&](const std::string& line) { text += (text.empty() ? "" : "; ") + line; };
  if (rank_ == 0) {
    for (int r = 1; r < size_; ++r) {
      const Peer& p = peers_[static_cast<size_t>(r)];
      if (p.issued < seq) add(report(r, silenceOf(r), p.issued, p.completed, ""));
    }
  } else if (size_ > 1) {
    const Peer& root = peers_[0];
    if (root.issued < seq) add(report(0, silenceOf(0), root.issued, root.completed, ""));
    if (relayed_.quiet_rank > 0 && relayed_.quiet_rank != rank_ && relayed_.quiet_issued < seq)
      add(report(relayed_.quiet_rank, static_cast<double>(relayed_.quiet_us) / 1e6, relayed_.quiet_issued,
                 relayed_.quiet_completed, " (as rank 0 relays it)"));
    if (text.empty()) return "rank 0 has issued it; rank 0's log names the ranks that have not";
  }
  if (text.empty())
    return "every rank has issued it: they may have issued different collectives (dist.debug detail compares "
           "them) or the network is stuck";
  return text;
}

}  // namespace mpibert
