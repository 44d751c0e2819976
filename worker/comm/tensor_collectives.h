#pragma once
// The at::Tensor adapter for HcclLike: checks that a tensor can be handed to a collective as a
// contiguous buffer (dense, contiguous, CPU, a supported dtype) and maps the call. common/ never sees
// torch; the worker never sees void*.
#include <torch/torch.h>

#include "common/comm/hccl_like.h"

namespace mpibert {

// Maps a torch dtype to HcclLike's; throws UsageError naming the tensor for unsupported ones.
DataType to_hccl_dtype(const at::Tensor& t, const char* what);

WorkPtr all_reduce(HcclLike& comm, at::Tensor& t, ReduceOp op);
WorkPtr all_reduce(HcclLike& comm, const at::Tensor& send, at::Tensor& recv, ReduceOp op);
WorkPtr broadcast(HcclLike& comm, at::Tensor& t, int root);
// recv has size() * send.numel() elements (any shape).
WorkPtr all_gather(HcclLike& comm, const at::Tensor& send, at::Tensor& recv);
// send has size() * recv.numel() elements.
WorkPtr reduce_scatter(HcclLike& comm, const at::Tensor& send, at::Tensor& recv, ReduceOp op);

}  // namespace mpibert
