#pragma once
// Words and a POSIX shell, both ways, without running a shell: splitting --mpirun_args text into words,
// and quoting words for printing (--dry_run, error messages).
#include <string>
#include <vector>

namespace mpibert::launcher {

// Splits text into words: whitespace separates, '...' and "..." quote, backslash escapes. No variable
// or glob expansion. Throws UsageError on an open quote.
std::vector<std::string> split_words(const std::string& text);

// Quotes a word for a POSIX shell only when needed; split_words(shell_quote(w)) == {w}.
std::string shell_quote(const std::string& word);
std::string format_command(const std::vector<std::string>& argv);

}  // namespace mpibert::launcher
