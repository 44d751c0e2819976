#include "common/comm/blocking_mpi_baseline.h"

#include <mpi.h>

#include <climits>

#include "common/comm/mpi_mapping.h"
#include "common/error.h"

namespace mpibert {

struct BlockingMpiBaseline::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
};

BlockingMpiBaseline::BlockingMpiBaseline() : impl_(new Impl) {
  MPI_Comm_rank(MPI_COMM_WORLD, &impl_->rank);
  mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm), "MPI_Comm_dup", impl_->rank);
  MPI_Comm_set_errhandler(impl_->comm, MPI_ERRORS_RETURN);
}

BlockingMpiBaseline::~BlockingMpiBaseline() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&impl_->comm);
  delete impl_;
}

void BlockingMpiBaseline::allReduceSumF32(const float* send, float* recv, size_t count) {
  if (count > size_t(INT_MAX)) throw UsageError("BlockingMpiBaseline: " + std::to_string(count) + " elements");
  mpi_check(MPI_Allreduce(send, recv, static_cast<int>(count), MPI_FLOAT, MPI_SUM, impl_->comm), "MPI_Allreduce",
            impl_->rank);
}

void BlockingMpiBaseline::barrier() {
  mpi_check(MPI_Barrier(impl_->comm), "MPI_Barrier", impl_->rank);
}

double BlockingMpiBaseline::maxOverRanks(double value) {
  double out = 0;
  mpi_check(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, impl_->comm), "MPI_Allreduce(max)", impl_->rank);
  return out;
}

uint64_t BlockingMpiBaseline::sumOverRanks(uint64_t value) {
  uint64_t out = 0;
  mpi_check(MPI_Allreduce(&value, &out, 1, MPI_UINT64_T, MPI_SUM, impl_->comm), "MPI_Allreduce(sum)", impl_->rank);
  return out;
}

}  // namespace mpibert
