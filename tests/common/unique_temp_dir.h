#pragma once
// Test helper: a fresh directory (mkdtemp) under the test temp dir, removed with its contents at the
// end of the scope, so tests running in parallel (ctest -j) never share files.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace mpibert::testing {

class UniqueTempDir {
 public:
  explicit UniqueTempDir(const std::string& prefix) {
    std::string pattern = (std::filesystem::path(::testing::TempDir()) / (prefix + ".XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~UniqueTempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  UniqueTempDir(const UniqueTempDir&) = delete;
  UniqueTempDir& operator=(const UniqueTempDir&) = delete;

  // The directory with a trailing '/', so that dir() + "name" is a path inside it.
  std::string dir() const { return path_ + "/"; }
  // Writes `text` (bytes as given) to dir()/name and returns that path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = dir() + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

 private:
  std::string path_;
};

}  // namespace mpibert::testing
