#pragma once
// Test helper: a data::ProgressHook that records what it is told, and the check every hook's calls
// must pass (start(total) once, then counts that only grow and end at the work done).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/data/progress_hook.h"

namespace mpibert::testing {

class ProgressRecorder {
 public:
  data::ProgressHook hook() {
    return {[this](int64_t total) { starts_.push_back(total); }, [this](int64_t done) { reports_.push_back(done); }};
  }
  const std::vector<int64_t>& starts() const { return starts_; }
  const std::vector<int64_t>& reports() const { return reports_; }

 private:
  std::vector<int64_t> starts_, reports_;
};

// One start(total), then strictly increasing reports, the last of them `done`.
inline void expect_progress(const ProgressRecorder& r, int64_t total, int64_t done, const std::string& what) {
  ASSERT_EQ(r.starts().size(), 1u) << what << ": start() calls";
  EXPECT_EQ(r.starts()[0], total) << what << ": total";
  ASSERT_FALSE(r.reports().empty()) << what << ": no report";
  for (size_t i = 1; i < r.reports().size(); ++i)
    EXPECT_LT(r.reports()[i - 1], r.reports()[i]) << what << ": report " << i << " does not grow";
  EXPECT_GE(r.reports().front(), 0) << what;
  EXPECT_EQ(r.reports().back(), done) << what << ": last report";
}

}  // namespace mpibert::testing
