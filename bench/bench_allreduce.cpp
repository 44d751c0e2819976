// nccl-tests style all-reduce benchmark: HcclLike (progress thread + Work handle) against raw
// MPI_Allreduce on the same ranks, the same buffers and sizes, in the same run, alternating so both
// see the same machine state. Prints a table on stderr (rank 0) and one JSON line per size on stdout.
//   mpirun -np 2 build/bin/bench_allreduce [--min_bytes 8] [--max_bytes 268435456] [--target_ms 200]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/comm/blocking_mpi_baseline.h"
#include "common/comm/mpi_backend.h"
#include "common/error.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  mpibert::MpiEnvironment env(&argc, &argv);
  return mpibert::run_main("bench_allreduce", [&]() -> int {
    size_t min_bytes = 8, max_bytes = size_t(256) << 20;
    double target_ms = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
      std::string a = argv[i];
      if (a == "--min_bytes")
        min_bytes = std::strtoull(argv[i + 1], nullptr, 10);
      else if (a == "--max_bytes")
        max_bytes = std::strtoull(argv[i + 1], nullptr, 10);
      else if (a == "--target_ms")
        target_ms = std::atof(argv[i + 1]);
      else
        throw mpibert::UsageError("unknown option " + a + " (valid: --min_bytes, --max_bytes, --target_ms)");
    }
    auto comm = mpibert::make_mpi_backend();
    mpibert::BlockingMpiBaseline raw;
    // Slowest rank's time: a collective is as fast as its slowest participant.
    auto max_over_ranks = [&](double t) { return raw.maxOverRanks(t); };
    const int rank = comm->rank(), size = comm->size();
    std::vector<float> send(max_bytes / 4 + 1), recv(max_bytes / 4 + 1);
    for (size_t i = 0; i < send.size(); ++i) send[i] = static_cast<float>((rank + 1) * ((i % 7) + 1));
    if (rank == 0)
      std::fprintf(stderr,
                   "# world_size %d, float sum, out of place; busbw = algbw * 2(n-1)/n\n"
                   "# %12s %8s | %10s %9s %9s | %10s %9s %9s | %7s %10s\n",
                   size, "bytes", "iters", "hccl_us", "algbw", "busbw", "mpi_us", "algbw", "busbw", "ratio",
                   "overhead_us");
    for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= 2) {
      const size_t count = bytes / 4;
      auto run_hccl = [&] {
        comm->allReduce(send.data(), recv.data(), count, mpibert::DataType::F32, mpibert::ReduceOp::Sum)->wait();
      };
      auto run_mpi = [&] { raw.allReduceSumF32(send.data(), recv.data(), count); };
      // Calibrate the iteration count on the raw call so each side runs about target_ms.
      run_mpi();
      run_hccl();
      raw.barrier();
      auto t0 = Clock::now();
      run_mpi();
      double one = max_over_ranks(seconds_since(t0));
      int iters = static_cast<int>(std::clamp(target_ms / 1000.0 / std::max(one, 1e-7) / 2, 3.0, 2000.0));
      double t_hccl = 0, t_mpi = 0;
      // Alternate halves so drift affects both sides alike.
      for (int half = 0; half < 2; ++half) {
        raw.barrier();
        t0 = Clock::now();
        for (int i = 0; i < iters / 2 + 1; ++i) run_mpi();
        t_mpi += max_over_ranks(seconds_since(t0));
        raw.barrier();
        t0 = Clock::now();
        for (int i = 0; i < iters / 2 + 1; ++i) run_hccl();
        t_hccl += max_over_ranks(seconds_since(t0));
      }
      const int n = 2 * (iters / 2 + 1);
      // Data check: element i must be sum_r (r+1)*((i%7)+1).
      const float factor = static_cast<float>(size * (size + 1) / 2);
      size_t wrong = 0;
      for (size_t i = 0; i < count; ++i) wrong += recv[i] != factor * static_cast<float>((i % 7) + 1);
      const uint64_t wrong_all = raw.sumOverRanks(wrong);
      const double hccl_s = t_hccl / n, mpi_s = t_mpi / n;
      const double bus = size > 1 ? 2.0 * (size - 1) / size : 1.0;
      const double alg_h = bytes / hccl_s / 1e9, alg_m = bytes / mpi_s / 1e9;
      if (rank == 0) {
        std::fprintf(stderr, "  %12zu %8d | %10.2f %9.3f %9.3f | %10.2f %9.3f %9.3f | %7.3f %10.2f%s\n", bytes, n,
                     hccl_s * 1e6, alg_h, alg_h * bus, mpi_s * 1e6, alg_m, alg_m * bus, mpi_s / hccl_s,
                     (hccl_s - mpi_s) * 1e6, wrong_all ? "  DATA MISMATCH" : "");
        std::printf(
            "{\"bench\":\"allreduce\",\"world_size\":%d,\"bytes\":%zu,\"iters\":%d,\"hccl_us\":%.3f,"
            "\"mpi_us\":%.3f,\"hccl_algbw_gbs\":%.4f,\"mpi_algbw_gbs\":%.4f,\"hccl_busbw_gbs\":%.4f,"
            "\"mpi_busbw_gbs\":%.4f,\"busbw_ratio\":%.4f,\"overhead_us\":%.3f,\"data_ok\":%s}\n",
            size, bytes, n, hccl_s * 1e6, mpi_s * 1e6, alg_h, alg_m, alg_h * bus, alg_m * bus, mpi_s / hccl_s,
            (hccl_s - mpi_s) * 1e6, wrong_all ? "false" : "true");
        std::fflush(stdout);
      }
      if (wrong_all) throw std::runtime_error("all-reduce result mismatch at " + std::to_string(bytes) + " bytes");
    }
    return 0;
  });
}
