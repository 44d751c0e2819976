#include "worker/train/runtime_env.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <sched.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

namespace mpibert {
namespace {

template <class Fn>
Fn find_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

BlasInfo detect_blas() {
  // Force the BLAS torch uses to be loaded before looking (it is linked, but be explicit).
  if (auto get_config = find_symbol<char* (*)()>("openblas_get_config")) return {"OpenBLAS", get_config()};
  if (find_symbol<void*>("mkl_get_version_string") || find_symbol<void*>("MKL_Get_Version")) return {"MKL", ""};
  if (auto info = find_symbol<const char* (*)()>("bli_info_get_version_str")) return {"BLIS", info()};
  return {"reference", "the reference BLAS (netlib): install libopenblas0-pthread for ~7x faster training steps"};
}

int choose_threads(long configured) {
  if (configured > 0) return static_cast<int>(configured);
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
    int n = std::atoi(omp);
    if (n > 0) return n;
  }
  int local = 1;
  if (const char* ls = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE")) local = std::max(1, std::atoi(ls));
  return std::max(1, usable_cores() / local);
}

void apply_threads(int threads) {
  at::set_num_threads(threads);
  if (auto set = find_symbol<void (*)(int)>("openblas_set_num_threads")) set(threads);
  if (auto set = find_symbol<void (*)(int)>("omp_set_num_threads")) set(threads);
}

int intra_op_threads_reached(int tasks) {
  std::vector<std::atomic<bool>> seen(static_cast<size_t>(std::max(1, at::get_num_threads())));
  at::parallel_for(0, tasks, 1, [&](int64_t, int64_t) {
    const auto id = static_cast<size_t>(at::get_thread_num());
    if (id < seen.size()) seen[id] = true;  // OpenMP gives chunk k to thread k
  });
  return static_cast<int>(std::count(seen.begin(), seen.end(), true));
}

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

ElasticAttempt elastic_attempt() {
  auto number = [](const char* name) {
    const char* v = std::getenv(name);
    return v ? std::max(0, std::atoi(v)) : 0;
  };
  const char* id = std::getenv("MPIBERT_RUN_ID");
  return {number("MPIBERT_RESTART_COUNT"), number("MPIBERT_MAX_RESTARTS"), id ? id : ""};
}

}  // namespace mpibert
