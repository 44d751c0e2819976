#include "worker/train/run_context.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "common/comm/mpi_environment.h"
#include "common/log/log.h"
#include "common/platform/blas_fit.h"
#include "common/report/logging_dir.h"
#include "worker/model/precision.h"
#include "worker/train/runtime_env.h"
#include "worker/train/stop_signal.h"

namespace mpibert::train {

namespace {

// /proc/self/cmdline, each word quoted when a shell would need it.
std::string own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), out, word;
  for (char c : all) {
    if (c != '\0') {
      word += c;
      continue;
    }
    const bool plain =
        !word.empty() &&
        word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") ==
            std::string::npos;
    std::string quoted = "'";
    for (char q : word) quoted += q == '\'' ? std::string("'\\''") : std::string(1, q);
    out += (out.empty() ? "" : " ") + (plain ? word : quoted + "'");
    word.clear();
  }
  return out;
}

void log_runtime(const RunContext& ctx) {
  spdlog::info("{}: rank {} of {} on host {} (pid {})", ctx.program, ctx.rank, ctx.world, report::host_name(),
               ::getpid());
  const BlasInfo blas = detect_blas();
  if (blas.slow_reference())
    spdlog::warn("BLAS: {} — install libopenblas0-pthread (scripts/install-deps.sh does) for ~7x faster steps",
                 blas.details);
  else
    spdlog::info("BLAS: {} ({})", blas.name, blas.details);
  if (const auto& fit = platform::blas_fit_note(); fit.warning)
    spdlog::warn("BLAS core: {}", fit.text);
  else if (!fit.text.empty())
    spdlog::info("BLAS core: {}", fit.text);
  spdlog::info("{}: precision {} (requested {}; CPU bf16 support: {}), {} thread(s) per rank, world size {}",
               ctx.program, ctx.bf16 ? "bf16" : "fp32", ctx.requested_precision,
               model::cpu_supports_bf16_fast() ? "yes" : "no", ctx.threads, ctx.world);
  if (const int reached = intra_op_threads_reached(ctx.threads); reached < ctx.threads)
    spdlog::warn(
        "intra-op threads: the fused kernels ran on {} of {} thread(s); this build of mpibert lacks "
        "OpenMP (rebuild with scripts/build.sh)",
        reached, ctx.threads);
  spdlog::info("libtorch {}, {}", torch_version(), mpi_library_version());
  const ElasticAttempt attempt = elastic_attempt();
  if (!attempt.run_id.empty())
    spdlog::info("elastic job {}: attempt {} (restart {} of at most {}), {} rank(s)", attempt.run_id,
                 attempt.restart_count + 1, attempt.restart_count, attempt.max_restarts, ctx.world);
}

}  // namespace

void open_log_file(const RunContext& ctx, const TrainConfig& train) {
  init_logging({ctx.rank, ctx.world, train.log_level, ctx.dir.rank_log_file(ctx.rank)});
  log_runtime(ctx);
}

RunContext open_run(const TrainConfig& train, const DistConfig& dist, HcclLike& comm, const std::string& program,
                    bool log_file) {
  RunContext ctx{comm,
                 comm.rank(),
                 comm.size(),
                 dist.timeout_s,
                 RunDirectory(train, comm, dist.timeout_s, program),
                 model::resolve_precision(train.precision) == "bf16",
                 choose_threads(dist.threads),
                 program,
                 train.precision,
                 own_command_line()};
  apply_threads(ctx.threads);
  comm.setStallWarning(silence_limit(dist.stall_warning_s));
  comm.setDebugChecks(dist.debug == "detail");
  install_stop_signal_handlers();
  if (log_file) {
    open_log_file(ctx, train);
  } else {
    LogOptions console_only{ctx.rank, ctx.world, train.log_level, ""};
    console_only.hold_for_file = true;
    init_logging(console_only);
  }
  return ctx;
}

}  // namespace mpibert::train
