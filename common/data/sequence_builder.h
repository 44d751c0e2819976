#pragma once
// Documents -> fixed-length training sequences -> shuffled, split HDF5 shards, in parallel over MPI
// ranks with output that does not depend on the number of ranks or threads.
//
// Packed (default, as Hugging Face run_mlm's group_texts): every document becomes [CLS] ids [SEP];
// the pieces of all documents are concatenated in corpus order and cut into seq_len blocks; the
// last partial block is dropped. Line-by-line: every document is its own sequence, [CLS] ids [SEP]
// truncated to seq_len (keeping [SEP] last) and right-padded with [PAD]. A document whose text gives
// no ids at all is skipped in both modes.
//
// Sequences are then shuffled with shuffled_range(n, shuffle_seed, kShardShuffleStream) (the fixed
// PRNG of batch_sampler.h); the first n - v of that order are the train split and the last
// v = ceil(validation_fraction * n) the validation split, each cut into shards of
// sequences_per_shard in that order (the last shard of a split may be shorter).
//
// Parallel: document d (0-based, corpus order) is tokenised by rank d mod world_size; the ranks
// exchange piece lengths, then rank 0 gathers each shard's token ranges from their owners and
// writes it. Every rank reads the whole corpus text (cheap next to tokenising) but keeps only its
// own documents' ids.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/comm/hccl_like.h"
#include "common/data/progress_hook.h"
#include "common/data/shard_format.h"
#include "common/data/text_corpus.h"
#include "common/data/wordpiece.h"

namespace mpibert::data {

// PRNG stream of the prepare_data shuffle (so it never coincides with the sampler's epoch streams).
inline constexpr uint64_t kShardShuffleStream = 0x5348554646ULL;  // "SHUFF"

struct SequenceOptions {
  int64_t seq_len = 128;
  bool line_by_line = false;
  SpecialIds special_ids;
};

// UsageError unless seq_len >= kMinSeqLen and the vocabulary (named by vocab_path) has [CLS] and
// [SEP] (and [PAD] for line_by_line).
void check_sequence_options(const SequenceOptions& options, const std::string& vocab_path);

// Appends the stream piece of one document, given its WordPiece ids (no special tokens), to `out`
// and returns its length (0 for a document without ids). `truncated` (optional) is set when a
// line-by-line document was cut.
int64_t append_document(const std::vector<int32_t>& word_ids, const SequenceOptions& options, std::vector<int32_t>& out,
                        bool* truncated = nullptr);

// Where the tokens of each sequence live when documents are spread round-robin over ranks.
class StreamLayout {
 public:
  struct Segment {
    int rank;        // owner of these tokens
    int64_t offset;  // into that rank's local buffer (its documents' pieces back to back)
    int64_t length;
  };

  // piece_lengths[d]: stream length of document d; document d is held by rank d % world_size.
  StreamLayout(const std::vector<int64_t>& piece_lengths, int world_size, int64_t seq_len);

  int64_t num_documents() const { return int64_t(doc_start_.size()) - 1; }
  int64_t total_tokens() const { return doc_start_.back(); }
  int64_t num_sequences() const { return total_tokens() / seq_len_; }
  int64_t dropped_tokens() const { return total_tokens() - num_sequences() * seq_len_; }
  // The pieces of sequence `sequence`, in order (cleared first).
  void segments(int64_t sequence, std::vector<Segment>& out) const;

 private:
  int world_size_;
  int64_t seq_len_;
  std::vector<int64_t> doc_start_;    // global stream offset of document d; one extra entry = total
  std::vector<int64_t> local_start_;  // offset of document d in its owner's local buffer
};

struct ShardPlan {
  std::string split;               // "train" | "validation"
  int64_t index = 0;               // k: the shard's place in its split
  std::string file;                // base name shard_file_name(split, k); published with its hash
  std::vector<int64_t> sequences;  // global sequence numbers, in the order written
};

// The shuffle, split and sharding described above. UsageError if there is no training sequence.
std::vector<ShardPlan> plan_shards(int64_t num_sequences, double validation_fraction, uint64_t shuffle_seed,
                                   int64_t sequences_per_shard);

struct ShardBuildOptions {
  CorpusOptions corpus;
  std::string shards_dir;    // must exist; vocab.txt is expected there already
  SequenceOptions sequence;  // special_ids are taken from the tokenizer
  double validation_fraction = 0.05;
  uint64_t shuffle_seed = 34;
  int64_t sequences_per_shard = 65536;
  std::string source;  // recorded in every shard ("" = corpus.input)
  int threads = 1;     // tokenising threads per rank (the output does not depend on it)
  // Ranks waiting for others (rank 0 writes every shard) fail only when a peer has been silent this long.
  std::chrono::milliseconds peer_silence = kDefaultPeerSilence;
  // Tokenising on this rank, which reads every document and tokenises its share: start(bytes of the
  // corpus files), then the corpus bytes whose documents are tokenised, after each batch of documents.
  ProgressHook tokenize_progress;
  // Writing (on every rank; rank 0 writes, the others send it their tokens): start(sequences in all
  // shards), then the sequences written so far, after each shard.
  ProgressHook write_progress;
  // Rank 0, after the last shard is written and before manifest.json switches to the new set
  // (tests stop or kill the run there).
  std::function<void()> before_publish;
};

struct ShardBuildStats {
  int64_t documents = 0;            // with at least one id
  int64_t skipped_documents = 0;    // whose text gave no ids
  int64_t truncated_documents = 0;  // line_by_line only
  int64_t tokens = 0;               // stream tokens, [CLS]/[SEP]/[PAD] included
  int64_t dropped_tokens = 0;       // the last partial block (packed)
  int64_t train_sequences = 0, validation_sequences = 0;
  double tokenize_seconds = 0, write_seconds = 0;
};

// Runs the whole pipeline over `comm` (every rank calls it with the same arguments) and publishes
// the shard set in SHARDS_DIR as shard_set.h describes: shards {train,validation}-NNNNN-<hash>.h5,
// then manifest.json, then the previous set's files removed (rank 0 writes; the caller holds the
// directory's lock). The shards' vocab_sha256 is the SHA-256 of `vocab_path`. Returns the same manifest and stats on
// every rank. Errors are agreed by all ranks (agreement.h), so every rank throws the same one:
// AgreedUsageError for bad input (an empty corpus, no full sequence, ...), AgreedFailure for I/O
// failures; CollectiveError/CollectiveTimeout when the communicator itself fails.
Manifest build_shards(const WordPieceTokenizer& tokenizer, const std::string& vocab_path,
                      const ShardBuildOptions& options, HcclLike& comm, ShardBuildStats* stats = nullptr);

}  // namespace mpibert::data
