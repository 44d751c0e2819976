// Fitting OpenBLAS's core to the CPU: the decision (never over a user's OPENBLAS_CORETYPE, only from a
// fallback core, the best core the CPU runs) and the sgemm check blas_probe runs.
#include "common/platform/blas_fit.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <vector>

namespace mpibert::platform {
namespace {

CpuFeatures avx512(bool bf16) {
  CpuFeatures f;
  f.avx2 = f.fma = f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = true;
  f.avx512bf16 = bf16;
  return f;
}

CpuFeatures avx2_only(bool amd) {
  CpuFeatures f;
  f.avx2 = f.fma = true;
  f.amd = amd;
  return f;
}

TEST(BlasFit, FittingCoreFollowsTheFeatures) {
  EXPECT_EQ(fitting_openblas_core(avx512(true)), "Cooperlake");
  EXPECT_EQ(fitting_openblas_core(avx512(false)), "SkylakeX");
  EXPECT_EQ(fitting_openblas_core(avx2_only(false)), "Haswell");
  EXPECT_EQ(fitting_openblas_core(avx2_only(true)), "Zen");
  CpuFeatures partial = avx512(false);
  partial.avx512dq = false;  // SkylakeX's kernels need DQ too: AVX2 kernels then
  EXPECT_EQ(fitting_openblas_core(partial), "Haswell");
  EXPECT_EQ(fitting_openblas_core(CpuFeatures{}), "");
}

TEST(BlasFit, FallbackCoresAreTheOldOnes) {
  for (const char* core : {"Prescott", "PRESCOTT", "Nehalem", "Core2", "Sandybridge", "Opteron_SSE3"})
    EXPECT_TRUE(is_fallback_openblas_core(core)) << core;
  for (const char* core : {"Haswell", "SkylakeX", "Cooperlake", "Zen", ""})
    EXPECT_FALSE(is_fallback_openblas_core(core)) << core;
}

TEST(BlasFit, TriesTheFittingCoreOnlyWhenOpenBlasFellBack) {
  auto d = decide_blas_core(std::nullopt, false, "Prescott", avx512(true));
  EXPECT_EQ(d.try_core, "Cooperlake");
  EXPECT_NE(d.note.find("fallback core Prescott on a CPU with AVX-512"), std::string::npos) << d.note;
  EXPECT_EQ(decide_blas_core(std::nullopt, false, "Nehalem", avx2_only(false)).try_core, "Haswell");
  // OpenBLAS's own good choice stays, even when a wider one exists (it may know better).
  d = decide_blas_core(std::nullopt, false, "Haswell", avx512(false));
  EXPECT_EQ(d.try_core, "");
  EXPECT_NE(d.note.find("its own choice"), std::string::npos) << d.note;
  // A CPU without AVX2: nothing better to try.
  EXPECT_EQ(decide_blas_core(std::nullopt, false, "Prescott", CpuFeatures{}).try_core, "");
}

TEST(BlasFit, NeverOverridesAUserSetting) {
  auto d = decide_blas_core(std::string("Haswell"), false, "Haswell", avx512(true));
  EXPECT_EQ(d.try_core, "");
  EXPECT_NE(d.note.find("OPENBLAS_CORETYPE=Haswell from the environment, kept"), std::string::npos) << d.note;
  // Even a fallback the user asked for (to compare, or because the fitting kernels misbehave there).
  EXPECT_EQ(decide_blas_core(std::string("Prescott"), false, "Prescott", avx512(true)).try_core, "");
}

TEST(BlasFit, AChoiceOfOursIsNotTriedAgain) {
  auto d = decide_blas_core(std::string("Cooperlake"), true, "Cooperlake", avx512(true));
  EXPECT_EQ(d.try_core, "");
  EXPECT_NE(d.note.find("chosen for this CPU"), std::string::npos) << d.note;
}

TEST(BlasFit, NotOpenBlasNothingToFit) {
  auto d = decide_blas_core(std::nullopt, false, "", avx512(true));
  EXPECT_EQ(d.try_core, "");
  EXPECT_NE(d.note.find("not OpenBLAS"), std::string::npos);
}

// Column-major reference sgemm, as BLAS defines it; `k_used` < k makes it wrong on purpose.
int g_k_short = 0;
void naive_sgemm(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
                 const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                 const int* ldc) {
  const int k_used = *k - (*k > 1 ? g_k_short : 0);
  for (int j = 0; j < *n; ++j)
    for (int i = 0; i < *m; ++i) {
      double sum = 0;
      for (int l = 0; l < k_used; ++l) {
        const float x = *ta == 'N' ? a[i + l * *lda] : a[l + i * *lda];
        const float y = *tb == 'N' ? b[l + j * *ldb] : b[j + l * *ldb];
        sum += static_cast<double>(x) * y;
      }
      float& out = c[i + j * *ldc];
      out = static_cast<float>(*alpha * sum + (*beta == 0 ? 0.0 : *beta * static_cast<double>(out)));
    }
}

TEST(BlasFit, SgemmCheckPassesARightProductAndNamesAWrongOne) {
  g_k_short = 0;
  EXPECT_EQ(check_sgemm(naive_sgemm), "");
  g_k_short = 1;  // one term of every sum missing
  const std::string why = check_sgemm(naive_sgemm);
  g_k_short = 0;
  EXPECT_NE(why.find("sgemm NT 3x5x7 beta 1"), std::string::npos) << why;
  EXPECT_NE(why.find("expected"), std::string::npos) << why;
}

TEST(BlasFit, SgemmCheckPassesTheSystemBlas) {
  void* blas = dlopen("libblas.so.3", RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(blas, nullptr) << "libblas.so.3: " << dlerror();
  const auto sgemm = reinterpret_cast<SgemmFn>(dlsym(blas, "sgemm_"));
  ASSERT_NE(sgemm, nullptr);
  EXPECT_EQ(check_sgemm(sgemm), "");
}

}  // namespace
}  // namespace mpibert::platform
