#include "launcher/launch_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"

using mpibert::UsageError;
using namespace mpibert::launcher;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

LaunchOptions parse(std::vector<std::string> args) {
  return parse_launch_options(args);
}

std::string usage_error_of(std::vector<std::string> args) {
  try {
    parse_launch_options(args);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(LaunchOptions, AcceptsSpaceAndEqualsSpellings) {
  EXPECT_EQ(parse({"--world_size", "8", "prog"}).world_size, 8);
  EXPECT_EQ(parse({"--world_size=8", "prog"}).world_size, 8);
  EXPECT_EQ(parse({"--world-size=3", "prog"}).world_size, 3);  // dashes work as underscores
}

TEST(LaunchOptions, ParsesEveryPublishedOption) {
  auto o = parse({"--world_size",
                  "8",
                  "--use_mpi",
                  "--hosts",
                  "a:4,b:4",
                  "--bind_to",
                  "socket",
                  "--threads_per_rank=3",
                  "--env",
                  "A=1",
                  "--env=B",
                  "--log_dir",
                  "logs",
                  "--timeout",
                  "90.5",
                  "--mpirun",
                  "/opt/ompi/bin/mpirun",
                  "--mpirun_args",
                  "--mca btl tcp,self",
                  "--dry_run",
                  "run_mlm"});
  EXPECT_EQ(o.world_size, 8);
  EXPECT_TRUE(o.use_mpi);
  EXPECT_EQ(o.hosts, "a:4,b:4");
  EXPECT_EQ(o.bind_to, BindTo::Socket);
  EXPECT_EQ(o.threads_per_rank, 3);
  ASSERT_EQ(o.env.size(), 2u);
  EXPECT_EQ(o.env[0].key, "A");
  EXPECT_EQ(o.env[0].value, "1");
  EXPECT_EQ(o.env[1].key, "B");
  EXPECT_FALSE(o.env[1].value.has_value());
  EXPECT_EQ(o.log_dir, "logs");
  EXPECT_DOUBLE_EQ(o.timeout_s, 90.5);
  EXPECT_EQ(o.mpirun, "/opt/ompi/bin/mpirun");
  EXPECT_THAT(o.mpirun_args, ElementsAre("--mca", "btl", "tcp,self"));
  EXPECT_TRUE(o.dry_run);
  EXPECT_EQ(o.program, "run_mlm");
}

TEST(LaunchOptions, ProgramArgumentsPassThroughUntouched) {
  auto o = parse({"--world_size", "2", "run_mlm", "--config", "c.yaml", "--world_size", "5", "--", "-x", ""});
  EXPECT_EQ(o.world_size, 2);
  EXPECT_EQ(o.program, "run_mlm");
  EXPECT_THAT(o.program_args, ElementsAre("--config", "c.yaml", "--world_size", "5", "--", "-x", ""));
}

TEST(LaunchOptions, DoubleDashEndsOptions) {
  auto o = parse({"--world_size", "2", "--", "--weird-program-name", "arg"});
  EXPECT_EQ(o.program, "--weird-program-name");
  EXPECT_THAT(o.program_args, ElementsAre("arg"));
}

TEST(LaunchOptions, UnknownOptionSuggestsTheNearestOne) {
  EXPECT_THAT(usage_error_of({"--world_sise", "2", "prog"}), HasSubstr("did you mean '--world_size'?"));
  EXPECT_THAT(usage_error_of({"--logdir", "x", "prog"}), HasSubstr("did you mean '--log_dir'?"));
  EXPECT_THAT(usage_error_of({"--config", "x", "prog"}), HasSubstr("options go after it"));
}

TEST(LaunchOptions, MpirunSpellingsPointToOurNames) {
  EXPECT_THAT(usage_error_of({"-np", "2", "prog"}), HasSubstr("did you mean '--world_size'?"));
  EXPECT_THAT(usage_error_of({"-H", "a,b", "prog"}), HasSubstr("did you mean '--hosts'?"));
  EXPECT_THAT(usage_error_of({"-x", "A=1", "prog"}), HasSubstr("did you mean '--env'?"));
  EXPECT_EQ(parse({"--bind-to", "socket", "prog"}).bind_to, BindTo::Socket);  // mpirun's spelling works
  EXPECT_EQ(usage_error_of({"-np", "2", "prog"}),
            "unknown option '-np'; did you mean '--world_size'? (options start with --; gaudi_spawn's options come "
            "before PROGRAM; the program's own options go after it)");
  EXPECT_THAT(usage_error_of({"--nproc_per_node=2", "prog"}), HasSubstr("did you mean '--world_size'?"));
  EXPECT_THAT(usage_error_of({"-world_size", "2", "prog"}), HasSubstr("did you mean '--world_size'?"));
}

TEST(LaunchOptions, RejectsBadValues) {
  EXPECT_EQ(usage_error_of({"--world_size", "0", "prog"}),
            "--world_size: '0' is out of range (expected an integer in [1, 1048576])");
  EXPECT_THAT(usage_error_of({"--world_size", "two", "prog"}), HasSubstr("expected an integer"));
  EXPECT_THAT(usage_error_of({"--threads_per_rank", "-1", "prog"}), HasSubstr("--threads_per_rank"));
  EXPECT_THAT(usage_error_of({"--timeout", "soon", "prog"}), HasSubstr("expected seconds"));
  EXPECT_THAT(usage_error_of({"--bind_to", "cores", "prog"}), HasSubstr("did you mean 'core'?"));
  EXPECT_THAT(usage_error_of({"--env", "1BAD=x", "prog"}), HasSubstr("KEY=VALUE"));
  EXPECT_THAT(usage_error_of({"--dry_run=yes", "prog"}), HasSubstr("takes no value"));
  EXPECT_EQ(usage_error_of({"--hostfile=", "prog"}), "--hostfile: '' is not valid (expected a file name)");
  EXPECT_EQ(usage_error_of({"--mpirun_args", "--x 'open", "prog"}),
            "--mpirun_args: unterminated ' quote in '--x 'open'");
}

TEST(LaunchOptions, SwitchesNeverTakeTheProgramAsTheirValue) {
  auto o = parse({"--dry_run", "true", "x"});  // /bin/true is a program
  EXPECT_TRUE(o.dry_run);
  EXPECT_EQ(o.program, "true");
  EXPECT_THAT(o.program_args, ElementsAre("x"));
}

TEST(LaunchOptions, DefaultsComeFromTheDeclarations) {
  auto o = parse({"prog"});
  EXPECT_FALSE(o.world_size.has_value());
  EXPECT_FALSE(o.threads_per_rank.has_value());
  EXPECT_FALSE(o.use_mpi);
  EXPECT_FALSE(o.dry_run);
  EXPECT_EQ(o.bind_to, BindTo::Core);
  EXPECT_DOUBLE_EQ(o.timeout_s, 0);
  EXPECT_TRUE(o.env.empty());
  EXPECT_TRUE(o.mpirun_args.empty());
  EXPECT_TRUE(o.notes.empty());
}

TEST(LaunchOptions, HelpIsGeneratedFromTheDeclarations) {
  const std::string usage = launch_usage();
  for (const auto& f : launch_schema().fields()) EXPECT_THAT(usage, HasSubstr("\n  --" + f.key + " ")) << f.key;
  EXPECT_THAT(usage, HasSubstr("  --world_size N        number of ranks (default: the slots of --hostfile/--hosts/"
                               "Slurm, else 1; an\n                        integer in [1, 1048576])\n"));
  EXPECT_THAT(usage, HasSubstr("  --bind_to WHAT"));
  EXPECT_THAT(usage, HasSubstr("(default: core; one of core, socket, none)"));
  EXPECT_THAT(usage, HasSubstr("  --timeout SECONDS     time limit for the job, exit 124 (default: 0; seconds >= 0; "
                               "0 = no limit)\n"));
  EXPECT_THAT(usage, HasSubstr("  --env KEY=VALUE       set a variable for every rank (repeatable); KEY alone: "
                               "gaudi_spawn's value\n"));
  EXPECT_THAT(usage, HasSubstr("  --dry_run             print the exact command and environment, run nothing\n"));
  EXPECT_THAT(usage, HasSubstr("  -h, --help            this help\n"));
  EXPECT_THAT(usage, HasSubstr("Exit status: 0 success; 2 bad usage; 124 timeout;"));
}

TEST(LaunchOptions, MissingValueOrProgramIsAUsageError) {
  EXPECT_EQ(usage_error_of({"--world_size"}), "option '--world_size' needs a value");
  EXPECT_THAT(usage_error_of({"--world_size", "2"}), HasSubstr("missing PROGRAM"));
  EXPECT_THAT(usage_error_of({}), HasSubstr("missing PROGRAM"));
}

TEST(LaunchOptions, HelpNeedsNoProgram) {
  EXPECT_TRUE(parse({"--help"}).help);
  EXPECT_TRUE(parse({"-h"}).help);
}

TEST(LaunchOptions, HostfileAndHostsAreExclusive) {
  EXPECT_THAT(usage_error_of({"--hostfile", "h", "--hosts", "a:1", "prog"}), HasSubstr("use one of them"));
}

TEST(LaunchOptions, HuggingFaceOnlyOptionsAreHandled) {
  EXPECT_THAT(usage_error_of({"--use_deepspeed", "prog"}), HasSubstr("DeepSpeed is not supported"));
  auto o = parse({"--main_process_port", "29500", "prog"});
  ASSERT_EQ(o.notes.size(), 1u);
  EXPECT_THAT(o.notes[0], HasSubstr("ignored"));
}

TEST(LaunchOptions, MpirunArgsAccumulate) {
  auto o = parse({"--mpirun_args", "--mca a 1", "--mpirun_args=--report-bindings", "--mpirun_args", "-v", "prog"});
  EXPECT_THAT(o.mpirun_args, ElementsAre("--mca", "a", "1", "--report-bindings", "-v"));
}

TEST(LaunchOptions, EnvItemsRoundTripThroughTheirText) {
  for (const std::string text : {"A=1", "A=", "A=x=y", "B"}) {
    ASSERT_TRUE(valid_env_item(text)) << text;
    EXPECT_EQ(env_item_text(parse_env_item(text)), text);
  }
  EXPECT_FALSE(valid_env_item("=1"));
  EXPECT_FALSE(valid_env_item("A-B=1"));
}

TEST(SplitWords, QuotesAndEscapesLikeAShellWithoutExpansion) {
  EXPECT_THAT(split_words("  --mca btl_tcp_if_include 'eth0 eth1'  -x \"A=b c\" $HOME\\ x "),
              ElementsAre("--mca", "btl_tcp_if_include", "eth0 eth1", "-x", "A=b c", "$HOME x"));
  EXPECT_THAT(split_words("''"), ElementsAre(""));
  EXPECT_TRUE(split_words("   ").empty());
  EXPECT_THROW(split_words("--x 'open"), UsageError);
}

TEST(LaunchOptions, MultiHostOptions) {
  auto o = parse({"--launch_agent", "ssh -o StrictHostKeyChecking=no", "--ssh_port", "2222", "--network_interface",
                  "eth0,10.0.0.0/8", "--cores_per_host", "32", "prog"});
  EXPECT_EQ(o.launch_agent, "ssh -o StrictHostKeyChecking=no");
  EXPECT_EQ(o.ssh_port, 2222);
  EXPECT_EQ(o.network_interface, "eth0,10.0.0.0/8");
  EXPECT_EQ(o.cores_per_host, 32);
  EXPECT_THAT(usage_error_of({"--ssh_port", "70000", "prog"}), HasSubstr("--ssh_port"));
  EXPECT_THAT(usage_error_of({"--cores_per_host", "0", "prog"}), HasSubstr("--cores_per_host"));
  for (const std::string bad : {"10.0.0.0/33", "300.1.1.1/8", "eth0,", "a b", "/16", "10.0.0.0"})
    EXPECT_THAT(usage_error_of({"--network_interface", bad, "prog"}), HasSubstr("interface names or IPv4 CIDR blocks"))
        << bad;
  EXPECT_THAT(usage_error_of({"--launch_agent", "", "prog"}), HasSubstr("--launch_agent"));
}
