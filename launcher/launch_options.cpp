#include "launcher/launch_options.h"

#include <cctype>

#include "common/error.h"
#include "launcher/remote_launch.h"

namespace mpibert::launcher {
namespace {

using O = LaunchOptions;

bool not_empty(const std::string& text) {
  return !text.empty();
}

std::vector<std::string> split_mpirun_args(const std::string& text) {
  try {
    return split_words(text);
  } catch (const UsageError& e) {
    throw UsageError(std::string("--mpirun_args: ") + e.what());
  }
}

// The options for runs across hosts: their cores, how Open MPI reaches them, which network it uses.
void add_multi_host_options(config::Schema<O>& s) {
  s.add<std::optional<int>>(
       "cores_per_host", [](O& o) -> std::optional<int>& { return o.cores_per_host; }, std::nullopt,
       "cores of every host, for the default threads per rank and for binding")
      .range(1, 1 << 20)
      .when_unset("this host's own count; Slurm's count; other hosts' slots")
      .value_named("N");
  s.add<std::string>(
       "launch_agent", [](O& o) -> std::string& { return o.launch_agent; }, "",
       "command that starts Open MPI's daemon on another host: `CMD [opts] HOST COMMAND...` "
       "(Open MPI's plm_rsh_agent)")
      .satisfies(not_empty, "a command, e.g. ssh or /path/agent.sh")
      .when_unset("ssh")
      .value_named("CMD");
  s.add<std::optional<int>>(
       "ssh_port", [](O& o) -> std::optional<int>& { return o.ssh_port; }, std::nullopt,
       "port of the other hosts' ssh server (passed to the agent as -p PORT)")
      .range(1, 65535)
      .when_unset("the agent's own default (22)")
      .value_named("PORT");
  s.add<std::string>(
       "network_interface", [](O& o) -> std::string& { return o.network_interface; }, "",
       "network for Open MPI's TCP traffic between hosts: interface names or CIDR blocks, "
       "comma-separated (btl_tcp_if_include and oob_tcp_if_include)")
      .satisfies(valid_network_interface, "interface names or IPv4 CIDR blocks, e.g. eth0 or 10.1.0.0/16")
      .when_unset("every interface but docker*, br-*, virbr* (and lo across hosts)")
      .value_named("NAME|CIDR");
}

// Elastic restarts (elastic.h), with torchrun's names where it has them.
void add_elastic_options(config::Schema<O>& s) {
  s.add<int>(
       "max_restarts", [](O& o) -> int& { return o.max_restarts; }, 0,
       "after a failure (a rank died, a host was lost), restart the job up to N times from the program's "
       "latest checkpoint, without the host that failed")
      .range(0, 1000)
      .value_named("N");
  s.add<std::optional<int>>(
       "min_world_size", [](O& o) -> std::optional<int>& { return o.min_world_size; }, std::nullopt,
       "fewest ranks a restart may run with; fewer left ends the job")
      .range(1, 1 << 20)
      .when_unset("1")
      .value_named("K");
  s.add<std::string>(
       "error_file", [](O& o) -> std::string& { return o.error_file; }, "",
       "write every failed attempt (the rank and host that failed first, exit code, message) as JSON to F")
      .satisfies(not_empty, "a file name")
      .when_unset("LOG_DIR/error.json with --max_restarts and --log_dir, else none")
      .value_named("F");
  s.add<std::string>(
       "run_id", [](O& o) -> std::string& { return o.run_id; }, "",
       "the elastic job's id, given to every rank as MPIBERT_RUN_ID")
      .satisfies(not_empty, "an id")
      .when_unset("HOST-PID-TIME of this gaudi_spawn")
      .value_named("ID");
}

// One line per option: the only place its name, type, default, range and help are written.
config::Schema<O> build_schema() {
  config::Schema<O> s;
  s.add<std::optional<int>>(
       "world_size", [](O& o) -> std::optional<int>& { return o.world_size; }, std::nullopt, "number of ranks")
      .range(1, 1 << 20)
      .when_unset("the slots of --hostfile/--hosts/Slurm, else 1")
      .value_named("N");
  s.add<bool>(
       "use_mpi", [](O& o) -> bool& { return o.use_mpi; }, false,
       "accepted for compatibility with gaudi_spawn.py; MPI is always used")
      .as_switch();
  s.add<std::string>(
       "hostfile", [](O& o) -> std::string& { return o.hostfile; }, "",
       "Open MPI hostfile: one `host slots=K` per line")
      .satisfies(not_empty, "a file name")
      .value_named("F");
  s.add<std::string>(
       "hosts", [](O& o) -> std::string& { return o.hosts; }, "", "hosts and slots, e.g. a:4,b:4")
      .satisfies(not_empty, "hosts like a:4,b:4")
      .value_named("LIST");
  s.add_enum<BindTo>("bind_to", [](O& o) -> BindTo& { return o.bind_to; }, BindTo::Core,
                     "what each rank is bound to: its own threads_per_rank cores, a socket, or nothing",
                     {{"core", BindTo::Core}, {"socket", BindTo::Socket}, {"none", BindTo::None}})
      .value_named("WHAT");
  s.add<std::optional<int>>(
       "threads_per_rank", [](O& o) -> std::optional<int>& { return o.threads_per_rank; }, std::nullopt,
       "threads per rank, exported as OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and "
       "MPIBERT_THREADS_PER_RANK")
      .range(1, 4096)
      .when_unset("CPUs per host / ranks on that host (the fullest host decides)")
      .value_named("K");
  add_multi_host_options(s);
  s.add_list<EnvItem>(
       "env", [](O& o) -> std::vector<EnvItem>& { return o.env; },
       "set a variable for every rank (repeatable); KEY alone: gaudi_spawn's value",
       [](const std::string& text) { return std::vector<EnvItem>{parse_env_item(text)}; }, env_item_text)
      .satisfies(valid_env_item, "KEY=VALUE or KEY, KEY made of letters, digits and _")
      .value_named("KEY=VALUE");
  s.add<std::string>(
       "log_dir", [](O& o) -> std::string& { return o.log_dir; }, "",
       "write each rank's console output to D/rank-N.log")
      .satisfies(not_empty, "a directory")
      .value_named("D");
  s.add<double>(
       "timeout", [](O& o) -> double& { return o.timeout_s; }, 0.0, "time limit for the job, exit 124")
      .at_least(0)
      .expects("seconds >= 0; 0 = no limit")
      .value_named("SECONDS");
  add_elastic_options(s);
  s.add<std::string>(
       "mpirun", [](O& o) -> std::string& { return o.mpirun; }, "", "Open MPI's mpirun to use (else the one on PATH)")
      .satisfies(not_empty, "the path of Open MPI's mpirun")
      .value_named("PATH");
  s.add_list<std::string>(
       "mpirun_args", [](O& o) -> std::vector<std::string>& { return o.mpirun_args; },
       "extra mpirun options, split like a shell (no expansion) and appended after "
       "gaudi_spawn's own (for experts; repeatable)",
       split_mpirun_args, shell_quote)
      .value_named("\"ARGS\"");
  s.add<bool>(
       "dry_run", [](O& o) -> bool& { return o.dry_run; }, false,
       "print the exact command and environment, run nothing")
      .as_switch();
  return s;
}

config::ArgsSyntax launch_syntax() {
  config::ArgsSyntax syntax;
  syntax.config_file = false;
  syntax.stop_at_first_positional = true;  // PROGRAM [ARGS...]
  syntax.value_always_next = true;         // --mpirun_args "--mca btl tcp,self"
  syntax.dashes_as_underscores = true;     // --world-size, and mpirun's --bind-to
  // The launchers people come from.
  syntax.foreign_spellings = {
      {"-np", "world_size"},         {"-n", "world_size"}, {"--np", "world_size"},
      {"-N", "world_size"},          {"-H", "hosts"},      {"--nproc_per_node", "world_size"},
      {"--host", "hosts"},           {"-host", "hosts"},   {"-hostfile", "hostfile"},
      {"--machinefile", "hostfile"}, {"-x", "env"},
  };
  syntax.unknown_option_note = "gaudi_spawn's options come before PROGRAM; the program's own options go after it";
  // Hugging Face's launcher options that have no meaning here (see apply_foreign_options).
  syntax.extra_flags = {{"use_deepspeed", false}, {"main_process_ip", true}, {"main_process_port", true}};
  return syntax;
}

void apply_foreign_options(const std::map<std::string, std::string>& extras, LaunchOptions& o) {
  if (extras.count("use_deepspeed"))
    throw UsageError(
        "--use_deepspeed: DeepSpeed is not supported; gaudi_spawn launches the ranks with MPI (drop the option "
        "or use --use_mpi)");
  if (extras.count("main_process_ip"))
    o.notes.push_back("--main_process_ip is ignored: MPI needs no rendezvous address");
  if (extras.count("main_process_port"))
    o.notes.push_back("--main_process_port is ignored: MPI needs no rendezvous port");
}

}  // namespace

const char* bind_to_name(BindTo bind) {
  switch (bind) {
    case BindTo::Core:
      return "core";
    case BindTo::Socket:
      return "socket";
    case BindTo::None:
      return "none";
    case BindTo::FromMpirunArgs:
      return "mpirun_args";
  }
  return "?";
}

bool valid_env_item(const std::string& text) {
  const std::string key = text.substr(0, text.find('='));
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
  for (char c : key)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

EnvItem parse_env_item(const std::string& text) {
  const auto eq = text.find('=');
  EnvItem item{text.substr(0, eq), std::nullopt};
  if (eq != std::string::npos) item.value = text.substr(eq + 1);
  return item;
}

std::string env_item_text(const EnvItem& item) {
  return item.value ? item.key + "=" + *item.value : item.key;
}

const config::Schema<LaunchOptions>& launch_schema() {
  static const config::Schema<LaunchOptions> schema = build_schema();
  return schema;
}

LaunchOptions parse_launch_options(const std::vector<std::string>& args) {
  LaunchOptions o = launch_schema().defaults();
  const config::ParsedArgs parsed = launch_schema().parse_args(&o, args, launch_syntax());
  o.help = parsed.help;
  apply_foreign_options(parsed.extras, o);
  if (!parsed.positionals.empty()) {
    o.program = parsed.positionals.front();
    o.program_args.assign(parsed.positionals.begin() + 1, parsed.positionals.end());
  }
  if (!o.help && o.program.empty())
    throw UsageError("missing PROGRAM (usage: gaudi_spawn [options] PROGRAM [ARGS...]; see --help)");
  if (!o.hostfile.empty() && !o.hosts.empty()) throw UsageError("--hostfile and --hosts both given; use one of them");
  return o;
}

std::string launch_usage() {
  return R"(usage: gaudi_spawn [options] PROGRAM [ARGS...]

Starts PROGRAM as N MPI ranks with Open MPI's mpirun (or directly when N is 1) and supervises the job.
Options come before PROGRAM; PROGRAM's own arguments follow it and are passed through untouched.
Both `--opt VALUE` and `--opt=VALUE` work.

)" + launch_schema().options_help() +
         R"(
Inside a Slurm allocation (SLURM_JOB_ID set) hosts and slots come from Slurm.
Exit status: 0 success; 2 bad usage; 124 timeout; N the exit code of the first rank that failed
(128+S for a rank killed by signal S); 1 other launcher failures.
)";
}

}  // namespace mpibert::launcher
