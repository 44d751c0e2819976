#include "worker/train/run_files.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace mpibert {

void MetricsLog::open(const std::string& path) {
  if (fp_) std::fclose(fp_);
  path_ = path;
  fp_ = std::fopen(path.c_str(), "a");
  if (!fp_) throw std::runtime_error(path + ": cannot open for appending: " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (fp_) std::fclose(fp_);
}

void MetricsLog::append(const nlohmann::json& row) {
  if (!fp_) return;
  std::string line = row.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), fp_) != line.size() || std::fflush(fp_) != 0)
    throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
}

double round_sig(double value, int digits) {
  if (value == 0 || !std::isfinite(value)) return value;
  double scale = std::pow(10.0, digits - 1 - static_cast<int>(std::floor(std::log10(std::fabs(value)))));
  return std::round(value * scale) / scale;
}

}  // namespace mpibert
