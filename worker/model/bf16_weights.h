#pragma once
// bf16 copies of fp32 master weights that live across steps. Under autocast every GEMM casts its fp32
// weight to bf16 again in each forward pass and drops the copy; here the copy is made once, the
// optimizer rewrites it in the same pass that updates the weight (optimizer.cpp), and forward passes
// use it while it is current.
#include <torch/torch.h>

#include <cstdint>
#include <memory>

namespace mpibert::model {

struct Bf16Copy {
  torch::Tensor copy;    // bfloat16, the weight's shape
  uint32_t version = 0;  // the weight's version counter when `copy` was last written
};

// The weight as bf16 for a GEMM under autocast: the kept copy when it is current (the weight's version
// counter has not moved since it was written), else a fresh cast, kept for the next call.
// Differentiable with respect to the fp32 weight, whose gradient is the bf16 gradient cast to fp32,
// as autocast's own cast gives it. Thread-safe.
torch::Tensor bf16_weight(const torch::Tensor& weight);

// The copy kept for `weight`, or nullptr when bf16_weight was never called for it (or the weight
// was freed). Whoever writes the weight in place without an ATen op writes the copy too and sets
// its version to the weight's (after bumping the weight's version counter).
std::shared_ptr<Bf16Copy> kept_bf16_copy(const torch::Tensor& weight);

}  // namespace mpibert::model
