#include "worker/train/pretrained.h"

#include "worker/train/rank_zero.h"

namespace mpibert::train {

Pretrained read_pretrained(RunContext& ctx, const std::string& dir) {
  Pretrained p;
  const std::string config_text = rank0_decides(ctx.comm, ctx.timeout_s, [&] {
    p.files = io::load_hf_model_dir(dir);
    return model::to_hf_config_json(p.files->config, model::BertHead::SequenceClassification).dump();
  });
  // The classification form of config.json carries the labels too; the architecture does not matter here.
  p.config = model::from_hf_config_json(nlohmann::json::parse(config_text), dir + "/config.json");
  return p;
}

}  // namespace mpibert::train
