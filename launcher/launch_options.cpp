#include "launcher/launch_options.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>

#include "common/config/schema.h"
#include "common/error.h"

namespace mpibert::launcher {
namespace {

enum class Kind { Flag, Value };

struct OptionSpec {
  Kind kind;
  std::function<void(LaunchOptions&, const std::string& name, const std::string& value)> apply;
};

int parse_positive_int(const std::string& name, const std::string& value, int max) {
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || v < 1 || v > max)
    throw UsageError("--" + name + ": '" + value + "' is not valid (expected an integer from 1 to " +
                     std::to_string(max) + ")");
  return static_cast<int>(v);
}

bool valid_env_key(const std::string& key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
  for (char c : key)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

const std::map<std::string, OptionSpec>& option_table() {
  static const std::map<std::string, OptionSpec> table = {
      {"world_size",
       {Kind::Value, [](LaunchOptions& o, const std::string& n,
                        const std::string& v) { o.world_size = parse_positive_int(n, v, 1 << 20); }}},
      {"use_mpi", {Kind::Flag, [](LaunchOptions& o, const std::string&, const std::string&) { o.use_mpi = true; }}},
      {"hostfile",
       {Kind::Value,
        [](LaunchOptions& o, const std::string& n, const std::string& v) {
          if (v.empty()) throw UsageError("--" + n + ": expected a file name");
          o.hostfile = v;
        }}},
      {"hosts",
       {Kind::Value,
        [](LaunchOptions& o, const std::string& n, const std::string& v) {
          if (v.empty()) throw UsageError("--" + n + ": expected hosts like a:4,b:4");
          o.hosts = v;
        }}},
      {"bind_to",
       {Kind::Value,
        [](LaunchOptions& o, const std::string& n, const std::string& v) {
          if (v == "core")
            o.bind_to = BindTo::Core;
          else if (v == "socket")
            o.bind_to = BindTo::Socket;
          else if (v == "none")
            o.bind_to = BindTo::None;
          else {
            std::string hint = config::nearest(v, {"core", "socket", "none"});
            throw UsageError("--" + n + ": '" + v + "' is not valid (expected core, socket or none)" +
                             (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
          }
        }}},
      {"threads_per_rank",
       {Kind::Value, [](LaunchOptions& o, const std::string& n,
                        const std::string& v) { o.threads_per_rank = parse_positive_int(n, v, 4096); }}},
      {"env",
       {Kind::Value,
        [](LaunchOptions& o, const std::string& n, const std::string& v) {
          auto eq = v.find('=');
          EnvItem item{v.substr(0, eq), std::nullopt};
          if (eq != std::string::npos) item.value = v.substr(eq + 1);
          if (!valid_env_key(item.key))
            throw UsageError("--" + n + ": '" + v +
                             "' is not valid (expected KEY=VALUE or KEY, KEY made of "
                             "letters, digits and _)");
          o.env.push_back(std::move(item));
        }}},
      {"log_dir",
       {Kind::Value,
        [](LaunchOptions& o, const std::string& n, const std::string& v) {
          if (v.empty()) throw UsageError("--" + n + ": expected a directory");
          o.log_dir = v;
        }}},
      {"timeout",
       {Kind::Value,
        [](LaunchOptions& o, const std::string& n, const std::string& v) {
          errno = 0;
          char* end = nullptr;
          double s = std::strtod(v.c_str(), &end);
          if (v.empty() || *end != '\0' || errno != 0 || !std::isfinite(s) || s < 0)
            throw UsageError("--" + n + ": '" + v + "' is not valid (expected seconds >= 0; 0 = no limit)");
          o.timeout_s = s;
        }}},
      {"mpirun",
       {Kind::Value,
        [](LaunchOptions& o, const std::string& n, const std::string& v) {
          if (v.empty()) throw UsageError("--" + n + ": expected the path of Open MPI's mpirun");
          o.mpirun = v;
        }}},
      {"mpirun_args",
       {Kind::Value,
        [](LaunchOptions& o, const std::string&, const std::string& v) {
          for (auto& w : split_words(v)) o.mpirun_args.push_back(std::move(w));
        }}},
      {"dry_run", {Kind::Flag, [](LaunchOptions& o, const std::string&, const std::string&) { o.dry_run = true; }}},
      {"help", {Kind::Flag, [](LaunchOptions& o, const std::string&, const std::string&) { o.help = true; }}},
      // Hugging Face's launcher options that have no meaning here.
      {"use_deepspeed",
       {Kind::Flag,
        [](LaunchOptions&, const std::string&, const std::string&) {
          throw UsageError(
              "--use_deepspeed: DeepSpeed is not supported; gaudi_spawn launches "
              "the ranks with MPI (drop the option or use --use_mpi)");
        }}},
      {"main_process_ip",
       {Kind::Value,
        [](LaunchOptions& o, const std::string& n, const std::string&) {
          o.notes.push_back("--" + n + " is ignored: MPI needs no rendezvous address");
        }}},
      {"main_process_port",
       {Kind::Value,
        [](LaunchOptions& o, const std::string& n, const std::string&) {
          o.notes.push_back("--" + n + " is ignored: MPI needs no rendezvous port");
        }}},
  };
  return table;
}

std::vector<std::string> known_names() {
  std::vector<std::string> names;
  for (const auto& [name, spec] : option_table()) names.push_back("--" + name);
  return names;
}

// Hints for the launchers people come from.
std::string foreign_option_hint(const std::string& arg) {
  static const std::map<std::string, std::string> hints = {
      {"-np", "--world_size"},
      {"-n", "--world_size"},
      {"--np", "--world_size"},
      {"-N", "--world_size"},
      {"--nproc_per_node", "--world_size"},
      {"-H", "--hosts"},
      {"--host", "--hosts"},
      {"-host", "--hosts"},
      {"-hostfile", "--hostfile"},
      {"--machinefile", "--hostfile"},
      {"-x", "--env"},
      {"--bind-to", "--bind_to"},
  };
  auto it = hints.find(arg);
  return it == hints.end() ? "" : it->second;
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
  }
  return "?";
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      if (c == quote)
        quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\\'))
        cur += text[++i];
      else
        cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      cur += text[++i];
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) throw UsageError(std::string("--mpirun_args: unterminated ") + quote + " quote in '" + text + "'");
  if (in_word) words.push_back(cur);
  return words;
}

LaunchOptions parse_launch_options(const std::vector<std::string>& args) {
  LaunchOptions o;
  const auto& table = option_table();
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "-h") {
      o.help = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // PROGRAM
    if (arg.rfind("--", 0) != 0) {
      std::string hint = foreign_option_hint(arg);
      throw UsageError("unknown option '" + arg + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?") +
                       " (gaudi_spawn options start with --; see --help)");
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::string canonical = name;
    for (char& c : canonical)
      if (c == '-') c = '_';  // --world-size works too
    auto it = table.find(canonical);
    if (it == table.end()) {
      std::string hint = foreign_option_hint("--" + name);
      if (hint.empty()) hint = config::nearest("--" + canonical, known_names());
      throw UsageError("unknown option '--" + name + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?") +
                       " (gaudi_spawn's options come before PROGRAM; the program's own options go after it)");
    }
    const OptionSpec& spec = it->second;
    std::string value;
    if (spec.kind == Kind::Flag) {
      if (inline_value) throw UsageError("--" + name + " takes no value (got '" + *inline_value + "')");
    } else if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value");
      value = args[++i];
    }
    spec.apply(o, canonical, value);
  }
  if (i < args.size()) {
    o.program = args[i];
    o.program_args.assign(args.begin() + static_cast<long>(i) + 1, args.end());
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

  --world_size N        number of ranks (default: the slots of --hostfile/--hosts/Slurm, else 1)
  --use_mpi             accepted for compatibility with gaudi_spawn.py; MPI is always used
  --hostfile F          Open MPI hostfile: one `host slots=K` per line
  --hosts LIST          hosts and slots, e.g. a:4,b:4
  --bind_to WHAT        core (default) | socket | none
  --threads_per_rank K  threads per rank (default: cores per host / ranks per host); exported as
                        OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MPIBERT_THREADS_PER_RANK
  --env KEY=VALUE       set a variable for every rank (repeatable); --env KEY forwards gaudi_spawn's value
  --log_dir D           write each rank's console output to D/rank-N.log
  --timeout SECONDS     stop the whole job after this long (exit 124); 0 = no limit
  --mpirun PATH         mpirun to use (default: mpirun on PATH)
  --mpirun_args "..."   extra mpirun options, appended after gaudi_spawn's own (for experts)
  --dry_run             print the exact command and environment, run nothing
  -h, --help            this help

Inside a Slurm allocation (SLURM_JOB_ID set) hosts and slots come from Slurm.
Exit status: 0 success; 2 bad usage; 124 timeout; N the exit code of the first rank that failed
(128+S for a rank killed by signal S); 1 other launcher failures.
)";
}

}  // namespace mpibert::launcher
