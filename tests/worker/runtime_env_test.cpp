// The rank's runtime environment: intra-op threads really reach the fused kernels.
#include "worker/train/runtime_env.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

namespace mpibert {
namespace {

class IntraOpThreads : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = at::get_num_threads(); }
  void TearDown() override { apply_threads(saved_); }
  int saved_ = 1;
};

// The library's at::parallel_for splits work over the threads apply_threads sets: a build without OpenMP
// runs every fused kernel on one thread (ATen's parallel_for is inline and serial without -fopenmp).
TEST_F(IntraOpThreads, EveryThreadApplyThreadsSetsTakesAChunk) {
  apply_threads(2);
  EXPECT_EQ(intra_op_threads_reached(2), 2);
  apply_threads(3);
  EXPECT_EQ(intra_op_threads_reached(3), 3);
  EXPECT_EQ(intra_op_threads_reached(2), 2) << "fewer tasks than threads: one thread per task";
}

TEST_F(IntraOpThreads, OneThreadRunsEverything) {
  apply_threads(1);
  EXPECT_EQ(intra_op_threads_reached(4), 1);
}

}  // namespace
}  // namespace mpibert
