#include "common/comm/half_reduce_ops.h"

#include <stdexcept>
#include <string>

#include "common/comm/half_float.h"
#include "common/comm/mpi_mapping.h"

namespace mpibert {
namespace {

struct Bf16 {
  static float widen(uint16_t h) { return bf16_to_f32(h); }
  static uint16_t narrow(float f) { return f32_to_bf16(f); }
};
struct F16 {
  static float widen(uint16_t h) { return f16_to_f32(h); }
  static uint16_t narrow(float f) { return f32_to_f16(f); }
};

// As MPI's own float ops: inout = inout OP in.
struct Sum {
  static float apply(float a, float b) { return a + b; }
};
struct Min {
  static float apply(float a, float b) { return a < b ? a : b; }
};
struct Max {
  static float apply(float a, float b) { return a > b ? a : b; }
};
struct Prod {
  static float apply(float a, float b) { return a * b; }
};

// inout[i] = round16(f32(inout[i]) OP f32(in[i])): integer shifts and one IEEE op per element, so every
// instruction set the loop is compiled for gives the same bits.
template <class Half, class Op>
inline __attribute__((always_inline)) void combine_loop(const void* in, void* inout, const int* len) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  const int n = *len;
  for (int i = 0; i < n; ++i) b[i] = Half::narrow(Op::apply(Half::widen(b[i]), Half::widen(a[i])));
}

// MPI_User_functions. The datatype is always MPI_UINT16_T (one 16-bit element per count), so it is not
// looked at. The build targets plain x86-64 (SSE2), where packing 32-bit lanes back to 16 bits is slow:
// AVX2 halves the bf16 op's time and AVX-512BW makes it as fast as MPI's own f32 sum (0.25-0.3 against
// 0.8 ns per element on the development machine), so the op is also compiled for those and picked at
// run time.
template <class Half, class Op>
void combine(void* in, void* inout, int* len, MPI_Datatype*) {
  combine_loop<Half, Op>(in, inout, len);
}
#if defined(__x86_64__)
template <class Half, class Op>
__attribute__((target("avx2"))) void combine_avx2(void* in, void* inout, int* len, MPI_Datatype*) {
  combine_loop<Half, Op>(in, inout, len);
}
template <class Half, class Op>
__attribute__((target("avx512f,avx512bw"))) void combine_avx512(void* in, void* inout, int* len, MPI_Datatype*) {
  combine_loop<Half, Op>(in, inout, len);
}

#endif

template <class Half, class Op>
MPI_User_function* fastest_combine() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return &combine_avx512<Half, Op>;
  if (__builtin_cpu_supports("avx2")) return &combine_avx2<Half, Op>;
#endif
  return &combine<Half, Op>;
}

template <class Half>
void create_ops(MPI_Op (&ops)[4]) {
  const int commutes = 1;
  mpi_check(MPI_Op_create(fastest_combine<Half, Sum>(), commutes, &ops[0]), "MPI_Op_create(16-bit sum)", -1);
  mpi_check(MPI_Op_create(fastest_combine<Half, Min>(), commutes, &ops[1]), "MPI_Op_create(16-bit min)", -1);
  mpi_check(MPI_Op_create(fastest_combine<Half, Max>(), commutes, &ops[2]), "MPI_Op_create(16-bit max)", -1);
  mpi_check(MPI_Op_create(fastest_combine<Half, Prod>(), commutes, &ops[3]), "MPI_Op_create(16-bit prod)", -1);
}

int op_index(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg:
      return 0;
    case ReduceOp::Min:
      return 1;
    case ReduceOp::Max:
      return 2;
    case ReduceOp::Prod:
      return 3;
  }
  throw CollectiveError("16-bit reduction: unsupported reduce op " + std::to_string(static_cast<int>(op)));
}

template <class Half>
void divide(uint16_t* p, size_t count, float divisor) {
  for (size_t i = 0; i < count; ++i) p[i] = Half::narrow(Half::widen(p[i]) / divisor);
}

}  // namespace

HalfReduceOps::HalfReduceOps() {
  int up = 0;
  MPI_Initialized(&up);  // MPI_Op_create before MPI_Init would abort the process without a word
  if (!up) throw std::runtime_error("HcclLike: MPI is not initialised (create an MpiEnvironment first)");
  create_ops<F16>(ops_[0]);
  create_ops<Bf16>(ops_[1]);
}

HalfReduceOps::~HalfReduceOps() {
  release();
}

MPI_Op HalfReduceOps::get(DataType dtype, ReduceOp op) const {
  if (dtype != DataType::F16 && dtype != DataType::BF16)
    throw CollectiveError(std::string("16-bit reduction op asked for dtype ") + dtype_name(dtype));
  return ops_[dtype == DataType::BF16 ? 1 : 0][op_index(op)];
}

void HalfReduceOps::release() {
  if (freed_) return;
  freed_ = true;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;  // too late: MPI is gone, and with it the ops
  for (auto& per_dtype : ops_)
    for (MPI_Op& op : per_dtype) MPI_Op_free(&op);
}

void divide_half(void* buffer, size_t count, DataType dtype, int divisor) {
  auto* p = static_cast<uint16_t*>(buffer);
  if (dtype == DataType::BF16)
    divide<Bf16>(p, count, static_cast<float>(divisor));
  else
    divide<F16>(p, count, static_cast<float>(divisor));
}

}  // namespace mpibert
