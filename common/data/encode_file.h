#pragma once
// `prepare_data encode`: text file -> one line of space-separated token ids per input line that is not
// blank (blank = empty or only whitespace; no [CLS]/[SEP]). A non-blank line whose characters all
// vanish in normalization (e.g. only control characters) gives an empty output line, so output line k
// always belongs to the k-th non-blank input line. Lines are split on '\n'.
#include <cstdint>
#include <string>

#include "common/data/progress_hook.h"
#include "common/data/wordpiece.h"

namespace mpibert::data {

struct EncodeStats {
  uint64_t lines = 0;   // output lines (non-blank input lines)
  uint64_t bytes = 0;   // input bytes
  uint64_t tokens = 0;  // ids written
  double seconds = 0;   // wall time of the whole call (read + encode + write)
};

// threads > 1 encodes blocks of lines in parallel; the output is identical for any thread count.
// threads <= 0 means all hardware threads. The output appears complete or not at all (written to a
// temporary file beside it, then renamed). Throws UsageError if the input cannot be opened,
// std::runtime_error on write failures. `progress` (optional) gets start(input bytes), then the input
// bytes whose ids are written, after each block of about kEncodeBlockBytes.
EncodeStats encode_file(const WordPieceTokenizer& tok, const std::string& input_path, const std::string& output_path,
                        int threads, const ProgressHook& progress = {});

// The unit of parallel work of encode_file (blocks end at a line end, so they may be a little longer).
inline constexpr size_t kEncodeBlockBytes = size_t{1} << 20;

// Encodes the lines of `text` (a block of whole lines) into `out` in the output format above.
// Returns {lines, bytes, tokens}; used by encode_file and the benchmark.
EncodeStats encode_lines(const WordPieceTokenizer& tok, std::string_view text, std::string& out);

}  // namespace mpibert::data
