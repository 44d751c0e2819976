#include "common/comm/mpi_mapping.h"

namespace mpibert {

std::string mpi_error_string(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(rc);
  return std::string(text, static_cast<size_t>(len));
}

void mpi_check(int rc, const std::string& what, int rank) {
  if (rc == MPI_SUCCESS) return;
  int error_class = MPI_ERR_OTHER;
  MPI_Error_class(rc, &error_class);
  // A collective that receives more than it expects has met another collective: the usual cause.
  const char* hint = error_class == MPI_ERR_TRUNCATE
                         ? " (the ranks probably issued different collectives here: every rank of a communicator "
                           "must issue the same collectives in the same order)"
                         : "";
  throw CollectiveError(what + " failed on rank " + std::to_string(rank) + ": " + mpi_error_string(rc) + hint);
}

MPI_Datatype mpi_type(DataType d) {
  switch (d) {
    case DataType::F32:
      return MPI_FLOAT;
    case DataType::F64:
      return MPI_DOUBLE;
    case DataType::F16:
      return MPI_UINT16_T;
    case DataType::BF16:
      return MPI_UINT16_T;
    case DataType::I32:
      return MPI_INT32_T;
    case DataType::I64:
      return MPI_INT64_T;
    case DataType::U8:
      return MPI_UINT8_T;
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return MPI_SUM;
    case ReduceOp::Avg:
      return MPI_SUM;
    case ReduceOp::Min:
      return MPI_MIN;
    case ReduceOp::Max:
      return MPI_MAX;
    case ReduceOp::Prod:
      return MPI_PROD;
  }
  return MPI_OP_NULL;
}

}  // namespace mpibert
