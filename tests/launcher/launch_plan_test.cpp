#include "launcher/launch_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "common/error.h"
#include "tests/usage_error_of.h"

using mpibert::UsageError;
using namespace mpibert::launcher;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Argv = std::vector<std::string>;

namespace {

// An 8-core non-root host with Open MPI 4; tests change what they need.
Environment fake_env() {
  Environment e;
  e.uid = 1000;
  e.hostname = "node0";
  e.cores_per_host = 8;
  e.open_mpi_major = 4;
  e.mpirun_path = "/usr/bin/mpirun";
  e.self_exe = "/opt/mpibert/bin/gaudi_spawn";
  e.program_path = "/opt/mpibert/bin/run_mlm";
  e.cwd = "/work";
  e.temp_dir = "/tmp/gaudi_spawn.42";
  e.vars = {{"PATH", "/usr/bin"}, {"HOME", "/home/u"}};
  return e;
}

LaunchPlan plan_for(const Argv& args, const Environment& env = fake_env()) {
  return build_launch_plan(parse_launch_options(args), env);
}

// The value following `flag` in argv ("" if absent); `nth` picks a later occurrence.
std::string after(const Argv& argv, const std::string& flag, int nth = 0) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag && nth-- == 0) return argv[i + 1];
  return "";
}

long count(const Argv& argv, const std::string& word) {
  return std::count(argv.begin(), argv.end(), word);
}

// The mpirun options: everything before the wrapper.
Argv mpirun_part(const Argv& argv) {
  auto it = std::find(argv.begin(), argv.end(), "/opt/mpibert/bin/gaudi_spawn");
  return Argv(argv.begin(), it);
}

// All values given with -x.
Argv exported(const Argv& argv) {
  Argv out;
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "-x") out.push_back(argv[i + 1]);
  return out;
}

using mpibert::testing::usage_error_of;

}  // namespace

TEST(LaunchPlan, LocalRanksEachGetTheirOwnCores) {
  auto plan = plan_for({"--world_size", "2", "run_mlm", "--config", "c.yaml"});
  EXPECT_FALSE(plan.direct);
  EXPECT_EQ(plan.threads_per_rank, 4);
  const Argv& a = plan.argv;
  EXPECT_EQ(a[0], "/usr/bin/mpirun");
  EXPECT_EQ(after(a, "-np"), "2");
  EXPECT_EQ(after(a, "--map-by"), "slot:PE=4");
  EXPECT_EQ(after(a, "--bind-to"), "core");
  EXPECT_EQ(count(a, "--oversubscribe"), 0);
  EXPECT_EQ(count(a, "--host"), 0);
  EXPECT_EQ(count(a, "--hostfile"), 0);
  EXPECT_EQ(plan.binding, BindTo::Core);
  EXPECT_THAT(exported(a), ElementsAre("OMP_NUM_THREADS=4", "OPENBLAS_NUM_THREADS=4", "MPIBERT_THREADS_PER_RANK=4",
                                       "MPIBERT_CONSOLE_IS_TTY=0"));
  ASSERT_EQ(plan.placement.size(), 1u);
  EXPECT_EQ(plan.placement[0].name, "node0");
  EXPECT_EQ(plan.placement[0].ranks, 2);
}

TEST(LaunchPlan, RanksLearnWhetherTheLaunchersConsoleIsATerminal) {
  Environment env = fake_env();
  env.console_is_tty = true;
  auto plan = plan_for({"--world_size", "2", "p"}, env);
  EXPECT_THAT(exported(plan.argv), Contains("MPIBERT_CONSOLE_IS_TTY=1"));
  plan = plan_for({"--world_size", "2", "--env", "MPIBERT_CONSOLE_IS_TTY=0", "p"}, env);
  EXPECT_THAT(exported(plan.argv), Contains("MPIBERT_CONSOLE_IS_TTY=0"));  // the user's setting wins
}

TEST(LaunchPlan, ArgvEndsWithTheWrappedProgramAndItsArgumentsUntouched) {
  auto plan = plan_for({"--world_size", "2", "run_mlm", "--config", "c d.yaml", "--world_size", "7", ""});
  const Argv& a = plan.argv;
  auto wrapper = std::find(a.begin(), a.end(), "/opt/mpibert/bin/gaudi_spawn");
  ASSERT_NE(wrapper, a.end());
  EXPECT_THAT(Argv(wrapper, a.end()),
              ElementsAre("/opt/mpibert/bin/gaudi_spawn", "--rank_wrapper", "--capture_dir", "/tmp/gaudi_spawn.42",
                          "--launch_host", "node0", "--framed_console", "--", "/opt/mpibert/bin/run_mlm", "--config",
                          "c d.yaml", "--world_size", "7", ""));
  EXPECT_EQ(after(a, "-np"), "2");
}

TEST(LaunchPlan, AllowRunAsRootOnlyForRoot) {
  EXPECT_EQ(count(plan_for({"--world_size", "2", "p"}).argv, "--allow-run-as-root"), 0);
  Environment root = fake_env();
  root.uid = 0;
  EXPECT_EQ(count(mpirun_part(plan_for({"--world_size", "2", "p"}, root).argv), "--allow-run-as-root"), 1);
  // Given by the user already: not twice.
  EXPECT_EQ(count(plan_for({"--world_size", "2", "--mpirun_args", "--allow-run-as-root", "p"}, root).argv,
                  "--allow-run-as-root"),
            1);
}

TEST(LaunchPlan, SingleHostTurnsOffCrossMemoryAttachUnlessOverridden) {
  auto a = plan_for({"--world_size", "2", "p"}).argv;
  EXPECT_EQ(after(a, "--mca"), "btl_vader_single_copy_mechanism");
  EXPECT_EQ(after(a, "btl_vader_single_copy_mechanism"), "none");
  auto user = plan_for({"--world_size", "2", "--mpirun_args", "--mca btl_vader_single_copy_mechanism cma", "p"}).argv;
  EXPECT_EQ(count(user, "btl_vader_single_copy_mechanism"), 1);
  EXPECT_EQ(after(user, "btl_vader_single_copy_mechanism"), "cma");
  Environment env = fake_env();
  env.vars["OMPI_MCA_btl_vader_single_copy_mechanism"] = "cma";
  EXPECT_EQ(count(plan_for({"--world_size", "2", "p"}, env).argv, "btl_vader_single_copy_mechanism"), 0);
}

namespace {

// What probe_cross_memory_attach() found on the launch host.
Environment probed(bool ok, int open_mpi_major = 4) {
  Environment env = fake_env();
  env.open_mpi_major = open_mpi_major;
  env.cross_memory_attach =
      CmaProbeResult{ok, ok ? "process_vm_readv and process_vm_writev worked between two sibling processes"
                            : "cross-memory attach is not permitted here (process_vm_readv: Operation not permitted)"};
  return env;
}

}  // namespace

TEST(LaunchPlan, SingleHostUsesCrossMemoryAttachWhenTheProbeFoundItWorks) {
  for (int major : {4, 5}) {
    auto plan = plan_for({"--world_size", "2", "p"}, probed(true, major));
    EXPECT_EQ(plan.single_copy, SingleCopy::ProbedOk);
    EXPECT_EQ(count(plan.argv, "btl_vader_single_copy_mechanism"), 0) << major;  // Open MPI's own default
    EXPECT_EQ(count(plan.argv, "btl_sm_single_copy_mechanism"), 0) << major;
    EXPECT_THAT(format_dry_run(plan), HasSubstr("\n# shared memory: single-copy (CMA) probed ok\n"));
  }
}

TEST(LaunchPlan, SingleHostCopiesInAndOutWhenTheProbeFailedAndSaysWhy) {
  auto plan = plan_for({"--world_size", "2", "p"}, probed(false));
  EXPECT_EQ(plan.single_copy, SingleCopy::ProbeFailed);
  EXPECT_EQ(after(plan.argv, "btl_vader_single_copy_mechanism"), "none");
  EXPECT_THAT(format_dry_run(plan), HasSubstr("\n# shared memory: copy-in/copy-out: cross-memory attach is not "
                                              "permitted here (process_vm_readv: Operation not permitted)\n"));
  auto v5 = plan_for({"--world_size", "2", "p"}, probed(false, 5)).argv;
  EXPECT_EQ(after(v5, "btl_sm_single_copy_mechanism"), "none");
  // No answer at all (the probe was not run): copy-in/copy-out, as before the probe existed.
  auto unprobed = plan_for({"--world_size", "2", "p"});
  EXPECT_EQ(unprobed.single_copy, SingleCopy::NotProbed);
  EXPECT_EQ(after(unprobed.argv, "btl_vader_single_copy_mechanism"), "none");
  EXPECT_THAT(format_dry_run(unprobed), HasSubstr("# shared memory: copy-in/copy-out: cross-memory attach was not "
                                                  "probed\n"));
}

TEST(LaunchPlan, TheUsersSingleCopySettingWinsOverTheProbe) {
  for (bool ok : {true, false}) {
    auto args =
        plan_for({"--world_size", "2", "--mpirun_args", "--mca btl_vader_single_copy_mechanism cma", "p"}, probed(ok));
    EXPECT_EQ(args.single_copy, SingleCopy::SetByUser);
    EXPECT_EQ(count(args.argv, "btl_vader_single_copy_mechanism"), 1);
    EXPECT_EQ(after(args.argv, "btl_vader_single_copy_mechanism"), "cma");
    EXPECT_THAT(format_dry_run(args), HasSubstr("# shared memory: single-copy mechanism as set in --mpirun_args\n"));
    auto with_env =
        plan_for({"--world_size", "2", "--env", "OMPI_MCA_btl_vader_single_copy_mechanism=none", "p"}, probed(ok));
    EXPECT_EQ(with_env.single_copy, SingleCopy::SetByUser);
    EXPECT_EQ(count(with_env.argv, "btl_vader_single_copy_mechanism"), 0);
    EXPECT_THAT(exported(with_env.argv), Contains("OMPI_MCA_btl_vader_single_copy_mechanism=none"));
    Environment env = probed(ok);
    env.vars["OMPI_MCA_btl_vader_single_copy_mechanism"] = "cma";
    auto from_vars = plan_for({"--world_size", "2", "p"}, env);
    EXPECT_EQ(from_vars.single_copy, SingleCopy::SetByUser);
    EXPECT_EQ(count(from_vars.argv, "btl_vader_single_copy_mechanism"), 0);
    EXPECT_THAT(format_dry_run(from_vars), HasSubstr("as set by OMPI_MCA_btl_vader_single_copy_mechanism in the "
                                                     "environment\n"));
  }
}

TEST(LaunchPlan, SeveralHostsLeaveSharedMemoryToOpenMpiWhateverTheProbe) {
  for (bool ok : {true, false}) {
    Environment env = probed(ok);
    env.hostfile_text = "node0 slots=2\nb slots=2\n";
    auto plan = plan_for({"--world_size", "4", "--hostfile", "hosts.txt", "p"}, env);
    EXPECT_EQ(plan.single_copy, SingleCopy::OpenMpiDefault);
    EXPECT_EQ(count(plan.argv, "btl_vader_single_copy_mechanism"), 0);
    EXPECT_THAT(format_dry_run(plan), Not(HasSubstr("# shared memory")));
  }
}

TEST(LaunchPlan, RanksOnOneOtherHostCopyInAndOutSinceThatHostWasNotProbed) {
  auto plan = plan_for({"--hosts", "a:2", "p"}, probed(true));
  EXPECT_EQ(plan.single_copy, SingleCopy::OtherHost);
  EXPECT_EQ(after(plan.argv, "btl_vader_single_copy_mechanism"), "none");
  EXPECT_THAT(format_dry_run(plan), HasSubstr("# shared memory: copy-in/copy-out: the ranks run on a, where "
                                              "cross-memory attach cannot be probed from here\n"));
  // The launch host named in --hosts is this host: the probe counts.
  EXPECT_EQ(plan_for({"--hosts", "node0:2", "p"}, probed(true)).single_copy, SingleCopy::ProbedOk);
  EXPECT_EQ(plan_for({"--hosts", "localhost:2", "p"}, probed(false)).single_copy, SingleCopy::ProbeFailed);
}

TEST(LaunchPlan, TheProbeIsWantedOnlyWhenThePlanWouldUseIt) {
  auto wanted = [](const Argv& args, const Environment& env = fake_env()) {
    return cma_probe_wanted(parse_launch_options(args), env);
  };
  EXPECT_TRUE(wanted({"--world_size", "2", "p"}));
  EXPECT_TRUE(wanted({"--hosts", "node0:4", "p"}));
  EXPECT_FALSE(wanted({"--world_size", "2", "p"}, probed(false)));  // answered already
  EXPECT_FALSE(wanted({"p"}));                                      // one rank: no mpirun
  EXPECT_FALSE(wanted({"--hosts", "a:2", "p"}));                    // not this host
  EXPECT_FALSE(wanted({"--hosts", "node0:1,b:1", "p"}));            // several hosts
  EXPECT_FALSE(wanted({"--world_size", "2", "--mpirun_args", "--mca btl_vader_single_copy_mechanism cma", "p"}));
  EXPECT_FALSE(wanted({"--world_size", "2", "--env", "OMPI_MCA_btl_vader_single_copy_mechanism=cma", "p"}));
  Environment no_mpirun = fake_env();
  no_mpirun.open_mpi_major = 0;
  EXPECT_FALSE(wanted({"--world_size", "2", "p"}, no_mpirun));  // the plan fails: nothing to probe for
}

// blas_probe --fit's answer, as probe_environment records it.
Environment blas_fitted() {
  Environment e = fake_env();
  e.blas_fit = Environment::BlasFit{"OpenBLAS core Cooperlake, chosen for this CPU: ...",
                                    {{"OPENBLAS_CORETYPE", "Cooperlake"}, {"MPIBERT_BLAS_FIT_CORE", "Cooperlake"}}};
  return e;
}

TEST(LaunchPlan, RanksOnThisHostGetTheBlasCoreDecidedOnce) {
  for (const Argv& args : {Argv{"--world_size", "2", "p"}, Argv{"p"}, Argv{"--hosts", "localhost:3", "p"}}) {
    auto plan = plan_for(args, blas_fitted());
    EXPECT_THAT(plan.env, Contains(std::pair<std::string, std::string>("OPENBLAS_CORETYPE", "Cooperlake")));
    EXPECT_THAT(plan.env, Contains(std::pair<std::string, std::string>("MPIBERT_BLAS_FIT_CORE", "Cooperlake")));
    EXPECT_THAT(format_dry_run(plan), HasSubstr("\n# BLAS core: OpenBLAS core Cooperlake, chosen for this CPU: ...; "
                                                "exported to the ranks\n"));
  }
  EXPECT_THAT(exported(plan_for({"--world_size", "2", "p"}, blas_fitted()).argv),
              Contains("OPENBLAS_CORETYPE=Cooperlake"));
  // OpenBLAS's own choice kept: nothing exported, the note still said.
  Environment kept = fake_env();
  kept.blas_fit = Environment::BlasFit{"OpenBLAS core Haswell, its own choice for this CPU (AVX2)", {}};
  auto plan = plan_for({"--world_size", "2", "p"}, kept);
  for (const auto& kv : plan.env) EXPECT_NE(kv.first, "OPENBLAS_CORETYPE");
  EXPECT_THAT(format_dry_run(plan),
              HasSubstr("# BLAS core: OpenBLAS core Haswell, its own choice for this CPU (AVX2)\n"));
}

TEST(LaunchPlan, TheUsersBlasSettingAndOtherHostsAreLeftAlone) {
  auto users = plan_for({"--world_size", "2", "--env", "OPENBLAS_CORETYPE=Haswell", "p"}, blas_fitted());
  EXPECT_THAT(exported(users.argv), Contains("OPENBLAS_CORETYPE=Haswell"));
  EXPECT_THAT(exported(users.argv), Not(Contains("OPENBLAS_CORETYPE=Cooperlake")));
  EXPECT_THAT(format_dry_run(users), Not(HasSubstr("# BLAS core:")));
  auto off = plan_for({"--world_size", "2", "--env", "MPIBERT_BLAS_FIT=0", "p"}, blas_fitted());
  EXPECT_THAT(exported(off.argv), Not(Contains("OPENBLAS_CORETYPE=Cooperlake")));
  // Other hosts may have other CPUs: each of their ranks decides for itself.
  for (const char* hosts : {"node0:1,b:1", "b:2"}) {
    auto plan = plan_for({"--hosts", hosts, "p"}, blas_fitted());
    EXPECT_THAT(exported(plan.argv), Not(Contains("OPENBLAS_CORETYPE=Cooperlake"))) << hosts;
  }
}

TEST(LaunchPlan, TheBlasProbeIsWantedOnlyWhenThePlanWouldUseIt) {
  auto wanted = [](const Argv& args, const Environment& env = fake_env()) {
    return blas_fit_wanted(parse_launch_options(args), env);
  };
  EXPECT_TRUE(wanted({"--world_size", "2", "p"}));
  EXPECT_TRUE(wanted({"p"}));  // one rank, no mpirun: it would re-execute itself otherwise
  EXPECT_FALSE(wanted({"--world_size", "2", "p"}, blas_fitted()));  // answered already
  EXPECT_FALSE(wanted({"--hosts", "node0:1,b:1", "p"}));
  EXPECT_FALSE(wanted({"--world_size", "2", "--env", "OPENBLAS_CORETYPE=Haswell", "p"}));
  Environment no_mpirun = fake_env();
  no_mpirun.open_mpi_major = 0;
  EXPECT_FALSE(wanted({"--world_size", "2", "p"}, no_mpirun));
}

TEST(LaunchPlan, OpenMpi5SpellsMappingAndSharedMemoryParameterItsWay) {
  Environment v5 = fake_env();
  v5.open_mpi_major = 5;
  auto a = plan_for({"--world_size", "2", "p"}, v5).argv;
  EXPECT_EQ(after(a, "--map-by"), "ppr:2:node:PE=4");
  EXPECT_EQ(after(a, "--bind-to"), "core");
  EXPECT_EQ(after(a, "--mca"), "btl_sm_single_copy_mechanism");
  EXPECT_EQ(count(a, "btl_vader_single_copy_mechanism"), 0);
  auto socket = plan_for({"--world_size", "2", "--bind_to", "socket", "p"}, v5).argv;
  EXPECT_EQ(after(socket, "--map-by"), "package");
  EXPECT_EQ(after(socket, "--bind-to"), "package");
}

TEST(LaunchPlan, OpenMpi5UnevenHostsUseSlotMapping) {
  Environment v5 = fake_env();
  v5.open_mpi_major = 5;
  auto plan = plan_for({"--world_size", "6", "--hosts", "a:4,b:4", "--cores_per_host", "8", "p"}, v5);
  EXPECT_EQ(after(plan.argv, "--map-by"), "slot:PE=2");
  auto even = plan_for({"--world_size", "8", "--hosts", "a:4,b:4", "--cores_per_host", "8", "p"}, v5);
}

TEST(LaunchPlan, MoreRanksThanCoresOversubscribesWithoutBinding) {
  Environment two = fake_env();
  two.cores_per_host = 2;
  auto plan = plan_for({"--world_size", "4", "p"}, two);
  EXPECT_TRUE(plan.oversubscribed);
  EXPECT_EQ(plan.binding, BindTo::None);
  EXPECT_EQ(plan.threads_per_rank, 1);
  EXPECT_EQ(after(plan.argv, "--map-by"), "slot");
  EXPECT_EQ(after(plan.argv, "--bind-to"), "none");
  EXPECT_EQ(count(plan.argv, "--oversubscribe"), 1);
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_THAT(plan.warnings[0], HasSubstr("4 ranks on node0 which has 2 cores: oversubscribing"));

  two.open_mpi_major = 5;
  auto v5 = plan_for({"--world_size", "4", "p"}, two);
  EXPECT_EQ(after(v5.argv, "--map-by"), "slot:OVERSUBSCRIBE");
  EXPECT_EQ(count(v5.argv, "--oversubscribe"), 0);
}

TEST(LaunchPlan, ThreadsPerRankDefaultsToCoresPerRankAndCanBeSet) {
  EXPECT_EQ(plan_for({"--world_size", "3", "p"}).threads_per_rank, 2);  // 8 / 3, rounded down
  auto plan = plan_for({"--world_size", "2", "--threads_per_rank", "2", "p"});
  EXPECT_EQ(plan.threads_per_rank, 2);
  EXPECT_EQ(after(plan.argv, "--map-by"), "slot:PE=2");
  EXPECT_THAT(exported(plan.argv), Contains("OMP_NUM_THREADS=2"));
}

TEST(LaunchPlan, TooManyThreadsForTheCoresTurnsBindingOff) {
  auto plan = plan_for({"--world_size", "2", "--threads_per_rank", "6", "p"});
  EXPECT_EQ(after(plan.argv, "--bind-to"), "none");
  EXPECT_EQ(plan.binding, BindTo::None);
  EXPECT_THAT(describe_plan(plan), HasSubstr(", not bound;"));
  EXPECT_THAT(exported(plan.argv), Contains("OMP_NUM_THREADS=6"));
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_THAT(plan.warnings[0], HasSubstr("exceeds the 8 cores of node0"));
}

TEST(LaunchPlan, BindToSocketAndNone) {
  EXPECT_EQ(plan_for({"--world_size", "2", "--bind_to", "socket", "p"}).binding, BindTo::Socket);
  EXPECT_EQ(plan_for({"--world_size", "2", "--bind_to", "none", "p"}).binding, BindTo::None);
  auto socket = plan_for({"--world_size", "2", "--bind_to", "socket", "p"}).argv;
  EXPECT_EQ(after(socket, "--map-by"), "socket");
  EXPECT_EQ(after(socket, "--bind-to"), "socket");
  auto none = plan_for({"--world_size", "2", "--bind_to", "none", "p"}).argv;
  EXPECT_EQ(after(none, "--map-by"), "slot");
  EXPECT_EQ(after(none, "--bind-to"), "none");
}

TEST(LaunchPlan, UserEnvironmentIsExportedAndOverridesThreadVariables) {
  Environment env = fake_env();
  env.vars["WANDB_KEY"] = "secret";
  auto plan = plan_for(
      {"--world_size", "2", "--env", "OMP_NUM_THREADS=1", "--env", "A=x y", "--env", "A=z", "--env", "WANDB_KEY", "p"},
      env);
  EXPECT_THAT(exported(plan.argv), ElementsAre("OPENBLAS_NUM_THREADS=4", "MPIBERT_THREADS_PER_RANK=4",
                                               "MPIBERT_CONSOLE_IS_TTY=0", "OMP_NUM_THREADS=1", "A=z", "WANDB_KEY"));
  // The plan carries the forwarded value too (for direct runs and --dry_run).
  EXPECT_THAT(plan.env, Contains(std::make_pair(std::string("WANDB_KEY"), std::string("secret"))));
}

TEST(LaunchPlan, ForwardingAnUnsetVariableIsAUsageError) {
  EXPECT_THAT(usage_error_of([] {
                plan_for({"--world_size", "2", "--env", "NOPE", "p"});
              }),
              HasSubstr("--env NOPE: NOPE is not set"));
}

TEST(LaunchPlan, HostfileRanksFillSlotsInOrder) {
  Environment env = fake_env();
  env.hostfile_text = "a slots=4\nb slots=4\n";
  auto plan = plan_for({"--world_size", "6", "--hostfile", "hosts.txt", "p"}, env);
  ASSERT_EQ(plan.placement.size(), 2u);
  EXPECT_EQ(plan.placement[0].name, "a");
  EXPECT_EQ(plan.placement[0].ranks, 4);
  EXPECT_EQ(plan.placement[1].first_rank, 4);
  EXPECT_EQ(plan.placement[1].ranks, 2);
  EXPECT_EQ(plan.threads_per_rank, 1);  // the fuller host decides: 4 slots / 4 ranks
  EXPECT_EQ(plan.threads_reason, "4 CPUs / 4 ranks on a");
  EXPECT_EQ(after(plan.argv, "--hostfile"), "/work/hosts.txt");
  EXPECT_EQ(count(plan.argv, "btl_vader_single_copy_mechanism"), 0);  // several hosts: shared memory left alone
}

TEST(LaunchPlan, OtherHostsHaveAtLeastTheirSlotsInCores) {
  Environment env = fake_env();
  env.cores_per_host = 2;  // a small login node launching onto big hosts
  env.hostfile_text = "a slots=8\nb slots=8\n";
  auto plan = plan_for({"--world_size", "16", "--hostfile", "h", "p"}, env);
  EXPECT_FALSE(plan.oversubscribed);
  EXPECT_EQ(plan.placement[0].cores, 8);
  EXPECT_FALSE(plan.placement[0].cores_known);
  EXPECT_EQ(after(plan.argv, "--map-by"), "slot:PE=1");
  EXPECT_THAT(format_dry_run(plan), HasSubstr("# a: 8 cores assumed"));
}

TEST(LaunchPlan, TheLaunchHostInAHostListUsesItsRealCores) {
  Environment env = fake_env();
  env.cores_per_host = 2;
  for (const std::string name : {"localhost", "node0", "node0.cluster.example"}) {
    auto plan = plan_for({"--world_size", "4", "--hosts", name + ":4", "p"}, env);
    EXPECT_TRUE(plan.oversubscribed) << name;
    EXPECT_TRUE(plan.placement[0].cores_known) << name;
    EXPECT_EQ(after(plan.argv, "--bind-to"), "none") << name;
  }
}

TEST(LaunchPlan, WorldSizeDefaultsToAllSlotsOrOneRank) {
  Environment env = fake_env();
  env.hostfile_text = "a slots=2\nb\n";  // b: as many slots as cores (8)
  EXPECT_EQ(plan_for({"--hostfile", "h", "p"}, env).world_size, 10);
  EXPECT_EQ(plan_for({"p"}).world_size, 1);
}

TEST(LaunchPlan, TooFewSlotsIsAUsageErrorNamingTheCounts) {
  Environment env = fake_env();
  env.hostfile_text = "a slots=4\nb slots=2\n";
  EXPECT_THAT(usage_error_of([&] {
                plan_for({"--world_size", "8", "--hostfile", "h", "p"}, env);
              }),
              HasSubstr("--world_size 8 needs 8 slots but hostfile h offers 6 (a:4,b:2)"));
}

TEST(LaunchPlan, BadHostfileIsAUsageError) {
  Environment env = fake_env();
  env.hostfile_text = "a slots=4\na slots=2\n";
  EXPECT_THAT(usage_error_of([&] {
                plan_for({"--world_size", "2", "--hostfile", "h", "p"}, env);
              }),
              HasSubstr("listed twice"));
}

TEST(LaunchPlan, HostsOptionPassesOnlyTheHostsUsed) {
  auto plan = plan_for({"--world_size", "4", "--hosts", "a:2,b:2,c:2", "p"});
  EXPECT_EQ(after(plan.argv, "--host"), "a:2,b:2");
  EXPECT_EQ(plan.placement.size(), 2u);
}

TEST(LaunchPlan, SlurmAllocationProvidesHostsSlotsAndCores) {
  Environment env = fake_env();
  env.vars["SLURM_JOB_ID"] = "77";
  env.vars["SLURM_JOB_NODELIST"] = "gpu[01-02]";
  env.vars["SLURM_TASKS_PER_NODE"] = "2(x2)";
  env.vars["SLURM_JOB_CPUS_PER_NODE"] = "32(x2)";
  auto plan = plan_for({"p"}, env);
  EXPECT_EQ(plan.world_size, 4);
  EXPECT_EQ(plan.host_source, "Slurm job 77");
  EXPECT_EQ(after(plan.argv, "--host"), "gpu01:2,gpu02:2");
  EXPECT_EQ(plan.threads_per_rank, 16);
  EXPECT_THAT(usage_error_of([&] { plan_for({"--world_size", "5", "p"}, env); }), HasSubstr("Slurm job 77 offers 4"));
  // Explicit hosts win over the allocation.
  EXPECT_EQ(after(plan_for({"--world_size", "2", "--hosts", "x:2", "p"}, env).argv, "--host"), "x:2");
}

TEST(LaunchPlan, OneRankRunsTheProgramDirectlyWithTheSameEnvironment) {
  Environment env = fake_env();
  env.open_mpi_major = 0;  // no mpirun needed
  env.mpirun_path.clear();
  auto plan = plan_for({"--env", "A=1", "run_mlm", "--max_steps", "3"}, env);
  EXPECT_TRUE(plan.direct);
  EXPECT_EQ(plan.binding, BindTo::None);
  EXPECT_THAT(describe_plan(plan), HasSubstr(", run directly (no mpirun)"));
  EXPECT_THAT(plan.argv, ElementsAre("/opt/mpibert/bin/run_mlm", "--max_steps", "3"));
  EXPECT_THAT(plan.env, ElementsAre(std::make_pair(std::string("OMP_NUM_THREADS"), std::string("8")),
                                    std::make_pair(std::string("OPENBLAS_NUM_THREADS"), std::string("8")),
                                    std::make_pair(std::string("MPIBERT_THREADS_PER_RANK"), std::string("8")),
                                    std::make_pair(std::string("MPIBERT_CONSOLE_IS_TTY"), std::string("0")),
                                    std::make_pair(std::string("A"), std::string("1"))));
}

TEST(LaunchPlan, MissingMpirunIsARuntimeErrorOnlyWhenNeeded) {
  Environment env = fake_env();
  env.open_mpi_major = 0;
  env.mpirun_path.clear();
  env.mpirun_problem = "mpirun not found on PATH";
  try {
    plan_for({"--world_size", "2", "p"}, env);
    FAIL() << "expected an error";
  } catch (const UsageError&) {
    FAIL() << "a missing mpirun is not a usage error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("mpirun not found on PATH"));
  }
}

TEST(LaunchPlan, MpirunArgsComeAfterOursAndTheirMappingWins) {
  auto plan = plan_for({"--world_size", "2", "--mpirun_args", "--report-bindings --map-by numa", "p"});
  EXPECT_EQ(plan.binding, BindTo::FromMpirunArgs);
  EXPECT_THAT(describe_plan(plan), HasSubstr(", mapping from --mpirun_args;"));
  auto a = plan.argv;
  auto m = mpirun_part(a);
  EXPECT_EQ(m[m.size() - 3], "--report-bindings");
  EXPECT_EQ(m.back(), "numa");
  EXPECT_EQ(count(a, "--map-by"), 1);
  EXPECT_EQ(count(a, "--bind-to"), 0);
}

TEST(LaunchPlan, MpirunArgsMayNotSetRanksOrHosts) {
  EXPECT_THAT(usage_error_of([] {
                plan_for({"--world_size", "2", "--mpirun_args", "-np 4", "p"});
              }),
              HasSubstr("set the number of ranks with --world_size"));
  EXPECT_THAT(usage_error_of([] {
                plan_for({"--world_size", "2", "--mpirun_args", "--host a", "p"});
              }),
              HasSubstr("use --hosts or --hostfile"));
}

TEST(LaunchPlan, LogDirIsAbsoluteAndKeptOnEveryHost) {
  auto plan = plan_for({"--world_size", "2", "--log_dir", "logs", "p"});
  EXPECT_EQ(plan.log_dir, "/work/logs");
  EXPECT_EQ(plan.capture_dir, "/work/logs");
  EXPECT_EQ(after(plan.argv, "--capture_dir"), "/work/logs");
  EXPECT_EQ(count(plan.argv, "--keep_logs"), 1);
  auto temp = plan_for({"--world_size", "2", "p"});
  EXPECT_EQ(temp.capture_dir, "/tmp/gaudi_spawn.42");
  EXPECT_EQ(count(temp.argv, "--keep_logs"), 0);
}

TEST(LaunchPlan, DryRunShowsSummaryEnvironmentAndCommand) {
  auto text = format_dry_run(plan_for({"--world_size", "2", "--env", "A=x y", "run_mlm", "--config", "c.yaml"}));
  EXPECT_THAT(text, HasSubstr("# gaudi_spawn --dry_run: 2 ranks on 1 host (node0: ranks 0-1), 4 threads per rank, "
                              "each rank bound to 4 cores; Open MPI 4\n"));
  EXPECT_THAT(text, HasSubstr("\nOMP_NUM_THREADS=4\n"));
  EXPECT_THAT(text, HasSubstr("\nA='x y'\n"));
  EXPECT_THAT(text, HasSubstr("# command:\n/usr/bin/mpirun -np 2 "));
  EXPECT_THAT(text, HasSubstr(" -- /opt/mpibert/bin/run_mlm --config c.yaml\n"));
}

TEST(LaunchPlan, ThreadsFromTheHostsSlotsAreTheSameWhereverGaudiSpawnRuns) {
  // Two ranks on one 2-slot host, or one rank on each of two 1-slot hosts: the same threads, whether the
  // launch host has 8 cores, 64, or is one of the hosts.
  for (int launch_cores : {2, 8, 64}) {
    Environment env = fake_env();
    env.cores_per_host = launch_cores;
    for (const std::string hosts : {"node0:2", "a:2", "node0:1,b:1", "a:1,b:1"}) {
      auto plan = plan_for({"--hosts", hosts, "p"}, env);
      EXPECT_EQ(plan.threads_per_rank, 1) << hosts << " from a " << launch_cores << "-core host";
    }
    auto four = plan_for({"--hosts", "a:4,b:4", "--world_size", "4", "p"}, env);
    EXPECT_EQ(four.threads_per_rank, 1) << launch_cores;  // 4 ranks on a: 4 slots / 4
    EXPECT_EQ(plan_for({"--hosts", "a:4,b:4", "--world_size", "2", "p"}, env).threads_per_rank, 2);
  }
}

TEST(LaunchPlan, CoresPerHostSetsEveryHostsCores) {
  auto plan = plan_for({"--hosts", "a:4,b:4", "--cores_per_host", "32", "p"});
  EXPECT_EQ(plan.threads_per_rank, 8);
  EXPECT_EQ(plan.placement[1].cores, 32);
  EXPECT_TRUE(plan.placement[1].cores_known);
  EXPECT_EQ(after(plan.argv, "--map-by"), "slot:PE=8");
  EXPECT_THAT(format_dry_run(plan), HasSubstr("# threads per rank: 8 (32 CPUs / 4 ranks on a)\n"));
  // On one host too.
  EXPECT_EQ(plan_for({"--world_size", "2", "--cores_per_host", "6", "p"}).threads_per_rank, 3);
  EXPECT_EQ(plan_for({"--world_size", "2", "--threads_per_rank", "2", "--cores_per_host", "6", "p"}).threads_reason,
            "--threads_per_rank");
}

TEST(LaunchPlan, AHostWithoutSlotsWhoseCoresAreUnknownIsWarnedAbout) {
  auto plan = plan_for({"--hosts", "a,node0", "--world_size", "4", "p"});
  EXPECT_EQ(plan.threads_per_rank, 2);  // a: 8 assumed / 4 ranks
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_THAT(plan.warnings[0], HasSubstr("host a: no slots given and its cores are unknown here; assuming 8"));
  EXPECT_TRUE(plan_for({"--hosts", "a,node0", "--threads_per_rank", "1", "p"}).warnings.empty());
  EXPECT_TRUE(plan_for({"--hosts", "a,node0", "--cores_per_host", "4", "p"}).warnings.empty());
}

TEST(LaunchPlan, LaunchAgentAndSshPort) {
  auto a = mpirun_part(
      plan_for({"--hosts", "a:1,b:1", "--launch_agent", "/opt/agent.sh -q", "--ssh_port", "2222", "p"}).argv);
  EXPECT_EQ(after(a, "plm_rsh_agent"), "/opt/agent.sh -q");
  EXPECT_EQ(after(a, "plm_rsh_args"), "-p 2222");
  EXPECT_EQ(count(plan_for({"--hosts", "a:1,b:1", "p"}).argv, "plm_rsh_agent"), 0);  // Open MPI's default: ssh
  Environment op = fake_env();  // the MPI Operator's launcher sets agent arguments of its own
  op.vars["OMPI_MCA_plm_rsh_args"] = "-o ConnectionAttempts=10";
  EXPECT_EQ(after(plan_for({"--hosts", "a:1,b:1", "--ssh_port", "2222", "p"}, op).argv, "plm_rsh_args"),
            "-o ConnectionAttempts=10 -p 2222");
  Environment v5 = fake_env();
  v5.open_mpi_major = 5;
  auto b = plan_for({"--hosts", "a:1,b:1", "--launch_agent", "rsh", "p"}, v5).argv;
  EXPECT_EQ(after(b, "--prtemca"), "plm_ssh_agent");
  EXPECT_EQ(after(b, "plm_ssh_agent"), "rsh");
}

TEST(LaunchPlan, NetworkInterfaceIsIncludedForBothChannels) {
  auto a = plan_for({"--hosts", "a:1,b:1", "--network_interface", "10.1.0.0/16", "p"}).argv;
  EXPECT_EQ(after(a, "btl_tcp_if_include"), "10.1.0.0/16");
  EXPECT_EQ(after(a, "oob_tcp_if_include"), "10.1.0.0/16");
  EXPECT_EQ(count(a, "btl_tcp_if_exclude"), 0);  // Open MPI refuses include and exclude together
  EXPECT_EQ(count(a, "oob_tcp_if_exclude"), 0);
}

TEST(LaunchPlan, VirtualBridgesAreExcludedByDefaultAndLoopbackAcrossHosts) {
  Environment env = fake_env();
  env.network_interfaces = {"lo", "eth0", "docker0", "br-3f2a1c", "virbr1", "veth12"};
  auto multi = plan_for({"--hosts", "a:1,b:1", "p"}, env).argv;
  EXPECT_EQ(after(multi, "btl_tcp_if_exclude"), "127.0.0.1/8,sppp,docker0,virbr0,br-3f2a1c,virbr1");
  EXPECT_EQ(after(multi, "oob_tcp_if_exclude"), "lo,docker0,virbr0,br-3f2a1c,virbr1");
  auto single = plan_for({"--world_size", "2", "p"}, env).argv;
  EXPECT_EQ(after(single, "oob_tcp_if_exclude"), "docker0,virbr0,br-3f2a1c,virbr1");
  // Any choice of the user's wins: --mpirun_args, --env, or Open MPI's own variables.
  EXPECT_EQ(count(plan_for({"--hosts", "a:1,b:1", "--mpirun_args", "--mca btl_tcp_if_include eth1", "p"}, env).argv,
                  "btl_tcp_if_exclude"),
            0);
  EXPECT_EQ(count(plan_for({"--hosts", "a:1,b:1", "--env", "OMPI_MCA_oob_tcp_if_include=eth1", "p"}, env).argv,
                  "oob_tcp_if_exclude"),
            0);
  env.vars["OMPI_MCA_btl_tcp_if_include"] = "eth1";
  EXPECT_EQ(count(plan_for({"--hosts", "a:1,b:1", "p"}, env).argv, "btl_tcp_if_exclude"), 0);
}

TEST(ShellQuote, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(shell_quote("slot:PE=4"), "slot:PE=4");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(format_command({"x", "$HOME"}), "x '$HOME'");
}
