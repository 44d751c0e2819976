// run_mlm: entry point (filled in by its owner).
#include "common/error.h"
int main(int argc, char** argv) {
  return mpibert::run_main("run_mlm", [&]() -> int { throw mpibert::UsageError("run_mlm is being built"); });
}
