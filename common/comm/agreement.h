#pragma once
// "Rank 0 decides, every rank raises the same error", and the exchanges of strings, JSON and blobs that
// go with it, over any HcclLike. Every function here is collective: every rank of the communicator
// calls it, in the same order. They wait with Work::waitAlive: a rank may work alone for as long as it
// needs (rank 0 training a tokenizer, reading a checkpoint) while the others wait without using a core;
// they fail with CollectiveTimeout, naming the rank, only when a peer has been silent for `silence`.
#include <chrono>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "common/comm/hccl_like.h"
#include "common/error.h"

namespace mpibert {

// An error every rank of a communicator holds (thrown by agree()): the ranks can leave together with
// exitCode(), one of them printing message(); nobody needs to abort the job.
class AgreedError {
 public:
  virtual ~AgreedError() = default;
  virtual int exitCode() const = 0;                // kExitUsage or kExitFailure
  virtual const char* message() const = 0;         // what() of the exception
  int originRank() const { return origin_rank_; }  // the lowest rank where it was raised

 protected:
  explicit AgreedError(int origin_rank) : origin_rank_(origin_rank) {}

 private:
  int origin_rank_;
};

class AgreedUsageError : public UsageError, public AgreedError {
 public:
  AgreedUsageError(const std::string& message, int origin_rank) : UsageError(message), AgreedError(origin_rank) {}
  int exitCode() const override { return kExitUsage; }
  const char* message() const override { return what(); }
};

class AgreedFailure : public std::runtime_error, public AgreedError {
 public:
  AgreedFailure(const std::string& message, int origin_rank) : std::runtime_error(message), AgreedError(origin_rank) {}
  int exitCode() const override { return kExitFailure; }
  const char* message() const override { return what(); }
};

enum class RunOn { Root, EveryRank };

// Runs fn on rank 0 only (RunOn::Root) or on every rank, then lets every rank know whether it threw
// anywhere. If it did, every rank throws the error of the lowest failing rank with the same exit code:
// AgreedUsageError for a UsageError, AgreedFailure for any other exception (its message prefixed with
// "rank K: " when there are several ranks); an AgreedError thrown by fn keeps its message. fn must not
// start collectives on comm unless every rank runs it; a CollectiveError from fn propagates as it is
// (the communicator can no longer agree on anything).
void agree(HcclLike& comm, RunOn where, const std::function<void()>& fn,
           std::chrono::milliseconds silence = kDefaultPeerSilence);

// Runs decide on rank 0 (as agree(RunOn::Root, ...)) and returns its result on every rank.
std::string agree_on_root(HcclLike& comm, const std::function<std::string()>& decide,
                          std::chrono::milliseconds silence = kDefaultPeerSilence);
nlohmann::json agree_on_root_json(HcclLike& comm, const std::function<nlohmann::json()>& decide,
                                  std::chrono::milliseconds silence = kDefaultPeerSilence);

// Rank root's text (any length, empty included) on every rank.
std::string broadcast_string(HcclLike& comm, std::string text, int root = 0,
                             std::chrono::milliseconds silence = kDefaultPeerSilence);
nlohmann::json broadcast_json(HcclLike& comm, const nlohmann::json& value, int root = 0,
                              std::chrono::milliseconds silence = kDefaultPeerSilence);

// Rank root's value of a plain type (an int, an enum, a struct of numbers) on every rank.
template <class T>
T broadcast_value(HcclLike& comm, T value, int root = 0, std::chrono::milliseconds silence = kDefaultPeerSilence) {
  static_assert(std::is_trivially_copyable<T>::value, "broadcast_value moves plain bytes");
  comm.broadcast(&value, sizeof(T), DataType::U8, root)->waitAlive(silence);
  return value;
}

// Every rank's blob, in rank order, on every rank.
std::vector<std::string> all_gather_strings(HcclLike& comm, const std::string& mine,
                                            std::chrono::milliseconds silence = kDefaultPeerSilence);
// Every rank's blob, in rank order, on root; an empty vector on the other ranks.
std::vector<std::string> gather_strings(HcclLike& comm, const std::string& mine, int root = 0,
                                        std::chrono::milliseconds silence = kDefaultPeerSilence);

}  // namespace mpibert
