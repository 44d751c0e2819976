#pragma once
// For benchmarks: plain blocking MPI calls on a private duplicate of MPI_COMM_WORLD, the baseline that
// HcclLike is measured against (bench/bench_allreduce.cpp), and the synchronisation around the timed loops.
#include <cstddef>
#include <cstdint>

namespace mpibert {

class BlockingMpiBaseline {
 public:
  BlockingMpiBaseline();  // collective over MPI_COMM_WORLD
  ~BlockingMpiBaseline();
  BlockingMpiBaseline(const BlockingMpiBaseline&) = delete;
  BlockingMpiBaseline& operator=(const BlockingMpiBaseline&) = delete;

  // MPI_Allreduce(MPI_SUM) of f32 on the calling thread; count must fit MPI's int.
  void allReduceSumF32(const float* send, float* recv, size_t count);
  void barrier();
  double maxOverRanks(double value);
  uint64_t sumOverRanks(uint64_t value);

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace mpibert
