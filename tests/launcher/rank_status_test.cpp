#include "launcher/rank_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace mpibert::launcher;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

namespace {

RankStatus status(int rank, int code, int sig, bool stopped, double at) {
  RankStatus s;
  s.rank = rank;
  s.host = "h" + std::to_string(rank);
  s.exit_code = code;
  s.signal = sig;
  s.stopped = stopped;
  s.finished_at = at;
  return s;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/rank_status_test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

}  // namespace

TEST(RankStatus, RoundTripsThroughJson) {
  RankStatus s = status(3, 0, 9, false, 12.5);
  s.pid = 1234;
  s.tail = {"line one", "bad \xff byte"};
  RankStatus back = rank_status_from_json(rank_status_to_json(s), "x");
  EXPECT_EQ(back.rank, 3);
  EXPECT_EQ(back.host, "h3");
  EXPECT_EQ(back.pid, 1234);
  EXPECT_EQ(back.signal, 9);
  EXPECT_DOUBLE_EQ(back.finished_at, 12.5);
  ASSERT_EQ(back.tail.size(), 2u);
  EXPECT_EQ(back.tail[0], "line one");
  EXPECT_THROW(rank_status_from_json("{\"rank\": 1}", "x"), std::runtime_error);
}

TEST(RankStatus, ShellCodeIsExitCodeOr128PlusSignal) {
  EXPECT_EQ(status(0, 3, 0, false, 0).shell_code(), 3);
  EXPECT_EQ(status(0, 0, 9, false, 0).shell_code(), 137);
  RankStatus not_started = status(0, 127, 0, false, 0);
  not_started.start_error = "cannot execute";
  EXPECT_TRUE(not_started.failed());
  EXPECT_EQ(not_started.shell_code(), 127);
}

TEST(RankStatus, FirstFailureIsTheEarliestRankNotToldToStop) {
  std::vector<RankStatus> all = {status(0, 0, 15, true, 1.0), status(1, 3, 0, false, 2.0), status(2, 4, 0, false, 3.0),
                                 status(3, 0, 0, false, 0.5)};
  auto f = first_failure(all);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->rank, 1);
  // Only stopped ranks failed: the earliest of those.
  auto g = first_failure({status(0, 0, 15, true, 2.0), status(1, 0, 15, true, 1.0)});
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->rank, 1);
  EXPECT_FALSE(first_failure({status(0, 0, 0, false, 1), status(1, 0, 0, false, 1)}).has_value());
}

TEST(RankStatus, ReportNamesRankHostCodeAndLastLines) {
  RankStatus s = status(1, 3, 0, false, 0);
  s.tail = {"loading shard", "error: shard 7 missing"};
  EXPECT_EQ(format_failure_report(s, "/logs/rank-1.log"),
            "rank 1 on host h1 exited with code 3; last 2 lines of its output (/logs/rank-1.log):\n"
            "  | loading shard\n  | error: shard 7 missing");
  EXPECT_EQ(describe_rank_end(status(2, 0, 9, false, 0)), "rank 2 on host h2 was killed by signal 9 (SIGKILL)");
  EXPECT_THAT(format_failure_report(status(2, 0, 9, false, 0), ""), HasSubstr("(it printed nothing)"));
}

TEST(RankStatus, StopRequestRoundTripsAndIsRemoved) {
  TempDir dir;
  EXPECT_EQ(read_stop_request(dir.path), 0);
  write_stop_request(dir.path, 2);
  EXPECT_EQ(read_stop_request(dir.path), 2);
  remove_rank_files(dir.path, RankLogs::Keep);
  EXPECT_EQ(read_stop_request(dir.path), 0);
}

TEST(RankStatus, FilesAreWrittenReadAndRemoved) {
  TempDir dir;
  write_rank_status(dir.path, status(1, 3, 0, false, 2));
  write_rank_status(dir.path, status(0, 0, 0, false, 1));
  std::ofstream(dir.path + "/.rank-2.status") << "{half";  // a crash mid-write is skipped
  std::ofstream(dir.path + "/rank-0.log") << "log";
  auto all = read_rank_statuses(dir.path);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].rank, 0);
  EXPECT_EQ(all[1].exit_code, 3);
  remove_rank_files(dir.path, RankLogs::Keep);
  EXPECT_TRUE(read_rank_statuses(dir.path).empty());
  EXPECT_EQ(access((dir.path + "/rank-0.log").c_str(), F_OK), 0);
  remove_rank_files(dir.path, RankLogs::Remove);
  EXPECT_NE(access((dir.path + "/rank-0.log").c_str(), F_OK), 0);
}

TEST(RankStatus, WritesLeaveNoTemporaryFilesAndCutShortOnesAreRemoved) {
  TempDir dir;
  write_rank_status(dir.path, status(1, 0, 0, false, 1));
  write_stop_request(dir.path, 15);
  EXPECT_THAT(entries(dir.path), UnorderedElementsAre(".rank-1.status", ".stop-request"));
  // What io::write_file_atomic leaves when a crash cuts a write short.
  std::ofstream(dir.path + "/.rank-2.status.tmp.123.0") << "{half";
  std::ofstream(dir.path + "/.stop-request.tmp.123.1") << "1";
  EXPECT_EQ(read_rank_statuses(dir.path).size(), 1u);
  remove_rank_files(dir.path, RankLogs::Keep);
  EXPECT_THAT(entries(dir.path), IsEmpty());
}

TEST(RankStatus, AWriteIntoAMissingDirectoryNamesTheFile) {
  TempDir dir;
  try {
    write_rank_status(dir.path + "/missing", status(0, 0, 0, false, 1));
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir.path + "/missing/.rank-0.status"));
  }
}
