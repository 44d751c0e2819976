// Writes the seed inputs that our own writers produce: safetensors files (write_safetensors) and shard
// manifests (write_manifest), so that the fuzzers start from real files of the current format.
// usage: fuzz_make_seeds DIR   ->  DIR/safetensors/*.safetensors, DIR/manifest/*.json
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/data/shard_format.h"
#include "common/io/safetensors.h"

namespace {

using namespace mpibert;

io::StTensor tensor(io::StDtype dtype, std::vector<int64_t> shape) {
  io::StTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(static_cast<size_t>(t.numel()) * io::st_dtype_size(dtype));
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<char>(i * 37 + 11);
  return t;
}

void write_safetensors_seeds(const std::string& dir) {
  io::SafetensorsFile bert;  // the names and layout of a (tiny) Hugging Face BERT checkpoint
  bert.metadata["format"] = "pt";
  bert.tensors["bert.embeddings.word_embeddings.weight"] = tensor(io::StDtype::F32, {6, 4});
  bert.tensors["bert.embeddings.LayerNorm.weight"] = tensor(io::StDtype::F32, {4});
  bert.tensors["bert.embeddings.position_ids"] = tensor(io::StDtype::I64, {1, 3});
  bert.tensors["cls.predictions.bias"] = tensor(io::StDtype::BF16, {6});
  io::write_safetensors(dir + "/bert_tiny.safetensors", bert);

  io::SafetensorsFile all;  // every dtype, a scalar and an empty tensor
  const io::StDtype dtypes[] = {io::StDtype::F64, io::StDtype::F32, io::StDtype::F16, io::StDtype::BF16,
                                io::StDtype::I64, io::StDtype::I32, io::StDtype::I16, io::StDtype::I8,
                                io::StDtype::U8,  io::StDtype::BOOL};
  for (io::StDtype d : dtypes) all.tensors[std::string("t_") + io::st_dtype_name(d)] = tensor(d, {2, 1});
  all.tensors["scalar"] = tensor(io::StDtype::F32, {});
  all.tensors["empty"] = tensor(io::StDtype::F16, {0, 3});
  io::write_safetensors(dir + "/all_dtypes.safetensors", all);

  io::SafetensorsFile metadata_only;
  metadata_only.metadata = {{"format", "pt"}, {"mpibert.step", "300"}};
  io::write_safetensors(dir + "/metadata_only.safetensors", metadata_only);
}

void write_manifest_seeds(const std::string& dir) {
  data::Manifest demo;  // the layout prepare_data writes for the demo
  demo.vocab_size = 8000;
  demo.seq_len = 128;
  const std::string sha(64, 'a');
  demo.shards.push_back({data::shard_file_name(data::kTrainSplit, 0), data::kTrainSplit, 26068, sha});
  demo.shards.push_back({data::shard_file_name(data::kTrainSplit, 1), data::kTrainSplit, 17, sha});
  demo.shards.push_back({data::shard_file_name(data::kValidationSplit, 0), data::kValidationSplit, 533, sha});
  std::filesystem::create_directories(dir + "/demo");
  data::write_manifest(dir + "/demo", demo);
  std::filesystem::rename(dir + "/demo/manifest.json", dir + "/demo.json");

  data::Manifest big_vocab;  // int32 ids, no validation split
  big_vocab.vocab_size = 119547;
  big_vocab.seq_len = 512;
  big_vocab.shards.push_back({data::shard_file_name(data::kTrainSplit, 0), data::kTrainSplit, 1, sha});
  data::write_manifest(dir + "/demo", big_vocab);
  std::filesystem::rename(dir + "/demo/manifest.json", dir + "/big_vocab.json");
  std::filesystem::remove(dir + "/demo");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir + "/safetensors");
  std::filesystem::create_directories(dir + "/manifest");
  write_safetensors_seeds(dir + "/safetensors");
  write_manifest_seeds(dir + "/manifest");
  return 0;
}
