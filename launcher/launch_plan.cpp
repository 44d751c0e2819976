#include "launcher/launch_plan.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>
#include <stdexcept>

#include "common/error.h"
#include "launcher/host_list.h"
#include "launcher/rank_wrapper.h"

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

bool is_launch_host(const std::string& name, const std::string& hostname) {
  auto short_name = [](const std::string& n) { return n.substr(0, n.find('.')); };
  return name == "localhost" || name == "127.0.0.1" || name == hostname || short_name(name) == short_name(hostname);
}

struct HostSource {
  std::vector<HostSlots> hosts;  // empty: the launch host only
  std::string name = "local";
  enum { Local, Hostfile, HostsOption, Slurm } kind = Local;
  std::set<std::string> assumed_cores;  // hosts whose cores are a guess
};

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
  for (auto& h : src.hosts) {
    // Only the launch host's cores are known (Slurm tells the others'). Another host is assumed to be
    // like this one, and to have at least as many cores as the slots it offers.
    if (!h.cores && is_launch_host(h.name, env.hostname)) h.cores = env.cores_per_host;
    if (!h.cores) {
      h.cores = std::max(env.cores_per_host, h.slots.value_or(0));
      src.assumed_cores.insert(h.name);
    }
    // Open MPI gives a host without slots= as many slots as it has cores.
    if (!h.slots) h.slots = *h.cores;
  }
  return src;
}

std::string slots_text(const std::vector<HostSlots>& hosts) {
  std::string s;
  for (const auto& h : hosts) s += (s.empty() ? "" : ",") + h.name + ":" + std::to_string(*h.slots);
  return s;
}

std::vector<std::pair<std::string, std::string>> rank_environment(const LaunchOptions& o, const Environment& env,
                                                                  int threads, std::vector<std::string>* forwarded) {
  std::vector<std::pair<std::string, std::string>> out;
  auto set = [&](const std::string& key, const std::string& value) {
    for (auto& kv : out)
      if (kv.first == key) {
        kv.second = value;
        return;
      }
    out.emplace_back(key, value);
  };
  std::set<std::string> user_keys;
  for (const auto& item : o.env) user_keys.insert(item.key);
  const std::string t = std::to_string(threads);
  for (const char* key : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MPIBERT_THREADS_PER_RANK"})
    if (!user_keys.count(key)) set(key, t);
  for (const auto& item : o.env) {
    if (item.value) {
      set(item.key, *item.value);
      continue;
    }
    auto it = env.vars.find(item.key);
    if (it == env.vars.end())
      throw UsageError("--env " + item.key + ": " + item.key +
                       " is not set in gaudi_spawn's environment (give a "
                       "value: --env " +
                       item.key + "=VALUE)");
    set(item.key, it->second);
    if (forwarded && std::find(forwarded->begin(), forwarded->end(), item.key) == forwarded->end())
      forwarded->push_back(item.key);
  }
  return out;
}

}  // namespace

LaunchPlan build_launch_plan(const LaunchOptions& o, const Environment& env) {
  LaunchPlan plan;
  plan.launch_host = env.hostname;
  plan.timeout_s = o.timeout_s;
  plan.log_dir = absolute(env.cwd, o.log_dir);
  plan.capture_dir = plan.log_dir.empty() ? env.temp_dir : plan.log_dir;
  plan.warnings = o.notes;
  check_mpirun_args(o.mpirun_args);

  HostSource src = host_source(o, env);
  plan.host_source = src.name;
  int total_slots = 0;
  for (const auto& h : src.hosts) total_slots += *h.slots;
  plan.world_size = o.world_size ? *o.world_size : (src.hosts.empty() ? 1 : total_slots);
  if (!src.hosts.empty() && plan.world_size > total_slots)
    throw UsageError("--world_size " + std::to_string(plan.world_size) + " needs " + std::to_string(plan.world_size) +
                     " slots but " + src.name + " offers " + std::to_string(total_slots) + " (" +
                     slots_text(src.hosts) + "); add hosts or slots, or lower --world_size");

  // Ranks fill each host's slots in order, as Open MPI's slot mapping does. One rank runs right here.
  if (src.hosts.empty() || plan.world_size == 1) {
    plan.placement.push_back({env.hostname, 0, plan.world_size, env.cores_per_host, true});
  } else {
    int next = 0;
    for (const auto& h : src.hosts) {
      if (next == plan.world_size) break;
      int n = std::min(*h.slots, plan.world_size - next);
      plan.placement.push_back({h.name, next, n, *h.cores, src.assumed_cores.count(h.name) == 0});
      next += n;
    }
  }

  plan.direct = plan.world_size == 1;
  int auto_threads = 1 << 30;
  for (const auto& p : plan.placement) {
    auto_threads = std::min(auto_threads, std::max(1, p.cores / p.ranks));
    if (p.ranks > p.cores) plan.oversubscribed = true;
  }
  plan.threads_per_rank = o.threads_per_rank ? *o.threads_per_rank : auto_threads;
  std::vector<std::string> forwarded;
  plan.env = rank_environment(o, env, plan.threads_per_rank, &forwarded);

  if (plan.direct) {
    plan.binding = "none";
    plan.argv.push_back(env.program_path);
    plan.argv.insert(plan.argv.end(), o.program_args.begin(), o.program_args.end());
    return plan;
  }

  if (env.open_mpi_major == 0 || env.mpirun_path.empty())
    throw std::runtime_error(env.mpirun_problem.empty() ? "mpirun is not usable" : env.mpirun_problem);
  plan.open_mpi_major = env.open_mpi_major;
  const bool v5 = env.open_mpi_major >= 5;

  // Binding: each rank gets its own threads_per_rank cores, unless that cannot fit.
  BindTo bind = o.bind_to;
  if (plan.oversubscribed) {
    for (const auto& p : plan.placement)
      if (p.ranks > p.cores)
        plan.warnings.push_back(std::to_string(p.ranks) + " ranks on " + p.name + " which has " +
                                std::to_string(p.cores) + " cores: oversubscribing, binding off" +
                                (o.threads_per_rank ? "" : ", 1 thread per rank"));
    bind = BindTo::None;
  } else if (bind == BindTo::Core) {
    for (const auto& p : plan.placement)
      if (p.ranks * plan.threads_per_rank > p.cores) {
        plan.warnings.push_back("--threads_per_rank " + std::to_string(plan.threads_per_rank) + " x " +
                                std::to_string(p.ranks) + " ranks exceeds the " + std::to_string(p.cores) +
                                " cores of " + p.name + ": binding off");
        bind = BindTo::None;
        break;
      }
  }
  static const std::set<std::string> mapping_flags = {
      "--map-by", "-map-by",    "--bind-to", "-bind-to",     "--rank-by",       "-rank-by",
      "-N",       "--npernode", "-npernode", "--npersocket", "--cpus-per-proc", "--cpus-per-rank"};
  const bool user_mapping = has_any(o.mpirun_args, mapping_flags);
  plan.binding = user_mapping ? "mpirun_args" : bind_to_name(bind);

  auto& a = plan.argv;
  a = {env.mpirun_path, "-np", std::to_string(plan.world_size)};
  if (env.uid == 0 && !mentions(o.mpirun_args, "--allow-run-as-root")) a.push_back("--allow-run-as-root");
  if (src.kind == HostSource::Hostfile) {
    a.insert(a.end(), {"--hostfile", absolute(env.cwd, o.hostfile)});
  } else if (!src.hosts.empty()) {
    std::vector<HostSlots> used(src.hosts.begin(), src.hosts.begin() + static_cast<long>(plan.placement.size()));
    a.insert(a.end(), {"--host", slots_text(used)});
  }
  if (!user_mapping) {
    const std::string pe = "PE=" + std::to_string(plan.threads_per_rank);
    if (plan.oversubscribed) {
      if (v5)
        a.insert(a.end(), {"--map-by", "slot:OVERSUBSCRIBE", "--bind-to", "none"});
      else
        a.insert(a.end(), {"--map-by", "slot", "--bind-to", "none"});
    } else if (bind == BindTo::Core) {
      bool uniform = std::all_of(plan.placement.begin(), plan.placement.end(),
                                 [&](const HostPlacement& p) { return p.ranks == plan.placement.front().ranks; });
      // Open MPI 5 (PRRTE) counts PE=n against slots with slot mapping; ppr places a fixed count per node.
      if (v5 && uniform)
        a.insert(a.end(), {"--map-by", "ppr:" + std::to_string(plan.placement.front().ranks) + ":node:" + pe,
                           "--bind-to", "core"});
      else
        a.insert(a.end(), {"--map-by", "slot:" + pe, "--bind-to", "core"});
    } else if (bind == BindTo::Socket) {
      if (v5)
        a.insert(a.end(), {"--map-by", "package", "--bind-to", "package"});
      else
        a.insert(a.end(), {"--map-by", "socket", "--bind-to", "socket"});
    } else {
      a.insert(a.end(), {"--map-by", "slot", "--bind-to", "none"});
    }
  }
  if (plan.oversubscribed && !v5 && !mentions(o.mpirun_args, "--oversubscribe")) a.push_back("--oversubscribe");
  // Containers often forbid cross-memory attach (ptrace scope), which makes the shared-memory transport
  // fail at run time; its copy-in/copy-out path always works. Only for one host; the user may override.
  bool user_single_copy = mentions(o.mpirun_args, "single_copy_mechanism");
  for (const auto& kv : plan.env)
    if (kv.first.find("single_copy_mechanism") != std::string::npos) user_single_copy = true;
  for (const auto& kv : env.vars)
    if (kv.first.rfind("OMPI_MCA_", 0) == 0 && kv.first.find("single_copy_mechanism") != std::string::npos)
      user_single_copy = true;
  if (plan.placement.size() == 1 && !user_single_copy)
    a.insert(a.end(), {"--mca", v5 ? "btl_sm_single_copy_mechanism" : "btl_vader_single_copy_mechanism", "none"});
  for (const auto& kv : plan.env) {
    bool is_forwarded = std::find(forwarded.begin(), forwarded.end(), kv.first) != forwarded.end();
    a.insert(a.end(), {"-x", is_forwarded ? kv.first : kv.first + "=" + kv.second});
  }
  a.insert(a.end(), o.mpirun_args.begin(), o.mpirun_args.end());
  RankWrapperArgs w;
  w.capture_dir = plan.capture_dir;
  w.launch_host = env.hostname;
  w.keep_logs = !plan.log_dir.empty();
  w.program = env.program_path;
  w.program_args = o.program_args;
  std::vector<std::string> wrapper = rank_wrapper_argv(env.self_exe, w);
  a.insert(a.end(), wrapper.begin(), wrapper.end());
  return plan;
}

std::string shell_quote(const std::string& word) {
  if (word.empty()) return "''";
  bool safe = std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string("@%+=:,./-_^").find(c) != std::string::npos;
  });
  if (safe) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string format_command(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& w : argv) s += (s.empty() ? "" : " ") + shell_quote(w);
  return s;
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
  if (plan.direct)
    s << ", run directly (no mpirun)";
  else if (plan.binding == "core")
    s << ", each rank bound to " << plan.threads_per_rank << " core" << (plan.threads_per_rank == 1 ? "" : "s");
  else if (plan.binding == "socket")
    s << ", bound to sockets";
  else if (plan.binding == "none")
    s << ", not bound";
  else
    s << ", mapping from --mpirun_args";
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
      s << "# " << p.name << ": " << p.cores << " cores assumed (the launch host's count, at least its slots); "
        << "--threads_per_rank overrides\n";
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
