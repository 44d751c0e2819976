// The progress hooks of the data functions prepare_data shows as progress lines: reading a corpus
// (bytes), the WordPiece merges (tokens added) and encode_file (bytes). Each hook gets start(total)
// once, then counts that only grow, at a coarse grain, ending at the total; the results are the same
// with and without a hook. (build_shards' hooks: data_progress_mpi_test.cpp.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/data/encode_file.h"
#include "common/data/text_corpus.h"
#include "common/data/wordpiece.h"
#include "common/data/wordpiece_trainer.h"
#include "tests/common/letter_corpus.h"
#include "tests/common/progress_recorder.h"
#include "tests/common/unique_temp_dir.h"

namespace mpibert::data {
namespace {

namespace fs = std::filesystem;
using mpibert::testing::expect_progress;
using mpibert::testing::letter_text;
using mpibert::testing::letter_tokenizer;
using mpibert::testing::ProgressRecorder;
using mpibert::testing::UniqueTempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::vector<std::string>> read_documents(const CorpusOptions& corpus, const ProgressHook& hook = {}) {
  std::vector<std::vector<std::string>> docs;
  for_each_document(
      corpus, [&](const std::vector<std::string>& lines) { docs.push_back(lines); }, hook);
  return docs;
}

TEST(CorpusProgress, CountsBytesOfEveryFileUpToTheirSizes) {
  UniqueTempDir tmp("corpus_progress");
  std::string big = letter_text(100000, 3);
  big.pop_back();  // the last line has no newline: the count still ends at the file's size
  const std::string a = tmp.write("a.txt", big);
  const std::string b = tmp.write("b.jsonl", "{\"text\": \"one record\"}\n\n{\"text\": \"two\\nlines\"}\n");
  const std::string c = tmp.write("c.json", "[{\"text\": \"in an array\"}, \"a string\"]\n");
  tmp.write("d.txt", "");
  ASSERT_GT(big.size(), size_t(3 * kCorpusProgressBytes));
  const int64_t size_a = int64_t(fs::file_size(a)), size_b = int64_t(fs::file_size(b));
  const int64_t total = size_a + size_b + int64_t(fs::file_size(c));

  CorpusOptions corpus;
  corpus.input = tmp.dir();
  ProgressRecorder bytes;
  EXPECT_EQ(read_documents(corpus, bytes.hook()), read_documents(corpus));
  expect_progress(bytes, total, total, "corpus bytes");
  // Each file's end is reported with the sizes of the files so far; within a.txt, about every MiB.
  const std::vector<int64_t>& r = bytes.reports();
  for (int64_t end : {size_a, size_a + size_b}) EXPECT_NE(std::find(r.begin(), r.end(), end), r.end()) << end;
  std::vector<int64_t> within_a;
  for (int64_t done : r)
    if (done < size_a) within_a.push_back(done);
  EXPECT_GE(within_a.size(), 2u);
  EXPECT_LE(int64_t(within_a.size()), size_a / kCorpusProgressBytes);
  for (size_t i = 1; i < within_a.size(); ++i) EXPECT_GE(within_a[i] - within_a[i - 1], kCorpusProgressBytes);
}

TEST(CorpusProgress, AnEmptyCorpusReportsZeroOfZero) {
  UniqueTempDir tmp("corpus_progress_empty");
  tmp.write("empty.txt", "");
  CorpusOptions corpus;
  corpus.input = tmp.dir();
  ProgressRecorder bytes;
  EXPECT_TRUE(read_documents(corpus, bytes.hook()).empty());
  expect_progress(bytes, 0, 0, "empty corpus");
  EXPECT_EQ(bytes.reports().size(), 1u);
}

// The vocabulary before any merge: specials, alphabet and "##" forms (vocab_size 1 stops the merges).
size_t tokens_before_merges(const WordCounter& words) {
  WordPieceTrainerOptions o;
  o.vocab_size = 1;
  return train_wordpiece(words, o).size();
}

WordCounter count_words(const std::string& text) {
  WordCounter words(true);
  words.add_text(text);
  return words;
}

TEST(WordPieceProgress, ReportsTokensAddedEveryFewMergesUpToVocabSize) {
  const WordCounter words = count_words(letter_text(3000, 5));
  const size_t initial = tokens_before_merges(words);
  WordPieceTrainerOptions o;
  o.vocab_size = initial + 300;
  o.min_frequency = 1;
  const std::vector<std::string> plain = train_wordpiece(words, o);
  ProgressRecorder merges;
  o.progress = merges.hook();
  EXPECT_EQ(train_wordpiece(words, o), plain);
  ASSERT_EQ(plain.size(), initial + 300);
  expect_progress(merges, 300, 300, "merges");
  const std::vector<int64_t>& r = merges.reports();
  ASSERT_EQ(r.size(), size_t(300 / kMergeProgressTokens + 1));
  for (size_t i = 0; i + 1 < r.size(); ++i) EXPECT_EQ(r[i], int64_t(i + 1) * kMergeProgressTokens);
}

TEST(WordPieceProgress, MinFrequencyStopsShortOfTheTotal) {
  const WordCounter words = count_words(letter_text(3000, 5));
  const size_t initial = tokens_before_merges(words);
  WordPieceTrainerOptions o;
  o.vocab_size = initial + 100000;
  o.min_frequency = 40;
  ProgressRecorder merges;
  o.progress = merges.hook();
  const size_t added = train_wordpiece(words, o).size() - initial;
  EXPECT_GT(added, 0u);
  EXPECT_LT(added, 100000u);
  expect_progress(merges, 100000, int64_t(added), "merges stopped by min_frequency");
}

TEST(WordPieceProgress, NoMergeNeededReportsZeroOfZero) {
  const WordCounter words = count_words("abc abd");
  WordPieceTrainerOptions o;
  o.vocab_size = 3;  // fewer than the specials and the alphabet
  ProgressRecorder merges;
  o.progress = merges.hook();
  train_wordpiece(words, o);
  expect_progress(merges, 0, 0, "no merge");
  EXPECT_EQ(merges.reports().size(), 1u);
}

TEST(EncodeProgress, ReportsWholeBlocksOfInputUpToItsSize) {
  UniqueTempDir tmp("encode_progress");
  const std::string text = letter_text(100000, 9);
  const std::string in = tmp.write("in.txt", text);
  ASSERT_GT(text.size(), 3 * kEncodeBlockBytes);
  const WordPieceTokenizer tok = letter_tokenizer();
  encode_file(tok, in, tmp.dir() + "plain.ids", 1);
  for (int threads : {1, 3}) {
    ProgressRecorder bytes;
    encode_file(tok, in, tmp.dir() + "hooked.ids", threads, bytes.hook());
    EXPECT_EQ(slurp(tmp.dir() + "hooked.ids"), slurp(tmp.dir() + "plain.ids")) << threads << " threads";
    const int64_t size = int64_t(text.size());
    expect_progress(bytes, size, size, std::to_string(threads) + " threads");
    // One report per block: whole lines, at least kEncodeBlockBytes apart.
    EXPECT_GE(bytes.reports().size(), text.size() / kEncodeBlockBytes);
    EXPECT_LE(bytes.reports().size(), (text.size() + kEncodeBlockBytes - 1) / kEncodeBlockBytes);
    for (int64_t done : bytes.reports()) EXPECT_EQ(text[size_t(done) - 1], '\n') << done;
  }
}

TEST(EncodeProgress, AnEmptyInputReportsZeroOfZero) {
  UniqueTempDir tmp("encode_progress_empty");
  ProgressRecorder bytes;
  encode_file(letter_tokenizer(), tmp.write("empty.txt", ""), tmp.dir() + "out.ids", 2, bytes.hook());
  expect_progress(bytes, 0, 0, "empty input");
  EXPECT_EQ(bytes.reports().size(), 1u);
}

}  // namespace
}  // namespace mpibert::data
