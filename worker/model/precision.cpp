#include "worker/model/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <spdlog/spdlog.h>

#include "common/error.h"

namespace mpibert::model {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  // XGETBV with ECX=0; only valid when CPUID.1:ECX.OSXSAVE[27] is set (checked by the caller).
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuBf16Features detect() {
  CpuBf16Features f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1u;
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  f.os_avx512 = (xcr0 & 0xE6u) == 0xE6u;  // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  f.os_amx = ((xcr0 >> 17) & 3u) == 3u;   // XTILECFG, XTILEDATA
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned max_subleaf = a;
  f.amx_bf16 = ((d >> 22) & 1u) && ((d >> 24) & 1u);
  if (max_subleaf >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512_bf16 = (a >> 5) & 1u;
  }
  return f;
}
#else
CpuBf16Features detect() {
  return {};
}
#endif

}  // namespace

CpuBf16Features cpu_bf16_features() {
  static const CpuBf16Features features = detect();
  return features;
}

bool cpu_supports_bf16_fast() {
  const auto f = cpu_bf16_features();
  // On Linux the kernel also wants ARCH_REQ_XCOMP_PERM before AMX use; oneDNN requests it itself.
  const bool hw = (f.avx512_bf16 && f.os_avx512) || (f.amx_bf16 && f.os_amx);
  return hw && at::hasMKLDNN();
}

std::string resolve_precision(const std::string& requested) {
  if (requested == "fp32") return "fp32";
  if (requested == "auto") return cpu_supports_bf16_fast() ? "bf16" : "fp32";
  if (requested == "bf16") {
    if (!cpu_supports_bf16_fast())
      spdlog::warn(
          "train.precision bf16: this CPU (or libtorch build) has no native bf16 matmul "
          "(AVX512_BF16/AMX-BF16 with oneDNN); bf16 will be emulated and likely slower than fp32");
    return "bf16";
  }
  throw UsageError("train.precision: '" + requested + "' is not valid; valid: fp32, bf16, auto");
}

AutocastGuard::AutocastGuard(bool bf16) {
  if (!bf16) return;
  active_ = true;
  prev_enabled_ = at::autocast::is_cpu_enabled();
  prev_dtype_ = static_cast<int>(at::autocast::get_autocast_cpu_dtype());
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(prev_enabled_);
  at::autocast::set_autocast_cpu_dtype(static_cast<at::ScalarType>(prev_dtype_));
}

}  // namespace mpibert::model
