// Learning-rate schedules against Hugging Face's lr_lambda formulas at key steps.
#include "worker/optim/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"

namespace mpibert::optim {
namespace {

LrSchedule make(const std::string& type, int64_t warmup = 10, int64_t total = 100, double lr = 1.0) {
  LrScheduleOptions o;
  o.type = type;
  o.base_lr = lr;
  o.warmup_steps = warmup;
  o.total_steps = total;
  return LrSchedule(o);
}

TEST(LrSchedule, LinearWarmsUpFromZeroThenDecaysToZero) {
  auto s = make("linear");
  EXPECT_DOUBLE_EQ(s.factor_at(0), 0.0);  // HF: the first update uses lr 0 when warming up
  EXPECT_DOUBLE_EQ(s.factor_at(1), 0.1);
  EXPECT_DOUBLE_EQ(s.factor_at(5), 0.5);
  EXPECT_DOUBLE_EQ(s.factor_at(10), 1.0);
  EXPECT_DOUBLE_EQ(s.factor_at(55), 0.5);
  EXPECT_DOUBLE_EQ(s.factor_at(99), 1.0 / 90);
  EXPECT_DOUBLE_EQ(s.factor_at(100), 0.0);
  EXPECT_DOUBLE_EQ(s.factor_at(150), 0.0);
  EXPECT_DOUBLE_EQ(make("linear", 0, 100, 5e-5).lr_at(0), 5e-5);
  EXPECT_DOUBLE_EQ(make("linear", 0, 100, 5e-5).lr_at(50), 2.5e-5);
}

TEST(LrSchedule, CosineFollowsHalfAWaveAfterWarmup) {
  auto s = make("cosine");
  EXPECT_DOUBLE_EQ(s.factor_at(5), 0.5);
  EXPECT_DOUBLE_EQ(s.factor_at(10), 1.0);
  EXPECT_NEAR(s.factor_at(55), 0.5, 1e-15);
  EXPECT_NEAR(s.factor_at(42), 0.5 * (1 + std::cos(M_PI * 32.0 / 90)), 1e-15);
  EXPECT_NEAR(s.factor_at(100), 0.0, 1e-15);
  LrScheduleOptions o;
  o.type = "cosine";
  o.warmup_steps = 0;
  o.total_steps = 100;
  o.num_cycles = 1.0;  // a full wave: back to 1 at the end
  EXPECT_NEAR(LrSchedule(o).factor_at(100), 1.0, 1e-12);
  EXPECT_NEAR(LrSchedule(o).factor_at(50), 0.0, 1e-12);
}

TEST(LrSchedule, PolynomialDecaysToLrEndWithPower) {
  LrScheduleOptions o;
  o.type = "polynomial";
  o.base_lr = 1e-3;
  o.lr_end = 1e-5;
  o.power = 2.0;
  o.warmup_steps = 10;
  o.total_steps = 100;
  LrSchedule s(o);
  EXPECT_DOUBLE_EQ(s.lr_at(5), 0.5e-3);
  EXPECT_DOUBLE_EQ(s.lr_at(10), 1e-3);
  // HF: pct_remaining = 1 - (55 - 10) / 90 = 0.5; lr = (1e-3 - 1e-5) * 0.5^2 + 1e-5.
  EXPECT_NEAR(s.lr_at(55), (1e-3 - 1e-5) * 0.25 + 1e-5, 1e-18);
  EXPECT_NEAR(s.lr_at(100), 1e-5, 1e-18);
  EXPECT_NEAR(s.lr_at(250), 1e-5, 1e-18);
  o.lr_end = 2e-3;
  EXPECT_THROW(LrSchedule{o}, UsageError);
}

TEST(LrSchedule, ConstantIgnoresWarmupAndConstantWithWarmupRamps) {
  auto c = make("constant");
  EXPECT_DOUBLE_EQ(c.factor_at(0), 1.0);
  EXPECT_DOUBLE_EQ(c.factor_at(1000), 1.0);
  auto w = make("constant_with_warmup");
  EXPECT_DOUBLE_EQ(w.factor_at(0), 0.0);
  EXPECT_DOUBLE_EQ(w.factor_at(4), 0.4);
  EXPECT_DOUBLE_EQ(w.factor_at(10), 1.0);
  EXPECT_DOUBLE_EQ(w.factor_at(1000), 1.0);
  LrScheduleOptions o;
  o.type = "constant";
  o.total_steps = 0;  // constant schedules do not need the step count
  EXPECT_NO_THROW(LrSchedule{o});
}

TEST(LrSchedule, WarmupStepsWinOverRatioWhichRoundsUp) {
  EXPECT_EQ(resolve_warmup_steps(7, 0.5, 100), 7);
  EXPECT_EQ(resolve_warmup_steps(0, 0.1, 95), 10);  // ceil(9.5)
  EXPECT_EQ(resolve_warmup_steps(0, 0.0, 95), 0);
  EXPECT_THROW(resolve_warmup_steps(0, 1.5, 95), UsageError);
}

TEST(LrSchedule, RejectsUnknownTypeNamingTheValidOnes) {
  try {
    make("linaer");
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("constant_with_warmup"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make("linear", 10, 0), UsageError);
  EXPECT_THROW(make("linear", -1, 100), UsageError);
}

}  // namespace
}  // namespace mpibert::optim
