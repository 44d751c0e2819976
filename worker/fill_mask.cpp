// fill_mask: entry point (filled in by its owner).
#include "common/error.h"
int main(int argc, char** argv) {
  return mpibert::run_main("fill_mask", [&]() -> int { throw mpibert::UsageError("fill_mask is being built"); });
}
