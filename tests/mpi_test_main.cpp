// main() for multi-rank GoogleTest executables: MPI up for the whole run, every rank runs every test.
// Rank 0 prints GoogleTest's usual listing; the other ranks print only their failures, each line
// prefixed with the rank, so that a failure on any rank is seen. The exit code is non-zero if any rank
// failed.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "common/comm/mpi_backend.h"

namespace {

class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : prefix_("[rank " + std::to_string(rank) + "] ") {}

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::ostringstream out;
    out << prefix_ << (result.file_name() ? result.file_name() : "unknown file") << ":" << result.line_number()
        << ": Failure\n";
    std::istringstream lines(result.message());
    for (std::string line; std::getline(lines, line);) out << prefix_ << line << "\n";
    print(out.str());
  }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Failed()) print(prefix_ + "[  FAILED  ] " + info.test_suite_name() + "." + info.name() + "\n");
  }

 private:
  static void print(const std::string& text) {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  }
  std::string prefix_;
};

}  // namespace

int main(int argc, char** argv) {
  mpibert::MpiEnvironment env(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rank = env.worldRank();
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(rank));
  }
  int32_t local = RUN_ALL_TESTS(), any = 0;
  {
    auto comm = mpibert::make_mpi_backend();
    comm->allReduce(&local, &any, 1, mpibert::DataType::I32, mpibert::ReduceOp::Max)->wait();
  }
  return any;  // env stops the tests' backends that are still alive, then finalizes MPI
}
