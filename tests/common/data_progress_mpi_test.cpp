// build_shards' progress hooks under mpirun with 1..4 ranks: on every rank, the tokenising hook
// counts corpus bytes up to the corpus size and the writing hook counts sequences shard by shard up to
// the number written; the shards are the same as without hooks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/data/sequence_builder.h"
#include "common/data/wordpiece_trainer.h"
#include "common/io/sha256.h"
#include "tests/common/letter_corpus.h"
#include "tests/common/progress_recorder.h"
#include "tests/mpi_world.h"

namespace mpibert::data {
namespace {

namespace fs = std::filesystem;
using namespace mpibert::testing;

ShardBuildOptions shard_options(const std::string& dir, const std::string& out) {
  ShardBuildOptions o;
  o.corpus.input = dir + "/text";
  o.shards_dir = out;
  o.sequence.seq_len = 32;
  o.validation_fraction = 0.05;
  o.sequences_per_shard = 5000;
  o.threads = 1;  // batches of 256 documents: several per rank
  return o;
}

TEST(BuildShardsProgress, EveryRankCountsTokenisedBytesAndWrittenSequencesUpToTheTotals) {
  const std::string dir = shared_temp_dir("data_progress_mpi", "build");
  if (world_rank() == 0) {
    fs::create_directories(dir + "/text");
    fs::create_directories(dir + "/plain");
    fs::create_directories(dir + "/hooked");
    std::ofstream(dir + "/text/a.txt") << letter_text(60000, 11);
    std::ofstream(dir + "/text/b.txt") << letter_text(3000, 12);
    write_vocab_file(dir + "/vocab.txt", letter_tokens());
  }
  world_barrier();
  const int64_t corpus_bytes = int64_t(fs::file_size(dir + "/text/a.txt") + fs::file_size(dir + "/text/b.txt"));
  ASSERT_GT(corpus_bytes, 2 * kCorpusProgressBytes);
  const WordPieceTokenizer tok = letter_tokenizer();

  ShardBuildOptions hooked = shard_options(dir, dir + "/hooked");
  ProgressRecorder tokenizing, writing;
  hooked.tokenize_progress = tokenizing.hook();
  hooked.write_progress = writing.hook();
  Manifest plain, manifest;
  ShardBuildStats stats;
  try {  // failures are caught so that no rank leaves the others waiting in a collective
    plain = build_shards(tok, dir + "/vocab.txt", shard_options(dir, dir + "/plain"), test_world());
    manifest = build_shards(tok, dir + "/vocab.txt", hooked, test_world(), &stats);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "rank " << world_rank() << ": " << e.what();
  }

  expect_progress(tokenizing, corpus_bytes, corpus_bytes, "tokenised bytes");
  EXPECT_GE(tokenizing.reports().size(), 2u);
  const int64_t sequences = stats.train_sequences + stats.validation_sequences;
  expect_progress(writing, sequences, sequences, "written sequences");
  ASSERT_GT(manifest.shards.size(), 2u);
  ASSERT_EQ(writing.reports().size(), manifest.shards.size());
  int64_t written = 0;
  for (size_t k = 0; k < manifest.shards.size(); ++k) {
    written += manifest.shards[k].num_sequences;
    EXPECT_EQ(writing.reports()[k], written) << manifest.shards[k].file;
  }
  ASSERT_EQ(plain.shards.size(), manifest.shards.size());
  for (size_t k = 0; k < manifest.shards.size(); ++k)
    EXPECT_EQ(plain.shards[k].sha256, manifest.shards[k].sha256) << manifest.shards[k].file;
  world_barrier();
  if (world_rank() == 0) fs::remove_all(dir);
}

}  // namespace
}  // namespace mpibert::data
