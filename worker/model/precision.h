#pragma once
// Mixed precision on CPU: run-time detection of fast bf16 (AVX512_BF16 / AMX-BF16), the
// fp32|bf16|auto choice, and an RAII guard for libtorch's CPU autocast (bf16 matmuls, fp32
// master weights; the model casts LayerNorm, softmax and the loss to fp32 itself).
#include <string>

namespace mpibert::model {

struct CpuBf16Features {
  bool avx512_bf16 = false;  // CPUID.(EAX=7,ECX=1):EAX[5]
  bool amx_bf16 = false;     // CPUID.(EAX=7,ECX=0):EDX[22] (with AMX-TILE, EDX[24])
  bool os_avx512 = false;    // XCR0 has the opmask/ZMM state (bits 5-7) and SSE/AVX (1-2)
  bool os_amx = false;       // XCR0 has XTILECFG/XTILEDATA (bits 17-18)
};

// Queried once with CPUID/XGETBV; all false on non-x86 CPUs.
CpuBf16Features cpu_bf16_features();

// True when the CPU has native bf16 dot products the OS lets us use (AVX512_BF16 with AVX-512 state,
// or AMX-BF16 with tile state) and libtorch was built with oneDNN (which runs bf16 matmuls).
bool cpu_supports_bf16_fast();

// "fp32" | "bf16" | "auto" -> "fp32" | "bf16". auto = bf16 where cpu_supports_bf16_fast().
// bf16 requested on a CPU without it is honoured (emulated, slow) with a warning in the log.
// Anything else -> UsageError.
std::string resolve_precision(const std::string& requested);

// Enables CPU autocast to bf16 for its lifetime when `bf16` (no-op otherwise). Nesting-aware like
// torch.autocast: the cast-weight cache is cleared when the outermost guard exits, and the previous
// enabled flag and dtype are restored. Run backward after the guard is gone, as in PyTorch.
class AutocastGuard {
 public:
  explicit AutocastGuard(bool bf16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool prev_enabled_ = false;
  int prev_dtype_ = 0;  // at::ScalarType, kept as int to keep torch out of this header
};

}  // namespace mpibert::model
