#include "launcher/output_tee.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

using namespace mpibert::launcher;
using ::testing::ElementsAre;

namespace {

void feed(TailBuffer& t, int stream, const std::string& s) {
  t.append(stream, s.data(), s.size());
}

}  // namespace

TEST(TailBuffer, KeepsTheLastLinesAcrossChunks) {
  TailBuffer t(3);
  feed(t, 1, "one\ntw");
  feed(t, 1, "o\nthree\nfour\nfi");
  EXPECT_THAT(t.lines(), ElementsAre("three", "four", "fi"));
  feed(t, 1, "ve\n");
  EXPECT_THAT(t.lines(), ElementsAre("three", "four", "five"));
}

TEST(TailBuffer, StdoutAndStderrPartialLinesStaySeparate) {
  TailBuffer t(10);
  feed(t, 1, "out-a");
  feed(t, 2, "err line\n");
  feed(t, 1, "out-b\n");
  EXPECT_THAT(t.lines(), ElementsAre("err line", "out-aout-b"));
}

TEST(TailBuffer, CarriageReturnKeepsOnlyTheLastProgressState) {
  TailBuffer t(10);
  feed(t, 1, "step 1/3\rstep 2/3\r");
  feed(t, 1, "step 3/3\nwindows line\r");
  feed(t, 1, "\nend\n");
  EXPECT_THAT(t.lines(), ElementsAre("step 3/3", "windows line", "end"));
}

TEST(TailBuffer, LongLinesKeepTheirEnd) {
  TailBuffer t(2, 10);
  feed(t, 1, std::string(100, 'a') + "0123456789\n");
  EXPECT_THAT(t.lines(), ElementsAre("...0123456789"));
}

TEST(OutputTee, WritesEveryByteToTheLogAndKeepsTheTail) {
  char path[] = "/tmp/output_tee_test.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  TailBuffer tail;
  OutputTee tee(fd, Console::Off, &tail);
  tee.write(1, "a\n", 2);
  tee.write(2, "b\n", 2);
  tee.write(1, "c", 1);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "a\nb\nc");
  EXPECT_THAT(tail.lines(), ElementsAre("a", "b", "c"));
  EXPECT_TRUE(tee.log_error().empty());
  std::remove(path);
}
