#include "worker/model/bf16_weights.h"

#include <mutex>
#include <unordered_map>
#include <vector>

namespace mpibert::model {
namespace {

// Keyed by the weight's TensorImpl; the weak reference tells a live weight from a freed one whose
// address was reused.
struct Entry {
  c10::weak_intrusive_ptr<c10::TensorImpl> owner;
  std::shared_ptr<Bf16Copy> copy;
};

class Registry {
 public:
  std::shared_ptr<Bf16Copy> find(const torch::Tensor& weight) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(weight.unsafeGetTensorImpl());
    if (it == entries_.end() || it->second.owner.expired()) return nullptr;
    return it->second.copy;
  }

  std::shared_ptr<Bf16Copy> find_or_add(const torch::Tensor& weight) {
    std::lock_guard<std::mutex> lock(mutex_);
    c10::TensorImpl* impl = weight.unsafeGetTensorImpl();
    auto it = entries_.find(impl);
    if (it != entries_.end() && !it->second.owner.expired()) return it->second.copy;
    if (entries_.size() >= next_sweep_) sweep();
    auto copy = std::make_shared<Bf16Copy>();
    copy->copy = torch::empty(weight.sizes(), weight.options().dtype(at::kBFloat16));
    copy->version = weight._version() + 1;  // never current before the first write
    entries_.insert_or_assign(impl, Entry{c10::weak_intrusive_ptr<c10::TensorImpl>(weight.getIntrusivePtr()), copy});
    return copy;
  }

 private:
  // Drops the entries of freed weights (models built and dropped, as tests do).
  void sweep() {
    for (auto it = entries_.begin(); it != entries_.end();) it = it->second.owner.expired() ? entries_.erase(it) : ++it;
    next_sweep_ = 2 * entries_.size() + 64;
  }

  std::mutex mutex_;
  std::unordered_map<const c10::TensorImpl*, Entry> entries_;
  size_t next_sweep_ = 64;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: weights may outlive static destruction order
  return *r;
}

// Forward hands out the kept copy; backward casts the bf16 gradient to the weight's fp32.
class Bf16WeightFn : public torch::autograd::Function<Bf16WeightFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& /*weight*/,
                               const torch::Tensor& copy) {
    return copy;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list grads) {
    return {grads[0].to(at::kFloat), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor bf16_weight(const torch::Tensor& weight) {
  TORCH_CHECK(weight.scalar_type() == at::kFloat && weight.is_contiguous(),
              "bf16_weight: the weight must be a contiguous float32 tensor");
  const std::shared_ptr<Bf16Copy> kept = registry().find_or_add(weight);
  if (kept->version != weight._version()) {
    torch::NoGradGuard no_grad;
    kept->copy.copy_(weight);
    kept->version = weight._version();
  }
  return Bf16WeightFn::apply(weight, kept->copy);
}

std::shared_ptr<Bf16Copy> kept_bf16_copy(const torch::Tensor& weight) {
  return registry().find(weight);
}

}  // namespace mpibert::model
