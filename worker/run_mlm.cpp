// run_mlm: the per-rank BERT masked-LM pre-training worker. Start it with gaudi_spawn (or mpirun, or
// alone for one rank). See docs/training.md and `run_mlm --help`.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/comm/distributed_main.h"
#include "common/config/program_args.h"
#include "common/config/run_config.h"
#include "common/error.h"
#include "common/io/json_file.h"
#include "common/log/log.h"
#include "common/platform/blas_fit.h"
#include "worker/train/mlm_task.h"

namespace {

// Names of the Habana/Optimum launcher recipe that have no key of their own here.
const std::map<std::string, bool> kExtraFlags = {{"gaudi_config_id", true},
                                                 {"hf_hub_token", true},
                                                 {"use_habana", false},
                                                 {"use_lazy_mode", false},
                                                 {"use_hpu_graphs_for_inference", false},
                                                 {"dataloader_num_workers", true}};

// GaudiConfig JSON: use_torch_autocast maps onto bf16; the fused-kernel switches have no CPU meaning.
void apply_gaudi_config(const std::string& path, mpibert::RunConfig& cfg) {
  auto j = mpibert::io::read_json_file(path);
  if (j.value("use_torch_autocast", false) && cfg.train.precision == "auto") cfg.train.precision = "bf16";
  spdlog::info(
      "gaudi_config_id {}: use_torch_autocast={} -> precision {}; use_fused_adam / use_fused_clip_norm need "
      "no switch here (the optimizer and clipping are always fused loops)",
      path, j.value("use_torch_autocast", false), cfg.train.precision);
}

}  // namespace

int main(int argc, char** argv) {
  mpibert::platform::fit_blas_to_cpu(argv);  // may re-execute this program with a better OpenBLAS core
  mpibert::config::ParsedArgs parsed;
  mpibert::RunConfig cfg;
  if (auto done = mpibert::config::parse_program_args(
          mpibert::run_schema(), cfg, argc, argv, "run_mlm",
          "usage: run_mlm [--config FILE] [--section.key VALUE | --hf_alias VALUE ...]\n"
          "BERT masked-LM pre-training worker (one process per rank; start it with gaudi_spawn).",
          kExtraFlags, parsed))
    return *done;
  if (parsed.extras.count("hf_hub_token") && !mpibert::config::is_quiet_rank())
    std::fprintf(stderr, "run_mlm: note: --hf_hub_token is accepted but unused: nothing is uploaded\n");
  // The Habana recipe names a Hub id (philschmid/bert-base-uncased-2022-habana): nothing to download here.
  if (auto it = parsed.extras.find("gaudi_config_id");
      it != parsed.extras.end() && !std::filesystem::is_regular_file(it->second)) {
    if (!mpibert::config::is_quiet_rank())
      std::fprintf(stderr,
                   "run_mlm: note: --gaudi_config_id %s is no local file (a Hugging Face Hub id?): a Gaudi config "
                   "only tunes Habana fused ops and is ignored here\n",
                   it->second.c_str());
    parsed.extras.erase(it);
  }

  return mpibert::run_main("run_mlm", [&]() -> int {
    if (auto it = parsed.extras.find("gaudi_config_id"); it != parsed.extras.end()) apply_gaudi_config(it->second, cfg);
    if (!cfg.train.export_hf.empty()) {
      mpibert::init_logging({});
      mpibert::train::export_checkpoint_to_hf(cfg);
      std::printf("exported %s to %s (Hugging Face format)\n", cfg.train.export_hf.c_str(),
                  cfg.train.output_dir.c_str());
      return 0;
    }
    return mpibert::run_distributed_main("run_mlm", &argc, &argv, [&](mpibert::HcclLike& comm, const auto&) {
      return mpibert::train::run_mlm(cfg, comm);
    });
  });
}
