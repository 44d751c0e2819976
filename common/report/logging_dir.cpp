#include "common/report/logging_dir.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>

namespace mpibert::report {

std::string logging_dir_name(const std::tm& t, const std::string& hostname) {
  static const std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const char* month = t.tm_mon >= 0 && t.tm_mon < 12 ? kMonths[t.tm_mon] : "???";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%02d_%02d-%02d-%02d", month, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
  return std::string(buf) + "_" + hostname;
}

std::string default_logging_dir(const std::string& output_dir) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  return (std::filesystem::path(output_dir) / "runs" / logging_dir_name(local, host_name())).string();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace mpibert::report
