#pragma once
// Internal to common/comm: MPI reduction ops for 16-bit floats (f16, bf16), which travel as MPI_UINT16_T.
// MPI has no 16-bit float types, so each op is a user function (MPI_Op_create, commutative): it widens
// both operands of every pairwise combine to f32, combines them (sum, min, max or prod) and rounds the
// result back to 16 bits, to nearest even. The data thus stays 2 bytes per element on the wire and in
// memory; the price is one rounding per reduction step of MPI's algorithm instead of one at the end.
#include <mpi.h>

#include "common/comm/hccl_like.h"

namespace mpibert {

class HalfReduceOps {
 public:
  // Creates one MPI_Op per (f16, bf16) x (sum, min, max, prod). MPI must be up; creating an op is local.
  HalfReduceOps();
  ~HalfReduceOps();
  HalfReduceOps(const HalfReduceOps&) = delete;
  HalfReduceOps& operator=(const HalfReduceOps&) = delete;

  // The op for a 16-bit dtype (f16 or bf16); avg gets the sum op (the caller divides afterwards).
  MPI_Op get(DataType dtype, ReduceOp op) const;
  // Frees the ops. Must run before MPI_Finalize (an op freed while a request still uses it lives until
  // that request completes, as MPI defines for every freed handle). Idempotent; after MPI_Finalize it
  // does nothing.
  void release();

 private:
  static constexpr int kOps = 4;  // sum, min, max, prod
  MPI_Op ops_[2][kOps];           // [f16, bf16][op]
  bool freed_ = false;
};

// Divides each element of a 16-bit buffer by `divisor` in f32 and rounds back (avg after a sum).
void divide_half(void* buffer, size_t count, DataType dtype, int divisor);

}  // namespace mpibert
