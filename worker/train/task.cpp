#include "worker/train/task.h"

namespace mpibert::train {

const char* split_name(Split split) {
  switch (split) {
    case Split::Train:
      return "train";
    case Split::Validation:
      return "validation";
    case Split::Test:
      return "test";
  }
  return "?";
}

}  // namespace mpibert::train
