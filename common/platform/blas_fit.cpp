#include "common/platform/blas_fit.h"

#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

extern char** environ;

namespace mpibert::platform {
namespace {

const char* env_or_null(const char* name) {
  return std::getenv(name);
}

bool same_core(const std::string& a, const std::string& b) {
  return strcasecmp(a.c_str(), b.c_str()) == 0;
}

// A reproducible value in [-1, 1) (a 64-bit LCG), so a failing case can be rerun.
float next_value(uint64_t& state) {
  state = state * 6364136223846793005ULL + 1442695040888963407ULL;
  return static_cast<float>(static_cast<double>(state >> 40) / static_cast<double>(1ULL << 23) - 1.0);
}

struct GemmCase {
  int m, n, k;
  char ta, tb;
  float beta;
};

// One sgemm against the double-precision product; "" when every element is within the fp32 bound
// (a few ulps per term of the sum of |products|, as a blocked kernel may sum in any order).
std::string check_case(SgemmFn sgemm, const GemmCase& c, uint64_t seed) {
  const int lda = c.ta == 'N' ? c.m : c.k, ldb = c.tb == 'N' ? c.k : c.n;
  std::vector<float> a(static_cast<size_t>(lda) * (c.ta == 'N' ? c.k : c.m));
  std::vector<float> b(static_cast<size_t>(ldb) * (c.tb == 'N' ? c.n : c.k));
  std::vector<float> out(static_cast<size_t>(c.m) * c.n);
  for (auto* v : {&a, &b, &out})
    for (auto& x : *v) x = next_value(seed);
  const std::vector<float> before = out;
  const float alpha = 1.0f;
  sgemm(&c.ta, &c.tb, &c.m, &c.n, &c.k, &alpha, a.data(), &lda, b.data(), &ldb, &c.beta, out.data(), &c.m);
  auto at = [&](int i, int l) {
    return c.ta == 'N' ? a[i + static_cast<size_t>(l) * lda] : a[l + static_cast<size_t>(i) * lda];
  };
  auto bt = [&](int l, int j) {
    return c.tb == 'N' ? b[l + static_cast<size_t>(j) * ldb] : b[j + static_cast<size_t>(l) * ldb];
  };
  for (int j = 0; j < c.n; ++j)
    for (int i = 0; i < c.m; ++i) {
      const size_t idx = i + static_cast<size_t>(j) * c.m;
      double ref = c.beta * static_cast<double>(before[idx]), magnitude = std::fabs(ref);
      for (int l = 0; l < c.k; ++l) {
        const double p = static_cast<double>(at(i, l)) * bt(l, j);
        ref += p;
        magnitude += std::fabs(p);
      }
      const double bound = 4.0 * (c.k + 2) * FLT_EPSILON * magnitude + 1e-30;
      if (!(std::fabs(out[idx] - ref) <= bound))
        return "sgemm " + std::string(1, c.ta) + std::string(1, c.tb) + " " + std::to_string(c.m) + "x" +
               std::to_string(c.n) + "x" + std::to_string(c.k) + " beta " + std::to_string(c.beta) + ": element (" +
               std::to_string(i) + ", " + std::to_string(j) + ") is " + std::to_string(out[idx]) + ", expected " +
               std::to_string(ref);
    }
  return "";
}

std::string sibling_program(const std::string& name) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? name : (self.parent_path() / name).string();
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) +
           ")";
  return "status " + std::to_string(status);
}

// Runs `blas_probe` with OPENBLAS_CORETYPE=core (at most 30 s); true when it passed. `said` gets its
// last line of output, or what went wrong.
bool run_probe(const std::string& core, std::string& said) {
  const std::string probe = sibling_program("blas_probe");
  std::vector<std::string> env_text{"OPENBLAS_CORETYPE=" + core};
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "OPENBLAS_CORETYPE=", 18) != 0) env_text.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& s : env_text) envp.push_back(s.data());
  envp.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) return said = "no pipe for blas_probe: " + std::string(std::strerror(errno)), false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  pid_t pid = 0;
  char* argv[] = {const_cast<char*>(probe.c_str()), nullptr};
  const int rc = posix_spawn(&pid, probe.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return said = "cannot run " + probe + ": " + std::strerror(rc), false;
  }
  std::string output;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[512];
    const ssize_t got = read(fds[0], buf, sizeof buf);
    if (got <= 0) break;
    output.append(buf, static_cast<size_t>(got));
  }
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == 0) {  // still running after 30 s, or it closed its output
    if (std::chrono::steady_clock::now() >= deadline) kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  const auto last = output.rfind('\n');
  said = last == std::string::npos ? output : output.substr(last + 1);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  said = "blas_probe with OPENBLAS_CORETYPE=" + core + " failed (" + describe_status(status) + ")" +
         (said.empty() ? "" : ": " + said);
  return false;
}

BlasFitNote& note() {
  static BlasFitNote n;
  return n;
}

}  // namespace

std::string CpuFeatures::describe() const {
  if (avx512f) return avx512bf16 ? "AVX-512 and BF16" : "AVX-512";
  return avx2 ? "AVX2" : "no AVX2";
}

CpuFeatures detect_cpu_features() {
  __builtin_cpu_init();
  CpuFeatures f;
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
  f.amd = __builtin_cpu_is("amd");
  return f;
}

std::string fitting_openblas_core(const CpuFeatures& cpu) {
  // OpenBLAS's SkylakeX kernels need F, BW, VL and DQ; Cooperlake adds the BF16 GEMM (sbgemm).
  if (cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx512dq) return cpu.avx512bf16 ? "Cooperlake" : "SkylakeX";
  if (cpu.avx2 && cpu.fma) return cpu.amd ? "Zen" : "Haswell";
  return "";
}

bool is_fallback_openblas_core(const std::string& core) {
  static const char* const kFallbacks[] = {
      "Katmai", "Coppermine", "Northwood",   "Prescott",  "Banias",     "Atom",         "Core2",
      "Penryn", "Dunnington", "Nehalem",     "Athlon",    "Opteron",    "Opteron_SSE3", "Barcelona",
      "Bobcat", "Nano",       "Sandybridge", "Bulldozer", "Piledriver", "Steamroller",  "Excavator"};
  return std::any_of(std::begin(kFallbacks), std::end(kFallbacks), [&](const char* f) { return same_core(core, f); });
}

BlasCoreDecision decide_blas_core(const std::optional<std::string>& coretype_env, bool chosen_by_us,
                                  const std::string& loaded_core, const CpuFeatures& cpu) {
  if (loaded_core.empty()) return {"", "not OpenBLAS: nothing to fit"};
  if (coretype_env && chosen_by_us)
    return {"", "OpenBLAS core " + loaded_core + ", chosen for this CPU (" + cpu.describe() + ")"};
  if (coretype_env)
    return {"", "OPENBLAS_CORETYPE=" + *coretype_env + " from the environment, kept (OpenBLAS runs its " + loaded_core +
                    " kernels)"};
  const std::string fitting = fitting_openblas_core(cpu);
  if (fitting.empty() || !is_fallback_openblas_core(loaded_core) || same_core(fitting, loaded_core))
    return {"", "OpenBLAS core " + loaded_core + ", its own choice for this CPU (" + cpu.describe() + ")"};
  return {fitting, "OpenBLAS picked its fallback core " + loaded_core + " on a CPU with " + cpu.describe()};
}

std::string check_sgemm(SgemmFn sgemm) {
  // Sizes on both sides of the kernels' register and cache blocks, every transpose, beta 0 and 1, and
  // one product large enough that OpenBLAS splits it over threads.
  static const GemmCase kCases[] = {{1, 1, 1, 'N', 'N', 0},       {3, 5, 7, 'N', 'T', 1},
                                    {17, 31, 13, 'T', 'N', 0},    {16, 32, 64, 'T', 'T', 1},
                                    {64, 48, 96, 'N', 'N', 1},    {129, 67, 259, 'N', 'T', 0},
                                    {127, 129, 384, 'T', 'N', 1}, {320, 288, 512, 'N', 'N', 0}};
  uint64_t seed = 20261201;
  for (const auto& c : kCases)
    if (auto why = check_case(sgemm, c, seed++); !why.empty()) return why;
  return "";
}

BlasFit plan_blas_fit(const std::string& loaded_core) {
  if (const char* off = env_or_null("MPIBERT_BLAS_FIT"); off && std::string(off) == "0")
    return {"", {"MPIBERT_BLAS_FIT=0: OpenBLAS's own choice kept", false}};
  const char* env = env_or_null("OPENBLAS_CORETYPE");
  const char* ours = env_or_null("MPIBERT_BLAS_FIT_CORE");
  const bool chosen_by_us = env && ours && std::strcmp(env, ours) == 0;
  const auto decision = decide_blas_core(env ? std::optional<std::string>(env) : std::nullopt, chosen_by_us,
                                         loaded_core, detect_cpu_features());
  if (chosen_by_us)
    if (const char* carried = env_or_null("MPIBERT_BLAS_FIT_NOTE")) return {"", {carried, false}};
  if (decision.try_core.empty()) return {"", {decision.note, false}};
  std::string said;
  if (!run_probe(decision.try_core, said)) return {"", {decision.note + "; kept it: " + said, true}};
  return {
      decision.try_core,
      {"OpenBLAS core " + decision.try_core + ", chosen for this CPU: " + decision.note + " (" + said + ")", false}};
}

std::vector<std::pair<std::string, std::string>> blas_fit_environment(const BlasFit& fit) {
  if (fit.core.empty()) return {};
  return {
      {"OPENBLAS_CORETYPE", fit.core}, {"MPIBERT_BLAS_FIT_CORE", fit.core}, {"MPIBERT_BLAS_FIT_NOTE", fit.note.text}};
}

void fit_blas_to_cpu(char** argv) {
  using CoreName = char* (*)();
  const auto corename = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const BlasFit fit = plan_blas_fit(corename ? corename() : "");
  note() = fit.note;
  if (fit.core.empty()) return;
  const auto vars = blas_fit_environment(fit);
  for (const auto& [key, value] : vars) ::setenv(key.c_str(), value.c_str(), 1);
  ::execv("/proc/self/exe", argv);
  const int err = errno;
  for (const auto& kv : vars) ::unsetenv(kv.first.c_str());
  note() = {
      fit.note.text + "; but re-executing with it failed (" + std::strerror(err) + "), so OpenBLAS's own core runs",
      true};
}

const BlasFitNote& blas_fit_note() {
  return note();
}

}  // namespace mpibert::platform
