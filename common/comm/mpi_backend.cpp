#include "common/comm/mpi_backend.h"

#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "common/comm/half_float.h"
#include "common/error.h"

namespace mpibert {
namespace {

std::string mpi_error_string(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(rc);
  return std::string(text, len);
}

// Throws a CollectiveError naming the op, the rank and MPI's own error text.
void mpi_check(int rc, const std::string& what, int rank) {
  if (rc != MPI_SUCCESS)
    throw CollectiveError(what + " failed on rank " + std::to_string(rank) + ": " + mpi_error_string(rc));
}

MPI_Datatype mpi_type(DataType d) {
  switch (d) {
    case DataType::F32: return MPI_FLOAT;
    case DataType::F64: return MPI_DOUBLE;
    case DataType::F16: return MPI_UINT16_T;  // moved as bits; reduced in f32
    case DataType::BF16: return MPI_UINT16_T;
    case DataType::I32: return MPI_INT32_T;
    case DataType::I64: return MPI_INT64_T;
    case DataType::U8: return MPI_UINT8_T;
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Avg: return MPI_SUM;  // divided by size afterwards
    case ReduceOp::Min: return MPI_MIN;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Prod: return MPI_PROD;
  }
  return MPI_OP_NULL;
}

bool is_half(DataType d) { return d == DataType::F16 || d == DataType::BF16; }

void half_to_f32(const void* src, float* dst, size_t n, DataType d) {
  auto* s = static_cast<const uint16_t*>(src);
  if (d == DataType::BF16)
    for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
  else
    for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
}

void f32_to_half(const float* src, void* dst, size_t n, DataType d) {
  auto* o = static_cast<uint16_t*>(dst);
  if (d == DataType::BF16)
    for (size_t i = 0; i < n; ++i) o[i] = f32_to_bf16(src[i]);
  else
    for (size_t i = 0; i < n; ++i) o[i] = f32_to_f16(src[i]);
}

void divide(void* buf, size_t n, DataType d, int size) {
  if (d == DataType::F32) {
    auto* p = static_cast<float*>(buf);
    for (size_t i = 0; i < n; ++i) p[i] /= static_cast<float>(size);
  } else if (d == DataType::F64) {
    auto* p = static_cast<double*>(buf);
    for (size_t i = 0; i < n; ++i) p[i] /= static_cast<double>(size);
  }
}

class MpiWork : public Work {
 public:
  explicit MpiWork(std::string description, int rank) : description_(std::move(description)), rank_(rank) {}

  bool isCompleted() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_;
  }

  void wait(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (timeout.count() < 0) {
      cv_.wait(lock, [&] { return done_; });
    } else if (!cv_.wait_for(lock, timeout, [&] { return done_; })) {
      std::ostringstream os;
      os << description_ << " did not finish within " << timeout.count() / 1000.0 << " s on rank " << rank_
         << " (another rank may have died or not called it); a collective cannot be cancelled: the job must abort";
      throw CollectiveTimeout(os.str());
    }
    if (error_) std::rethrow_exception(error_);
  }

  void complete(std::exception_ptr error) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
      error_ = error;
    }
    cv_.notify_all();
  }

  const std::string& description() const { return description_; }

 private:
  std::string description_;
  int rank_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::exception_ptr error_;
};

class MpiBackend : public HcclLike {
 public:
  explicit MpiBackend(MPI_Comm parent) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) throw std::runtime_error("HcclLike: MPI is not initialised (create an MpiEnvironment first)");
    int provided = 0;
    MPI_Query_thread(&provided);
    if (provided < MPI_THREAD_MULTIPLE)
      throw std::runtime_error("HcclLike: MPI was initialised without MPI_THREAD_MULTIPLE, which the progress thread needs");
    MPI_Comm_rank(parent, &rank_);
    mpi_check(MPI_Comm_dup(parent, &comm_), "MPI_Comm_dup", rank_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_size(comm_, &size_);
    thread_ = std::thread([this] { progress_loop(); });
  }

  ~MpiBackend() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  WorkPtr allReduce(const void* send, void* recv, size_t count, DataType d, ReduceOp op) override {
    std::string what = describe("allReduce", count, d, reduce_op_name(op));
    check_reduction(what, d, op);
    check_buffers(what, count, send, recv);
    return enqueue(what, [=] {
      if (is_half(d)) {
        std::vector<float> tmp(count);
        half_to_f32(send, tmp.data(), count, d);
        chunked(count, [&](size_t off, int n) {
          mpi_check(MPI_Allreduce(MPI_IN_PLACE, tmp.data() + off, n, MPI_FLOAT, mpi_op(op), comm_), what, rank_);
        });
        if (op == ReduceOp::Avg) divide(tmp.data(), count, DataType::F32, size_);
        f32_to_half(tmp.data(), recv, count, d);
        return;
      }
      const size_t es = dtype_size(d);
      chunked(count, [&](size_t off, int n) {
        const void* s = send == recv ? MPI_IN_PLACE : static_cast<const char*>(send) + off * es;
        mpi_check(MPI_Allreduce(s, static_cast<char*>(recv) + off * es, n, mpi_type(d), mpi_op(op), comm_), what, rank_);
      });
      if (op == ReduceOp::Avg) divide(recv, count, d, size_);
    });
  }

  WorkPtr broadcast(void* buffer, size_t count, DataType d, int root) override {
    std::string what = describe("broadcast", count, d, nullptr) + " from root " + std::to_string(root);
    check_root(what, root);
    check_buffers(what, count, buffer, buffer);
    return enqueue(what, [=] {
      const size_t es = dtype_size(d);
      chunked(count, [&](size_t off, int n) {
        mpi_check(MPI_Bcast(static_cast<char*>(buffer) + off * es, n, mpi_type(d), root, comm_), what, rank_);
      });
    });
  }

  WorkPtr allGather(const void* send, void* recv, size_t count, DataType d) override {
    std::string what = describe("allGather", count, d, nullptr);
    check_int_count(what, count);
    check_buffers(what, count, send, recv);
    return enqueue(what, [=] {
      const size_t bytes = count * dtype_size(d);
      // In place when send already sits at this rank's slot of recv.
      const bool in_place = send == static_cast<const char*>(recv) + rank_ * bytes;
      mpi_check(MPI_Allgather(in_place ? MPI_IN_PLACE : send, static_cast<int>(count), mpi_type(d), recv,
                              static_cast<int>(count), mpi_type(d), comm_),
                what, rank_);
    });
  }

  WorkPtr reduceScatter(const void* send, void* recv, size_t count, DataType d, ReduceOp op) override {
    std::string what = describe("reduceScatter", count, d, reduce_op_name(op));
    check_reduction(what, d, op);
    check_int_count(what, count * static_cast<size_t>(size_));
    check_buffers(what, count, send, recv);
    return enqueue(what, [=] {
      const size_t total = count * static_cast<size_t>(size_);
      if (is_half(d)) {
        std::vector<float> in(total), out(count);
        half_to_f32(send, in.data(), total, d);
        mpi_check(MPI_Reduce_scatter_block(in.data(), out.data(), static_cast<int>(count), MPI_FLOAT, mpi_op(op), comm_),
                  what, rank_);
        if (op == ReduceOp::Avg) divide(out.data(), count, DataType::F32, size_);
        f32_to_half(out.data(), recv, count, d);
        return;
      }
      // In place (recv == send): the result lands in the first count elements of the buffer.
      const void* s = send == recv ? MPI_IN_PLACE : send;
      mpi_check(MPI_Reduce_scatter_block(s, recv, static_cast<int>(count), mpi_type(d), mpi_op(op), comm_), what, rank_);
      if (op == ReduceOp::Avg) divide(recv, count, d, size_);
    });
  }

  WorkPtr barrier() override {
    std::string what = "barrier #" + std::to_string(next_seq());
    return enqueue(what, [=] { mpi_check(MPI_Barrier(comm_), what, rank_); });
  }

  [[noreturn]] void abortJob(int code, const std::string& why) override {
    std::fprintf(stderr, "mpibert: rank %d aborts the job: %s\n", rank_, why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; keep the compiler (and a broken MPI) honest
  }

 private:
  static constexpr size_t kMaxChunk = static_cast<size_t>(1) << 30;  // elements per MPI call (int counts)

  static void chunked(size_t count, const std::function<void(size_t, int)>& fn) {
    if (count == 0) {
      fn(0, 0);
      return;
    }
    for (size_t off = 0; off < count; off += kMaxChunk) fn(off, static_cast<int>(std::min(kMaxChunk, count - off)));
  }

  uint64_t next_seq() {
    std::lock_guard<std::mutex> lock(mutex_);
    return ++seq_;
  }

  std::string describe(const char* op, size_t count, DataType d, const char* reduce) {
    std::ostringstream os;
    os << op << " #" << next_seq() << " (" << count << " x " << dtype_name(d);
    if (reduce) os << ", " << reduce;
    os << ")";
    return os.str();
  }

  void check_reduction(const std::string& what, DataType d, ReduceOp op) const {
    if (op == ReduceOp::Avg && !is_floating(d))
      throw UsageError(what + " on rank " + std::to_string(rank_) +
                       ": reduce op avg needs a floating-point dtype (f32, f64, f16, bf16); use sum and divide");
    if (static_cast<int>(op) < 0 || static_cast<int>(op) > static_cast<int>(ReduceOp::Prod))
      throw UsageError(what + ": unsupported reduce op " + std::to_string(static_cast<int>(op)));
    if (static_cast<int>(d) < 0 || static_cast<int>(d) > static_cast<int>(DataType::U8))
      throw UsageError(what + ": unsupported dtype " + std::to_string(static_cast<int>(d)));
  }

  void check_root(const std::string& what, int root) const {
    if (root < 0 || root >= size_)
      throw UsageError(what + ": root " + std::to_string(root) + " is not a rank (valid: 0.." +
                       std::to_string(size_ - 1) + ")");
  }

  static void check_int_count(const std::string& what, size_t count) {
    if (count > static_cast<size_t>(INT_MAX))
      throw UsageError(what + ": " + std::to_string(count) + " elements exceed MPI's int count limit");
  }

  static void check_buffers(const std::string& what, size_t count, const void* send, const void* recv) {
    if (count > 0 && (!send || !recv)) throw UsageError(what + ": null buffer with a non-zero count");
  }

  WorkPtr enqueue(const std::string& what, std::function<void()> run) {
    auto work = std::make_shared<MpiWork>(what, rank_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back({std::move(run), work});
    }
    cv_.notify_one();
    return work;
  }

  void progress_loop() {
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop_ and drained
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      std::exception_ptr error;
      try {
        task.run();
      } catch (...) {
        error = std::current_exception();
      }
      task.work->complete(error);
    }
  }

  struct Task {
    std::function<void()> run;
    std::shared_ptr<MpiWork> work;
  };

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stop_ = false;
  uint64_t seq_ = 0;
};

}  // namespace

MpiEnvironment::MpiEnvironment(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = 0;
  if (!initialized) {
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) throw std::runtime_error("MPI_Init_thread failed: " + mpi_error_string(rc));
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_MULTIPLE)
    throw std::runtime_error("the MPI library provides thread level " + std::to_string(provided) +
                             " but mpibert needs MPI_THREAD_MULTIPLE (" + std::to_string(MPI_THREAD_MULTIPLE) +
                             "): use an MPI built with thread support (Debian's Open MPI has it)");
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

int MpiEnvironment::worldRank() const {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int MpiEnvironment::worldSize() const {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

std::unique_ptr<HcclLike> make_mpi_backend(MPI_Comm parent) { return std::make_unique<MpiBackend>(parent); }

}  // namespace mpibert
