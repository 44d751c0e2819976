#include "common/config/inference_args.h"

#include <cstdio>
#include <iostream>

#include "common/error.h"

namespace mpibert::config {
namespace {

using R = InferenceOptions;

// function-size: table
Schema<R> build(InferenceProgram program) {
  Schema<R> s;
  const bool classify = program == InferenceProgram::Classify;
  s.add<std::string>(
       "inference.model", [](R& o) -> std::string& { return o.model; }, "",
       "Hugging Face model directory (config.json, model.safetensors, vocab.txt)")
      .alias("model");
  s.add<int64_t>(
       "inference.top_k", [](R& o) -> int64_t& { return o.top_k; }, classify ? 1 : 5,
       classify ? "labels per text, best first (0 = every label)" : "predictions per [MASK]")
      .range(classify ? 0 : 1, 1e9)
      .alias("top_k");
  s.add<bool>(
       "inference.json", [](R& o) -> bool& { return o.json; }, false,
       "one JSON value per query, as Hugging Face's pipeline returns it")
      .alias("json");
  s.add<bool>(
       "inference.verbose", [](R& o) -> bool& { return o.verbose; }, false, "log loading details to stderr")
      .alias("verbose");
  if (!classify) return s;
  s.add<std::string>(
       "inference.function_to_apply", [](R& o) -> std::string& { return o.function_to_apply; }, "default",
       "scores from logits: default = sigmoid for multi-label and one-output models, "
       "softmax otherwise, none for regression")
      .one_of({"default", "softmax", "sigmoid", "none"})
      .alias("function_to_apply");
  s.add<std::string>(
       "inference.text_pair_separator", [](R& o) -> std::string& { return o.text_pair_separator; }, "",
       "split each query at this text into text and text_pair (e.g. \" ||| \"; \"\" = single texts)")
      .alias("text_pair_separator");
  return s;
}

}  // namespace

const Schema<InferenceOptions>& inference_schema(InferenceProgram program) {
  static const Schema<R> fill_mask = build(InferenceProgram::FillMask);
  static const Schema<R> classify = build(InferenceProgram::Classify);
  return program == InferenceProgram::Classify ? classify : fill_mask;
}

std::optional<int> parse_inference_args(InferenceProgram program, int argc, char** argv, const std::string& usage,
                                        InferenceOptions& options, std::vector<std::string>& texts) {
  const char* name = program == InferenceProgram::Classify ? "classify" : "fill_mask";
  const auto& schema = inference_schema(program);
  try {
    options = schema.defaults();
    ParsedArgs parsed = schema.parse_args(&options, argc, argv);
    if (parsed.help) {
      std::printf("%s", schema.help_text(usage).c_str());
      return kExitOk;
    }
    if (options.model.empty()) throw UsageError("--model DIR is required (a Hugging Face model directory)");
    texts = parsed.positionals;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return kExitUsage;
  }
  return std::nullopt;
}

void for_each_query(const std::vector<std::string>& texts, const std::function<void(const std::string&)>& answer) {
  if (!texts.empty()) {
    for (const auto& t : texts) answer(t);
    return;
  }
  std::string line;
  int64_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    try {
      answer(line);
    } catch (const UsageError& e) {
      throw UsageError("stdin line " + std::to_string(line_no) + ": " + e.what());
    }
  }
}

}  // namespace mpibert::config
