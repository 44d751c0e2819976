#pragma once
// Crash-safe file replacement: readers see either the old file or the complete new one, never a
// partial write (manifests, configs, checkpoint metadata).
#include <string>
#include <string_view>

namespace mpibert::io {

// Writes `bytes` to a temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs the
// directory. The parent directory must exist. Throws std::runtime_error naming the file and the
// system error; the temporary file is removed on failure.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Temporary name used beside `path` (unique per process and call), e.g. for writers that need a
// path rather than bytes (HDF5) and then rename. The caller renames or removes it.
std::string temporary_path_for(const std::string& path);

// rename(2) then fsync of the directory, so the new name survives a crash. Throws on failure.
void rename_durably(const std::string& from, const std::string& to);

}  // namespace mpibert::io
