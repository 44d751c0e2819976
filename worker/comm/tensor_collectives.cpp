#include "worker/comm/tensor_collectives.h"

#include <sstream>

#include "common/error.h"

namespace mpibert {
namespace {

void check_buffer(const at::Tensor& t, const char* what) {
  std::ostringstream why;
  if (!t.defined())
    why << "an undefined tensor";
  else if (!t.device().is_cpu())
    why << "a tensor on " << t.device() << " (this backend moves host memory)";
  else if (t.layout() != at::kStrided)
    why << "a sparse tensor";
  else if (!t.is_contiguous())
    why << "a non-contiguous tensor (call .contiguous() first)";
  else
    return;
  throw UsageError(std::string(what) + ": got " + why.str());
}

void check_same_dtype(const at::Tensor& a, const at::Tensor& b, const char* what) {
  if (a.scalar_type() != b.scalar_type())
    throw UsageError(std::string(what) + ": send is " + std::string(c10::toString(a.scalar_type())) + " but recv is " +
                     std::string(c10::toString(b.scalar_type())));
}

}  // namespace

DataType to_hccl_dtype(const at::Tensor& t, const char* what) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return DataType::F32;
    case at::kDouble:
      return DataType::F64;
    case at::kHalf:
      return DataType::F16;
    case at::kBFloat16:
      return DataType::BF16;
    case at::kInt:
      return DataType::I32;
    case at::kLong:
      return DataType::I64;
    case at::kByte:
      return DataType::U8;
    default:
      throw UsageError(std::string(what) + ": dtype " + std::string(c10::toString(t.scalar_type())) +
                       " is not supported (f32, f64, f16, bf16, i32, i64, u8)");
  }
}

WorkPtr all_reduce(HcclLike& comm, at::Tensor& t, ReduceOp op) {
  return all_reduce(comm, t, t, op);
}

WorkPtr all_reduce(HcclLike& comm, const at::Tensor& send, at::Tensor& recv, ReduceOp op) {
  check_buffer(send, "all_reduce send");
  check_buffer(recv, "all_reduce recv");
  check_same_dtype(send, recv, "all_reduce");
  if (send.numel() != recv.numel())
    throw UsageError("all_reduce: send has " + std::to_string(send.numel()) + " elements, recv " +
                     std::to_string(recv.numel()));
  return comm.allReduce(send.data_ptr(), recv.data_ptr(), send.numel(), to_hccl_dtype(send, "all_reduce"), op);
}

WorkPtr broadcast(HcclLike& comm, at::Tensor& t, int root) {
  check_buffer(t, "broadcast");
  return comm.broadcast(t.data_ptr(), t.numel(), to_hccl_dtype(t, "broadcast"), root);
}

WorkPtr all_gather(HcclLike& comm, const at::Tensor& send, at::Tensor& recv) {
  check_buffer(send, "all_gather send");
  check_buffer(recv, "all_gather recv");
  check_same_dtype(send, recv, "all_gather");
  if (recv.numel() != send.numel() * comm.size())
    throw UsageError("all_gather: recv needs " + std::to_string(send.numel() * comm.size()) + " elements, has " +
                     std::to_string(recv.numel()));
  return comm.allGather(send.data_ptr(), recv.data_ptr(), send.numel(), to_hccl_dtype(send, "all_gather"));
}

WorkPtr reduce_scatter(HcclLike& comm, const at::Tensor& send, at::Tensor& recv, ReduceOp op) {
  check_buffer(send, "reduce_scatter send");
  check_buffer(recv, "reduce_scatter recv");
  check_same_dtype(send, recv, "reduce_scatter");
  if (send.numel() != recv.numel() * comm.size())
    throw UsageError("reduce_scatter: send needs " + std::to_string(recv.numel() * comm.size()) + " elements, has " +
                     std::to_string(send.numel()));
  return comm.reduceScatter(send.data_ptr(), recv.data_ptr(), recv.numel(), to_hccl_dtype(send, "reduce_scatter"), op);
}

}  // namespace mpibert
