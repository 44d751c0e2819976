#pragma once
// Error kinds shared by every program. UsageError = the user's input is wrong (exit 2);
// anything else thrown is a runtime failure (exit 1). Messages carry their own context
// (file, key, rank, op) so main() prints them as one line.
#include <functional>
#include <stdexcept>
#include <string>

namespace mpibert {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Runs body; on an exception prints "program: error: message" to stderr and returns 2 for UsageError,
// 1 otherwise. If MPI is up with more than one rank, the job is aborted with that code so that no
// other rank is left waiting in a collective.
int run_main(const char* program, const std::function<int()>& body);

}  // namespace mpibert
