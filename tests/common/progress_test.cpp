// Progress lines with an injected clock and sink: when lines appear, what they say, the terminal
// redraw, rank 0 only, and the MPIBERT_CONSOLE_IS_TTY rule. No sleeping: time is a variable.
#include "common/log/progress.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"

namespace mpibert {
namespace {

struct Harness {
  double now = 100;
  std::vector<std::string> out;
  ProgressOptions options(bool tty) {
    ProgressOptions o;
    o.tty = tty;
    o.clock = [this] { return now; };
    o.sink = [this](const std::string& s) { out.push_back(s); };
    return o;
  }
};

TEST(Progress, LogsOneLineEveryIntervalWithRateAndEta) {
  Harness h;
  Progress p("tokenize", 1000, "documents", true, h.options(false));
  h.now = 101, p.update(100);
  h.now = 104.9, p.update(490);
  EXPECT_TRUE(h.out.empty());
  h.now = 105, p.update(500);
  h.now = 109, p.update(900);
  ASSERT_EQ(h.out.size(), 1u);
  EXPECT_EQ(h.out[0], "tokenize: 500/1000 documents (50.0%) | 100 documents/s | ETA 0:00:05");
  h.now = 110, p.update(990);
  ASSERT_EQ(h.out.size(), 2u);
  EXPECT_EQ(h.out[1], "tokenize: 990/1000 documents (99.0%) | 99.0 documents/s | ETA 0:00:00");
  h.now = 112, p.update(1000);
  p.finish();
  ASSERT_EQ(h.out.size(), 3u);
  EXPECT_EQ(h.out[2], "tokenize: 1000/1000 documents in 0:00:12 | 83.3 documents/s");
  p.finish();
  h.now = 200, p.update(1000);
  EXPECT_EQ(h.out.size(), 3u);  // finished: nothing more
}

TEST(Progress, CustomIntervalAndUnknownTotal) {
  Harness h;
  ProgressOptions o = h.options(false);
  o.log_interval_s = 60;
  Progress p("encode", 0, "sequences", true, o);
  h.now = 130, p.update(3);
  EXPECT_TRUE(h.out.empty());
  h.now = 160, p.update(6);
  ASSERT_EQ(h.out.size(), 1u);
  EXPECT_EQ(h.out[0], "encode: 6 sequences | 0.10 sequences/s");
  h.now = 3800, p.finish();
  EXPECT_EQ(h.out.back(), "encode: 6 sequences in 1:01:40 | 0.00 sequences/s");
}

TEST(Progress, RedrawsInPlaceOnATerminal) {
  Harness h;
  Progress p("eval", 200, "batches", true, h.options(true));
  h.now = 100.125, p.update(10);
  EXPECT_TRUE(h.out.empty());  // at most one redraw per 0.2 s
  h.now = 100.25, p.update(25);
  h.now = 100.375, p.update(30);
  h.now = 100.5, p.update(200);
  p.finish();
  ASSERT_EQ(h.out.size(), 3u);
  EXPECT_EQ(h.out[0], "\reval: 25/200 batches (12.5%) | 100 batches/s | ETA 0:00:02");
  // Shorter than the line on the terminal: spaces cover the rest of it.
  EXPECT_EQ(h.out[1], "\reval: 200/200 batches (100.0%) | 400 batches/s" + std::string(12, ' '));
  EXPECT_EQ(h.out[2], "\reval: 200/200 batches in 0:00:01 | 400 batches/s\n");
}

TEST(Progress, AHalfDrawnTerminalLineIsEndedWhenDestroyed) {
  Harness h;
  {
    Progress p("eval", 10, "batches", true, h.options(true));
    h.now = 101, p.update(1);
  }
  ASSERT_EQ(h.out.size(), 2u);
  EXPECT_EQ(h.out[1], "\n");
  h.out.clear();
  { Progress quiet("eval", 10, "batches", true, h.options(true)); }
  EXPECT_TRUE(h.out.empty());  // nothing drawn, nothing to end
}

TEST(Progress, OnlyRankZeroPrints) {
  Harness h;
  for (bool tty : {false, true}) {
    Progress p("tokenize", 10, "documents", false, h.options(tty));
    h.now += 10, p.update(5);
    h.now += 10, p.finish();
  }
  EXPECT_TRUE(h.out.empty());
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(format_duration(0), "0:00:00");
  EXPECT_EQ(format_duration(59.6), "0:01:00");
  EXPECT_EQ(format_duration(3723.4), "1:02:03");
  EXPECT_EQ(format_duration(100 * 3600), "100:00:00");
  EXPECT_EQ(format_duration(-5), "0:00:00");
}

TEST(ConsoleIsTty, EnvironmentOverridesIsatty) {
  EXPECT_TRUE(console_is_tty(nullptr, true));
  EXPECT_FALSE(console_is_tty(nullptr, false));
  EXPECT_FALSE(console_is_tty("", false));
  EXPECT_TRUE(console_is_tty("1", false));
  EXPECT_FALSE(console_is_tty("0", true));
  try {
    console_is_tty("yes", true);
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "MPIBERT_CONSOLE_IS_TTY='yes' is not valid (expected 0 or 1)");
  }
}

}  // namespace
}  // namespace mpibert
