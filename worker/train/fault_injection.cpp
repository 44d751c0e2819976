#include "worker/train/fault_injection.h"

#include <cstdlib>
#include <regex>

#include "common/error.h"
#include "worker/train/runtime_env.h"

namespace mpibert::train {

Fault parse_fault(const std::string& text) {
  static const std::regex form("(kill|hang|nan|mismatch)@([0-9]+)(?::([0-9]+))?");
  std::smatch m;
  if (!std::regex_match(text, m, form) || std::stoll(m[2]) < 1)
    throw UsageError("MPIBERT_FAULT='" + text +
                     "' is not valid (expected KIND@STEP[:RANK] with KIND kill, hang, nan "
                     "or mismatch, STEP >= 1)");
  Fault f;
  const std::string kind = m[1];
  f.kind = kind == "kill"   ? Fault::Kind::Kill
           : kind == "hang" ? Fault::Kind::Hang
           : kind == "nan"  ? Fault::Kind::Nan
                            : Fault::Kind::Mismatch;
  f.step = std::stoll(m[2]);
  f.rank = m[3].matched ? std::stoi(m[3]) : 0;
  return f;
}

Fault fault_from_environment() {
  const char* v = std::getenv("MPIBERT_FAULT");
  if (!v || !*v) return Fault{};
  const Fault fault = parse_fault(v);  // checked on every attempt
  // An elastic restart (gaudi_spawn --max_restarts) runs without it, so that it can finish.
  return elastic_attempt().restart_count > 0 ? Fault{} : fault;
}

}  // namespace mpibert::train
