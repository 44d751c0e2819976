#pragma once
// Internal to common/comm: HcclLike's types and ops as MPI's, and MPI return codes as exceptions.
#include <mpi.h>

#include <string>

#include "common/comm/hccl_like.h"

namespace mpibert {

std::string mpi_error_string(int rc);

// Throws CollectiveError "WHAT failed on rank RANK: <MPI's text>" unless rc is MPI_SUCCESS (with a hint
// at mismatched collectives for a truncated message).
void mpi_check(int rc, const std::string& what, int rank);

// f16 and bf16 map to MPI_UINT16_T: they are moved as bits and reduced in f32.
MPI_Datatype mpi_type(DataType dtype);
// Avg maps to MPI_SUM (the backend divides afterwards).
MPI_Op mpi_op(ReduceOp op);

}  // namespace mpibert
