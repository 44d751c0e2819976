#include "common/io/json_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/io/atomic_file.h"

namespace mpibert::io {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(path + ": cannot read: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw UsageError(path + ": read error: " + std::strerror(errno));
  const std::string text = ss.str();
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based and points just past the offending character; turn it into line:column.
    size_t end = std::min<size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    size_t line = 1, column = 1;
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string message = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 2: " prefix.
    if (auto colon = message.find(": "); colon != std::string::npos) message = message.substr(colon + 2);
    throw UsageError(path + ": invalid JSON at line " + std::to_string(line) + ", column " + std::to_string(column) +
                     ": " + message);
  } catch (const nlohmann::json::exception& e) {
    // Well-formed text the parser still refuses: a number too large for a double (out_of_range.406).
    std::string message = e.what();
    if (auto bracket = message.find("] "); bracket != std::string::npos) message = message.substr(bracket + 2);
    throw UsageError(path + ": invalid JSON: " + message);
  }
}

void write_json_file(const std::string& path, const nlohmann::json& value, int indent) {
  std::string text = value.dump(indent);
  text.push_back('\n');
  write_file_atomic(path, text);
}

}  // namespace mpibert::io
