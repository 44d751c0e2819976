#include "common/comm/mpi_backend.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <vector>

#include "common/comm/finalize_hooks.h"
#include "common/comm/half_reduce_ops.h"
#include "common/comm/mpi_mapping.h"
#include "common/comm/progress_engine.h"
#include "common/error.h"

namespace mpibert {
namespace {

bool is_half(DataType d) {
  return d == DataType::F16 || d == DataType::BF16;
}

void divide(void* buf, size_t n, DataType d, int size) {
  if (is_half(d)) {
    divide_half(buf, n, d, size);
  } else if (d == DataType::F32) {
    auto* p = static_cast<float*>(buf);
    for (size_t i = 0; i < n; ++i) p[i] /= static_cast<float>(size);
  } else if (d == DataType::F64) {
    auto* p = static_cast<double*>(buf);
    for (size_t i = 0; i < n; ++i) p[i] /= static_cast<double>(size);
  }
}

char* at(void* base, size_t elements, size_t element_size) {
  return static_cast<char*>(base) + elements * element_size;
}
const char* at(const void* base, size_t elements, size_t element_size) {
  return static_cast<const char*>(base) + elements * element_size;
}

// A StopsBeforeFinalize besides its engine: the 16-bit reduction ops must be freed before MPI_Finalize,
// and only once the engine has stopped using them.
class MpiBackend : public HcclLike, private StopsBeforeFinalize {
 public:
  MpiBackend(MPI_Comm parent, const MpiBackendOptions& options)
      : max_chunk_(std::clamp<size_t>(options.max_elements_per_call, 1, static_cast<size_t>(1) << 30)),
        engine_(parent, options.heartbeat_interval, options.close_wait) {
    rank_ = engine_.rank();
    size_ = engine_.size();
    engine_.liveness().setStallWarning(options.stall_warning);
    register_before_finalize(this);
  }

  ~MpiBackend() override {
    unregister_before_finalize(this);
    stopBeforeFinalize();
  }

  void setStallWarning(std::chrono::milliseconds after) override { engine_.liveness().setStallWarning(after); }
  void setDebugChecks(bool on) override { debug_checks_.store(on); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  ProgressEngine& engine() { return engine_; }

  WorkPtr allReduce(const void* send, void* recv, size_t count, DataType d, ReduceOp op) override {
    std::string what = describe("allReduce", count, d, reduce_op_name(op));
    check_reduction(what, d, op);
    check_buffers(what, count, send, recv);
    if (count <= max_chunk_) {
      const void* s = send == recv ? MPI_IN_PLACE : send;
      const MPI_Op mop = reduce_op(d, op);
      return submit_call(
          std::move(what), count * dtype_size(d), divide_if_avg(op, recv, count, d),
          [=](MPI_Request* r) { return MPI_Iallreduce(s, recv, int(count), mpi_type(d), mop, comm(), r); });
    }
    return submit(what, [=] {
      // f16/bf16 go as they are (2 bytes per element) through the 16-bit ops: no f32 copy.
      const size_t es = dtype_size(d);
      const MPI_Op mop = reduce_op(d, op);
      chunked(count, [&](size_t off, int n) {
        const void* s = send == recv ? MPI_IN_PLACE : at(send, off, es);
        engine_.run(what, size_t(n) * es, [&](MPI_Request* r) {
          return MPI_Iallreduce(s, at(recv, off, es), n, mpi_type(d), mop, comm(), r);
        });
      });
      if (op == ReduceOp::Avg) divide(recv, count, d, size_);
    });
  }

  WorkPtr broadcast(void* buffer, size_t count, DataType d, int root) override {
    std::string what = describe("broadcast", count, d, nullptr) + " from root " + std::to_string(root);
    check_root(what, root);
    check_buffers(what, count, buffer, buffer);
    if (count <= max_chunk_)
      return submit_call(std::move(what), count * dtype_size(d), nullptr, [=](MPI_Request* r) {
        return MPI_Ibcast(buffer, static_cast<int>(count), mpi_type(d), root, comm(), r);
      });
    return submit(what, [=] {
      const size_t es = dtype_size(d);
      chunked(count, [&](size_t off, int n) {
        engine_.run(what, size_t(n) * es,
                    [&](MPI_Request* r) { return MPI_Ibcast(at(buffer, off, es), n, mpi_type(d), root, comm(), r); });
      });
    });
  }

  WorkPtr allGather(const void* send, void* recv, size_t count, DataType d) override {
    std::string what = describe("allGather", count, d, nullptr);
    check_int_count(what, count);
    check_buffers(what, count, send, recv);
    const size_t bytes = count * dtype_size(d);
    // In place when send already sits at this rank's slot of recv.
    const void* s = send == at(recv, static_cast<size_t>(rank_), bytes) ? MPI_IN_PLACE : send;
    return submit_call(std::move(what), bytes * static_cast<size_t>(size_), nullptr, [=](MPI_Request* r) {
      const int n = static_cast<int>(count);
      return MPI_Iallgather(s, n, mpi_type(d), recv, n, mpi_type(d), comm(), r);
    });
  }

  WorkPtr reduceScatter(const void* send, void* recv, size_t count, DataType d, ReduceOp op) override {
    std::string what = describe("reduceScatter", count, d, reduce_op_name(op));
    check_reduction(what, d, op);
    check_int_count(what, count * static_cast<size_t>(size_));
    check_buffers(what, count, send, recv);
    // In place (recv == send): the result lands in the first count elements of the buffer.
    const void* s = send == recv ? MPI_IN_PLACE : send;
    const MPI_Op mop = reduce_op(d, op);
    return submit_call(
        std::move(what), count * static_cast<size_t>(size_) * dtype_size(d), divide_if_avg(op, recv, count, d),
        [=](MPI_Request* r) { return MPI_Ireduce_scatter_block(s, recv, int(count), mpi_type(d), mop, comm(), r); });
  }

  WorkPtr barrier() override {
    return submit_call("barrier #" + std::to_string(++seq_), 0, nullptr,
                       [this](MPI_Request* r) { return MPI_Ibarrier(comm(), r); });
  }

  WorkPtr gatherv(const void* send, void* recv, const std::vector<size_t>& counts, DataType d, int root) override {
    std::string what = describe_v("gatherv", counts, d) + " to root " + std::to_string(root);
    check_root(what, root);
    check_counts(what, counts, d, send, recv, rank_ == root);
    if (total_of(counts) <= max_chunk_)
      return submit_call(std::move(what), total_of(counts) * dtype_size(d), nullptr,
                         gatherv_start(send, recv, counts, d, root));
    return submit(what, [=] { run_gatherv(what, send, recv, counts, d, root); });
  }

  WorkPtr allGatherv(const void* send, void* recv, const std::vector<size_t>& counts, DataType d) override {
    std::string what = describe_v("allGatherv", counts, d);
    check_counts(what, counts, d, send, recv, true);
    if (total_of(counts) <= max_chunk_)
      return submit_call(std::move(what), total_of(counts) * dtype_size(d), nullptr,
                         gatherv_start(send, recv, counts, d, -1));
    return submit(what, [=] { run_gatherv(what, send, recv, counts, d, -1); });
  }

  [[noreturn]] void abortJob(int code, const std::string& why) override {
    std::fprintf(stderr, "mpibert: rank %d aborts the job: %s\n", rank_, why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; keep the compiler (and a broken MPI) honest
  }

 private:
  MPI_Comm comm() const { return engine_.comm(); }

  // MPI's own op, or for f16/bf16 this backend's user op (MPI has no 16-bit float reductions).
  MPI_Op reduce_op(DataType d, ReduceOp op) const { return is_half(d) ? half_ops_.get(d, op) : mpi_op(op); }

  // Before MPI_Finalize, or when the backend goes: the engine stops first (its ops may use half_ops_).
  void stopBeforeFinalize() override {
    engine_.stopBeforeFinalize();
    half_ops_.release();
  }

  // Every op goes through here; with debug checks each first compares its description across ranks.
  WorkPtr submit(std::string what, ProgressEngine::Op op) {
    if (debug_checks_.load())
      op = [this, what, inner = std::move(op)] {
        check_fingerprint(what);
        inner();
      };
    return engine_.enqueue(std::move(what), std::move(op));
  }

  // An op of one MPI call: the engine may start it at once on this thread (its fast path). With debug
  // checks, the fingerprint is a call of its own before it, so the op queues as any other.
  WorkPtr submit_call(std::string what, size_t bytes, std::function<void()> finish,
                      std::function<int(MPI_Request*)> start) {
    if (debug_checks_.load())
      return submit(what, [this, what, bytes, finish, start] {
        engine_.run(what, bytes, start);
        if (finish) finish();
      });
    return engine_.enqueue(std::move(what), ProgressEngine::Call{bytes, std::move(start), std::move(finish)});
  }

  std::function<void()> divide_if_avg(ReduceOp op, void* recv, size_t count, DataType d) const {
    if (op != ReduceOp::Avg) return nullptr;
    return [=] { divide(recv, count, d, size_); };
  }

  // dist.debug detail: the op's description ("allReduce #57 (4 x f64, sum)": number, op, count, type,
  // root) gathered from every rank before the op runs, so that a mismatch fails on every rank at once,
  // naming both sides, instead of corrupting memory or waiting for the timeout.
  void check_fingerprint(const std::string& what) {
    constexpr size_t kChars = 128;
    std::vector<char> mine(kChars, '\0'), all(kChars * static_cast<size_t>(size_), '\0');
    std::memcpy(mine.data(), what.data(), std::min(what.size(), kChars - 1));
    engine_.run("fingerprint of " + what, all.size(), [&](MPI_Request* r) {
      return MPI_Iallgather(mine.data(), kChars, MPI_CHAR, all.data(), kChars, MPI_CHAR, comm(), r);
    });
    for (int r = 0; r < size_; ++r) {
      const std::string theirs(all.data() + static_cast<size_t>(r) * kChars);
      if (theirs != mine.data())
        throw CollectiveError("dist.debug detail: the ranks issued different collectives: rank " +
                              std::to_string(rank_) + " issued " + what + ", rank " + std::to_string(r) + " issued " +
                              theirs + " (every rank must issue the same collectives in the same order)");
    }
  }

  void chunked(size_t count, const std::function<void(size_t, int)>& fn) const {
    if (count == 0) {
      fn(0, 0);
      return;
    }
    for (size_t off = 0; off < count; off += max_chunk_) fn(off, static_cast<int>(std::min(max_chunk_, count - off)));
  }

  static size_t total_of(const std::vector<size_t>& counts) {
    return std::accumulate(counts.begin(), counts.end(), size_t(0));
  }

  // Starts one gatherv (root >= 0) or allgatherv (root < 0) call of int counts (the sum within one call),
  // blocks back to back in recv.
  std::function<int(MPI_Request*)> gatherv_start(const void* send, void* recv, const std::vector<size_t>& counts,
                                                 DataType d, int root) {
    std::vector<int> n(counts.size()), displs(counts.size());
    int offset = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      n[r] = static_cast<int>(counts[r]);
      displs[r] = offset;
      offset += n[r];
    }
    const MPI_Datatype t = mpi_type(d);
    return [this, send, recv, n = std::move(n), displs = std::move(displs), t, root](MPI_Request* r) {
      const int mine = n[static_cast<size_t>(rank_)];
      if (root < 0) return MPI_Iallgatherv(send, mine, t, recv, n.data(), displs.data(), t, comm(), r);
      return MPI_Igatherv(send, mine, t, recv, n.data(), displs.data(), t, root, comm(), r);
    };
  }

  void gatherv_call(const std::string& what, const void* send, void* recv, const std::vector<size_t>& counts,
                    DataType d, int root) {
    engine_.run(what, total_of(counts) * dtype_size(d), gatherv_start(send, recv, counts, d, root));
  }

  // Larger than one call: round k moves elements [k*per, (k+1)*per) of every rank's block through a
  // staging buffer, which the receivers copy to the blocks' places.
  void run_gatherv(const std::string& what, const void* send, void* recv, const std::vector<size_t>& counts, DataType d,
                   int root) {
    const size_t total = std::accumulate(counts.begin(), counts.end(), size_t(0));
    if (total <= max_chunk_) return gatherv_call(what, send, recv, counts, d, root);
    const size_t es = dtype_size(d), per = std::max<size_t>(1, max_chunk_ / static_cast<size_t>(size_));
    const bool receives = root < 0 || root == rank_;
    std::vector<size_t> block_start(counts.size());
    std::exclusive_scan(counts.begin(), counts.end(), block_start.begin(), size_t(0));
    const size_t rounds = (*std::max_element(counts.begin(), counts.end()) + per - 1) / per;
    std::vector<char> staging(receives ? per * counts.size() * es : 0);
    std::vector<size_t> part(counts.size());
    for (size_t k = 0; k < rounds; ++k) {
      for (size_t r = 0; r < counts.size(); ++r) part[r] = std::min(per, counts[r] - std::min(counts[r], k * per));
      gatherv_call(what, at(send, k * per, es), staging.data(), part, d, root);
      if (!receives) continue;
      size_t from = 0;
      for (size_t r = 0; r < counts.size(); ++r) {
        std::memcpy(at(recv, block_start[r] + k * per, es), staging.data() + from * es, part[r] * es);
        from += part[r];
      }
    }
  }

  // Plain appends: an ostringstream's construction (its locale) was the largest item of a small op's cost.
  std::string describe(const char* op, size_t count, DataType d, const char* reduce) {
    std::string text =
        std::string(op) + " #" + std::to_string(++seq_) + " (" + std::to_string(count) + " x " + dtype_name(d);
    if (reduce) (text += ", ") += reduce;
    return text += ")";
  }

  std::string describe_v(const char* op, const std::vector<size_t>& counts, DataType d) {
    const size_t total = std::accumulate(counts.begin(), counts.end(), size_t(0));
    return describe(op, total, d, nullptr);
  }

  void check_reduction(const std::string& what, DataType d, ReduceOp op) const {
    if (op == ReduceOp::Avg && !is_floating(d))
      throw UsageError(what + " on rank " + std::to_string(rank_) +
                       ": reduce op avg needs a floating-point dtype (f32, f64, f16, bf16); use sum and divide");
    if (static_cast<int>(op) < 0 || static_cast<int>(op) > static_cast<int>(ReduceOp::Prod))
      throw UsageError(what + ": unsupported reduce op " + std::to_string(static_cast<int>(op)));
    check_dtype(what, d);
  }

  static void check_dtype(const std::string& what, DataType d) {
    if (static_cast<int>(d) < 0 || static_cast<int>(d) > static_cast<int>(DataType::U8))
      throw UsageError(what + ": unsupported dtype " + std::to_string(static_cast<int>(d)));
  }

  void check_root(const std::string& what, int root) const {
    if (root < 0 || root >= size_)
      throw UsageError(what + ": root " + std::to_string(root) + " is not a rank (valid: 0.." +
                       std::to_string(size_ - 1) + ")");
  }

  void check_counts(const std::string& what, const std::vector<size_t>& counts, DataType d, const void* send,
                    const void* recv, bool receives) const {
    check_dtype(what, d);
    if (counts.size() != static_cast<size_t>(size_))
      throw UsageError(what + ": " + std::to_string(counts.size()) + " counts given for " + std::to_string(size_) +
                       " ranks");
    const size_t total = std::accumulate(counts.begin(), counts.end(), size_t(0));
    check_buffers(what, counts[static_cast<size_t>(rank_)], send, send);
    if (receives) check_buffers(what, total, recv, recv);
  }

  static void check_int_count(const std::string& what, size_t count) {
    if (count > static_cast<size_t>(INT_MAX))
      throw UsageError(what + ": " + std::to_string(count) + " elements exceed MPI's int count limit");
  }

  static void check_buffers(const std::string& what, size_t count, const void* send, const void* recv) {
    if (count > 0 && (!send || !recv)) throw UsageError(what + ": null buffer with a non-zero count");
  }

  const size_t max_chunk_;
  int rank_ = 0, size_ = 1;
  std::atomic<uint64_t> seq_{0};
  std::atomic<bool> debug_checks_{false};
  HalfReduceOps half_ops_;  // one MPI_Op per 16-bit dtype and reduce op, for the backend's lifetime
  // Last: its destructor runs the queued ops to the end, which still use the members above.
  ProgressEngine engine_;
};

}  // namespace

std::unique_ptr<HcclLike> make_mpi_backend(MPI_Comm parent, const MpiBackendOptions& options) {
  return std::make_unique<MpiBackend>(parent, options);
}

std::unique_ptr<HcclLike> make_mpi_backend(CommGroup group, const MpiBackendOptions& options) {
  return make_mpi_backend(group == CommGroup::World ? MPI_COMM_WORLD : MPI_COMM_SELF, options);
}

namespace {

ProgressEngine& engine_of(HcclLike& backend, const char* hook) {
  auto* mpi = dynamic_cast<MpiBackend*>(&backend);
  if (!mpi) throw UsageError(std::string(hook) + ": not a backend made by make_mpi_backend");
  return mpi->engine();
}

}  // namespace

void pause_progress_for_testing(HcclLike& backend, bool paused) {
  engine_of(backend, "pause_progress_for_testing").pause(paused);
}

void send_heartbeat_now_for_testing(HcclLike& backend) {
  engine_of(backend, "send_heartbeat_now_for_testing").sendHeartbeatNow();
}

uint64_t fast_path_starts_for_testing(HcclLike& backend) {
  return engine_of(backend, "fast_path_starts_for_testing").fastPathStarts();
}

}  // namespace mpibert
