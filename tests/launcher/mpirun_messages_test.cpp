#include "launcher/mpirun_messages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

using namespace mpibert::launcher;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

const char* const kBox = "--------------------------------------------------------------------------";

// Open MPI 4.1's text when a rank exits non-zero: nothing to diagnose (the rank's status says it all).
const std::string kRankExited = std::string(kBox) +
                                "\nPrimary job  terminated normally, but 1 process returned\n"
                                "a non-zero exit code. Per user-direction, the job has been aborted.\n" +
                                kBox + "\n" + kBox +
                                "\nmpirun detected that one or more processes exited with non-zero status, thus "
                                "causing\nthe job to be terminated. The first process to do so was:\n\n"
                                "  Process name: [[28815,1],1]\n  Exit code:    2\n" +
                                kBox + "\n";

}  // namespace

TEST(MpirunMessages, ARanksOwnFailureNeedsNoDiagnosis) {
  EXPECT_FALSE(diagnose_mpirun_messages(lines_of(kRankExited)));
}

TEST(MpirunMessages, AnUnresolvableHostIsNamed) {
  auto d = diagnose_mpirun_messages(
      lines_of("ssh: Could not resolve hostname nosuchhost-xyz: Name or service not known\n" + std::string(kBox) +
               "\nORTE was unable to reliably start one or more daemons.\nThis usually is caused by:\n"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->host, "nosuchhost-xyz");
  EXPECT_EQ(d->text, "host nosuchhost-xyz cannot be resolved (Name or service not known)");
  EXPECT_FALSE(d->host_lost);
}

TEST(MpirunMessages, AProgramMissingOnAHostIsNamedWithTheHost) {
  auto d = diagnose_mpirun_messages(lines_of(std::string(kBox) +
                                             "\nmpirun was unable to launch the specified application as it could "
                                             "not access\nor execute an executable:\n\nExecutable: /opt/b/gaudi_spawn\n"
                                             "Node: h2\n\nwhile attempting to start process rank 1.\n" +
                                             kBox));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->host, "h2");
  EXPECT_THAT(d->text, HasSubstr("host h2 cannot run /opt/b/gaudi_spawn (missing or not executable there)"));
}

TEST(MpirunMessages, SshConnectionAndLoginFailuresNameTheHost) {
  auto refused = diagnose_mpirun_messages({"ssh: connect to host node7 port 2222: Connection refused"});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->text, "cannot reach host node7 (ssh port 2222: Connection refused)");
  auto denied = diagnose_mpirun_messages({"alice@node8: Permission denied (publickey,password)."});
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->host, "node8");
  EXPECT_THAT(denied->text, HasSubstr("host node8 refused the login (Permission denied (publickey,password).)"));
}

TEST(MpirunMessages, ALostDaemonNamesItsHost) {
  auto d = diagnose_mpirun_messages(lines_of(std::string(kBox) +
                                             "\nORTE has lost communication with a remote daemon.\n\n"
                                             "  HNP daemon   : [[51000,0],0] on node h1\n"
                                             "  Remote daemon: [[51000,0],1] on node h2\n\n"
                                             "This is usually due to either a failure of the TCP network\n"));
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->host_lost);
  EXPECT_EQ(d->host, "h2");
  EXPECT_EQ(d->text, "lost contact with host h2: its Open MPI daemon died or the network to it failed");
}

TEST(MpirunMessages, ARankThatDiedWithItsWrapperIsNamed) {
  auto d = diagnose_mpirun_messages(
      {"mpirun noticed that process rank 1 with PID 0 on node h2 exited on signal 9 (Killed)."});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "rank 1 on host h2 was killed by signal 9 (SIGKILL) before it could report");
}

TEST(MpirunMessages, ADaemonThatDidNotStartGivesTheAgentsComplaint) {
  auto d = diagnose_mpirun_messages(lines_of("agent.sh: no such host h9\n" + std::string(kBox) +
                                             "\nORTE was unable to reliably start one or more daemons.\n"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "Open MPI could not start its daemon on a remote host: agent.sh: no such host h9");
  auto missing = diagnose_mpirun_messages({"bash: /usr/bin/orted: No such file or directory"});
  ASSERT_TRUE(missing);
  EXPECT_THAT(missing->text, HasSubstr("Open MPI's daemon (/usr/bin/orted) was not found on a remote host"));
}

TEST(MpirunStderr, StatusRecordsAreTakenOutAndEveryOtherLineLogged) {
  char path[] = "/tmp/mpirun_messages_test.XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  RankStatus s;
  s.rank = 1;
  s.host = "h2";
  s.signal = 9;
  s.tail = {"last words"};
  const std::string record = status_record(s);
  const std::string text = "box line\n" + record + "unfinished " + record + "end";
  MpirunStderr m(fd, 2);
  for (char c : text) m.write(&c, 1);  // byte by byte
  m.finish();
  close(fd);
  ASSERT_EQ(m.statuses().size(), 2u);
  EXPECT_EQ(m.statuses()[0].host, "h2");
  EXPECT_EQ(m.statuses()[1].signal, 9);
  EXPECT_THAT(m.statuses()[1].tail, ElementsAre("last words"));
  EXPECT_THAT(m.lines(), ElementsAre("unfinished ", "end"));  // the last two kept
  EXPECT_EQ(m.line_count(), 3u);
  std::ifstream in(path);
  std::stringstream logged;
  logged << in.rdbuf();
  EXPECT_EQ(logged.str(), "box line\nunfinished \nend\n");
  std::remove(path);
}
