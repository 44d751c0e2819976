// The deployment files in docker/ (which no test machine can run: no containers, no Kubernetes) checked
// against what they must fit: the MPI Operator v2beta1 MPIJob fields, gaudi_spawn's and run_mlm's own
// options, and the Dockerfile's sshd setup.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "common/config/run_config.h"
#include "launcher/launch_options.h"

namespace mpibert::launcher {
namespace {

const std::string kDocker = std::string(MPIBERT_SOURCE_DIR) + "/docker/";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> strings(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const auto& item : list) out.push_back(item.as<std::string>());
  return out;
}

// The MPIJob fields of kubeflow.org/v2beta1 (mpi-operator's pkg/apis/kubeflow/v2beta1/types.go).
TEST(DeploymentFiles, MpiJobUsesOnlyV2beta1FieldsAndValues) {
  const YAML::Node job = YAML::LoadFile(kDocker + "mpijob.yaml");
  EXPECT_EQ(job["apiVersion"].as<std::string>(), "kubeflow.org/v2beta1");
  EXPECT_EQ(job["kind"].as<std::string>(), "MPIJob");
  const std::set<std::string> spec_fields = {"slotsPerWorker",   "runLauncherAsWorker", "runPolicy",
                                             "mpiReplicaSpecs",  "sshAuthMountPath",    "launcherCreationPolicy",
                                             "mpiImplementation"};
  for (const auto& kv : job["spec"]) EXPECT_TRUE(spec_fields.count(kv.first.as<std::string>())) << kv.first;
  const YAML::Node spec = job["spec"];
  EXPECT_THAT(spec["mpiImplementation"].as<std::string>(), ::testing::AnyOf("OpenMPI", "Intel", "MPICH"));
  EXPECT_THAT(spec["launcherCreationPolicy"].as<std::string>(), ::testing::AnyOf("AtStartup", "WaitForWorkersReady"));
  EXPECT_THAT(spec["runPolicy"]["cleanPodPolicy"].as<std::string>(), ::testing::AnyOf("None", "Running", "All"));
  std::set<std::string> replicas;
  for (const auto& kv : spec["mpiReplicaSpecs"]) replicas.insert(kv.first.as<std::string>());
  EXPECT_EQ(replicas, (std::set<std::string>{"Launcher", "Worker"}));
  EXPECT_EQ(spec["mpiReplicaSpecs"]["Launcher"]["replicas"].as<int>(), 1);
  EXPECT_GE(spec["mpiReplicaSpecs"]["Worker"]["replicas"].as<int>(), 1);
}

// The launcher's command is a gaudi_spawn command line that parses, over the workers' slots and cores.
TEST(DeploymentFiles, MpiJobLauncherRunsAValidGaudiSpawnCommand) {
  const YAML::Node spec = YAML::LoadFile(kDocker + "mpijob.yaml")["spec"];
  const YAML::Node launcher = spec["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0];
  const YAML::Node worker = spec["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0];
  ASSERT_EQ(strings(launcher["command"]), std::vector<std::string>{"gaudi_spawn"});
  const LaunchOptions o = parse_launch_options(strings(launcher["args"]));
  EXPECT_EQ(o.hostfile, "/etc/mpi/hostfile");  // where the operator mounts it
  EXPECT_EQ(*o.world_size, spec["slotsPerWorker"].as<int>() * spec["mpiReplicaSpecs"]["Worker"]["replicas"].as<int>());
  EXPECT_EQ(*o.cores_per_host, std::stoi(worker["resources"]["limits"]["cpu"].as<std::string>()));
  EXPECT_EQ(o.program, "run_mlm");
  // run_mlm's options are its own keys (the config file itself is only in the image).
  std::set<std::string> keys;
  for (const auto& f : run_schema().fields()) keys.insert(f.key);
  for (size_t i = 0; i < o.program_args.size(); i += 2) {
    const std::string flag = o.program_args[i].substr(2);
    EXPECT_TRUE(flag == "config" || keys.count(flag) || keys.count("train." + flag)) << flag;
  }
  // Workers serve ssh on the port the launcher uses, with the config the Dockerfile writes.
  EXPECT_EQ(strings(worker["command"]), std::vector<std::string>{"/usr/sbin/sshd"});
  EXPECT_THAT(strings(worker["args"]), ::testing::ElementsAre("-De", "-f", "/home/mpiuser/.sshd_config"));
  const std::string dockerfile = read_text(kDocker + "Dockerfile");
  EXPECT_THAT(dockerfile, ::testing::HasSubstr("ARG SSH_PORT=" + std::to_string(*o.ssh_port) + "\n"));
  EXPECT_THAT(dockerfile, ::testing::HasSubstr(">/home/mpiuser/.sshd_config"));
  EXPECT_THAT(dockerfile, ::testing::HasSubstr("EXPOSE " + std::to_string(*o.ssh_port) + "\n"));
  // The pods run as the image's non-root user.
  EXPECT_EQ(spec["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["securityContext"]["runAsUser"].as<int>(), 1000);
  EXPECT_THAT(dockerfile, ::testing::HasSubstr("USER mpiuser"));
}

}  // namespace
}  // namespace mpibert::launcher
