// agree() and the string/JSON/blob exchanges of common/comm/agreement.h under mpirun with 1-4 ranks:
// an error on any rank becomes the same error, of the same kind, on every rank; strings of any size
// reach every rank.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/comm/agreement.h"
#include "common/comm/mpi_backend.h"

namespace mpibert {
namespace {

HcclLike& comm() {
  static std::unique_ptr<HcclLike> c = make_mpi_backend();
  return *c;
}

// Splits every op into MPI calls of at most 1000 elements, so long strings go in several calls/rounds.
HcclLike& chunking_comm() {
  MpiBackendOptions o;
  o.max_elements_per_call = 1000;
  static std::unique_ptr<HcclLike> c = make_mpi_backend(CommGroup::World, o);
  return *c;
}

struct Caught {
  std::string message;
  int exit_code = -1;
  int origin = -1;
  bool usage = false;  // caught as a UsageError
};

Caught run_agree(RunOn where, const std::function<void()>& fn) {
  Caught c;
  try {
    agree(comm(), where, fn);
  } catch (const AgreedUsageError& e) {
    c = {e.what(), e.exitCode(), e.originRank(), true};
  } catch (const AgreedFailure& e) {
    c = {e.what(), e.exitCode(), e.originRank(), false};
  }
  return c;
}

TEST(Agree, NoErrorAnywhereReturnsNormallyAndRootOnlyRunsOnRankZero) {
  int runs = 0;
  EXPECT_EQ(run_agree(RunOn::EveryRank, [&] { ++runs; }).exit_code, -1);
  EXPECT_EQ(run_agree(RunOn::Root, [&] { ++runs; }).exit_code, -1);
  EXPECT_EQ(runs, comm().rank() == 0 ? 2 : 1);
}

TEST(Agree, UsageErrorOnRankKBecomesTheSameUsageErrorOnEveryRank) {
  for (int k = 0; k < comm().size(); ++k) {
    // Rank k fails with a usage error, the ranks after it with a runtime error: the lowest rank wins.
    const Caught c = run_agree(RunOn::EveryRank, [&] {
      if (comm().rank() == k) throw UsageError("bad key on " + std::to_string(k));
      if (comm().rank() > k) throw std::runtime_error("later failure");
    });
    EXPECT_TRUE(c.usage) << "k=" << k;
    EXPECT_EQ(c.exit_code, kExitUsage);
    EXPECT_EQ(c.origin, k);
    EXPECT_EQ(c.message, "bad key on " + std::to_string(k));
  }
}

TEST(Agree, RuntimeErrorOnRankKBecomesTheSameFailureOnEveryRank) {
  for (int k = 0; k < comm().size(); ++k) {
    const Caught c = run_agree(RunOn::EveryRank, [&] {
      if (comm().rank() == k) throw std::runtime_error("disk full on " + std::to_string(k));
      if (comm().rank() > k) throw UsageError("later usage error");
    });
    EXPECT_FALSE(c.usage) << "k=" << k;
    EXPECT_EQ(c.exit_code, kExitFailure);
    EXPECT_EQ(c.origin, k);
    const std::string prefix = comm().size() > 1 ? "rank " + std::to_string(k) + ": " : "";
    EXPECT_EQ(c.message, prefix + "disk full on " + std::to_string(k));
  }
}

TEST(Agree, AgreedErrorsAreStillUsageErrorsOrRuntimeErrorsForCallersThatDoNotKnowThem) {
  EXPECT_THROW(agree(comm(), RunOn::Root, [] { throw UsageError("x"); }), UsageError);
  try {
    agree(comm(), RunOn::Root, [] { throw std::runtime_error("y"); });
    ADD_FAILURE() << "no error";
  } catch (const UsageError&) {
    ADD_FAILURE() << "a runtime error became a usage error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("y"), std::string::npos);
  }
}

TEST(Agree, AnAgreedErrorRaisedInsideKeepsItsMessage) {
  const Caught c = run_agree(RunOn::EveryRank, [] { throw AgreedFailure("rank 3: already agreed", 3); });
  EXPECT_EQ(c.message, "rank 3: already agreed");
  EXPECT_EQ(c.exit_code, kExitFailure);
}

TEST(AgreeOnRoot, ReturnsRankZerosDecisionOrItsErrorEverywhere) {
  EXPECT_EQ(agree_on_root(comm(), [] { return std::string("resume from checkpoint-7"); }), "resume from checkpoint-7");
  const nlohmann::json j = agree_on_root_json(comm(), [] { return nlohmann::json{{"hidden_size", 64}}; });
  EXPECT_EQ(j.at("hidden_size"), 64);
  try {
    agree_on_root(comm(), []() -> std::string { throw UsageError("output_dir is not empty"); });
    ADD_FAILURE() << "no error";
  } catch (const AgreedUsageError& e) {
    EXPECT_STREQ(e.what(), "output_dir is not empty");
    EXPECT_EQ(e.originRank(), 0);
  }
}

std::string text_of(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 31 + size_t(seed) * 7) % 256);
  return s;
}

TEST(BroadcastString, EverySizeFromEveryRoot) {
  for (HcclLike* c : {&comm(), &chunking_comm()})
    for (size_t n : {size_t(0), size_t(1), size_t(2500), size_t(3) << 20}) {
      if (c == &chunking_comm() && n > 2500) continue;  // 3 MiB in 1000-byte calls: slow, nothing new
      for (int root = 0; root < c->size(); ++root) {
        const std::string mine = c->rank() == root ? text_of(n, root) : text_of(c->rank() + 5, 99);
        EXPECT_EQ(broadcast_string(*c, mine, root), text_of(n, root)) << "n=" << n << " root=" << root;
      }
    }
}

TEST(BroadcastString, JsonAndPlainValues) {
  const nlohmann::json sent = {{"step", 12}, {"name", "résumé"}, {"list", {1, 2, 3}}};
  EXPECT_EQ(broadcast_json(comm(), comm().rank() == 0 ? sent : nlohmann::json()), sent);
  struct Pair {
    int32_t a;
    double b;
  };
  const Pair p = broadcast_value(comm(), comm().rank() == 0 ? Pair{7, 0.5} : Pair{0, 0});
  EXPECT_EQ(p.a, 7);
  EXPECT_EQ(p.b, 0.5);
}

TEST(GatherStrings, EveryRanksBlobInRankOrder) {
  for (HcclLike* c : {&comm(), &chunking_comm()}) {
    const int size = c->size();
    auto blob_of = [](int r) { return text_of(r % 2 ? 0 : 1500 * size_t(r + 1), r); };  // odd ranks: empty
    const std::vector<std::string> all = all_gather_strings(*c, blob_of(c->rank()));
    ASSERT_EQ(all.size(), size_t(size));
    for (int r = 0; r < size; ++r) EXPECT_EQ(all[size_t(r)], blob_of(r)) << "rank " << r;
    for (int root = 0; root < size; ++root) {
      const std::vector<std::string> at_root = gather_strings(*c, blob_of(c->rank()), root);
      if (c->rank() != root) {
        EXPECT_TRUE(at_root.empty());
        continue;
      }
      ASSERT_EQ(at_root.size(), size_t(size));
      for (int r = 0; r < size; ++r) EXPECT_EQ(at_root[size_t(r)], blob_of(r)) << "rank " << r;
    }
  }
}

}  // namespace
}  // namespace mpibert
