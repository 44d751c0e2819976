// blas_probe: loads the system BLAS the way libtorch does (libblas.so.3, with this process's
// OPENBLAS_CORETYPE) and checks its sgemm against a double-precision product. The training programs run
// it in a child before they re-execute themselves with a core OpenBLAS did not pick on its own (a kernel
// the CPU cannot run would crash this process, not theirs). Exit 0: the BLAS is right; 1: a product was
// wrong; 3: OpenBLAS did not take the requested core; 2: no BLAS to load. `--fit` prints what a launcher
// exports instead (gaudi_spawn runs it once for all ranks of a single-host job). See docs/training.md.
#include <dlfcn.h>
#include <strings.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/platform/blas_fit.h"

namespace {

using CoreName = char* (*)();

// `blas_probe --fit`: what a launcher exports so that its ranks load the fitting core at once. Prints
// "blas_probe: NOTE" (or "blas_probe: warning: NOTE"), then one KEY=VALUE line per variable (none when
// OpenBLAS's own core stays).
int print_fit(void* blas) {
  const auto corename = reinterpret_cast<CoreName>(dlsym(blas, "openblas_get_corename"));
  const auto fit = mpibert::platform::plan_blas_fit(corename ? corename() : "");
  std::printf("blas_probe: %s%s\n", fit.note.warning ? "warning: " : "", fit.note.text.c_str());
  for (const auto& [key, value] : mpibert::platform::blas_fit_environment(fit))
    std::printf("%s=%s\n", key.c_str(), value.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 2 ? argv[1] : "";
  if (argc > 2 || (argc == 2 && mode != "--fit")) {
    std::fprintf(stderr,
                 "usage: blas_probe [--fit]\nChecks the system BLAS's sgemm with this environment's "
                 "OPENBLAS_CORETYPE; exit 0 when right.\n--fit: prints the OPENBLAS_CORETYPE that fits this CPU "
                 "(checked), as KEY=VALUE lines for a launcher.\n");
    return mode == "--help" || mode == "-h" ? 0 : 2;
  }
  void* blas = nullptr;
  for (const char* name : {"libblas.so.3", "libopenblas.so.0"})
    if ((blas = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
  const auto sgemm = blas ? reinterpret_cast<mpibert::platform::SgemmFn>(dlsym(blas, "sgemm_")) : nullptr;
  if (!sgemm) {
    std::printf("blas_probe: no BLAS with sgemm_ could be loaded (libblas.so.3: %s)\n", dlerror());
    return 2;
  }
  if (mode == "--fit") return print_fit(blas);
  const auto corename = reinterpret_cast<CoreName>(dlsym(blas, "openblas_get_corename"));
  const std::string core = corename ? corename() : "not OpenBLAS";
  if (const char* wanted = std::getenv("OPENBLAS_CORETYPE"); wanted && corename && strcasecmp(wanted, core.c_str())) {
    std::printf("blas_probe: OpenBLAS did not take OPENBLAS_CORETYPE=%s (it runs its %s kernels)\n", wanted,
                core.c_str());
    return 3;
  }
  if (const std::string wrong = mpibert::platform::check_sgemm(sgemm); !wrong.empty()) {
    std::printf("blas_probe: core %s computes a wrong product: %s\n", core.c_str(), wrong.c_str());
    return 1;
  }
  std::printf("blas_probe: core %s: sgemm matches a double-precision product in every case\n", core.c_str());
  return 0;
}
