// --profile's timeline: a Chrome trace (JSON array of trace events) per rank, valid JSON once closed and
// loadable event by event before that; nothing recorded while closed.
#include "common/report/timeline.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "tests/common/unique_temp_dir.h"

namespace mpibert::report {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Timeline, WritesAChromeTraceWithNamedTracksAndCompleteEvents) {
  testing::UniqueTempDir tmp("timeline");
  const std::string path = tmp.dir() + "sub/timeline-rank-3.json";
  EXPECT_FALSE(timeline_active());
  { TimelineScope before(Track::Steps, "not recorded"); }
  timeline_open(path, 3, "rank 3 (host a)");
  ASSERT_TRUE(timeline_active());
  {
    TimelineScope step(Track::Steps, "step 1");
    TimelineScope phase(Track::Phases, "forward");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const auto t0 = TimelineClock::now();
  timeline_event(Track::Collectives, "allReduce #7 (8 x f32, sum)", t0, t0 + std::chrono::microseconds(250),
                 "{\"queued_us\": 12.5}");
  timeline_flush();
  // Before the close the file is an unterminated array, which the trace format accepts.
  EXPECT_EQ(read_all(path).rfind("[\n", 0), 0u);
  timeline_close();
  EXPECT_FALSE(timeline_active());
  { TimelineScope after(Track::Steps, "not recorded either"); }

  const auto events = nlohmann::json::parse(read_all(path));  // valid JSON once closed
  ASSERT_TRUE(events.is_array());
  std::map<std::string, nlohmann::json> by_name;
  int thread_names = 0;
  for (const auto& e : events) {
    EXPECT_EQ(e["pid"], 3);
    if (e["name"] == "thread_name") ++thread_names;
    if (e["ph"] == "X") by_name[e["name"]] = e;
  }
  EXPECT_EQ(thread_names, 4);
  ASSERT_EQ(by_name.size(), 3u);
  EXPECT_EQ(by_name["step 1"]["tid"], static_cast<int>(Track::Steps));
  EXPECT_GE(by_name["forward"]["dur"].get<double>(), 2000.0);
  EXPECT_LE(by_name["forward"]["dur"].get<double>(), by_name["step 1"]["dur"].get<double>());
  const auto& c = by_name["allReduce #7 (8 x f32, sum)"];
  EXPECT_EQ(c["tid"], static_cast<int>(Track::Collectives));
  EXPECT_NEAR(c["dur"].get<double>(), 250.0, 1e-6);
  EXPECT_EQ(c["args"]["queued_us"], 12.5);
  EXPECT_FALSE(by_name.count("not recorded"));
}

TEST(Timeline, AnUnwritablePathIsNamed) {
  testing::UniqueTempDir tmp("timeline");
  std::ofstream(tmp.dir() + "file") << "x";
  try {
    timeline_open(tmp.dir() + "file/timeline-rank-0.json", 0, "rank 0");
    FAIL() << "expected an error";
  } catch (const UsageError& e) {  // exit 2, one line
    EXPECT_NE(std::string(e.what()).find("train.profile_dir (--profile): cannot write the timeline " + tmp.dir() +
                                         "file/timeline-rank-0.json"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(timeline_active());
}

}  // namespace
}  // namespace mpibert::report
