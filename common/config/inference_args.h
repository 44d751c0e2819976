#pragma once
// The command line of the one-process inference programs (fill_mask, classify), on the declare-once
// schema like every other program: --model DIR, --top_k, --json, --verbose (and classify's
// --function_to_apply), then the texts; with no text, one query per stdin line.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/config/schema.h"

namespace mpibert::config {

struct InferenceOptions {
  std::string model{};                // Hugging Face model directory
  int64_t top_k{};                    // predictions per query (classify: 0 = every label)
  bool json{};                        // one JSON value per query, as the pipeline returns it
  bool verbose{};                     // loading details on stderr
  std::string function_to_apply{};    // classify: default | softmax | sigmoid | none
  std::string text_pair_separator{};  // classify: splits a stdin line into text and text_pair ("" = no pairs)
};

enum class InferenceProgram { FillMask, Classify };

const Schema<InferenceOptions>& inference_schema(InferenceProgram program);

// Returns the exit code when done (help printed, usage error printed), else nullopt with `options`
// and the positional `texts` filled in.
std::optional<int> parse_inference_args(InferenceProgram program, int argc, char** argv, const std::string& usage,
                                        InferenceOptions& options, std::vector<std::string>& texts);

// Runs `answer` on each text, or, with none, on each non-blank line of stdin (a UsageError then names
// the line: "stdin line 3: ...").
void for_each_query(const std::vector<std::string>& texts, const std::function<void(const std::string&)>& answer);

}  // namespace mpibert::config
