#include "common/version.h"

namespace mpibert {
const char* version() {
  return MPIBERT_VERSION;
}
}  // namespace mpibert
