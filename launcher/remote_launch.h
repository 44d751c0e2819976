#pragma once
// The mpirun options for reaching other hosts: the remote agent that starts Open MPI's daemon there
// (--launch_agent, --ssh_port) and the network interfaces its TCP traffic may use (--network_interface,
// and by default not the virtual bridges of containers and VMs, the classic cause of a hanging mpirun).
#include <string>
#include <vector>

#include "launcher/environment.h"
#include "launcher/launch_options.h"

namespace mpibert::launcher {

// --network_interface's value: interface names or IPv4 CIDR blocks, comma-separated ("eth0",
// "10.1.0.0/16", "ib0,eth1").
bool valid_network_interface(const std::string& text);

// Interfaces no job should use between hosts: the bridges of Docker (docker*, br-*) and libvirt (virbr*).
bool is_virtual_bridge(const std::string& interface_name);

// --mca plm_rsh_agent / plm_rsh_args (Open MPI 5: --prtemca plm_ssh_agent / plm_ssh_args).
std::vector<std::string> remote_launch_args(const LaunchOptions& o, const Environment& env, int open_mpi_major);

// --network_interface X: btl_tcp_if_include and oob_tcp_if_include X. Otherwise, unless the user set
// any *_tcp_if_* parameter (--mpirun_args, --env, OMPI_MCA_*): exclude the virtual bridges (those of
// this host, and docker0 and virbr0 wherever they are), and for several hosts the loopback.
std::vector<std::string> network_args(const LaunchOptions& o, const Environment& env, int open_mpi_major,
                                      bool several_hosts);

}  // namespace mpibert::launcher
