// Creating and destroying backends while others live, under mpirun with 1-4 ranks: a backend's messages
// never reach a later communicator. Open MPI gives a freed communicator's context id to the next new one
// (the lowest id free on every rank) and hands it any message that was still on its way to the freed
// one, where the stray message takes the place of a real one. Rank 0 holding a 1-rank (CommGroup::Self)
// backend while the world creates its next backend shifts the ids so that the new ops communicator gets
// the old heartbeat communicator's id: a stray heartbeat there made a later collective hang.
#include <gtest/gtest.h>

#include <chrono>
#include <numeric>
#include <vector>

#include "common/comm/mpi_backend.h"
#include "tests/mpi_world.h"

namespace mpibert {
namespace {

using testing::test_world;
using testing::world_rank;
using testing::world_size;

// Long enough never to matter when the backend works; a lost message shows up as a timeout, not a hang.
constexpr std::chrono::minutes kLostMessage{1};

void finish(const WorkPtr& work) {
  work->wait(kLostMessage);
}

// A round of collectives with checked results, several messages from every rank to every other.
void expect_collectives_work(HcclLike& c, int salt) {
  for (int root = 0; root < c.size(); ++root) {
    int64_t value = c.rank() == root ? 1000 * salt + root : -1;
    finish(c.broadcast(&value, 1, DataType::I64, root));
    EXPECT_EQ(value, 1000 * salt + root) << "broadcast from " << root;
  }
  std::vector<float> sum(4099, static_cast<float>(c.rank() + salt));
  finish(c.allReduce(sum.data(), sum.data(), sum.size(), DataType::F32, ReduceOp::Sum));
  const float expected = static_cast<float>(c.size() * (c.size() - 1) / 2 + c.size() * salt);
  EXPECT_EQ(sum.front(), expected);
  EXPECT_EQ(sum.back(), expected);
  std::vector<int32_t> ranks(static_cast<size_t>(c.size()), -1);
  const int32_t mine = c.rank();
  finish(c.allGather(&mine, ranks.data(), 1, DataType::I32));
  std::vector<int32_t> in_order(ranks.size());
  std::iota(in_order.begin(), in_order.end(), 0);
  EXPECT_EQ(ranks, in_order);
  finish(c.barrier());
}

MpiBackendOptions heartbeats_every(std::chrono::milliseconds interval) {
  MpiBackendOptions o;
  o.heartbeat_interval = interval;
  return o;
}

// The pattern of the trainer tests: a world backend per job, and 1-rank jobs on rank 0 while the other
// ranks wait, the first while rank 0's world backend still sends heartbeats (every millisecond here);
// in odd rounds rank 0 keeps the second while the next world backend is made.
TEST(BackendLifecycle, WorldBackendsComeAndGoWhileRankZeroRunsOneRankJobs) {
  std::unique_ptr<HcclLike> kept_alone;
  for (int round = 0; round < 8; ++round) {
    auto world = make_mpi_backend(CommGroup::World, heartbeats_every(std::chrono::milliseconds(1)));
    kept_alone.reset();
    expect_collectives_work(*world, round);
    if (world_rank() == 0) expect_collectives_work(*make_mpi_backend(CommGroup::Self), round);
    world.reset();  // rank 0 last: the others destroyed theirs during its 1-rank job
    if (world_rank() == 0) {
      auto alone = make_mpi_backend(CommGroup::Self);  // gets an id the world backend had
      expect_collectives_work(*alone, round);
      if (round % 2 == 1) kept_alone = std::move(alone);
    }
    finish(test_world().barrier());
  }
  kept_alone.reset();
  expect_collectives_work(test_world(), 99);
}

// The worst case, made certain: rank 0 sends a heartbeat after every other rank has destroyed the
// backend (they waited for its goodbye only briefly), then the ids shift as above. The late heartbeat
// must not reach the next backend.
// Needs a peer that leaves first: *WithPeers suites run from 2 ranks up (tests/CMakeLists.txt).
TEST(BackendLifecycleWithPeers, AHeartbeatSentAfterThePeersLeftNeverReachesALaterBackend) {
  for (int held_alone = 1; held_alone <= 2; ++held_alone) {
    MpiBackendOptions o = heartbeats_every(std::chrono::hours(1));
    o.close_wait = std::chrono::milliseconds(100);
    auto world = make_mpi_backend(CommGroup::World, o);
    expect_collectives_work(*world, held_alone);
    if (world_rank() != 0) world.reset();  // before rank 0 says goodbye: gives up waiting for it
    finish(test_world().barrier());
    std::vector<std::unique_ptr<HcclLike>> alone;
    if (world_rank() == 0) {
      send_heartbeat_now_for_testing(*world);
      world.reset();
      for (int i = 0; i < held_alone; ++i) alone.push_back(make_mpi_backend(CommGroup::Self));
    }
    auto next = make_mpi_backend(CommGroup::World);
    expect_collectives_work(*next, 10 + held_alone);
    for (auto& a : alone) expect_collectives_work(*a, 20 + held_alone);
    next.reset();
    finish(test_world().barrier());
  }
}

}  // namespace
}  // namespace mpibert
