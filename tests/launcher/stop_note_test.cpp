#include "launcher/stop_note.h"

#include <gtest/gtest.h>

using namespace mpibert::launcher;

TEST(StopNote, ReadsRunMlmsCheckpointAndStopLines) {
  StopNote note;
  EXPECT_TRUE(note.empty());
  note.observe("[2026-12-01 14:02:12.285] [rank 0] [info] step 6/100 loss 7.1");
  note.observe("[2026-12-01 14:02:12.285] [rank 0] [info] saved /runs/a b/checkpoint-6");
  note.observe("[2026-12-01 14:02:13.100] [rank 0] [info] saved /runs/a b/checkpoint-7");
  EXPECT_EQ(note.step, -1);
  EXPECT_EQ(note.checkpoint, "/runs/a b/checkpoint-7");
  // Colour escapes, as spdlog writes them to a terminal.
  note.observe(
      "[2026-12-01 14:02:13.2] [rank 0] [\x1b[33mwarning\x1b[m] stopped by signal 2 after step 7: "
      "checkpoint written; rerun the same command to resume");
  EXPECT_EQ(note.step, 7);
  EXPECT_EQ(describe_clean_stop(note),
            "stopped cleanly at step 7, checkpoint /runs/a b/checkpoint-7; rerun the same command to resume");
}

TEST(StopNote, SaysWhatItKnows) {
  EXPECT_EQ(describe_clean_stop(StopNote{}),
            "stopped cleanly (exit 75: the program saved its state); rerun the same command to resume");
  EXPECT_EQ(describe_clean_stop(StopNote{-1, "/o/checkpoint-3"}),
            "stopped cleanly, last checkpoint /o/checkpoint-3; rerun the same command to resume");
  StopNote other;
  other.observe("the user saved nothing here");  // not a log line of run_mlm's
  other.observe("I was stopped by signal handlers");
  EXPECT_TRUE(other.empty());
}
