#pragma once
// HcclLike: the collective interface every rank uses (modelled on HCCL/NCCL and c10d's Backend/Work).
// Operations work on contiguous buffers and return a Work handle at once; they run in issue order on
// the backend's progress thread, so the caller can compute while they run (an operation issued while
// the backend is idle is started by the calling thread: docs/collectives.md#the-fast-path).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mpibert {

enum class DataType { F32, F64, F16, BF16, I32, I64, U8 };
enum class ReduceOp { Sum, Avg, Min, Max, Prod };

size_t dtype_size(DataType dtype);
const char* dtype_name(DataType dtype);
const char* reduce_op_name(ReduceOp op);
bool is_floating(DataType dtype);

// A collective failed (MPI error, bad arguments seen late) or did not finish in time.
class CollectiveError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class CollectiveTimeout : public CollectiveError {
 public:
  using CollectiveError::CollectiveError;
};

// How long an alive wait (Work::waitAlive) tolerates a silent peer unless told otherwise: heartbeats
// come every ~0.5 s, so a peer silent this long is stopped, dead or cut off, not busy.
constexpr std::chrono::milliseconds kDefaultPeerSilence{std::chrono::minutes(5)};

class Work {
 public:
  virtual ~Work() = default;
  virtual bool isCompleted() const = 0;
  // Blocks (on a condition variable) until the op finished; an op started on the calling thread (the
  // fast path) is first polled by the waiting thread while it would be spun on anyway. Throws
  // CollectiveError if it failed, CollectiveTimeout if it has not finished within timeout of this call
  // (the op cannot be cancelled: the caller is expected to abort the job). A negative timeout waits
  // forever.
  virtual void wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1)) = 0;
  // Blocks until the op finished, however long that takes, as long as every peer is alive: throws
  // CollectiveTimeout naming the rank only when a peer has not been heard from (heartbeats) for
  // `silence`. For phases where one rank works alone while the others wait (rank 0 training a
  // tokenizer, reading a checkpoint). Throws CollectiveError if the op failed. A silence <= 0 waits
  // forever. The progress thread polls an op waited on this way gently (it sleeps between tests after
  // 50 us), where other ops are polled without pause for their first 200 ms, as blocking MPI would.
  virtual void waitAlive(std::chrono::milliseconds silence = kDefaultPeerSilence) = 0;
};
using WorkPtr = std::shared_ptr<Work>;

class HcclLike {
 public:
  virtual ~HcclLike() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // recv may equal send (in place). count elements per rank.
  virtual WorkPtr allReduce(const void* send, void* recv, size_t count, DataType dtype, ReduceOp op) = 0;
  virtual WorkPtr broadcast(void* buffer, size_t count, DataType dtype, int root) = 0;
  // recv holds size() * count elements, rank r's contribution at offset r * count.
  virtual WorkPtr allGather(const void* send, void* recv, size_t count, DataType dtype) = 0;
  // send holds size() * count elements; rank r receives the reduction of block r (count elements).
  virtual WorkPtr reduceScatter(const void* send, void* recv, size_t count, DataType dtype, ReduceOp op) = 0;
  virtual WorkPtr barrier() = 0;

  // Variable-size gathers. counts has size() entries, the same on every rank: rank r contributes
  // counts[r] elements (send holds counts[rank()]). recv holds the sum of counts, rank r's block right
  // after those of ranks < r; gatherv fills it on root only (recv may be null elsewhere). Any sizes:
  // blocks beyond MPI's int counts are moved in rounds.
  virtual WorkPtr gatherv(const void* send, void* recv, const std::vector<size_t>& counts, DataType dtype,
                          int root) = 0;
  virtual WorkPtr allGatherv(const void* send, void* recv, const std::vector<size_t>& counts, DataType dtype) = 0;

  // A wait with a timeout that lasts `after` warns, naming the ranks that have not issued the collective
  // (0: never). Backends without peers ignore it.
  virtual void setStallWarning(std::chrono::milliseconds after) {}
  // Debug mode (dist.debug detail): every collective first compares its number, op, count, type and
  // root across ranks and fails on every rank, naming both sides, on the first mismatch. Costs one
  // small all-gather per collective. Set it on every rank at the same point between collectives.
  virtual void setDebugChecks(bool on) {}

  // Ends the whole job at once (MPI_Abort): used when a collective timed out and cannot be cancelled.
  [[noreturn]] virtual void abortJob(int code, const std::string& why) = 0;
};

// Waits for `work` up to timeout_s; a CollectiveTimeout aborts the whole job (a collective cannot be
// cancelled, so the ranks could never agree again). CollectiveErrors propagate.
void wait_or_abort(HcclLike& comm, const WorkPtr& work, double timeout_s);

// timeout_s as the silence limit of agree() and the other agreement helpers.
std::chrono::milliseconds silence_limit(double timeout_s);

}  // namespace mpibert
