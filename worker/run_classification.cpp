// run_classification: the per-rank sequence-classification fine-tuning worker (Hugging Face's
// run_classification / run_glue). Start it with gaudi_spawn (or mpirun, or alone for one rank).
// See docs/classification.md and `run_classification --help`.
#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

#include "common/comm/distributed_main.h"
#include "common/config/classification_config.h"
#include "common/config/program_args.h"
#include "common/error.h"
#include "common/platform/blas_fit.h"
#include "worker/train/classification_task.h"

namespace {

// Hugging Face flags that have no key of their own here.
const std::map<std::string, bool> kExtraFlags = {
    {"fp16", false}, {"hf_hub_token", true}, {"dataloader_num_workers", true}};

// Hugging Face's `--bf16 [True|False]` is train.precision here: rewritten before parsing.
std::vector<std::string> with_bf16_as_precision(int argc, char** argv) {
  std::vector<std::string> out(argv, argv + argc);
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i] != "--bf16" && out[i].rfind("--bf16=", 0) != 0) continue;
    std::string value = out[i].size() > 6 ? out[i].substr(7) : "true";
    bool value_follows = out[i].size() == 6 && i + 1 < out.size() && out[i + 1].rfind("--", 0) != 0;
    if (value_follows) {
      value = out[i + 1];
      out.erase(out.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    }
    for (auto& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool on = value == "true" || value == "1" || value == "yes";
    out[i] = "--train.precision=" + std::string(on ? "bf16" : "fp32");
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  mpibert::platform::fit_blas_to_cpu(argv);  // may re-execute this program with a better OpenBLAS core
  std::vector<std::string> args = with_bf16_as_precision(argc, argv);
  std::vector<char*> arg_ptrs;
  for (auto& a : args) arg_ptrs.push_back(a.data());
  mpibert::config::ParsedArgs parsed;
  mpibert::ClassificationConfig cfg;
  if (auto done = mpibert::config::parse_program_args(
          mpibert::classification_schema(), cfg, static_cast<int>(arg_ptrs.size()), arg_ptrs.data(),
          "run_classification",
          "usage: run_classification [--config FILE] [--section.key VALUE | --hf_alias VALUE ...]\n"
          "BERT sequence-classification fine-tuning worker (one process per rank; start it with gaudi_spawn).",
          kExtraFlags, parsed))
    return *done;
  const bool rank0 = !mpibert::config::is_quiet_rank();
  if (parsed.extras.count("fp16") && rank0)
    std::fprintf(stderr, "run_classification: note: --fp16 is not supported on CPUs; using %s\n",
                 cfg.train.precision.c_str());
  if (parsed.extras.count("hf_hub_token") && rank0)
    std::fprintf(stderr, "run_classification: note: --hf_hub_token is accepted but unused: nothing is uploaded\n");
  return mpibert::run_distributed_main("run_classification", &argc, &argv, [&](mpibert::HcclLike& comm, const auto&) {
    return mpibert::train::run_classification(cfg, comm);
  });
}
