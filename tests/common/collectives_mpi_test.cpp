// HcclLike over MPI, run under mpirun with 1, 2, 3 and 4 ranks: every op x dtype x size against
// values computed locally, in-place and out-of-place, 16-bit reductions against an f32 reference within
// the bound of their per-step rounding, variable-size gathers, ops split into several MPI calls, several
// outstanding Works, timeouts, argument errors; the fast path (an op started on the calling thread when
// the backend is idle): when it is taken, issue order across it and the queue, its failures.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

#include "common/comm/half_float.h"
#include "common/comm/mpi_backend.h"
#include "common/error.h"

namespace mpibert {
namespace {

HcclLike& comm() {
  static std::unique_ptr<HcclLike> c = make_mpi_backend();
  return *c;
}

// A second backend, for signals between ranks while comm()'s progress thread is busy.
HcclLike& signal_comm() {
  static std::unique_ptr<HcclLike> c = make_mpi_backend();
  return *c;
}

// A backend that splits every op into MPI calls of at most 5 elements (rounds of the v-gathers).
HcclLike& chunking_comm() {
  MpiBackendOptions o;
  o.max_elements_per_call = 5;
  static std::unique_ptr<HcclLike> c = make_mpi_backend(CommGroup::World, o);
  return *c;
}

const std::vector<DataType> kTypes = {DataType::F32, DataType::F64, DataType::F16, DataType::BF16,
                                      DataType::I32, DataType::I64, DataType::U8};
const std::vector<ReduceOp> kOps = {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Min, ReduceOp::Max, ReduceOp::Prod};
const std::vector<size_t> kCounts = {0, 1, 7, size_t(1) << 20};

// Small integers, so that every sum and product is exact in every dtype (u8 products stay < 256).
double input_value(int rank, size_t i, ReduceOp op) {
  if (op == ReduceOp::Prod) return ((i + rank) % 3 == 0) ? 2.0 : 1.0;
  return static_cast<double>((rank * 7 + i * 3) % 11) + 1.0;
}

void store(void* buf, size_t i, DataType d, double v) {
  switch (d) {
    case DataType::F32:
      static_cast<float*>(buf)[i] = static_cast<float>(v);
      break;
    case DataType::F64:
      static_cast<double*>(buf)[i] = v;
      break;
    case DataType::F16:
      static_cast<uint16_t*>(buf)[i] = f32_to_f16(static_cast<float>(v));
      break;
    case DataType::BF16:
      static_cast<uint16_t*>(buf)[i] = f32_to_bf16(static_cast<float>(v));
      break;
    case DataType::I32:
      static_cast<int32_t*>(buf)[i] = static_cast<int32_t>(v);
      break;
    case DataType::I64:
      static_cast<int64_t*>(buf)[i] = static_cast<int64_t>(v);
      break;
    case DataType::U8:
      static_cast<uint8_t*>(buf)[i] = static_cast<uint8_t>(v);
      break;
  }
}

double load(const void* buf, size_t i, DataType d) {
  switch (d) {
    case DataType::F32:
      return static_cast<const float*>(buf)[i];
    case DataType::F64:
      return static_cast<const double*>(buf)[i];
    case DataType::F16:
      return f16_to_f32(static_cast<const uint16_t*>(buf)[i]);
    case DataType::BF16:
      return bf16_to_f32(static_cast<const uint16_t*>(buf)[i]);
    case DataType::I32:
      return static_cast<const int32_t*>(buf)[i];
    case DataType::I64:
      return static_cast<double>(static_cast<const int64_t*>(buf)[i]);
    case DataType::U8:
      return static_cast<const uint8_t*>(buf)[i];
  }
  return 0;
}

// The expected reduction of element i across all ranks, rounded the way the dtype stores it.
double expected(size_t i, DataType d, ReduceOp op, int size) {
  double acc = input_value(0, i, op);
  for (int r = 1; r < size; ++r) {
    double v = input_value(r, i, op);
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Avg:
        acc += v;
        break;
      case ReduceOp::Min:
        acc = std::min(acc, v);
        break;
      case ReduceOp::Max:
        acc = std::max(acc, v);
        break;
      case ReduceOp::Prod:
        acc *= v;
        break;
    }
  }
  if (op == ReduceOp::Avg) {
    if (d == DataType::F64) return acc / size;
    float a = static_cast<float>(acc) / static_cast<float>(size);
    if (d == DataType::F16) return f16_to_f32(f32_to_f16(a));
    if (d == DataType::BF16) return bf16_to_f32(f32_to_bf16(a));
    return a;
  }
  return acc;
}

bool valid(DataType d, ReduceOp op) {
  return !(op == ReduceOp::Avg && !is_floating(d));
}

std::string label(DataType d, ReduceOp op, size_t n) {
  return std::string(dtype_name(d)) + "/" + reduce_op_name(op) + "/" + std::to_string(n);
}

TEST(Collectives, AllReduceEveryOpDtypeAndSizeMatchesLocalComputation) {
  const int rank = comm().rank(), size = comm().size();
  for (DataType d : kTypes)
    for (ReduceOp op : kOps) {
      if (!valid(d, op)) continue;
      for (size_t n : kCounts) {
        const size_t es = dtype_size(d);
        std::vector<char> send(n * es + 1), recv(n * es + 1), inplace(n * es + 1);
        for (size_t i = 0; i < n; ++i) store(send.data(), i, d, input_value(rank, i, op));
        std::memcpy(inplace.data(), send.data(), n * es);
        auto w1 = comm().allReduce(send.data(), recv.data(), n, d, op);
        auto w2 = comm().allReduce(inplace.data(), inplace.data(), n, d, op);
        w1->wait();
        w2->wait();
        EXPECT_TRUE(w1->isCompleted());
        size_t bad = 0;
        for (size_t i = 0; i < n; ++i) {
          double e = expected(i, d, op, size);
          if (load(recv.data(), i, d) != e || load(inplace.data(), i, d) != e) ++bad;
        }
        EXPECT_EQ(bad, 0u) << label(d, op, n) << " on rank " << rank;
        // The sender's buffer is untouched by an out-of-place op.
        if (n > 0) {
          EXPECT_EQ(load(send.data(), n - 1, d), input_value(rank, n - 1, op)) << label(d, op, n);
        }
      }
    }
}

TEST(Collectives, BroadcastFromEveryRoot) {
  const int rank = comm().rank(), size = comm().size();
  for (DataType d : kTypes)
    for (size_t n : kCounts)
      for (int root = 0; root < size; ++root) {
        std::vector<char> buf(n * dtype_size(d) + 1);
        for (size_t i = 0; i < n; ++i) store(buf.data(), i, d, input_value(rank, i, ReduceOp::Sum));
        comm().broadcast(buf.data(), n, d, root)->wait();
        size_t bad = 0;
        for (size_t i = 0; i < n; ++i) bad += load(buf.data(), i, d) != input_value(root, i, ReduceOp::Sum);
        EXPECT_EQ(bad, 0u) << dtype_name(d) << " n=" << n << " root=" << root;
      }
}

TEST(Collectives, AllGatherPlacesRankBlocksInOrder) {
  const int rank = comm().rank(), size = comm().size();
  for (DataType d : kTypes)
    for (size_t n : kCounts) {
      const size_t es = dtype_size(d);
      std::vector<char> send(n * es + 1), recv(n * es * size + 1), inplace(n * es * size + 1);
      for (size_t i = 0; i < n; ++i) store(send.data(), i, d, input_value(rank, i, ReduceOp::Sum));
      std::memcpy(inplace.data() + rank * n * es, send.data(), n * es);
      auto w1 = comm().allGather(send.data(), recv.data(), n, d);
      auto w2 = comm().allGather(inplace.data() + rank * n * es, inplace.data(), n, d);
      w1->wait();
      w2->wait();
      size_t bad = 0;
      for (int r = 0; r < size; ++r)
        for (size_t i = 0; i < n; ++i) {
          double e = input_value(r, i, ReduceOp::Sum);
          bad += load(recv.data(), r * n + i, d) != e || load(inplace.data(), r * n + i, d) != e;
        }
      EXPECT_EQ(bad, 0u) << dtype_name(d) << " n=" << n;
    }
}

TEST(Collectives, ReduceScatterGivesEachRankItsReducedBlock) {
  const int rank = comm().rank(), size = comm().size();
  for (DataType d : kTypes)
    for (ReduceOp op : kOps) {
      if (!valid(d, op)) continue;
      for (size_t n : kCounts) {
        if (n == (size_t(1) << 20) && op != ReduceOp::Sum) continue;  // large size once per dtype is enough
        const size_t es = dtype_size(d);
        std::vector<char> send(n * es * size + 1), recv(n * es + 1);
        // Element j of the full vector is input_value(rank, j); block r = elements [r*n, (r+1)*n).
        for (size_t j = 0; j < n * size; ++j) store(send.data(), j, d, input_value(rank, j, op));
        std::vector<char> inplace = send;
        comm().reduceScatter(send.data(), recv.data(), n, d, op)->wait();
        comm().reduceScatter(inplace.data(), inplace.data(), n, d, op)->wait();
        size_t bad = 0;
        for (size_t i = 0; i < n; ++i) {
          double e = expected(rank * n + i, d, op, size);
          bad += load(recv.data(), i, d) != e;
          bad += load(inplace.data(), i, d) != e;
        }
        EXPECT_EQ(bad, 0u) << label(d, op, n) << " on rank " << rank;
      }
    }
}

// f16/bf16 travel as 16-bit data and are combined in f32 by the backend's own MPI ops, which round back
// to 16 bits after every combine. Reducing W values takes W - 1 combines, so a result carries up to
// W - 1 roundings, each off by at most u (the unit roundoff: 2^-8 for bf16, 2^-11 for f16) of the
// partial result: |sum16 - sum| <= gamma(W - 1) * sum|x_r| with gamma(k) = k u / (1 - k u) (Higham), and
// avg rounds once more after the division. Min and max pick an input: exact.
double unit_roundoff(DataType d) {
  return std::ldexp(1.0, d == DataType::BF16 ? -8 : -11);
}

double gamma_bound(int k, double u) {
  return k * u / (1 - k * u);
}

// The tolerance of one element against the f32 reference of the same 16-bit inputs (itself off by up to
// gamma(W, 2^-24) of sum|x_r|).
double tolerance16(DataType d, ReduceOp op, int world, double reference, double abs_sum) {
  const double u = unit_roundoff(d), f32 = gamma_bound(world, std::ldexp(1.0, -24));
  switch (op) {
    case ReduceOp::Sum:
      return (gamma_bound(world - 1, u) + f32) * abs_sum;
    case ReduceOp::Avg:
      return (gamma_bound(world, u) + f32) * abs_sum / world;
    case ReduceOp::Prod:
      return (gamma_bound(world - 1, u) + f32) * std::fabs(reference);
    case ReduceOp::Min:
    case ReduceOp::Max:
      return 0;
  }
  return 0;
}

// Inputs that use every bit of the 16-bit mantissa, so that every combine rounds: magnitudes in
// [0.5, 2), mixed signs (positive for prod), different on every rank and element, and deterministic.
double value16(int rank, size_t i, DataType d, ReduceOp op) {
  uint64_t h = (static_cast<uint64_t>(rank) + 1) * 0x9E3779B97F4A7C15ull ^ (i + 1) * 0xBF58476D1CE4E5B9ull;
  h ^= h >> 31;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 29;
  const double magnitude = 0.5 + 1.5 * static_cast<double>(h >> 11) / std::ldexp(1.0, 53);
  const double v = (op != ReduceOp::Prod && (h & 1)) ? -magnitude : magnitude;
  uint16_t stored;
  store(&stored, 0, d, v);
  return load(&stored, 0, d);  // the value exactly as the 16-bit dtype holds it
}

// What one combine of two ranks' values gives: the f32 op of the two, rounded to 16 bits (avg: the sum,
// then divided by 2 and rounded again, as the backend does).
double one_combine(DataType d, ReduceOp op, double a, double b) {
  const float x = static_cast<float>(a), y = static_cast<float>(b);
  float r = x + y;
  if (op == ReduceOp::Min) r = std::min(x, y);
  if (op == ReduceOp::Max) r = std::max(x, y);
  if (op == ReduceOp::Prod) r = x * y;
  uint16_t h;
  store(&h, 0, d, r);
  if (op == ReduceOp::Avg) store(&h, 0, d, static_cast<float>(load(&h, 0, d)) / 2.0f);
  return load(&h, 0, d);
}

uint64_t fnv1a(const std::vector<uint16_t>& v, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ v[i]) * 1099511628211ull;
  return h;
}

// Gradients must come out bit for bit the same on every rank, or the replicas drift apart.
void expect_same_bits_on_every_rank(const std::vector<uint16_t>& v, size_t n, const std::string& what) {
  const int64_t mine = static_cast<int64_t>(fnv1a(v, n));
  std::vector<int64_t> all(static_cast<size_t>(comm().size()));
  comm().allGather(&mine, all.data(), 1, DataType::I64)->wait();
  for (size_t r = 0; r < all.size(); ++r) EXPECT_EQ(all[r], mine) << what << ": rank " << r << " differs";
}

// Counts the 16-bit results that stray from the f32 reference by more than tolerance16, and keeps the
// largest error.
struct Check16 {
  DataType d;
  ReduceOp op;
  const std::vector<float>& reference;  // the same inputs reduced in f32
  const std::vector<float>& abs_sum;    // sum over ranks of |input|
  size_t bad = 0;
  double max_error = 0;
  void element(const std::vector<uint16_t>& got, size_t i) {
    const double error = std::fabs(load(got.data(), i, d) - reference[i]);
    max_error = std::max(max_error, error);
    bad += !(error <= tolerance16(d, op, comm().size(), reference[i], abs_sum[i]));
  }
};

void check_16bit_all_reduce(DataType d, ReduceOp op, size_t n) {
  const int rank = comm().rank(), world = comm().size();
  const std::string what = label(d, op, n) + " on rank " + std::to_string(rank);
  std::vector<uint16_t> send(n), out(n);
  std::vector<float> send32(n), abs32(n), reference(n), abs_sum(n);
  for (size_t i = 0; i < n; ++i) {
    store(send.data(), i, d, value16(rank, i, d, op));
    send32[i] = static_cast<float>(load(send.data(), i, d));
    abs32[i] = std::fabs(send32[i]);
  }
  std::vector<uint16_t> in_place = send;
  auto w1 = comm().allReduce(send.data(), out.data(), n, d, op);
  auto w2 = comm().allReduce(in_place.data(), in_place.data(), n, d, op);
  auto w3 = comm().allReduce(send32.data(), reference.data(), n, DataType::F32, op);
  auto w4 = comm().allReduce(abs32.data(), abs_sum.data(), n, DataType::F32, ReduceOp::Sum);
  for (const auto& w : {w1, w2, w3, w4}) w->wait();
  Check16 check{d, op, reference, abs_sum};
  size_t not_one_combine = 0;
  for (size_t i = 0; i < n; ++i) {
    check.element(out, i);
    check.element(in_place, i);
    // One rank: nothing to combine, the input comes back. Two: exactly one rounded combine.
    const double exact =
        world == 1 ? value16(0, i, d, op) : one_combine(d, op, value16(0, i, d, op), value16(1, i, d, op));
    if (world <= 2) not_one_combine += load(out.data(), i, d) != exact || load(in_place.data(), i, d) != exact;
  }
  EXPECT_EQ(check.bad, 0u) << what << " exceeds the bound (largest error " << check.max_error << ")";
  EXPECT_EQ(not_one_combine, 0u) << what;
  // The inputs do round: a 16-bit sum of two or more ranks is not the f32 one everywhere.
  if (world > 1 && op == ReduceOp::Sum && n > 100) {
    EXPECT_GT(check.max_error, 0.0) << what;
  }
  expect_same_bits_on_every_rank(out, n, what);
  expect_same_bits_on_every_rank(in_place, n, what + " in place");
}

TEST(Collectives16Bit, AllReduceRoundsOncePerCombineWithinTheBoundOfTheRankCount) {
  for (DataType d : {DataType::BF16, DataType::F16})
    for (ReduceOp op : kOps)
      for (size_t n : {size_t(1), size_t(4099), size_t(1) << 20}) {
        if (n == (size_t(1) << 20) && op != ReduceOp::Sum) continue;  // the large-message algorithm once per dtype
        check_16bit_all_reduce(d, op, n);
      }
}

void check_16bit_reduce_scatter(DataType d, ReduceOp op, size_t n) {
  const int rank = comm().rank(), world = comm().size();
  const std::string what = "reduceScatter " + label(d, op, n) + " on rank " + std::to_string(rank);
  const size_t total = n * static_cast<size_t>(world);
  std::vector<uint16_t> send(total), out(n);
  std::vector<float> send32(total), abs32(total), reference(n), abs_sum(n);
  for (size_t j = 0; j < total; ++j) {
    store(send.data(), j, d, value16(rank, j, d, op));
    send32[j] = static_cast<float>(load(send.data(), j, d));
    abs32[j] = std::fabs(send32[j]);
  }
  std::vector<uint16_t> in_place = send;
  auto w1 = comm().reduceScatter(send.data(), out.data(), n, d, op);
  auto w2 = comm().reduceScatter(in_place.data(), in_place.data(), n, d, op);
  auto w3 = comm().reduceScatter(send32.data(), reference.data(), n, DataType::F32, op);
  auto w4 = comm().reduceScatter(abs32.data(), abs_sum.data(), n, DataType::F32, ReduceOp::Sum);
  for (const auto& w : {w1, w2, w3, w4}) w->wait();
  Check16 check{d, op, reference, abs_sum};
  for (size_t i = 0; i < n; ++i) {
    check.element(out, i);
    check.element(in_place, i);  // in place: the block lands in the first n elements
  }
  EXPECT_EQ(check.bad, 0u) << what << " exceeds the bound (largest error " << check.max_error << ")";
  if (world > 1 && op == ReduceOp::Sum) {
    EXPECT_GT(check.max_error, 0.0) << what;
  }
}

TEST(Collectives16Bit, ReduceScatterRoundsOncePerCombineWithinTheBoundOfTheRankCount) {
  for (DataType d : {DataType::BF16, DataType::F16})
    for (ReduceOp op : kOps) check_16bit_reduce_scatter(d, op, 4099);
}

// Each backend creates its 16-bit ops and frees them when it goes (or, for backends still alive then,
// before MPI_Finalize: the tests' own backends end that way).
TEST(Collectives16Bit, BackendsComeAndGoEachWithItsOwnOps) {
  for (int round = 0; round < 10; ++round) {
    auto backend = make_mpi_backend(round % 2 ? CommGroup::Self : CommGroup::World);
    std::vector<uint16_t> v(257, f32_to_bf16(1.5f));
    backend->allReduce(v.data(), v.data(), v.size(), DataType::BF16, ReduceOp::Max)->wait();
    EXPECT_EQ(bf16_to_f32(v[256]), 1.5f);
    backend->allReduce(v.data(), v.data(), v.size(), DataType::BF16, ReduceOp::Sum)->wait();
    EXPECT_EQ(bf16_to_f32(v[0]), 1.5f * static_cast<float>(backend->size())) << "round " << round;
  }
}

TEST(Collectives, ManyOutstandingWorksCompleteInIssueOrder) {
  const int size = comm().size();
  constexpr int kOutstanding = 16;
  std::vector<std::vector<int64_t>> bufs(kOutstanding, std::vector<int64_t>(1000));
  std::vector<WorkPtr> works;
  for (int k = 0; k < kOutstanding; ++k) {
    for (auto& v : bufs[k]) v = k + comm().rank();
    works.push_back(comm().allReduce(bufs[k].data(), bufs[k].data(), bufs[k].size(), DataType::I64, ReduceOp::Sum));
  }
  works.push_back(comm().barrier());
  // Waiting in reverse order must not deadlock; a later op done implies the earlier ones are done.
  for (int k = kOutstanding; k >= 0; --k) works[k]->wait();
  for (int k = 0; k < kOutstanding; ++k) {
    int64_t e = static_cast<int64_t>(k) * size + static_cast<int64_t>(size) * (size - 1) / 2;
    EXPECT_EQ(bufs[k][0], e);
    EXPECT_EQ(bufs[k][999], e);
  }
}

// A late peer needs two ranks: *WithPeers suites run from 2 ranks up (tests/CMakeLists.txt).
TEST(CollectivesWithPeers, WaitTimesOutNamingTheOpWhileAPeerIsLate) {
  // Rank 1 joins the barrier only after rank 0's wait has timed out and rank 0 says so on signal_comm().
  WorkPtr work;
  if (comm().rank() != 1) work = comm().barrier();
  if (comm().rank() == 0) {
    try {
      work->wait(std::chrono::milliseconds(50));
      ADD_FAILURE() << "expected a timeout";
    } catch (const CollectiveTimeout& e) {
      EXPECT_NE(std::string(e.what()).find("barrier #"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("rank 0"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(work->isCompleted());
  }
  signal_comm().barrier()->wait();
  if (comm().rank() == 1) work = comm().barrier();
  work->wait();  // the op still completes once the late rank arrives
  EXPECT_TRUE(work->isCompleted());
}

// counts[r] for the v-gathers: some ranks give nothing, the others different amounts.
std::vector<size_t> uneven_counts(int size, size_t scale) {
  std::vector<size_t> counts(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) counts[size_t(r)] = r % 3 == 1 ? 0 : scale * size_t(r + 1) + size_t(r);
  return counts;
}

// Rank r's block of a v-gather: element i is input_value(r, i).
void check_gathered(const std::vector<char>& recv, const std::vector<size_t>& counts, DataType d,
                    const std::string& what) {
  size_t bad = 0, offset = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    for (size_t i = 0; i < counts[r]; ++i)
      bad += load(recv.data(), offset + i, d) != input_value(int(r), i, ReduceOp::Sum);
    offset += counts[r];
  }
  EXPECT_EQ(bad, 0u) << what;
}

void gatherv_every_root_and_dtype(HcclLike& c, size_t scale) {
  const int rank = c.rank(), size = c.size();
  const std::vector<size_t> counts = uneven_counts(size, scale);
  const size_t total = std::accumulate(counts.begin(), counts.end(), size_t(0));
  for (DataType d : kTypes) {
    const size_t es = dtype_size(d);
    std::vector<char> send(counts[size_t(rank)] * es + 1);
    for (size_t i = 0; i < counts[size_t(rank)]; ++i) store(send.data(), i, d, input_value(rank, i, ReduceOp::Sum));
    for (int root = 0; root < size; ++root) {
      std::vector<char> recv(rank == root ? total * es + 1 : 0);
      c.gatherv(send.data(), rank == root ? recv.data() : nullptr, counts, d, root)->wait();
      if (rank == root) check_gathered(recv, counts, d, std::string("gatherv ") + dtype_name(d));
    }
    std::vector<char> all(total * es + 1);
    c.allGatherv(send.data(), all.data(), counts, d)->wait();
    check_gathered(all, counts, d, std::string("allGatherv ") + dtype_name(d) + " on rank " + std::to_string(rank));
  }
}

TEST(Collectives, VariableSizeGathersPlaceUnevenBlocksInRankOrder) {
  gatherv_every_root_and_dtype(comm(), 1000);
  gatherv_every_root_and_dtype(comm(), 0);  // every block empty
}

TEST(Collectives, VariableSizeGathersLargerThanOneCallGoInRounds) {
  gatherv_every_root_and_dtype(chunking_comm(), 3);  // blocks of up to 15 elements, 5 per call
}

TEST(Collectives, OpsLargerThanOneCallAreSplitAndStillExact) {
  const int rank = chunking_comm().rank(), size = chunking_comm().size();
  for (DataType d : {DataType::F32, DataType::BF16, DataType::I64})
    for (size_t n : {size_t(4), size_t(5), size_t(23)}) {
      std::vector<char> buf(n * dtype_size(d) + 1), recv(n * dtype_size(d) + 1);
      for (size_t i = 0; i < n; ++i) store(buf.data(), i, d, input_value(rank, i, ReduceOp::Sum));
      chunking_comm().allReduce(buf.data(), recv.data(), n, d, ReduceOp::Sum)->wait();
      chunking_comm().broadcast(buf.data(), n, d, size - 1)->wait();
      size_t bad = 0;
      for (size_t i = 0; i < n; ++i) {
        bad += load(recv.data(), i, d) != expected(i, d, ReduceOp::Sum, size);
        bad += load(buf.data(), i, d) != input_value(size - 1, i, ReduceOp::Sum);
      }
      EXPECT_EQ(bad, 0u) << dtype_name(d) << " n=" << n;
    }
}

TEST(Collectives, WaitAliveCompletesOpsLikeWait) {
  std::vector<int64_t> v(100, comm().rank());
  comm().allReduce(v.data(), v.data(), v.size(), DataType::I64, ReduceOp::Max)->waitAlive(std::chrono::seconds(60));
  EXPECT_EQ(v[99], comm().size() - 1);
  auto done = comm().barrier();
  done->waitAlive();
  EXPECT_TRUE(done->isCompleted());
  done->waitAlive();                                          // waiting again on a finished op returns at once
  comm().barrier()->waitAlive(std::chrono::milliseconds(0));  // no silence limit: waits as long as it takes
}

// Needs a peer that does not come (2 ranks and up).
TEST(CollectivesWithPeers, DestroyingABackendAfterATimeoutDoesNotWaitForTheAbandonedOp) {
  auto doomed = make_mpi_backend();
  if (comm().rank() != 1) {
    auto work = doomed->barrier();  // rank 1 joins only after this rank has given up and destroyed the backend
    EXPECT_EQ(fast_path_starts_for_testing(*doomed), 1u);  // the idle backend started it on this thread
    EXPECT_THROW(work->wait(std::chrono::milliseconds(10)), CollectiveTimeout);
    doomed.reset();  // returns although the barrier is still in flight
    try {
      work->wait();
      ADD_FAILURE() << "an abandoned op reported success";
    } catch (const CollectiveError& e) {
      EXPECT_NE(std::string(e.what()).find("abandoned"), std::string::npos) << e.what();
    }
  }
  signal_comm().barrier()->wait();
  if (comm().rank() == 1) {
    doomed->barrier()->wait();  // completes: MPI still finishes the others' leaked requests
    doomed.reset();
  }
  signal_comm().barrier()->wait();
}

TEST(MpiEnvironment, ReportsTheLibraryAndTheRanksOnThisNode) {
  const MpiEnvironment env(nullptr, nullptr);  // MPI is up: a second environment only looks
  EXPECT_NE(mpi_library_version().find("MPI"), std::string::npos) << mpi_library_version();
  EXPECT_EQ(env.worldSize(), comm().size());
  EXPECT_EQ(env.worldRank(), comm().rank());
  const int on_node = env.ranksOnThisNode();  // mpirun here starts every rank on this machine
  EXPECT_EQ(on_node, comm().size());
}

TEST(Collectives, ArgumentErrorsAreCaughtLocallyBeforeMpi) {
  std::vector<int32_t> buf(4);
  try {
    comm().broadcast(buf.data(), 4, DataType::I32, comm().size());
    ADD_FAILURE() << "bad root accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("root " + std::to_string(comm().size()) + " is not a rank"),
              std::string::npos);
  }
  EXPECT_THROW(comm().broadcast(buf.data(), 4, DataType::I32, -1), UsageError);
  try {
    comm().allReduce(buf.data(), buf.data(), 4, DataType::I32, ReduceOp::Avg);
    ADD_FAILURE() << "avg on i32 accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("avg needs a floating-point dtype"), std::string::npos) << e.what();
  }
  EXPECT_THROW(comm().allReduce(buf.data(), buf.data(), 4, static_cast<DataType>(42), ReduceOp::Sum), UsageError);
  EXPECT_THROW(comm().allReduce(buf.data(), buf.data(), 4, DataType::F32, static_cast<ReduceOp>(9)), UsageError);
  EXPECT_THROW(comm().allReduce(nullptr, buf.data(), 4, DataType::I32, ReduceOp::Sum), UsageError);
  std::vector<size_t> counts(size_t(comm().size()), 1);
  try {
    comm().allGatherv(buf.data(), buf.data(), std::vector<size_t>(size_t(comm().size()) + 1, 1), DataType::I32);
    ADD_FAILURE() << "wrong number of counts accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("counts given for " + std::to_string(comm().size()) + " ranks"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(comm().gatherv(nullptr, buf.data(), counts, DataType::I32, 0), UsageError);
  EXPECT_THROW(comm().gatherv(buf.data(), buf.data(), counts, DataType::I32, comm().size()), UsageError);
  if (comm().rank() == 0) {
    EXPECT_THROW(comm().gatherv(buf.data(), nullptr, counts, DataType::I32, 0), UsageError);
  }
  EXPECT_THROW(comm().allGatherv(buf.data(), nullptr, counts, DataType::I32), UsageError);
  // The backend is still usable after rejected calls.
  buf.assign(4, 1);
  comm().allReduce(buf.data(), buf.data(), 4, DataType::I32, ReduceOp::Sum)->wait();
  EXPECT_EQ(buf[3], comm().size());
}

// The fast path (docs/collectives.md#the-fast-path). Each test makes its own backend (debug checks off, as
// make_mpi_backend leaves them), so that its count of fast-path starts begins at 0. After a wait returns
// the backend is idle (the engine frees itself before it completes a Work), so the next op takes the
// fast path: the counts below are exact, not timing-dependent, except where a comment says "at least".

// Every op of one MPI call, waited on at once, on an idle backend.
TEST(CollectivesFastPath, AnIdleBackendStartsEveryOneCallOpOnTheCallingThread) {
  auto b = make_mpi_backend();
  const int rank = b->rank(), size = b->size();
  std::vector<float> v(5, static_cast<float>(rank + 1)), out(5), all(5 * size_t(size));
  b->allReduce(v.data(), out.data(), v.size(), DataType::F32, ReduceOp::Sum)->wait();
  EXPECT_EQ(out[4], static_cast<float>(size * (size + 1) / 2));
  b->allReduce(v.data(), out.data(), v.size(), DataType::F32, ReduceOp::Avg)->wait();  // divides after the call
  EXPECT_EQ(out[0], static_cast<float>(size + 1) / 2);
  b->broadcast(v.data(), v.size(), DataType::F32, size - 1)->wait();
  EXPECT_EQ(v[2], static_cast<float>(size));
  b->allGather(v.data(), all.data(), v.size(), DataType::F32)->wait();
  b->reduceScatter(all.data(), out.data(), v.size(), DataType::F32, ReduceOp::Avg)->wait();
  EXPECT_EQ(out[1], static_cast<float>(size));
  b->barrier()->wait();
  const std::vector<size_t> counts(size_t(size), 2);
  b->gatherv(v.data(), all.data(), counts, DataType::F32, 0)->wait();
  b->allGatherv(v.data(), all.data(), counts, DataType::F32)->wait();
  EXPECT_EQ(all[2 * size_t(size) - 1], static_cast<float>(size));
  EXPECT_EQ(fast_path_starts_for_testing(*b), 8u);
}

TEST(CollectivesFastPath, OpsOfSeveralCallsAndOpsWithDebugChecksQueue) {
  MpiBackendOptions o;
  o.max_elements_per_call = 5;
  auto b = make_mpi_backend(CommGroup::World, o);
  std::vector<int64_t> v(23, b->rank());
  b->allReduce(v.data(), v.data(), v.size(), DataType::I64, ReduceOp::Max)->wait();  // 5 calls
  EXPECT_EQ(v[22], b->size() - 1);
  b->allReduce(v.data(), v.data(), 5, DataType::I64, ReduceOp::Max)->wait();  // 1 call
  EXPECT_EQ(fast_path_starts_for_testing(*b), 1u);
  b->setDebugChecks(true);  // the fingerprint is a call of its own
  b->barrier()->wait();
  b->setDebugChecks(false);
  b->barrier()->wait();
  EXPECT_EQ(fast_path_starts_for_testing(*b), 2u);
}

TEST(CollectivesFastPath, APausedBackendQueuesItsOps) {
  auto b = make_mpi_backend();
  pause_progress_for_testing(*b, true);
  int32_t value = b->rank();
  auto work = b->allReduce(&value, &value, 1, DataType::I32, ReduceOp::Max);
  EXPECT_EQ(fast_path_starts_for_testing(*b), 0u);
  EXPECT_FALSE(work->isCompleted());  // queued behind the paused thread: not even started
  pause_progress_for_testing(*b, false);
  work->wait();
  EXPECT_EQ(value, b->size() - 1);
}

// Nobody waits: the progress thread must take the op over (it may need this rank's polls to move on
// every rank).
TEST(CollectivesFastPath, AnOpNobodyWaitsOnCompletesOnTheProgressThread) {
  auto b = make_mpi_backend();
  std::vector<float> v(1000, 1.0f);
  auto work = b->allReduce(v.data(), v.data(), v.size(), DataType::F32, ReduceOp::Sum);
  EXPECT_EQ(fast_path_starts_for_testing(*b), 1u);
  while (!work->isCompleted()) std::this_thread::sleep_for(std::chrono::microseconds(100));
  EXPECT_EQ(v[999], static_cast<float>(b->size()));
}

// Bursts of 1-4 ops: the first finds the backend idle and starts on this thread; the others queue behind
// it, or take the fast path too when it already completed. Every op has its own count and values, so an
// op matched with another on some rank would fail (a truncated message, a wrong sum) or hang.
void expect_bursts_keep_issue_order(HcclLike& b, int rounds) {
  const int rank = b.rank(), size = b.size();
  uint64_t at_least = 0;
  for (int round = 0; round < rounds; ++round) {
    const int burst = round % 4 + 1, how = round % 3;  // how: 0 wait at once, 1 in reverse, 2 watch only
    std::vector<std::vector<int64_t>> bufs(static_cast<size_t>(burst));
    std::vector<WorkPtr> works;
    for (int j = 0; j < burst; ++j) {
      const int64_t tag = round * 10 + j;
      auto& buf = bufs[size_t(j)];
      buf.assign(size_t(3 + j), tag * 1000 + rank);
      if (j % 2 == 0)
        works.push_back(b.allReduce(buf.data(), buf.data(), buf.size(), DataType::I64, ReduceOp::Sum));
      else
        works.push_back(b.broadcast(buf.data(), buf.size(), DataType::I64, (round + j) % size));
      if (how == 0) works.back()->wait();
    }
    at_least += how == 0 ? uint64_t(burst) : 1;
    if (how == 1)
      for (int j = burst - 1; j >= 0; --j) works[size_t(j)]->wait();
    while (!works.back()->isCompleted()) std::this_thread::sleep_for(std::chrono::microseconds(50));
    for (int j = 0; j < burst; ++j) {
      EXPECT_TRUE(works[size_t(j)]->isCompleted()) << "round " << round << ": op " << j << " after the last";
      const int64_t tag = round * 10 + j;
      const int64_t want = j % 2 == 0 ? tag * 1000 * size + size * (size - 1) / 2 : tag * 1000 + (round + j) % size;
      EXPECT_EQ(bufs[size_t(j)].back(), want) << "round " << round << ", op " << j;
    }
  }
  EXPECT_GE(fast_path_starts_for_testing(b), at_least);
}

TEST(CollectivesFastPath, FastPathAndQueuedOpsMixedKeepIssueOrderOnEveryRank) {
  auto b = make_mpi_backend();
  expect_bursts_keep_issue_order(*b, 60);
}

// A late peer (rank 1) holds the first op in flight on the others, deterministically: what they issue
// next queues behind it.
TEST(CollectivesFastPathWithPeers, AnOpIssuedBehindAnUnfinishedOneQueues) {
  auto b = make_mpi_backend();
  const int rank = b->rank(), size = b->size();
  int64_t sum = rank, root_value = rank == 0 ? 7 : -1;
  std::vector<WorkPtr> works;
  if (rank != 1) {
    works.push_back(b->barrier());
    works.push_back(b->allReduce(&sum, &sum, 1, DataType::I64, ReduceOp::Sum));
    works.push_back(b->broadcast(&root_value, 1, DataType::I64, 0));
    EXPECT_EQ(fast_path_starts_for_testing(*b), 1u);  // the barrier only
    EXPECT_FALSE(works[0]->isCompleted());            // rank 1 has not joined
  }
  signal_comm().barrier()->wait();
  if (rank == 1) {
    works.push_back(b->barrier());
    works.push_back(b->allReduce(&sum, &sum, 1, DataType::I64, ReduceOp::Sum));
    works.push_back(b->broadcast(&root_value, 1, DataType::I64, 0));
  }
  for (int k = 2; k >= 0; --k) works[size_t(k)]->wait();
  EXPECT_EQ(sum, int64_t(size) * (size - 1) / 2);
  EXPECT_EQ(root_value, 7);
}

// The pattern of WaitTimesOutNamingTheOpWhileAPeerIsLate, on a fast-path op and on a queued one: both
// report the same way.
TEST(CollectivesFastPathWithPeers, ATimeoutIsReportedAsForAQueuedOp) {
  auto b = make_mpi_backend();
  std::vector<WorkPtr> works;
  if (b->rank() != 1) {
    works.push_back(b->barrier());  // fast path; rank 1 joins only after the timeouts
    works.push_back(b->barrier());  // queued behind it
    EXPECT_EQ(fast_path_starts_for_testing(*b), 1u);
    for (int k = 0; k < 2; ++k) {
      try {
        works[size_t(k)]->wait(std::chrono::milliseconds(50));
        ADD_FAILURE() << "expected a timeout";
      } catch (const CollectiveTimeout& e) {
        const std::string text = e.what();
        const std::string head = "barrier #" + std::to_string(k + 1) + " (collective #" + std::to_string(k + 1) +
                                 ") did not finish within 0.05 s on rank " + std::to_string(b->rank()) + ": ";
        EXPECT_EQ(text.rfind(head, 0), 0u) << text;  // then who has not issued it, from the heartbeats
        EXPECT_NE(text.find("; a collective cannot be cancelled: the job must abort"), std::string::npos) << text;
      }
      EXPECT_FALSE(works[size_t(k)]->isCompleted());
    }
  }
  signal_comm().barrier()->wait();
  if (b->rank() == 1) {
    works.push_back(b->barrier());
    works.push_back(b->barrier());
  }
  works[1]->wait();  // both still complete once the late rank arrives
  EXPECT_TRUE(works[0]->isCompleted());
}

// Ranks 0 and 1 broadcast with counts that differ (8 elements sent, 4 expected): rank 1's receive is
// truncated. The same op fails with the same text whether it took the fast path or queued (its rank
// paused while issuing it).
std::string truncated_broadcast_error(MPI_Comm pair, bool queue) {
  auto b = make_mpi_backend(pair);
  std::vector<int32_t> v(8, 1);
  if (queue) pause_progress_for_testing(*b, true);
  auto work = b->broadcast(v.data(), b->rank() == 0 ? 8 : 4, DataType::I32, 0);
  EXPECT_EQ(fast_path_starts_for_testing(*b), queue ? 0u : 1u);
  if (queue) pause_progress_for_testing(*b, false);
  try {
    work->wait();
  } catch (const CollectiveError& e) {
    return e.what();
  }
  return "";
}

TEST(CollectivesFastPathWithPeers, AnMpiErrorReachesTheWorkAsFromTheQueue) {
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm pair = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank < 2 ? 0 : MPI_UNDEFINED, world_rank, &pair);
  if (pair != MPI_COMM_NULL) {
    const std::string fast = truncated_broadcast_error(pair, false);
    const std::string queued = truncated_broadcast_error(pair, true);
    if (world_rank == 1) {
      EXPECT_EQ(fast.rfind("broadcast #1 (4 x i32) from root 0 failed on rank 1: ", 0), 0u) << fast;
      EXPECT_NE(fast.find("issued different collectives"), std::string::npos) << fast;
    } else {
      EXPECT_EQ(fast, "");
    }
    EXPECT_EQ(fast, queued);
    MPI_Comm_free(&pair);
  }
  signal_comm().barrier()->wait();
}

}  // namespace
}  // namespace mpibert
