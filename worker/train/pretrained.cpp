#include "worker/train/pretrained.h"

#include "common/comm/agreement.h"

namespace mpibert::train {

Pretrained read_pretrained(RunContext& ctx, const std::string& dir) {
  Pretrained p;
  const std::string config_text = agree_on_root(
      ctx.comm,
      [&] {
        p.files = io::load_hf_model_dir(dir);
        return model::to_hf_config_json(p.files->config, model::BertHead::SequenceClassification).dump();
      },
      silence_limit(ctx.timeout_s));
  // The classification form of config.json carries the labels too; the architecture does not matter here.
  p.config = model::from_hf_config_json(nlohmann::json::parse(config_text), dir + "/config.json");
  return p;
}

}  // namespace mpibert::train
