#include "launcher/host_list.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "common/error.h"

namespace mpibert::launcher {
namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Throws with `where` as the message prefix.
int parse_count(const std::string& text, const std::string& where, int min) {
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < min || v > 1000000)
    throw UsageError(where + ": '" + text + "' is not a valid count (expected an integer >= " + std::to_string(min) +
                     ")");
  return static_cast<int>(v);
}

bool valid_host_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' && c != ':') return false;
  return true;
}

void check_host_name(const std::string& name, const std::string& where) {
  if (!valid_host_name(name))
    throw UsageError(where + ": '" + name + "' is not a valid host name (letters, digits, '.', '-', '_')");
}

// Host lists are small; a linear scan keeps the first position for the error message.
void check_unique(const std::vector<HostSlots>& hosts, const std::vector<std::string>& where_of) {
  for (size_t i = 0; i < hosts.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (hosts[i].name == hosts[j].name)
        throw UsageError(where_of[i] + ": host '" + hosts[i].name + "' is listed twice (first at " + where_of[j] +
                         "); list each host once with its total slots");
}

}  // namespace

std::vector<HostSlots> parse_hostfile(const std::string& text, const std::string& source) {
  std::vector<HostSlots> hosts;
  std::vector<std::string> where_of;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string where = source + " line " + std::to_string(line_no);
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string word;
    if (!(words >> word)) continue;
    if (word.find('=') != std::string::npos)
      throw UsageError(where + ": expected `host slots=K`, got '" + trim(line) +
                       "' (the line must start with the host)");
    HostSlots host;
    host.name = word;
    check_host_name(host.name, where);
    std::optional<int> max_slots;
    while (words >> word) {
      auto eq = word.find('=');
      if (eq == std::string::npos)
        throw UsageError(where + ": unexpected '" + word + "' in '" + trim(line) + "' (expected `host slots=K`)");
      std::string key = word.substr(0, eq), value = word.substr(eq + 1);
      if (key == "slots" || key == "count" || key == "cpu") {
        if (host.slots) throw UsageError(where + ": slots given twice in '" + trim(line) + "'");
        host.slots = parse_count(value, where + ": slots", 1);
      } else if (key == "max_slots" || key == "max-slots") {
        max_slots = parse_count(value, where + ": max_slots", 1);
      } else {
        throw UsageError(where + ": unknown key '" + key + "' (expected slots=K or max_slots=M)");
      }
    }
    if (host.slots && max_slots && *host.slots > *max_slots)
      throw UsageError(where + ": slots=" + std::to_string(*host.slots) +
                       " exceeds max_slots=" + std::to_string(*max_slots));
    hosts.push_back(std::move(host));
    where_of.push_back(where);
  }
  if (hosts.empty()) throw UsageError(source + ": no hosts (expected lines like `node1 slots=8`)");
  check_unique(hosts, where_of);
  return hosts;
}

std::vector<HostSlots> parse_hosts_option(const std::string& text) {
  std::vector<HostSlots> hosts;
  std::vector<std::string> where_of;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    item = trim(item);
    const std::string where = "--hosts '" + item + "'";
    if (item.empty()) throw UsageError("--hosts '" + text + "': empty host entry (expected a:4,b:4)");
    HostSlots host;
    auto colon = item.rfind(':');
    if (colon == std::string::npos) {
      host.name = item;
    } else {
      if (colon + 1 == item.size()) throw UsageError(where + ": missing slot count after ':' (expected host:K)");
      host.name = item.substr(0, colon);
      host.slots = parse_count(item.substr(colon + 1), where, 1);
    }
    check_host_name(host.name, where);
    hosts.push_back(std::move(host));
    where_of.push_back("--hosts entry " + std::to_string(hosts.size()));
  }
  if (hosts.empty()) throw UsageError("--hosts: no hosts given (expected a:4,b:4)");
  check_unique(hosts, where_of);
  return hosts;
}

namespace {

// Bounds on what a Slurm allocation may expand to (the largest machines have tens of thousands of nodes).
constexpr size_t kMaxSlurmNodes = 100000;
constexpr size_t kMaxHostNameBytes = 255;

UsageError too_many_nodes(const std::string& what) {
  return UsageError(what + ": expands to more than " + std::to_string(kMaxSlurmNodes) + " nodes");
}

// Splits at commas outside brackets.
std::vector<std::string> split_top_level(const std::string& text, const std::string& what) {
  std::vector<std::string> parts;
  std::string cur;
  int depth = 0;
  for (char c : text) {
    if (c == '[') ++depth;
    if (c == ']' && --depth < 0) throw UsageError(what + ": unbalanced ']' in '" + text + "'");
    if (c == ',' && depth == 0) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (depth != 0) throw UsageError(what + ": unbalanced '[' in '" + text + "'");
  parts.push_back(cur);
  return parts;
}

UsageError too_long_names(const std::string& name, const std::string& what) {
  return UsageError(what + ": '" + name + "' makes host names longer than " + std::to_string(kMaxHostNameBytes) +
                    " characters");
}

// One bracket group's numbers ("01-03,7" -> 01 02 03 7), each range zero-padded to the width of its start.
std::vector<std::string> expand_ranges(const std::string& ranges_text, const std::string& name,
                                       const std::string& what) {
  std::vector<std::string> values;
  std::istringstream ranges(ranges_text);
  std::string range;
  while (std::getline(ranges, range, ',')) {
    auto dash = range.find('-');
    std::string lo_text = range.substr(0, dash);
    std::string hi_text = dash == std::string::npos ? lo_text : range.substr(dash + 1);
    long lo = parse_count(lo_text, what + " range '" + range + "'", 0);
    long hi = parse_count(hi_text, what + " range '" + range + "'", 0);
    if (hi < lo || hi - lo > 100000) throw UsageError(what + ": bad range '" + range + "' in '" + name + "'");
    if (values.size() + static_cast<size_t>(hi - lo + 1) > kMaxSlurmNodes) throw too_many_nodes(what);
    if (lo_text.size() > kMaxHostNameBytes) throw too_long_names(name, what);
    for (long v = lo; v <= hi; ++v) {
      std::string digits = std::to_string(v);
      if (digits.size() < lo_text.size()) digits.insert(0, lo_text.size() - digits.size(), '0');  // node[01-10]
      values.push_back(std::move(digits));
    }
  }
  if (values.empty()) throw UsageError(what + ": empty brackets in '" + name + "'");
  return values;
}

// "r[1-2]n[1-2]" -> r1n1 r1n2 r2n1 r2n2. The number of names and their length are checked before any
// name is made: a few bytes of brackets must not turn into gigabytes of names.
void expand_name(const std::string& name, std::vector<std::string>& out, const std::string& what) {
  std::vector<std::string> literals;  // the text around the bracket groups: literals[0] groups[0] literals[1] ...
  std::vector<std::vector<std::string>> groups;
  size_t count = 1, longest = 0;  // names to make, and the longest of them
  for (size_t pos = 0;;) {
    const auto open = name.find('[', pos);
    literals.push_back(name.substr(pos, open == std::string::npos ? open : open - pos));
    longest += literals.back().size();
    if (open == std::string::npos) break;
    const auto close = name.find(']', open);
    if (close == std::string::npos) throw UsageError(what + ": unbalanced '[' in '" + name + "'");
    groups.push_back(expand_ranges(name.substr(open + 1, close - open - 1), name, what));
    if ((count *= groups.back().size()) > kMaxSlurmNodes) throw too_many_nodes(what);
    size_t widest = 0;
    for (const auto& value : groups.back()) widest = std::max(widest, value.size());
    longest += widest;
    pos = close + 1;
  }
  if (groups.empty() && name.empty()) throw UsageError(what + ": empty host name");
  if (out.size() + count > kMaxSlurmNodes) throw too_many_nodes(what);
  if (longest > kMaxHostNameBytes) throw too_long_names(name, what);
  std::vector<size_t> index(groups.size(), 0);  // an odometer: the last group turns fastest
  for (size_t n = 0; n < count; ++n) {
    std::string host = literals[0];
    for (size_t g = 0; g < groups.size(); ++g) host += groups[g][index[g]] + literals[g + 1];
    out.push_back(std::move(host));
    for (size_t g = groups.size(); g-- > 0;) {
      if (++index[g] < groups[g].size()) break;
      index[g] = 0;
    }
  }
}

}  // namespace

std::vector<std::string> expand_slurm_nodelist(const std::string& text) {
  const std::string what = "SLURM_JOB_NODELIST '" + text + "'";
  std::vector<std::string> out;
  for (const auto& part : split_top_level(trim(text), what)) expand_name(trim(part), out, what);
  return out;
}

std::vector<int> expand_slurm_counts(const std::string& text, const std::string& variable) {
  std::vector<int> out;
  std::istringstream in(text);
  std::string item;
  const std::string where = variable + " '" + text + "'";
  while (std::getline(in, item, ',')) {
    item = trim(item);
    int repeat = 1;
    if (auto paren = item.find("(x"); paren != std::string::npos) {
      if (item.back() != ')') throw UsageError(where + ": bad item '" + item + "' (expected N or N(xM))");
      repeat = parse_count(item.substr(paren + 2, item.size() - paren - 3), where, 1);
      item = item.substr(0, paren);
    }
    int count = parse_count(item, where, 0);
    if (out.size() + static_cast<size_t>(repeat) > kMaxSlurmNodes)
      throw UsageError(where + ": lists more than " + std::to_string(kMaxSlurmNodes) + " nodes");
    out.insert(out.end(), repeat, count);
  }
  if (out.empty()) throw UsageError(where + ": no counts");
  return out;
}

std::optional<std::vector<HostSlots>> hosts_from_slurm(const std::map<std::string, std::string>& vars) {
  auto get = [&](const char* key) -> std::string {
    auto it = vars.find(key);
    return it == vars.end() ? "" : it->second;
  };
  if (get("SLURM_JOB_ID").empty()) return std::nullopt;
  std::string nodelist = get("SLURM_JOB_NODELIST");
  if (nodelist.empty()) nodelist = get("SLURM_NODELIST");
  if (nodelist.empty())
    throw UsageError(
        "SLURM_JOB_ID is set but SLURM_JOB_NODELIST is not; run gaudi_spawn inside the allocation "
        "(sbatch/salloc) or pass --hosts/--hostfile");
  std::vector<std::string> nodes = expand_slurm_nodelist(nodelist);
  std::string cpus_text = get("SLURM_JOB_CPUS_PER_NODE");
  std::string tasks_text = get("SLURM_TASKS_PER_NODE");
  std::vector<int> cpus, tasks;
  if (!cpus_text.empty()) cpus = expand_slurm_counts(cpus_text, "SLURM_JOB_CPUS_PER_NODE");
  if (!tasks_text.empty()) tasks = expand_slurm_counts(tasks_text, "SLURM_TASKS_PER_NODE");
  auto check_size = [&](const std::vector<int>& v, const char* name) {
    if (!v.empty() && v.size() != nodes.size())
      throw UsageError(std::string(name) + " lists " + std::to_string(v.size()) + " nodes but SLURM_JOB_NODELIST '" +
                       nodelist + "' has " + std::to_string(nodes.size()));
  };
  check_size(cpus, "SLURM_JOB_CPUS_PER_NODE");
  check_size(tasks, "SLURM_TASKS_PER_NODE");
  std::vector<HostSlots> hosts;
  for (size_t i = 0; i < nodes.size(); ++i) {
    HostSlots h;
    h.name = nodes[i];
    if (!cpus.empty()) h.cores = cpus[i];
    if (!tasks.empty())
      h.slots = tasks[i];
    else if (!cpus.empty())
      h.slots = cpus[i];
    hosts.push_back(std::move(h));
  }
  return hosts;
}

}  // namespace mpibert::launcher
