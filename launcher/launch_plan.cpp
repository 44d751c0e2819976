#include "launcher/launch_plan.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>
#include <stdexcept>

#include "common/error.h"
#include "launcher/host_list.h"
#include "launcher/rank_wrapper.h"
#include "launcher/remote_launch.h"

namespace mpibert::launcher {
namespace {

std::string absolute(const std::string& cwd, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return cwd + (cwd.empty() || cwd.back() == '/' ? "" : "/") + path;
}

std::string option_name(const std::string& arg) {
  return arg.substr(0, arg.find('='));
}

bool has_any(const std::vector<std::string>& args, const std::set<std::string>& names) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& a) { return names.count(option_name(a)) > 0; });
}

bool mentions(const std::vector<std::string>& args, const std::string& text) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& a) { return a.find(text) != std::string::npos; });
}

void check_mpirun_args(const std::vector<std::string>& args) {
  static const std::set<std::string> count = {"-np", "--np", "-n", "--n", "-c"};
  static const std::set<std::string> hosts = {"-H",        "--host",        "-host",        "--hostfile",
                                              "-hostfile", "--machinefile", "-machinefile", "--default-hostfile"};
  for (const auto& a : args) {
    if (count.count(option_name(a)))
      throw UsageError("--mpirun_args: '" + a +
                       "' conflicts with --world_size; set the number of ranks with "
                       "--world_size");
    if (hosts.count(option_name(a)))
      throw UsageError("--mpirun_args: '" + a +
                       "' conflicts with gaudi_spawn's host handling; use --hosts or "
                       "--hostfile");
  }
}

struct HostSource {
  std::vector<HostSlots> hosts;  // empty: the launch host only
  std::vector<int> cpus;         // per host: the CPUs the default threads per rank divide
  std::string name = "local";
  enum { Local, Hostfile, HostsOption, Slurm } kind = Local;
  std::set<std::string> assumed_cores;  // hosts whose cores are a guess
  std::set<std::string> guessed_cpus;   // ... and whose CPUs are that guess too (no slots given)
};

// Two counts per host. Cores (binding, oversubscription): --cores_per_host, Slurm's count, the launch
// host's own; another host is assumed to be like this one, with at least as many cores as its slots.
// CPUs (the default threads per rank): what the job was given there, --cores_per_host, Slurm's count or
// the host's slots, never the launch host's own count, so that the same hosts give the same threads
// wherever gaudi_spawn runs; only a host without slots falls back to its cores.
void count_cores(const LaunchOptions& o, const Environment& env, HostSource& src) {
  for (auto& h : src.hosts) {
    if (o.cores_per_host) h.cores = *o.cores_per_host;
    const std::optional<int> given = h.cores;
    if (!h.cores && is_launch_host(h.name, env.hostname)) h.cores = env.cores_per_host;
    if (!h.cores) {
      h.cores = std::max(env.cores_per_host, h.slots.value_or(0));
      src.assumed_cores.insert(h.name);
    }
    src.cpus.push_back(given ? *given : h.slots ? *h.slots : *h.cores);
    if (!given && !h.slots && src.assumed_cores.count(h.name)) src.guessed_cpus.insert(h.name);
    // Open MPI gives a host without slots= as many slots as it has cores.
    if (!h.slots) h.slots = *h.cores;
  }
}

HostSource host_source(const LaunchOptions& o, const Environment& env) {
  HostSource src;
  if (!o.hostfile.empty()) {
    src.hosts = parse_hostfile(env.hostfile_text, o.hostfile);
    src.name = "hostfile " + o.hostfile;
    src.kind = HostSource::Hostfile;
  } else if (!o.hosts.empty()) {
    src.hosts = parse_hosts_option(o.hosts);
    src.name = "--hosts " + o.hosts;
    src.kind = HostSource::HostsOption;
  } else if (auto slurm = hosts_from_slurm(env.vars)) {
    src.hosts = *slurm;
    src.name = "Slurm job " + env.vars.at("SLURM_JOB_ID");
    src.kind = HostSource::Slurm;
  }
  count_cores(o, env, src);
  return src;
}

std::string slots_text(const std::vector<HostSlots>& hosts) {
  std::string s;
  for (const auto& h : hosts) s += (s.empty() ? "" : ",") + h.name + ":" + std::to_string(*h.slots);
  return s;
}

using Argv = std::vector<std::string>;

void append(Argv& argv, const Argv& more) {
  argv.insert(argv.end(), more.begin(), more.end());
}

// --- Placement: how many ranks, on which hosts, with how many threads each. ---

int choose_world_size(const LaunchOptions& o, const HostSource& src) {
  int total_slots = 0;
  for (const auto& h : src.hosts) total_slots += *h.slots;
  const int world_size = o.world_size.value_or(src.hosts.empty() ? 1 : total_slots);
  if (!src.hosts.empty() && world_size > total_slots)
    throw UsageError("--world_size " + std::to_string(world_size) + " needs " + std::to_string(world_size) +
                     " slots but " + src.name + " offers " + std::to_string(total_slots) + " (" +
                     slots_text(src.hosts) + "); add hosts or slots, or lower --world_size");
  return world_size;
}

// Ranks fill each host's slots in order, as Open MPI's slot mapping does. One rank runs right here.
std::vector<HostPlacement> place_ranks(const LaunchOptions& o, const HostSource& src, int world_size,
                                       const Environment& env) {
  if (src.hosts.empty() || world_size == 1) {
    const int cores = o.cores_per_host.value_or(env.cores_per_host);
    return {{env.hostname, 0, world_size, cores, true, cores}};
  }
  std::vector<HostPlacement> placement;
  int next = 0;
  for (size_t i = 0; i < src.hosts.size() && next < world_size; ++i) {
    const auto& h = src.hosts[i];
    const int n = std::min(*h.slots, world_size - next);
    placement.push_back({h.name, next, n, *h.cores, src.assumed_cores.count(h.name) == 0, src.cpus[i]});
    next += n;
  }
  return placement;
}

// The default threads would rest on a guess: say so, and how to replace it.
void warn_about_guessed_cpus(const HostSource& src, const std::vector<HostPlacement>& placement,
                             std::vector<std::string>& warnings) {
  for (const auto& p : placement)
    if (src.guessed_cpus.count(p.name))
      warnings.push_back("host " + p.name + ": no slots given and its cores are unknown here; assuming " +
                         std::to_string(p.cpus) +
                         " like this host for the threads per rank (give slots, --cores_per_host or "
                         "--threads_per_rank)");
}

bool oversubscribed(const std::vector<HostPlacement>& placement) {
  return std::any_of(placement.begin(), placement.end(), [](const HostPlacement& p) { return p.ranks > p.cores; });
}

// CPUs per rank on the fullest host (at least 1), and why, for --dry_run.
int default_threads_per_rank(const std::vector<HostPlacement>& placement, std::string& why) {
  int threads = 1 << 30;
  for (const auto& p : placement) {
    const int t = std::max(1, p.cpus / p.ranks);
    if (t >= threads) continue;
    threads = t;
    why = std::to_string(p.cpus) + " CPUs / " + std::to_string(p.ranks) + (p.ranks == 1 ? " rank" : " ranks") + " on " +
          p.name;
  }
  return threads;
}

struct RankEnvironment {
  std::vector<std::pair<std::string, std::string>> vars;  // in order; the last setting of a key wins
  std::vector<std::string> forwarded;                     // keys given as --env KEY (gaudi_spawn's value)
};

RankEnvironment rank_environment(const LaunchOptions& o, const Environment& env, int threads) {
  RankEnvironment out;
  auto set = [&](const std::string& key, const std::string& value) {
    for (auto& kv : out.vars)
      if (kv.first == key) {
        kv.second = value;
        return;
      }
    out.vars.emplace_back(key, value);
  };
  std::set<std::string> user_keys;
  for (const auto& item : o.env) user_keys.insert(item.key);
  for (const char* key : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MPIBERT_THREADS_PER_RANK"})
    if (!user_keys.count(key)) set(key, std::to_string(threads));
  // Under mpirun a rank's console is a pipe: progress lines redraw in place only if ours is a terminal.
  if (!user_keys.count("MPIBERT_CONSOLE_IS_TTY")) set("MPIBERT_CONSOLE_IS_TTY", env.console_is_tty ? "1" : "0");
  for (const auto& item : o.env) {
    if (item.value) {
      set(item.key, *item.value);
      continue;
    }
    auto it = env.vars.find(item.key);
    if (it == env.vars.end())
      throw UsageError("--env " + item.key + ": " + item.key +
                       " is not set in gaudi_spawn's environment (give a value: --env " + item.key + "=VALUE)");
    set(item.key, it->second);
    if (std::find(out.forwarded.begin(), out.forwarded.end(), item.key) == out.forwarded.end())
      out.forwarded.push_back(item.key);
  }
  return out;
}

// --- Binding: each rank gets its own threads_per_rank cores, unless that cannot fit. ---

bool user_maps_ranks(const std::vector<std::string>& mpirun_args) {
  static const std::set<std::string> mapping_flags = {
      "--map-by", "-map-by",    "--bind-to", "-bind-to",     "--rank-by",       "-rank-by",
      "-N",       "--npernode", "-npernode", "--npersocket", "--cpus-per-proc", "--cpus-per-rank"};
  return has_any(mpirun_args, mapping_flags);
}

// The binding the plan can honour; says on `warnings` why when it turns binding off.
BindTo choose_binding(const LaunchOptions& o, const LaunchPlan& plan, std::vector<std::string>& warnings) {
  BindTo bind = o.bind_to;
  if (plan.oversubscribed) {
    for (const auto& p : plan.placement)
      if (p.ranks > p.cores)
        warnings.push_back(std::to_string(p.ranks) + " ranks on " + p.name + " which has " + std::to_string(p.cores) +
                           " cores: oversubscribing, binding off" + (o.threads_per_rank ? "" : ", 1 thread per rank"));
    bind = BindTo::None;
  } else if (bind == BindTo::Core) {
    for (const auto& p : plan.placement)
      if (p.ranks * plan.threads_per_rank > p.cores) {
        warnings.push_back("--threads_per_rank " + std::to_string(plan.threads_per_rank) + " x " +
                           std::to_string(p.ranks) + " ranks exceeds the " + std::to_string(p.cores) + " cores of " +
                           p.name + ": binding off");
        bind = BindTo::None;
        break;
      }
  }
  return user_maps_ranks(o.mpirun_args) ? BindTo::FromMpirunArgs : bind;
}

// --- The mpirun command line, piece by piece. ---

// --map-by/--bind-to for the plan's binding (nothing when the user's --mpirun_args map the ranks).
Argv mapping_args(const LaunchPlan& plan) {
  const bool v5 = plan.open_mpi_major >= 5;
  const std::string pe = "PE=" + std::to_string(plan.threads_per_rank);
  if (plan.binding == BindTo::FromMpirunArgs) return {};
  if (plan.oversubscribed) return {"--map-by", v5 ? "slot:OVERSUBSCRIBE" : "slot", "--bind-to", "none"};
  switch (plan.binding) {
    case BindTo::Core: {
      const bool uniform = std::all_of(plan.placement.begin(), plan.placement.end(),
                                       [&](const HostPlacement& p) { return p.ranks == plan.placement.front().ranks; });
      // Open MPI 5 (PRRTE) counts PE=n against slots with slot mapping; ppr places a fixed count per node.
      if (v5 && uniform)
        return {"--map-by", "ppr:" + std::to_string(plan.placement.front().ranks) + ":node:" + pe, "--bind-to", "core"};
      return {"--map-by", "slot:" + pe, "--bind-to", "core"};
    }
    case BindTo::Socket:
      return v5 ? Argv{"--map-by", "package", "--bind-to", "package"}
                : Argv{"--map-by", "socket", "--bind-to", "socket"};
    case BindTo::None:
    case BindTo::FromMpirunArgs:
      break;
  }
  return {"--map-by", "slot", "--bind-to", "none"};
}

Argv host_args(const LaunchOptions& o, const Environment& env, const HostSource& src,
               const std::vector<HostPlacement>& placement) {
  if (src.kind == HostSource::Hostfile) return {"--hostfile", absolute(env.cwd, o.hostfile)};
  if (src.hosts.empty()) return {};
  std::vector<HostSlots> used(src.hosts.begin(), src.hosts.begin() + static_cast<long>(placement.size()));
  return {"--host", slots_text(used)};
}

// Who decides how ranks on one host copy large messages. Open MPI's shared-memory transport copies them
// with cross-memory attach (CMA, process_vm_readv), which containers often forbid (Yama ptrace scope,
// CAP_SYS_PTRACE, seccomp). Open MPI 4.1 does not find out at start: every large message then fails its
// single copy ("Read -1, expected N, errno = 1") and the job slows down or fails. The copy-in/copy-out path
// (`none`) always works, at lower bandwidth. So for ranks on this host alone the probe decides (cma_probe.h);
// any setting of the user's wins, and ranks on several hosts are left to Open MPI.
void choose_single_copy(const LaunchOptions& o, const Environment& env, LaunchPlan& plan) {
  auto decide = [&](SingleCopy kind, const std::string& note) {
    plan.single_copy = kind;
    plan.single_copy_note = note;
  };
  decide(SingleCopy::OpenMpiDefault, "");
  if (plan.placement.size() != 1) return;
  const std::string user = "single-copy mechanism as set ";
  if (mentions(o.mpirun_args, "single_copy_mechanism")) return decide(SingleCopy::SetByUser, user + "in --mpirun_args");
  for (const auto& kv : plan.env)
    if (kv.first.find("single_copy_mechanism") != std::string::npos)
      return decide(SingleCopy::SetByUser, user + "with --env " + kv.first);
  for (const auto& kv : env.vars)
    if (kv.first.rfind("OMPI_MCA_", 0) == 0 && kv.first.find("single_copy_mechanism") != std::string::npos)
      return decide(SingleCopy::SetByUser, user + "by " + kv.first + " in the environment");
  const std::string host = plan.placement.front().name;
  if (!is_launch_host(host, env.hostname))
    decide(SingleCopy::OtherHost,
           "copy-in/copy-out: the ranks run on " + host + ", where cross-memory attach cannot be probed from here");
  else if (!env.cross_memory_attach)
    decide(SingleCopy::NotProbed, "copy-in/copy-out: cross-memory attach was not probed");
  else if (env.cross_memory_attach->ok)
    decide(SingleCopy::ProbedOk, "single-copy (CMA) probed ok");
  else
    decide(SingleCopy::ProbeFailed, "copy-in/copy-out: " + env.cross_memory_attach->reason);
}

// `none` unless CMA was probed ok here (or it is not ours to decide). When it was, nothing is passed rather
// than `cma`: Open MPI's default is the best mechanism it was built with (XPMEM before CMA: an explicit
// `cma` would downgrade an XPMEM build, whose own failure falls back to CMA by itself), the command is the
// one the user would write without gaudi_spawn, and a site's openmpi-mca-params.conf stays in force.
Argv shared_memory_args(const LaunchPlan& plan) {
  const bool copy_in_out = plan.single_copy == SingleCopy::ProbeFailed || plan.single_copy == SingleCopy::NotProbed ||
                           plan.single_copy == SingleCopy::OtherHost;
  if (!copy_in_out) return {};
  return {"--mca", plan.open_mpi_major >= 5 ? "btl_sm_single_copy_mechanism" : "btl_vader_single_copy_mechanism",
          "none"};
}

// -x KEY=VALUE for every variable; forwarded ones as -x KEY (mpirun takes gaudi_spawn's value).
Argv export_args(const LaunchPlan& plan, const std::vector<std::string>& forwarded) {
  Argv a;
  for (const auto& [key, value] : plan.env) {
    const bool is_forwarded = std::find(forwarded.begin(), forwarded.end(), key) != forwarded.end();
    append(a, {"-x", is_forwarded ? key : key + "=" + value});
  }
  return a;
}

Argv wrapper_args(const LaunchOptions& o, const Environment& env, const LaunchPlan& plan) {
  RankWrapperArgs w;
  w.capture_dir = plan.capture_dir;
  w.launch_host = env.hostname;
  w.keep_logs = !plan.log_dir.empty();
  w.framed_console = true;
  w.program = env.program_path;
  w.program_args = o.program_args;
  return rank_wrapper_argv(env.self_exe, w);
}

Argv mpirun_argv(const LaunchOptions& o, const Environment& env, const HostSource& src, const LaunchPlan& plan,
                 const std::vector<std::string>& forwarded) {
  Argv a = {env.mpirun_path, "-np", std::to_string(plan.world_size)};
  if (env.uid == 0 && !mentions(o.mpirun_args, "--allow-run-as-root")) a.push_back("--allow-run-as-root");
  append(a, host_args(o, env, src, plan.placement));
  append(a, mapping_args(plan));
  if (plan.oversubscribed && plan.open_mpi_major < 5 && !mentions(o.mpirun_args, "--oversubscribe"))
    a.push_back("--oversubscribe");
  append(a, shared_memory_args(plan));
  append(a, remote_launch_args(o, env, plan.open_mpi_major));
  append(a, network_args(o, env, plan.open_mpi_major, plan.placement.size() > 1));
  append(a, export_args(plan, forwarded));
  append(a, o.mpirun_args);
  append(a, wrapper_args(o, env, plan));
  return a;
}

std::string binding_text(const LaunchPlan& plan) {
  if (plan.direct) return ", run directly (no mpirun)";
  switch (plan.binding) {
    case BindTo::Core:
      return ", each rank bound to " + std::to_string(plan.threads_per_rank) +
             (plan.threads_per_rank == 1 ? " core" : " cores");
    case BindTo::Socket:
      return ", bound to sockets";
    case BindTo::None:
      return ", not bound";
    case BindTo::FromMpirunArgs:
      return ", mapping from --mpirun_args";
  }
  return "";
}

// Every rank runs here, and the user left OpenBLAS's core to us (no --env OPENBLAS_CORETYPE or
// MPIBERT_BLAS_FIT; one in gaudi_spawn's own environment reaches blas_probe --fit, which keeps it).
bool blas_fit_applies(const LaunchOptions& o, const LaunchPlan& plan) {
  for (const auto& item : o.env)
    if (item.key == "OPENBLAS_CORETYPE" || item.key == "MPIBERT_BLAS_FIT") return false;
  return plan.placement.size() == 1 && is_launch_host(plan.placement[0].name, plan.launch_host);
}

// OpenBLAS picks its kernels when it loads: a rank that finds a fallback core re-executes itself with a
// better one (common/platform/blas_fit.h). Deciding once here, for ranks on this host, spares each rank
// the probe and the second start.
void export_blas_fit(const LaunchOptions& o, const Environment& env, LaunchPlan& plan) {
  if (!env.blas_fit || !blas_fit_applies(o, plan)) return;
  plan.blas_fit_note = env.blas_fit->note + (env.blas_fit->vars.empty() ? "" : "; exported to the ranks");
  for (const auto& kv : env.blas_fit->vars) plan.env.push_back(kv);
}

}  // namespace

bool blas_fit_wanted(const LaunchOptions& options, const Environment& env) {
  if (env.blas_fit) return false;
  try {
    return blas_fit_applies(options, build_launch_plan(options, env));
  } catch (const std::exception&) {
    return false;  // the real plan says what is wrong
  }
}

bool cma_probe_wanted(const LaunchOptions& options, const Environment& env) {
  if (env.cross_memory_attach) return false;
  try {
    return build_launch_plan(options, env).single_copy == SingleCopy::NotProbed;
  } catch (const std::exception&) {
    return false;  // the real plan says what is wrong
  }
}

bool same_host(const std::string& a, const std::string& b) {
  return a == b || a.substr(0, a.find('.')) == b.substr(0, b.find('.'));
}

bool is_launch_host(const std::string& name, const std::string& hostname) {
  return name == "localhost" || name == "127.0.0.1" || same_host(name, hostname);
}

const HostPlacement* placement_of_rank(const std::vector<HostPlacement>& placement, int rank) {
  for (const auto& p : placement)
    if (rank >= p.first_rank && rank < p.first_rank + p.ranks) return &p;
  return nullptr;
}

LaunchPlan build_launch_plan(const LaunchOptions& o, const Environment& env) {
  check_mpirun_args(o.mpirun_args);
  LaunchPlan plan;
  plan.launch_host = env.hostname;
  plan.timeout_s = o.timeout_s;
  plan.log_dir = absolute(env.cwd, o.log_dir);
  plan.capture_dir = plan.log_dir.empty() ? env.temp_dir : plan.log_dir;
  plan.warnings = o.notes;

  const HostSource src = host_source(o, env);
  plan.host_source = src.name;
  plan.world_size = choose_world_size(o, src);
  plan.placement = place_ranks(o, src, plan.world_size, env);
  plan.direct = plan.world_size == 1;
  plan.oversubscribed = oversubscribed(plan.placement);
  plan.threads_reason = "--threads_per_rank";
  plan.threads_per_rank =
      o.threads_per_rank ? *o.threads_per_rank : default_threads_per_rank(plan.placement, plan.threads_reason);
  if (!o.threads_per_rank) warn_about_guessed_cpus(src, plan.placement, plan.warnings);
  const RankEnvironment rank_env = rank_environment(o, env, plan.threads_per_rank);
  plan.env = rank_env.vars;
  export_blas_fit(o, env, plan);

  if (plan.direct) {
    plan.binding = BindTo::None;
    plan.argv = {env.program_path};
    append(plan.argv, o.program_args);
    return plan;
  }
  if (env.open_mpi_major == 0 || env.mpirun_path.empty())
    throw std::runtime_error(env.mpirun_problem.empty() ? "mpirun is not usable" : env.mpirun_problem);
  plan.open_mpi_major = env.open_mpi_major;
  plan.binding = choose_binding(o, plan, plan.warnings);
  choose_single_copy(o, env, plan);
  plan.argv = mpirun_argv(o, env, src, plan, rank_env.forwarded);
  return plan;
}

std::string describe_plan(const LaunchPlan& plan) {
  std::ostringstream s;
  s << plan.world_size << (plan.world_size == 1 ? " rank" : " ranks") << " on " << plan.placement.size()
    << (plan.placement.size() == 1 ? " host" : " hosts") << " (";
  for (size_t i = 0; i < plan.placement.size(); ++i) {
    const auto& p = plan.placement[i];
    s << (i ? ", " : "") << p.name << ": rank" << (p.ranks == 1 ? " " : "s ") << p.first_rank;
    if (p.ranks > 1) s << "-" << p.first_rank + p.ranks - 1;
  }
  s << "), " << plan.threads_per_rank << (plan.threads_per_rank == 1 ? " thread" : " threads") << " per rank";
  s << binding_text(plan);
  if (plan.oversubscribed) s << ", oversubscribed";
  if (!plan.direct) s << "; Open MPI " << plan.open_mpi_major;
  return s.str();
}

std::string format_dry_run(const LaunchPlan& plan) {
  std::ostringstream s;
  s << "# gaudi_spawn --dry_run: " << describe_plan(plan) << "\n";
  s << "# hosts from: " << plan.host_source << "\n";
  for (const auto& p : plan.placement)
    if (!p.cores_known)
      s << "# " << p.name << ": " << p.cores << " cores assumed for binding (the launch host's count, at least "
        << "its slots); --cores_per_host overrides\n";
  s << "# threads per rank: " << plan.threads_per_rank << " (" << plan.threads_reason << ")\n";
  if (!plan.single_copy_note.empty()) s << "# shared memory: " << plan.single_copy_note << "\n";
  if (!plan.blas_fit_note.empty()) s << "# BLAS core: " << plan.blas_fit_note << "\n";
  s << "# environment added for every rank:\n";
  for (const auto& [k, v] : plan.env) s << k << "=" << shell_quote(v) << "\n";
  if (plan.direct) {
    if (plan.log_dir.empty())
      s << "# output: console only (no --log_dir)\n";
    else
      s << "# output: console and " << plan.log_dir << "/rank-0.log\n";
  } else if (plan.log_dir.empty()) {
    s << "# rank output captured in " << plan.capture_dir
      << " (temporary; --log_dir keeps it); rank 0 on the console\n";
  } else {
    s << "# rank output: " << plan.log_dir << "/rank-N.log; rank 0 also on the console\n";
  }
  if (plan.timeout_s > 0) s << "# timeout: " << plan.timeout_s << " s\n";
  s << "# command:\n" << format_command(plan.argv) << "\n";
  return s.str();
}

}  // namespace mpibert::launcher
