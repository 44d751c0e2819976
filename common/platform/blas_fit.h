#pragma once
// Fitting OpenBLAS's kernels to the CPU. OpenBLAS (a DYNAMIC_ARCH build, as Debian's) picks its kernels
// from the CPU model when it is loaded, before main(); a model it does not know (Debian 12's 0.3.21 and
// Intel's newer Xeons) gets the SSE3 "Prescott" kernels, a sixth of the fp32 GEMM speed of the AVX-512
// ones on the same cores. OPENBLAS_CORETYPE overrides the choice, but only at load time, so a program
// that finds a generic core on a better CPU checks the better core in a child (`blas_probe`, a wrong
// kernel may crash) and re-executes itself with it. A setting the user gave is never overridden.
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mpibert::platform {

// What the CPU and the OS let user code run (the OS must save the wider registers, which GCC's
// __builtin_cpu_supports checks), and the vendor.
struct CpuFeatures {
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512bf16 = false;
  bool amd = false;
  std::string describe() const;  // "AVX-512 and BF16", "AVX2", "no AVX2"
};
CpuFeatures detect_cpu_features();

// The OpenBLAS 0.3.21 core whose kernels fit these features best ("" when none beats its SSE cores).
std::string fitting_openblas_core(const CpuFeatures& cpu);

// The SSE- and AVX1-era cores OpenBLAS falls back to for a model it does not know.
bool is_fallback_openblas_core(const std::string& core);

struct BlasCoreDecision {
  std::string try_core;  // non-empty: check this core and re-execute with it
  std::string note;      // what was found, for the log (always set)
};

// coretype_env: OPENBLAS_CORETYPE as this process got it; chosen_by_us: it was set by a re-execution of
// ours (MPIBERT_BLAS_FIT_CORE equals it); loaded_core: openblas_get_corename(), "" when the BLAS is not
// OpenBLAS.
BlasCoreDecision decide_blas_core(const std::optional<std::string>& coretype_env, bool chosen_by_us,
                                  const std::string& loaded_core, const CpuFeatures& cpu);

// The BLAS check `blas_probe` runs: sgemm (every transpose, beta 0 and 1, sizes around the kernels'
// block edges and one large enough for threads) against a double-precision product. sgemm is the
// Fortran entry point of the loaded BLAS. Returns "" when every result is within the fp32 bound, else
// what differed.
using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);
std::string check_sgemm(SgemmFn sgemm);

struct BlasFitNote {
  std::string text;  // which core runs and why; empty when nothing was decided
  bool warning = false;
};

// Decides with the environment (OPENBLAS_CORETYPE, MPIBERT_BLAS_FIT=0, a choice of ours carried in
// MPIBERT_BLAS_FIT_CORE / _NOTE) and, when a better core is to be tried, runs `blas_probe` (next to
// this program) with it. core: the core to load OpenBLAS with ("" = keep what runs).
struct BlasFit {
  std::string core;
  BlasFitNote note;
};
BlasFit plan_blas_fit(const std::string& loaded_core);
// The variables that load OpenBLAS with fit.core and carry the note (none when core is empty).
std::vector<std::pair<std::string, std::string>> blas_fit_environment(const BlasFit& fit);

// Called first thing in main() by the programs that train or run models (before MPI and threads start):
// plan_blas_fit with the core OpenBLAS loaded with; when it names a better one, re-executes this
// program with blas_fit_environment set. Returns only when the process keeps its BLAS; blas_fit_note()
// then says which core runs and why, for the run's log (a warning when a better core was found but
// could not be used).
void fit_blas_to_cpu(char** argv);
const BlasFitNote& blas_fit_note();

}  // namespace mpibert::platform
