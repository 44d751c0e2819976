#pragma once
// Test helper: the message of the UsageError that f() throws, or "(no error)".
#include <string>

#include "common/error.h"

namespace mpibert::testing {

template <class F>
std::string usage_error_of(F f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace mpibert::testing
