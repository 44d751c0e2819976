// gaudi_spawn: starts PROGRAM as N MPI ranks (mpirun), or directly for one rank, and supervises the job.
// `gaudi_spawn --rank_wrapper ...` is the per-rank side that mpirun runs (see rank_wrapper.h).
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/error.h"
#include "launcher/elastic.h"
#include "launcher/environment.h"
#include "launcher/host_check.h"
#include "launcher/job_runner.h"
#include "launcher/launch_options.h"
#include "launcher/launch_plan.h"
#include "launcher/rank_wrapper.h"

int main(int argc, char** argv) {
  using namespace mpibert::launcher;
  std::vector<std::string> args(argv + 1, argv + argc);
  // A closed console (`gaudi_spawn ... | head`) must not kill the supervisor before the job is stopped.
  signal(SIGPIPE, SIG_IGN);
  if (!args.empty() && args[0] == kRankWrapperFlag) {
    return mpibert::run_main("gaudi_spawn", [&]() -> int {
      return run_rank_wrapper(parse_rank_wrapper_args({args.begin() + 1, args.end()}));
    });
  }
  return mpibert::run_main("gaudi_spawn", [&]() -> int {
    LaunchOptions options = parse_launch_options(args);
    if (options.help) {
      std::fputs(launch_usage().c_str(), stdout);
      return 0;
    }
    Environment env = probe_environment(options);
    LaunchPlan plan = build_launch_plan(options, env);
    if (!options.dry_run) check_hosts_resolve(plan, resolve_with_getaddrinfo);  // before any other line
    for (const auto& w : plan.warnings) std::fprintf(stderr, "gaudi_spawn: warning: %s\n", w.c_str());
    if (options.dry_run) {
      std::fputs(format_dry_run(plan).c_str(), stdout);
      return 0;
    }
    std::fflush(stdout);
    if (options.max_restarts > 0 || !options.error_file.empty()) return run_elastic(options, env);
    return run_launch_plan(plan);
  });
}
