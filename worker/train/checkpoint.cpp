#include "worker/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

#include "common/error.h"
#include "common/io/atomic_file.h"
#include "common/io/json_file.h"
#include "worker/io/tensor_io.h"

namespace fs = std::filesystem;

namespace mpibert {
namespace {

const char* kStateFile = "trainer_state.json";  // written last: its presence marks a complete checkpoint
const char* kTempPrefix = ".tmp-checkpoint-";

void fsync_path(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(p.string() + ": cannot open to fsync");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw std::runtime_error(p.string() + ": fsync failed");
}

void copy_file_synced(const std::string& from, const fs::path& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) throw std::runtime_error(from + ": cannot read to copy into the checkpoint");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  io::write_file_atomic(to.string(), bytes);
}

std::optional<int64_t> step_of(const std::string& name) {
  static const std::regex re("checkpoint-([0-9]+)");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return std::nullopt;
  return std::stoll(m[1]);
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  return "checkpoint-" + std::to_string(step);
}

std::string save_checkpoint(const std::string& output_dir, int64_t step, const CheckpointContents& c,
                            int64_t save_total_limit, const std::string& keep) {
  const fs::path out(output_dir);
  const fs::path final_dir = out / checkpoint_name(step);
  fs::create_directories(out);
  if (!fs::exists(final_dir / kStateFile)) {
    const fs::path tmp = out / (kTempPrefix + std::to_string(step) + "-" + std::to_string(::getpid()));
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    std::map<std::string, std::string> meta{{"format", "pt"}, {"step", std::to_string(step)}};
    io::save_tensors((tmp / "model.safetensors").string(), c.model, meta);
    io::save_tensors((tmp / "optimizer.safetensors").string(), c.optimizer, meta);
    io::write_file_atomic((tmp / "run_config.yaml").string(), c.run_config_yaml);
    io::write_json_file((tmp / "config.json").string(), c.model_config);
    for (const auto& file : c.files)
      if (fs::exists(file)) copy_file_synced(file, tmp / fs::path(file).filename());
    io::write_json_file((tmp / kStateFile).string(), c.trainer_state);
    fsync_path(tmp);
    if (fs::exists(final_dir)) fs::remove_all(final_dir);  // an incomplete leftover of the same step
    io::rename_durably(tmp.string(), final_dir.string());
  }
  io::write_file_atomic((out / "latest").string(), checkpoint_name(step) + "\n");
  if (save_total_limit > 0) {
    auto all = list_checkpoints(output_dir);
    const fs::path kept = keep.empty() ? fs::path() : fs::weakly_canonical(keep);
    all.erase(std::remove_if(all.begin(), all.end(),
                             [&](const auto& c) { return !keep.empty() && fs::weakly_canonical(c.second) == kept; }),
              all.end());
    for (size_t i = 0; i + save_total_limit < all.size(); ++i)
      if (all[i].first != step) fs::remove_all(all[i].second);
  }
  return final_dir.string();
}

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  if (!fs::is_directory(output_dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(output_dir)) {
    auto step = step_of(e.path().filename().string());
    if (step && e.is_directory() && fs::exists(e.path() / kStateFile)) out.emplace_back(*step, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> find_latest_checkpoint(const std::string& output_dir) {
  std::ifstream latest(fs::path(output_dir) / "latest");
  std::string name;
  if (latest >> name) {
    fs::path p = fs::path(output_dir) / name;
    if (fs::exists(p / kStateFile)) return p.string();
  }
  auto all = list_checkpoints(output_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

LoadedCheckpoint load_checkpoint(const std::string& dir, bool with_optimizer) {
  const fs::path p(dir);
  if (!fs::is_directory(p)) throw UsageError(dir + ": no such checkpoint directory");
  for (const char* f : {kStateFile, "model.safetensors", "optimizer.safetensors"})
    if (!fs::exists(p / f) && (with_optimizer || std::string(f) != "optimizer.safetensors"))
      throw UsageError(dir + ": not a complete checkpoint (" + f +
                       " is missing); use the directory a run wrote as checkpoint-<step>");
  LoadedCheckpoint c;
  c.dir = dir;
  c.trainer_state = io::read_json_file((p / kStateFile).string());
  for (const char* key : {"global_step", "consumed_sequences", "global_batch"})
    if (!c.trainer_state.contains(key)) throw UsageError((p / kStateFile).string() + ": key '" + key + "' is missing");
  c.model = io::load_tensors((p / "model.safetensors").string());
  if (with_optimizer) c.optimizer = io::load_tensors((p / "optimizer.safetensors").string());
  return c;
}

void remove_stale_checkpoint_temps(const std::string& output_dir) {
  std::error_code ec;
  if (!fs::is_directory(output_dir, ec)) return;
  for (const auto& e : fs::directory_iterator(output_dir))
    if (e.path().filename().string().rfind(kTempPrefix, 0) == 0) fs::remove_all(e.path(), ec);
}

}  // namespace mpibert
