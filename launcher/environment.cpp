#include "launcher/environment.h"

#include <ifaddrs.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "launcher/launch_plan.h"
#include "launcher/process.h"

namespace mpibert::launcher {
namespace {

std::string join_path(const std::string& dir, const std::string& name) {
  if (name.empty() || name[0] == '/') return name;
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool read_int_file(const std::string& path, long& value) {
  std::ifstream in(path);
  return static_cast<bool>(in >> value);
}

// First match of an executable `name` in a PATH-like list, or "".
std::string search_path(const std::string& name, const std::string& path_var, const std::string& cwd,
                        const FileProbe& probe) {
  std::istringstream dirs(path_var);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = join_path(join_path(cwd, dir.empty() ? "." : dir), name);
    if (probe(candidate) == FileKind::Executable) return candidate;
  }
  return "";
}

}  // namespace

FileKind probe_file(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return FileKind::Missing;
  if (S_ISDIR(st.st_mode)) return FileKind::Directory;
  return access(path.c_str(), X_OK) == 0 ? FileKind::Executable : FileKind::NotExecutable;
}

std::string resolve_program(const std::string& program, const std::string& cwd, const std::string& self_dir,
                            const std::string& path_var, const FileProbe& probe) {
  const std::string given = join_path(cwd, program);
  FileKind kind = probe(given);
  if (kind == FileKind::Executable) return given;
  if (kind == FileKind::NotExecutable)
    throw UsageError("program '" + program + "' (" + given +
                     ") is not executable (chmod +x it, or name the "
                     "interpreter as PROGRAM, e.g. python3 " +
                     program + ")");
  std::string looked = given;
  if (program.find('/') == std::string::npos) {
    const std::string beside = join_path(self_dir, program);
    if (probe(beside) == FileKind::Executable) return beside;
    std::string on_path = search_path(program, path_var, cwd, probe);
    if (!on_path.empty()) return on_path;
    looked += ", " + beside + " and on PATH";
  }
  if (kind == FileKind::Directory)
    throw UsageError("program '" + program + "' (" + given + ") is a directory; name the executable in it");
  std::string hint;
  if (program.size() > 3 && program.compare(program.size() - 3, 3, ".py") == 0)
    hint = "; the native programs have no .py (e.g. run_mlm, not run_mlm.py)";
  throw UsageError("program '" + program + "' not found (looked at " + looked + ")" + hint);
}

int parse_open_mpi_major(const std::string& version_text) {
  static const std::regex re(R"(\(Open MPI\)\s+(\d+)\.)");
  std::smatch m;
  if (!std::regex_search(version_text, m, re)) return 0;
  return std::stoi(m[1].str());
}

int count_usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? static_cast<int>(n) : 1;
  }
  const int logical = CPU_COUNT(&set);
  std::set<std::pair<long, long>> cores;  // (package, core): hyperthreads of one core count once
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    long package = 0, core = 0;
    if (!read_int_file(base + "physical_package_id", package) || !read_int_file(base + "core_id", core))
      return logical > 0 ? logical : 1;
    cores.insert({package, core});
  }
  return cores.empty() ? std::max(1, logical) : static_cast<int>(cores.size());
}

std::vector<std::string> list_network_interfaces() {
  std::vector<std::string> names;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return names;
  for (ifaddrs* i = list; i; i = i->ifa_next)
    if (i->ifa_name && std::find(names.begin(), names.end(), i->ifa_name) == names.end()) names.push_back(i->ifa_name);
  freeifaddrs(list);
  return names;
}

namespace {

// Runs `blas_probe --fit` next to gaudi_spawn: its first line is what it found ("blas_probe: ..."), then
// KEY=VALUE per variable to export. nullopt when it is missing or fails: the ranks then decide themselves.
std::optional<Environment::BlasFit> probe_blas_fit(const Environment& env) {
  const std::string probe = join_path(dir_of(env.self_exe), "blas_probe");
  if (probe_file(probe) != FileKind::Executable) return std::nullopt;
  int status = 0;
  std::string text;
  try {
    text = run_and_capture({probe, "--fit"}, 60, &status);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (status != 0) return std::nullopt;
  Environment::BlasFit fit;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto eq = line.find('=');
    if (line.rfind("blas_probe: ", 0) == 0)
      fit.note = line.substr(12);
    else if (eq != std::string::npos && eq > 0 && line.find(' ') > eq)
      fit.vars.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  return fit;
}

}  // namespace

// Everything but the BLAS core: the process, this host, the hostfile, mpirun, cross-memory attach.
Environment probe_process_environment(const LaunchOptions& options) {
  Environment env;
  env.uid = static_cast<int>(geteuid());
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) == 0) env.hostname = host;
  env.cores_per_host = count_usable_cores();
  env.console_is_tty = isatty(STDERR_FILENO) == 1;
  env.network_interfaces = list_network_interfaces();
  for (const auto& kv : current_environment()) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) throw std::runtime_error("cannot read the current directory");
  env.cwd = cwd;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) throw std::runtime_error("cannot find gaudi_spawn's own path (/proc/self/exe)");
  env.self_exe.assign(exe, static_cast<size_t>(n));
  const std::string tmp = env.vars.count("TMPDIR") && !env.vars["TMPDIR"].empty() ? env.vars["TMPDIR"] : "/tmp";
  env.temp_dir = join_path(tmp, "gaudi_spawn." + std::to_string(getpid()));

  if (!options.program.empty())
    env.program_path = resolve_program(options.program, env.cwd, dir_of(env.self_exe), env.vars["PATH"], probe_file);

  if (!options.hostfile.empty()) {
    std::ifstream in(join_path(env.cwd, options.hostfile));
    if (!in) throw UsageError("--hostfile " + options.hostfile + ": cannot read it");
    std::ostringstream text;
    text << in.rdbuf();
    env.hostfile_text = text.str();
  }

  // mpirun is only needed for more than one rank: not for --world_size 1, nor without hosts to take
  // the rank count from.
  const bool hosts_given = !options.hostfile.empty() || !options.hosts.empty() ||
                           (env.vars.count("SLURM_JOB_ID") && !env.vars.at("SLURM_JOB_ID").empty());
  if (options.world_size ? *options.world_size == 1 : !hosts_given) return env;
  if (!options.mpirun.empty()) {
    env.mpirun_path = join_path(env.cwd, options.mpirun);
    if (probe_file(env.mpirun_path) != FileKind::Executable)
      throw UsageError("--mpirun " + options.mpirun + ": not an executable file");
  } else {
    env.mpirun_path = search_path("mpirun", env.vars["PATH"], env.cwd, probe_file);
    if (env.mpirun_path.empty()) {
      env.mpirun_problem =
          "mpirun not found on PATH (more than one rank needs Open MPI 4 or 5); install Open MPI "
          "or pass --mpirun PATH";
      return env;
    }
  }
  int status = 0;
  std::string text;
  try {
    text = run_and_capture({env.mpirun_path, "--version"}, 30, &status);
  } catch (const std::exception& e) {
    env.mpirun_problem = e.what();
    return env;
  }
  env.open_mpi_major = parse_open_mpi_major(text);
  if (env.open_mpi_major == 0) {
    std::string first_line = text.substr(0, text.find('\n'));
    env.mpirun_problem = env.mpirun_path + " is not Open MPI's mpirun (`mpirun --version` says '" + first_line +
                         "'); gaudi_spawn needs Open MPI 4 or 5 (pass --mpirun PATH)";
  } else if (env.open_mpi_major < 3) {
    env.mpirun_problem =
        env.mpirun_path + " is Open MPI " + std::to_string(env.open_mpi_major) + "; gaudi_spawn needs Open MPI 4 or 5";
    env.open_mpi_major = 0;
  }
  // Last, as it needs the plan: whether ranks on this host may use cross-memory attach (a few ms).
  if (cma_probe_wanted(options, env)) env.cross_memory_attach = probe_cross_memory_attach();
  return env;
}

Environment probe_environment(const LaunchOptions& options) {
  Environment env = probe_process_environment(options);
  // Last, as it needs the plan: OpenBLAS's core, decided once for every rank on this host (~0.1 s).
  if (blas_fit_wanted(options, env)) env.blas_fit = probe_blas_fit(env);
  return env;
}

}  // namespace mpibert::launcher
