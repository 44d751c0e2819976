#pragma once
// JSON files with errors that name the file: reading reports where the text is malformed, writing is
// atomic (see atomic_file.h).
#include <nlohmann/json.hpp>
#include <string>

namespace mpibert::io {

// Reads and parses a JSON file. Throws mpibert::UsageError "PATH: cannot read: <errno text>" when it
// cannot be opened and "PATH: invalid JSON at line L, column C: <parser message>" when malformed
// (these files are inputs the user points at).
nlohmann::json read_json_file(const std::string& path);

// Serialises `value` (indent spaces, -1 = compact) plus a trailing newline and writes it with
// write_file_atomic. Throws std::runtime_error naming the file.
void write_json_file(const std::string& path, const nlohmann::json& value, int indent = 2);

}  // namespace mpibert::io
