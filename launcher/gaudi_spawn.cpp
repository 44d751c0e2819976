// gaudi_spawn: entry point (filled in by its owner).
#include "common/error.h"
int main(int argc, char** argv) {
  return mpibert::run_main("gaudi_spawn", [&]() -> int { throw mpibert::UsageError("gaudi_spawn is being built"); });
}
