#include "launcher/remote_launch.h"

#include <algorithm>
#include <cctype>
#include <regex>

namespace mpibert::launcher {
namespace {

using Argv = std::vector<std::string>;

bool mentions(const Argv& args, const std::string& text) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& a) { return a.find(text) != std::string::npos; });
}

// Whether the user chose interfaces already, in any of the ways Open MPI reads parameters.
bool user_chose_interfaces(const LaunchOptions& o, const Environment& env) {
  if (mentions(o.mpirun_args, "tcp_if_")) return true;
  for (const auto& item : o.env)
    if (item.key.find("tcp_if_") != std::string::npos) return true;
  for (const auto& kv : env.vars)
    if ((kv.first.rfind("OMPI_MCA_", 0) == 0 || kv.first.rfind("PRTE_MCA_", 0) == 0) &&
        kv.first.find("tcp_if_") != std::string::npos)
      return true;
  return false;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ",") + w;
  return out;
}

// The daemons' own channel (oob) is PRRTE's in Open MPI 5, the messages' (btl) Open MPI's in both.
Argv oob_param(int open_mpi_major, const std::string& name, const std::string& value) {
  return {open_mpi_major >= 5 ? "--prtemca" : "--mca", name, value};
}

}  // namespace

bool valid_network_interface(const std::string& text) {
  static const std::regex name(R"([A-Za-z0-9_.:@-]{1,15})");
  static const std::regex cidr(R"((\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2}))");
  if (text.empty() || text.back() == ',') return false;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    std::smatch m;
    if (std::regex_match(item, m, cidr)) {
      for (int i = 1; i <= 4; ++i)
        if (std::stoi(m[i].str()) > 255) return false;
      if (std::stoi(m[5].str()) > 32) return false;
    } else if (!std::regex_match(item, name) || std::none_of(item.begin(), item.end(), [](char c) {
                 return std::isalpha(static_cast<unsigned char>(c));
               })) {
      return false;  // an address without /prefix is not accepted by Open MPI
    }
    start = comma + 1;
  }
  return true;
}

bool is_virtual_bridge(const std::string& n) {
  return n.rfind("docker", 0) == 0 || n.rfind("br-", 0) == 0 || n.rfind("virbr", 0) == 0;
}

Argv remote_launch_args(const LaunchOptions& o, const Environment& env, int open_mpi_major) {
  const bool v5 = open_mpi_major >= 5;
  Argv a;
  if (!o.launch_agent.empty()) a = {v5 ? "--prtemca" : "--mca", v5 ? "plm_ssh_agent" : "plm_rsh_agent", o.launch_agent};
  if (!o.ssh_port) return a;
  // The port joins the agent arguments already set in the environment (the MPI Operator sets some).
  std::string args = "-p " + std::to_string(*o.ssh_port);
  auto set = env.vars.find(v5 ? "PRTE_MCA_plm_ssh_args" : "OMPI_MCA_plm_rsh_args");
  if (set != env.vars.end() && !set->second.empty()) args = set->second + " " + args;
  a.insert(a.end(), {v5 ? "--prtemca" : "--mca", v5 ? "plm_ssh_args" : "plm_rsh_args", args});
  return a;
}

Argv network_args(const LaunchOptions& o, const Environment& env, int open_mpi_major, bool several_hosts) {
  if (!o.network_interface.empty()) {
    Argv a = {"--mca", "btl_tcp_if_include", o.network_interface};
    const Argv oob = oob_param(open_mpi_major, "oob_tcp_if_include", o.network_interface);
    a.insert(a.end(), oob.begin(), oob.end());
    return a;
  }
  if (user_chose_interfaces(o, env)) return {};
  std::vector<std::string> bridges = {"docker0", "virbr0"};
  for (const auto& n : env.network_interfaces)
    if (is_virtual_bridge(n) && std::find(bridges.begin(), bridges.end(), n) == bridges.end()) bridges.push_back(n);
  // Open MPI's own btl default is "127.0.0.1/8,sppp": kept, with the bridges added.
  Argv a = {"--mca", "btl_tcp_if_exclude", "127.0.0.1/8,sppp," + join(bridges)};
  if (several_hosts) bridges.insert(bridges.begin(), "lo");
  const Argv oob = oob_param(open_mpi_major, "oob_tcp_if_exclude", join(bridges));
  a.insert(a.end(), oob.begin(), oob.end());
  return a;
}

}  // namespace mpibert::launcher
