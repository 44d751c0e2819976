// nccl-tests style all-reduce benchmark: HcclLike (progress thread + Work handle) against raw
// MPI_Allreduce on the same ranks, the same buffers and sizes, in the same run, alternating so both
// see the same machine state. Prints a table on stderr (rank 0) and one JSON line per size and row on
// stdout: "allreduce" (f32 against f32) and "allreduce_bf16" (HcclLike in bf16, 2 bytes per element on
// the wire with the backend's 16-bit sum op, against raw MPI_Allreduce of f32 of the same element count).
//   mpirun -np 2 build/bin/bench_allreduce [--min_bytes 8] [--max_bytes 268435456] [--target_ms 200]
// Sizes are f32 bytes (count = bytes / 4); the bf16 row of a size moves half of them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common/comm/blocking_mpi_baseline.h"
#include "common/comm/half_float.h"
#include "common/comm/mpi_backend.h"
#include "common/error.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
  size_t min_bytes = 8, max_bytes = size_t(256) << 20;
  double target_ms = 200;
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--min_bytes")
      o.min_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--max_bytes")
      o.max_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--target_ms")
      o.target_ms = std::atof(argv[i + 1]);
    else
      throw mpibert::UsageError("unknown option " + a + " (valid: --min_bytes, --max_bytes, --target_ms)");
  }
  return o;
}

// Seconds per call of each side (the slowest rank's: a collective is as fast as its slowest member).
struct Timing {
  int iters = 0;
  double hccl_s = 0, mpi_s = 0;
};

Timing time_side_by_side(mpibert::BlockingMpiBaseline& raw, double target_ms, const std::function<void()>& run_hccl,
                         const std::function<void()>& run_mpi) {
  // Calibrate the iteration count on the raw call so each side runs about target_ms.
  run_mpi();
  run_hccl();
  raw.barrier();
  auto t0 = Clock::now();
  run_mpi();
  const double one = raw.maxOverRanks(seconds_since(t0));
  const int iters = static_cast<int>(std::clamp(target_ms / 1000.0 / std::max(one, 1e-7) / 2, 3.0, 2000.0));
  double t_hccl = 0, t_mpi = 0;
  // Alternate halves so drift affects both sides alike.
  for (int half = 0; half < 2; ++half) {
    raw.barrier();
    t0 = Clock::now();
    for (int i = 0; i < iters / 2 + 1; ++i) run_mpi();
    t_mpi += raw.maxOverRanks(seconds_since(t0));
    raw.barrier();
    t0 = Clock::now();
    for (int i = 0; i < iters / 2 + 1; ++i) run_hccl();
    t_hccl += raw.maxOverRanks(seconds_since(t0));
  }
  Timing t;
  t.iters = 2 * (iters / 2 + 1);
  t.hccl_s = t_hccl / t.iters;
  t.mpi_s = t_mpi / t.iters;
  return t;
}

// One table line on stderr and one JSON line on stdout (rank 0). Bandwidths are of the bytes each side
// really sends per rank (its wire bytes); busbw = algbw * 2(n-1)/n.
struct Row {
  const char* bench;  // "allreduce" or "allreduce_bf16"
  size_t bytes;       // the size's f32 bytes (count * 4)
  size_t hccl_wire, mpi_wire;
  Timing t;
  bool data_ok;
};

void print_row(const Row& r, int size) {
  const double bus = size > 1 ? 2.0 * (size - 1) / size : 1.0;
  const double alg_h = r.hccl_wire / r.t.hccl_s / 1e9, alg_m = r.mpi_wire / r.t.mpi_s / 1e9;
  const bool bf16 = r.hccl_wire != r.mpi_wire;
  std::fprintf(stderr, "  %4s %12zu %8d | %10.2f %9.3f %9.3f | %10.2f %9.3f %9.3f | %7.3f %10.2f%s\n",
               bf16 ? "bf16" : "f32", r.bytes, r.t.iters, r.t.hccl_s * 1e6, alg_h, alg_h * bus, r.t.mpi_s * 1e6, alg_m,
               alg_m * bus, r.t.mpi_s / r.t.hccl_s, (r.t.hccl_s - r.t.mpi_s) * 1e6, r.data_ok ? "" : "  DATA MISMATCH");
  std::printf("{\"bench\":\"%s\",\"world_size\":%d,\"bytes\":%zu,", r.bench, size, r.bytes);
  // The f32 row keeps its historical keys; the bf16 row adds the element count and both wire sizes, and
  // its ratio is one of times (raw MPI's f32 time over HcclLike's bf16 time).
  if (bf16)
    std::printf("\"count\":%zu,\"hccl_wire_bytes\":%zu,\"mpi_wire_bytes\":%zu,", r.bytes / 4, r.hccl_wire, r.mpi_wire);
  std::printf(
      "\"iters\":%d,\"hccl_us\":%.3f,\"mpi_us\":%.3f,\"hccl_algbw_gbs\":%.4f,\"mpi_algbw_gbs\":%.4f,"
      "\"hccl_busbw_gbs\":%.4f,\"mpi_busbw_gbs\":%.4f,\"%s\":%.4f,\"overhead_us\":%.3f,\"data_ok\":%s}\n",
      r.t.iters, r.t.hccl_s * 1e6, r.t.mpi_s * 1e6, alg_h, alg_m, alg_h * bus, alg_m * bus,
      bf16 ? "time_ratio" : "busbw_ratio", r.t.mpi_s / r.t.hccl_s, (r.t.hccl_s - r.t.mpi_s) * 1e6,
      r.data_ok ? "true" : "false");
  std::fflush(stdout);
}

// Element i of every rank's input is (rank+1)*((i%7)+1), so the sum is factor*((i%7)+1). The f32 sum is
// exact; bf16 rounds after each of the size-1 combines (exact too while the sums stay below 256).
size_t count_wrong(const float* f32, const uint16_t* bf16, size_t count, int size) {
  const float factor = static_cast<float>(size * (size + 1) / 2);
  const double bf16_tolerance = (size - 1) * std::ldexp(1.0, -8) * 1.01;
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i) {
    const float want = factor * static_cast<float>((i % 7) + 1);
    if (f32) wrong += f32[i] != want;
    if (bf16) wrong += std::fabs(mpibert::bf16_to_f32(bf16[i]) - want) > bf16_tolerance * want;
  }
  return wrong;
}

}  // namespace

int main(int argc, char** argv) {
  mpibert::MpiEnvironment env(&argc, &argv);
  return mpibert::run_main("bench_allreduce", [&]() -> int {
    const Options o = parse_options(argc, argv);
    auto comm = mpibert::make_mpi_backend();
    mpibert::BlockingMpiBaseline raw;
    const int rank = comm->rank(), size = comm->size();
    std::vector<float> send(o.max_bytes / 4 + 1), recv(o.max_bytes / 4 + 1);
    std::vector<uint16_t> send16(send.size()), recv16(send.size());
    for (size_t i = 0; i < send.size(); ++i) {
      send[i] = static_cast<float>((rank + 1) * ((i % 7) + 1));
      send16[i] = mpibert::f32_to_bf16(send[i]);
    }
    if (rank == 0)
      std::fprintf(stderr,
                   "# world_size %d, sum, out of place; bf16 rows: HcclLike in bf16 against raw MPI in f32 of the "
                   "same count; bandwidths of the bytes each side sends; busbw = algbw * 2(n-1)/n\n"
                   "# %4s %12s %8s | %10s %9s %9s | %10s %9s %9s | %7s %10s\n",
                   size, "type", "f32_bytes", "iters", "hccl_us", "algbw", "busbw", "mpi_us", "algbw", "busbw", "ratio",
                   "overhead_us");
    for (size_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= 2) {
      const size_t count = bytes / 4;
      auto run_mpi = [&] { raw.allReduceSumF32(send.data(), recv.data(), count); };
      const Timing f32 = time_side_by_side(
          raw, o.target_ms,
          [&] {
            comm->allReduce(send.data(), recv.data(), count, mpibert::DataType::F32, mpibert::ReduceOp::Sum)->wait();
          },
          run_mpi);
      const bool f32_ok = raw.sumOverRanks(count_wrong(recv.data(), nullptr, count, size)) == 0;
      const Timing bf16 = time_side_by_side(
          raw, o.target_ms,
          [&] {
            comm->allReduce(send16.data(), recv16.data(), count, mpibert::DataType::BF16, mpibert::ReduceOp::Sum)
                ->wait();
          },
          run_mpi);
      const bool bf16_ok = raw.sumOverRanks(count_wrong(nullptr, recv16.data(), count, size)) == 0;
      if (rank == 0) {
        print_row({"allreduce", bytes, bytes, bytes, f32, f32_ok}, size);
        print_row({"allreduce_bf16", bytes, count * 2, bytes, bf16, bf16_ok}, size);
      }
      if (!f32_ok || !bf16_ok)
        throw std::runtime_error("all-reduce result mismatch at " + std::to_string(bytes) + " bytes");
    }
    return 0;
  });
}
