#pragma once
// Reading a text corpus as documents. `input` is a comma-separated list of files and directories;
// a directory stands for every *.txt, *.jsonl and *.json file below it (recursively, sorted by path).
// *.txt (and any file given by name with another extension) is plain text. *.jsonl holds one JSON
// object per line with the text in `text_field`; *.json is the same, or one JSON array of such
// objects (or of strings). Documents: separator "blank_line" = a run of non-blank lines (a JSON
// record or the end of a file also ends one); "line" = every non-blank line is a document.
// Blank = empty or only whitespace. The order is deterministic.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/data/progress_hook.h"

namespace mpibert::data {

struct CorpusOptions {
  std::string input;
  std::string text_field = "text";
  std::string document_separator = "blank_line";  // blank_line | line
};

// The files `input` names, in reading order. Throws UsageError naming a missing path, a directory
// without corpus files, an empty input or an unknown separator.
std::vector<std::string> list_corpus_files(const CorpusOptions& options);

// Calls fn(document_lines) for every document in order; document_lines are the document's non-blank
// lines (a trailing '\r' removed). Throws UsageError "FILE:LINE: ..." for a malformed JSON line or a
// record without a string `text_field`, std::runtime_error for read failures.
// `bytes_read` (optional) gets start(sum of the files' sizes), then the bytes read so far: every
// kCorpusProgressBytes or so and at the end of each file (then exactly the sizes of the files read).
void for_each_document(const CorpusOptions& options, const std::function<void(const std::vector<std::string>&)>& fn,
                       const ProgressHook& bytes_read = {});

// How many bytes of a file are read between two reports of for_each_document's bytes_read.
inline constexpr int64_t kCorpusProgressBytes = int64_t{1} << 20;

}  // namespace mpibert::data
