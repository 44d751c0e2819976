// build_shards (the engine of `prepare_data shards`) under mpirun with 1..4 ranks: the shards and
// manifest written by N ranks are byte-identical to a 1-rank run, and their content equals an
// independent sequential tokenise -> concatenate -> cut -> shuffle -> split of the corpus.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "common/comm/agreement.h"
#include "common/comm/mpi_backend.h"
#include "common/data/batch_sampler.h"
#include "common/data/sequence_builder.h"
#include "common/data/shard_reader.h"
#include "common/data/text_corpus.h"
#include "common/data/wordpiece.h"
#include "common/data/wordpiece_trainer.h"
#include "common/error.h"
#include "common/io/sha256.h"

namespace mpibert::data {
namespace {

namespace fs = std::filesystem;

HcclLike& world() {
  static std::unique_ptr<HcclLike> c = make_mpi_backend();
  return *c;
}

int world_rank() {
  return world().rank();
}

void world_barrier() {
  world().barrier()->wait();
}

// A directory every rank agrees on (rank 0 names and creates it).
std::string shared_dir(const std::string& name) {
  std::string dir;
  if (world_rank() == 0) {
    dir = (fs::path(::testing::TempDir()) / ("prepare_data_mpi_" + std::to_string(::getpid()) + "_" + name)).string();
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  return broadcast_string(world(), dir);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Synthetic text: documents of 1-4 lines separated by blank lines, mixed case and punctuation,
// some very short documents so packed sequences span many documents (and ranks).
std::string synthetic_text(uint64_t seed, int documents) {
  static const char* words[] = {"The",         "cat",      "sat",      "on",       "a",      "mat",   "while",
                                "distributed", "training", "ran",      "across",   "eight",  "ranks", "Tokenizers",
                                "split",       "words",    "into",     "pieces",   "résumé", "naïve", "data",
                                "shards",      "are",      "shuffled", "globally", "每",     "日"};
  Xoshiro256 rng(seed, 0);
  std::string text;
  for (int d = 0; d < documents; ++d) {
    const int lines = 1 + int(rng.uniform(4));
    for (int l = 0; l < lines; ++l) {
      const int n = rng.uniform(7) == 0 ? 1 : 2 + int(rng.uniform(25));
      for (int w = 0; w < n; ++w) {
        text += words[rng.uniform(sizeof(words) / sizeof(words[0]))];
        text += rng.uniform(9) == 0 ? ", " : " ";
      }
      text += ".\n";
    }
    text += rng.uniform(5) == 0 ? "   \n\n" : "\n";
  }
  return text;
}

struct Corpus {
  std::string dir;
  std::string vocab;
  Corpus() {
    dir = shared_dir("corpus");
    vocab = dir + "/vocab.txt";
    if (world_rank() == 0) {
      fs::create_directories(dir + "/text");
      std::ofstream(dir + "/text/a.txt") << synthetic_text(1, 180);
      std::ofstream(dir + "/text/b.txt") << synthetic_text(2, 3) << "\n\n\n";  // trailing blank lines
      std::ofstream(dir + "/text/c.jsonl") << "{\"text\": \"A JSON record, with one line.\"}\n"
                                           << "{\"text\": \"Another record\\nspanning two lines.\"}\n";
      std::vector<std::string> lines;
      CorpusOptions c;
      c.input = dir + "/text";
      for_each_document(
          c, [&](const std::vector<std::string>& doc) { lines.insert(lines.end(), doc.begin(), doc.end()); });
      WordPieceTrainerOptions t;
      t.vocab_size = 150;
      t.min_frequency = 2;
      t.limit_alphabet = 200;
      write_vocab_file(vocab, train_wordpiece(lines, t));
    }
    world_barrier();
  }
  ~Corpus() {
    world_barrier();
    if (world_rank() == 0) fs::remove_all(dir);
  }
};

ShardBuildOptions make_options(const Corpus& corpus, const std::string& out, int64_t seq_len, bool line_by_line) {
  ShardBuildOptions o;
  o.corpus.input = corpus.dir + "/text";
  o.corpus.document_separator = line_by_line ? "line" : "blank_line";
  o.shards_dir = out;
  o.sequence.seq_len = seq_len;
  o.sequence.line_by_line = line_by_line;
  o.validation_fraction = 0.1;
  o.shuffle_seed = 34;
  o.sequences_per_shard = 7;
  o.source = "synthetic";
  return o;
}

// Sequential reference of the whole pipeline, written without StreamLayout or MPI.
std::vector<std::vector<int32_t>> reference_sequences(const WordPieceTokenizer& tok, const ShardBuildOptions& o) {
  SequenceOptions seq = o.sequence;
  seq.special_ids = tok.special_ids();
  std::vector<int32_t> stream;
  for_each_document(o.corpus, [&](const std::vector<std::string>& doc) {
    std::vector<int32_t> ids;
    for (const auto& line : doc) tok.encode(line, ids);
    append_document(ids, seq, stream);
  });
  std::vector<std::vector<int32_t>> sequences;
  for (size_t s = 0; (s + 1) * size_t(seq.seq_len) <= stream.size(); ++s)
    sequences.emplace_back(stream.begin() + long(s * seq.seq_len), stream.begin() + long((s + 1) * seq.seq_len));
  return sequences;
}

void run_and_compare(const Corpus& corpus, const std::string& name, int64_t seq_len, bool line_by_line) {
  const bool root = world_rank() == 0;
  const std::string base = shared_dir(name);
  const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab_file(corpus.vocab, true);
  if (root) {
    fs::create_directories(base + "/one");
    fs::create_directories(base + "/many");
    fs::copy_file(corpus.vocab, base + "/one/vocab.txt");
    fs::copy_file(corpus.vocab, base + "/many/vocab.txt");
  }
  world_barrier();

  ShardBuildOptions one = make_options(corpus, base + "/one", seq_len, line_by_line);
  ShardBuildOptions many = make_options(corpus, base + "/many", seq_len, line_by_line);
  many.threads = 3;  // threads must not change the output either
  // Failures are caught so that no rank leaves the others waiting in a collective.
  Manifest reference, m;
  ShardBuildStats stats;
  try {
    if (root) reference = build_shards(tok, corpus.vocab, one, *make_mpi_backend(CommGroup::Self));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "1-rank run: " << e.what();
  }
  try {
    m = build_shards(tok, corpus.vocab, many, world(), &stats);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "rank " << world_rank() << ": " << e.what();
  }

  EXPECT_GT(stats.train_sequences, 20);
  EXPECT_GT(stats.validation_sequences, 1);
  EXPECT_GT(m.shards.size(), 4u);
  if (!root) return;
  EXPECT_EQ(read_bytes(base + "/one/manifest.json"), read_bytes(base + "/many/manifest.json"));
  ASSERT_EQ(reference.shards.size(), m.shards.size());
  for (size_t i = 0; i < m.shards.size(); ++i) {
    EXPECT_EQ(reference.shards[i].sha256, m.shards[i].sha256) << m.shards[i].file;
    EXPECT_EQ(io::sha256_file(base + "/many/" + m.shards[i].file), m.shards[i].sha256);
    EXPECT_EQ(read_bytes(base + "/one/" + m.shards[i].file), read_bytes(base + "/many/" + m.shards[i].file));
  }

  // Content: the plan applied to the sequential reference.
  const auto sequences = reference_sequences(tok, many);
  ASSERT_EQ(int64_t(sequences.size()), stats.train_sequences + stats.validation_sequences);
  const auto plans = plan_shards(int64_t(sequences.size()), 0.1, 34, 7);
  for (const char* split : {"train", "validation"}) {
    ShardDataset ds = ShardDataset::open(base + "/many", split, int64_t(tok.vocab_size()));
    EXPECT_EQ(ds.special_ids().cls, tok.special_ids().cls);
    EXPECT_EQ(ds.source(), "synthetic");
    std::vector<int32_t> row(static_cast<size_t>(seq_len));
    int64_t i = 0;
    for (const auto& plan : plans) {
      if (plan.split != split) continue;
      for (int64_t s : plan.sequences) {
        ds.read(i++, row.data());
        ASSERT_EQ(row, sequences[size_t(s)]) << split << " sequence " << i - 1;
        if (line_by_line) {  // every row is one document: [CLS] first, [SEP] before the padding
          EXPECT_EQ(row.front(), tok.special_ids().cls);
          EXPECT_NE(std::find(row.begin(), row.end(), tok.special_ids().sep), row.end());
        }
      }
    }
    EXPECT_EQ(i, ds.num_sequences());
  }
  fs::remove_all(base);
}

TEST(BuildShards, PackedOutputOfNRanksIsByteIdenticalToOneRank) {
  Corpus corpus;
  run_and_compare(corpus, "packed", 32, false);
}

TEST(BuildShards, ShortSequencesSpanningManyDocumentsAndRanks) {
  Corpus corpus;
  run_and_compare(corpus, "short", 8, false);
}

TEST(BuildShards, LineByLineOutputOfNRanksIsByteIdenticalToOneRank) {
  Corpus corpus;
  run_and_compare(corpus, "line_by_line", 16, true);
}

// Every rank throws the same UsageError (no rank is left waiting in a collective).
void expect_usage_error_on_every_rank(const std::function<void()>& body, const std::string& fragment) {
  std::string message;
  try {
    body();
  } catch (const UsageError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(fragment), std::string::npos) << "rank " << world_rank() << ": '" << message << "'";
}

TEST(BuildShards, CorpusWithoutAFullSequenceIsAUsageErrorOnEveryRank) {
  Corpus corpus;
  const std::string base = shared_dir("tiny");
  if (world_rank() == 0) std::ofstream(base + "/tiny.txt") << "one short line\n\nand another\n";
  world_barrier();
  const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab_file(corpus.vocab, true);
  ShardBuildOptions o = make_options(corpus, base, 64, false);
  o.corpus.input = base + "/tiny.txt";
  expect_usage_error_on_every_rank([&] { build_shards(tok, corpus.vocab, o, world()); },
                                   "the corpus gives no full sequence of 64 tokens");
  if (world_rank() == 0) std::ofstream(base + "/blank.txt") << "\n   \n\t\n";
  world_barrier();
  o.corpus.input = base + "/blank.txt";
  expect_usage_error_on_every_rank([&] { build_shards(tok, corpus.vocab, o, world()); }, "the corpus holds no text");
  o.corpus.input = base + "/missing.txt";
  expect_usage_error_on_every_rank([&] { build_shards(tok, corpus.vocab, o, world()); }, "missing.txt");
  o.corpus.input = base + "/tiny.txt";
  o.sequence.seq_len = 4;
  expect_usage_error_on_every_rank([&] { build_shards(tok, corpus.vocab, o, world()); },
                                   "data.seq_len = 4 is too short");
  world_barrier();
  if (world_rank() == 0) {
    EXPECT_FALSE(fs::exists(base + "/manifest.json"));
    fs::remove_all(base);
  }
}

}  // namespace
}  // namespace mpibert::data
