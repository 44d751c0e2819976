// prepare_data: entry point (filled in by its owner).
#include "common/error.h"
int main(int argc, char** argv) {
  return mpibert::run_main("prepare_data", [&]() -> int { throw mpibert::UsageError("prepare_data is being built"); });
}
