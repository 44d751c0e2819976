#pragma once
// What the side-by-side training benches (bench_step, bench_classification) share about the process
// they measure in: the environment both sides get (OMP_WAIT_POLICY and glibc malloc settings, read at
// load time, so the bench re-executes itself; thread counts), the BLAS really loaded, the GEMM peak of
// a precision (for MFU), the Python baseline as a child process, and medians.
#include <dlfcn.h>
#include <sys/resource.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_args.h"

namespace mpibert::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The environment of both sides, as it was when the libraries loaded.
struct BenchEnvironment {
  std::string omp_wait_policy;    // "default" when unset
  std::string openblas_coretype;  // "auto" when unset (OPENBLAS_CORETYPE forces OpenBLAS's kernels)
  bool malloc_keep = false;
};

// libgomp, OpenBLAS and glibc's malloc read their settings when they load, before main(): when `o` asks for
// settings the environment lacks, sets them and re-executes this program (the baseline, a child
// process, inherits them too). Then pins the thread counts of both sides and reports the environment.
inline BenchEnvironment prepare_environment(const StepBenchOptions& o, char** argv, const std::string& program) {
  std::vector<std::pair<std::string, std::string>> wanted;
  if (!o.omp_wait_policy.empty()) wanted.emplace_back("OMP_WAIT_POLICY", o.omp_wait_policy);
  if (!o.openblas_coretype.empty()) wanted.emplace_back("OPENBLAS_CORETYPE", o.openblas_coretype);
  if (o.malloc_keep) {
    wanted.emplace_back("MALLOC_MMAP_MAX_", "0");
    wanted.emplace_back("MALLOC_TRIM_THRESHOLD_", "68719476736");
  }
  bool differs = false;
  for (const auto& [k, v] : wanted) {
    const char* current = std::getenv(k.c_str());
    differs |= !current || v != current;
  }
  if (differs) {
    if (std::getenv("MPIBERT_BENCH_REEXEC")) throw std::runtime_error(program + ": environment did not stick");
    for (const auto& [k, v] : wanted) ::setenv(k.c_str(), v.c_str(), 1);
    ::setenv("MPIBERT_BENCH_REEXEC", "1", 1);
    ::execv("/proc/self/exe", argv);
    throw std::runtime_error(program + ": cannot re-execute itself: " + std::strerror(errno));
  }
  const std::string threads = std::to_string(o.threads);
  ::setenv("OMP_NUM_THREADS", threads.c_str(), 1);
  ::setenv("OPENBLAS_NUM_THREADS", threads.c_str(), 1);
  at::set_num_threads(static_cast<int>(o.threads));
  auto env_or = [](const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return std::string(v ? v : fallback);
  };
  return {env_or("OMP_WAIT_POLICY", "default"), env_or("OPENBLAS_CORETYPE", "auto"),
          env_or("MALLOC_MMAP_MAX_", "") == "0"};
}

// The process's peak resident memory so far (MB): measure one configuration per process to compare.
inline double max_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Which BLAS is really loaded, asked at run time (torch's build string says "generic").
inline std::string blas_info(int threads) {
  using GetConfig = char* (*)();
  using SetThreads = void (*)(int);
  auto get_config = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  auto get_core = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  auto set_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (!get_config) return "not OpenBLAS";
  if (set_threads) set_threads(threads);  // the env var is read at load time; make sure
  Dl_info info{};
  std::string lib = dladdr(reinterpret_cast<void*>(get_config), &info) && info.dli_fname ? info.dli_fname : "?";
  return std::string(get_config()) + " core " + (get_core ? get_core() : "?") + " (" + lib + ")";
}

// GFLOP/s of an n x n x n mm in `dtype`, run for at least `seconds`.
inline double gemm_gflops(int64_t n, at::ScalarType dtype, double seconds = 1.5) {
  auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
  auto c = torch::mm(a, b);
  int64_t iters = 0;
  const auto t0 = Clock::now();
  double elapsed = 0;
  while (elapsed < seconds || iters < 3) {
    torch::mm_out(c, a, b);
    ++iters;
    elapsed = seconds_since(t0);
  }
  return 2.0 * n * n * n * iters / elapsed / 1e9;
}

// Runs `command` (a shell line) and returns the last stdout line that starts with "{" as JSON; a
// failed command or one without such a line is a runtime error carrying the command and its output.
inline nlohmann::json run_json_child(const std::string& command, const std::string& program) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error(program + ": cannot start " + command);
  std::string output, last;
  char buf[4096];
  while (fgets(buf, sizeof buf, pipe)) output += buf;
  const int status = ::pclose(pipe);
  std::stringstream ss(output);
  for (std::string line; std::getline(ss, line);)
    if (!line.empty() && line[0] == '{') last = line;
  if (status != 0 || last.empty())
    throw std::runtime_error(program + ": baseline failed (status " + std::to_string(status) + "): " + command + "\n" +
                             output);
  return nlohmann::json::parse(last);
}

}  // namespace mpibert::bench
