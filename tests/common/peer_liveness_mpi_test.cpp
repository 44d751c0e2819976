// Liveness, not phase length, under mpirun with 1-4 ranks: an alive wait (Work::waitAlive) outlasts a
// long phase in which one rank works alone, and fails naming the rank when a peer falls silent (its
// progress thread paused through the test hook, as if the process were stopped). Ordered by events:
// the silent rank resumes only when every other rank has seen the failure.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/comm/agreement.h"
#include "common/comm/mpi_backend.h"

namespace mpibert {
namespace {

using std::chrono::milliseconds;

// Heartbeats every 50 ms: a live peer's measured silence stays far below the 1 s limits used here.
HcclLike& comm() {
  MpiBackendOptions o;
  o.heartbeat_interval = milliseconds(50);
  static std::unique_ptr<HcclLike> c = make_mpi_backend(CommGroup::World, o);
  return *c;
}

// Signals between ranks while comm() is paused or busy.
HcclLike& signal_comm() {
  static std::unique_ptr<HcclLike> c = make_mpi_backend();
  return *c;
}

constexpr milliseconds kSilence{1000};

// AliveWaitWithPeers: a peer to wait for, or one that falls silent; run from 2 ranks up (tests/CMakeLists.txt).
TEST(AliveWaitWithPeers, OutlastsAOneRankPhaseLongerThanTheSilenceLimit) {
  comm().barrier()->wait();
  int64_t value = comm().rank() == 0 ? 0 : -1;
  if (comm().rank() == 0) {
    std::this_thread::sleep_for(std::chrono::seconds(3));  // rank 0 works alone (a tokenizer, a checkpoint)
    value = 42;
  }
  auto work = comm().broadcast(&value, 1, DataType::I64, 0);
  EXPECT_NO_THROW(work->waitAlive(kSilence));
  EXPECT_EQ(value, 42);
}

TEST(AliveWaitWithPeers, AgreementOutlastsAOneRankPhaseToo) {
  const std::string decided = agree_on_root(
      comm(),
      [] {
        std::this_thread::sleep_for(std::chrono::seconds(2));
        return std::string("vocabulary trained");
      },
      kSilence);
  EXPECT_EQ(decided, "vocabulary trained");
}

// Rank `silent` stops heartbeating and progressing; every other rank's alive wait must fail naming it.
void expect_silent_rank_is_named(int silent) {
  comm().barrier()->wait();
  if (comm().rank() == silent) {
    pause_progress_for_testing(comm(), true);
    auto work = comm().barrier();     // queued behind the paused thread
    signal_comm().barrier()->wait();  // every other rank has seen its alive wait fail
    pause_progress_for_testing(comm(), false);
    work->wait();
    return;
  }
  const uint64_t fast_before = fast_path_starts_for_testing(comm());
  auto work = comm().barrier();
  // Idle, the backend started it on this thread (the fast path); an alive wait leaves the polling to the
  // progress thread, and fails as for a queued op.
  EXPECT_EQ(fast_path_starts_for_testing(comm()), fast_before + 1);
  try {
    work->waitAlive(kSilence);
    ADD_FAILURE() << "rank " << comm().rank() << ": the alive wait finished while rank " << silent << " was silent";
  } catch (const CollectiveTimeout& e) {
    const std::string text = e.what();
    EXPECT_NE(text.find("rank " + std::to_string(silent) + " has not been heard from for"), std::string::npos) << text;
    EXPECT_NE(text.find("barrier #"), std::string::npos) << text;
  }
  EXPECT_FALSE(work->isCompleted());
  signal_comm().barrier()->wait();
  work->wait();  // the silent rank is back: the op completes
}

TEST(AliveWaitWithPeers, FailsNamingTheLastRankWhenItFallsSilent) {
  expect_silent_rank_is_named(comm().size() - 1);  // with 3+ ranks, the others learn it through rank 0
}

TEST(AliveWaitWithPeers, FailsNamingRankZeroWhenItFallsSilent) {
  expect_silent_rank_is_named(0);
}

TEST(AliveWait, AfterASilentPeerReturnsTheBackendWorksOn) {
  std::vector<int32_t> v(10, 1);
  comm().allReduce(v.data(), v.data(), v.size(), DataType::I32, ReduceOp::Sum)->waitAlive(kSilence);
  EXPECT_EQ(v[9], comm().size());
}

}  // namespace
}  // namespace mpibert
