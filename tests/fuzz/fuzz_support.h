#pragma once
// Shared pieces of the libFuzzer targets: the verdict rules, a private scratch directory for readers
// that take a path, and splitting an input into lines.
//
// Verdict: a UsageError is the expected answer to bad input. Anything else that escapes (another
// exception type, a crash, a sanitizer report, a hang, a leak) is a finding: an uncaught exception
// reaches std::terminate, which libFuzzer reports as a crash with the reproducer.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/error.h"

namespace mpibert::fuzz {

// Runs body; a UsageError (the documented answer to bad input) ends it quietly.
template <class Body>
bool accepts_or_usage_error(Body&& body) {
  try {
    body();
    return true;
  } catch (const UsageError&) {
    return false;
  }
}

// A property of the code under test does not hold: print why and abort, so libFuzzer keeps the input.
[[noreturn]] inline void property_failed(const std::string& what) {
  std::fprintf(stderr, "fuzz property failed: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// A directory of this process (mkdtemp under TMPDIR), removed when the process exits normally.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/mpibert-fuzz.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) property_failed("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes exactly these bytes to path()/name (replacing it) and returns that path.
  std::string write(const std::string& name, const uint8_t* data, size_t size) const {
    const std::string file = path_ + "/" + name;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) property_failed("cannot write the scratch file " + file);
    return file;
  }

 private:
  std::string path_;
};

// The scratch directory of this fuzz process (one per process, so parallel fuzzers never share files).
inline const ScratchDir& scratch() {
  static const ScratchDir dir;
  return dir;
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// The input's lines (split at '\n'; a final line without '\n' counts, a trailing '\n' adds no line).
inline std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    lines.emplace_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

}  // namespace mpibert::fuzz
