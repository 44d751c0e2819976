#include "common/data/sequence_builder.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "common/comm/agreement.h"
#include "common/data/batch_sampler.h"
#include "common/data/shard_set.h"
#include "common/error.h"
#include "common/io/sha256.h"

namespace mpibert::data {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The ids of this rank's documents (pieces back to back) and each document's piece length.
struct LocalStream {
  std::vector<int32_t> ids;
  std::vector<int64_t> lengths;
  int64_t skipped = 0, truncated = 0;
};

// Tokenises a batch of documents with `threads` threads and appends them in order.
void tokenize_batch(const WordPieceTokenizer& tok, const SequenceOptions& seq,
                    const std::vector<std::vector<std::string>>& docs, int threads, LocalStream& out) {
  const size_t n = docs.size();
  const int t_count = int(std::max<size_t>(1, std::min<size_t>(size_t(std::max(threads, 1)), n)));
  std::vector<LocalStream> parts(static_cast<size_t>(t_count));
  auto work = [&](int t) {
    LocalStream& part = parts[size_t(t)];
    WordList scratch;
    std::vector<int32_t> word_ids;
    for (size_t d = n * size_t(t) / size_t(t_count); d < n * size_t(t + 1) / size_t(t_count); ++d) {
      word_ids.clear();
      for (const auto& line : docs[d]) tok.encode(line, word_ids, scratch);
      bool truncated = false;
      const int64_t len = append_document(word_ids, seq, part.ids, &truncated);
      part.lengths.push_back(len);
      part.skipped += len == 0;
      part.truncated += truncated;
    }
  };
  if (t_count == 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(t_count));
    for (int t = 0; t < t_count; ++t)
      pool.emplace_back([&, t] {
        try {
          work(t);
        } catch (...) {
          errors[size_t(t)] = std::current_exception();
        }
      });
    for (auto& th : pool) th.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  }
  for (auto& part : parts) {
    out.ids.insert(out.ids.end(), part.ids.begin(), part.ids.end());
    out.lengths.insert(out.lengths.end(), part.lengths.begin(), part.lengths.end());
    out.skipped += part.skipped;
    out.truncated += part.truncated;
  }
}

}  // namespace

void check_sequence_options(const SequenceOptions& o, const std::string& vocab_path) {
  if (o.seq_len < kMinSeqLen)
    throw UsageError("data.seq_len = " + std::to_string(o.seq_len) + " is too short: it must be at least " +
                     std::to_string(kMinSeqLen));
  auto need = [&](int32_t id, const char* token) {
    if (id < 0)
      throw UsageError(vocab_path + ": the vocabulary has no " + token + " token, which the sequences need" +
                       " (use a BERT vocab.txt or train one with prepare_data train-tokenizer)");
  };
  need(o.special_ids.cls, "[CLS]");
  need(o.special_ids.sep, "[SEP]");
  if (o.line_by_line) need(o.special_ids.pad, "[PAD]");
}

int64_t append_document(const std::vector<int32_t>& word_ids, const SequenceOptions& o, std::vector<int32_t>& out,
                        bool* truncated) {
  if (truncated) *truncated = false;
  if (word_ids.empty()) return 0;
  if (!o.line_by_line) {
    out.push_back(o.special_ids.cls);
    out.insert(out.end(), word_ids.begin(), word_ids.end());
    out.push_back(o.special_ids.sep);
    return int64_t(word_ids.size()) + 2;
  }
  const int64_t room = o.seq_len - 2;
  const int64_t keep = std::min<int64_t>(room, int64_t(word_ids.size()));
  if (truncated) *truncated = keep < int64_t(word_ids.size());
  out.push_back(o.special_ids.cls);
  out.insert(out.end(), word_ids.begin(), word_ids.begin() + keep);
  out.push_back(o.special_ids.sep);
  out.insert(out.end(), size_t(room - keep), o.special_ids.pad);
  return o.seq_len;
}

StreamLayout::StreamLayout(const std::vector<int64_t>& piece_lengths, int world_size, int64_t seq_len)
    : world_size_(world_size), seq_len_(seq_len) {
  if (world_size < 1 || seq_len < 1) throw std::invalid_argument("StreamLayout: world_size and seq_len must be >= 1");
  doc_start_.resize(piece_lengths.size() + 1);
  local_start_.resize(piece_lengths.size());
  std::vector<int64_t> local_end(size_t(world_size), 0);
  int64_t pos = 0;
  for (size_t d = 0; d < piece_lengths.size(); ++d) {
    doc_start_[d] = pos;
    pos += piece_lengths[d];
    int64_t& owner_end = local_end[d % size_t(world_size)];
    local_start_[d] = owner_end;
    owner_end += piece_lengths[d];
  }
  doc_start_.back() = pos;
}

void StreamLayout::segments(int64_t sequence, std::vector<Segment>& out) const {
  out.clear();
  if (sequence < 0 || sequence >= num_sequences())
    throw std::out_of_range("StreamLayout: sequence " + std::to_string(sequence) + " of " +
                            std::to_string(num_sequences()));
  int64_t begin = sequence * seq_len_;
  const int64_t end = begin + seq_len_;
  // The last document starting at or before `begin` (empty documents share a start; upper_bound
  // picks the last of them, which is the one holding the token).
  size_t d = size_t(std::upper_bound(doc_start_.begin(), doc_start_.end() - 1, begin) - doc_start_.begin()) - 1;
  while (begin < end) {
    const int64_t doc_end = doc_start_[d + 1];
    if (doc_end > begin) {
      const int64_t take = std::min(end, doc_end) - begin;
      out.push_back({int(d % size_t(world_size_)), local_start_[d] + (begin - doc_start_[d]), take});
      begin += take;
    }
    ++d;
  }
}

std::vector<ShardPlan> plan_shards(int64_t n, double validation_fraction, uint64_t seed, int64_t per_shard) {
  if (!(validation_fraction >= 0 && validation_fraction < 1))
    throw UsageError("data.validation_fraction = " + std::to_string(validation_fraction) + " must be in [0, 1)");
  if (per_shard < 1)
    throw UsageError("data.sequences_per_shard = " + std::to_string(per_shard) + " must be at least 1");
  // As datasets' train_test_split: ceil(fraction * n), with a guard against 0.07 * 100 = 7.000000000000001.
  const int64_t n_validation =
      validation_fraction > 0 ? std::min<int64_t>(n, int64_t(std::ceil(validation_fraction * double(n) - 1e-9))) : 0;
  const int64_t n_train = n - n_validation;
  if (n_train < 1)
    throw UsageError("the corpus gives only " + std::to_string(n) + " sequence(s), none left for training after " +
                     std::to_string(n_validation) +
                     " for validation: add text, lower data.seq_len or "
                     "data.validation_fraction");
  const std::vector<int64_t> order = shuffled_range(n, seed, kShardShuffleStream);
  std::vector<ShardPlan> plans;
  auto cut = [&](const char* split, int64_t from, int64_t count) {
    for (int64_t k = 0; k * per_shard < count; ++k) {
      ShardPlan p;
      p.split = split;
      p.index = k;
      p.file = shard_file_name(split, k);
      const int64_t b = from + k * per_shard, e = from + std::min(count, (k + 1) * per_shard);
      p.sequences.assign(order.begin() + b, order.begin() + e);
      plans.push_back(std::move(p));
    }
  };
  cut(kTrainSplit, 0, n_train);
  cut(kValidationSplit, n_train, n_validation);
  return plans;
}

namespace {

// 1. Tokenises this rank's documents (d mod world == rank), in batches spread over threads; counts
// every document of the corpus in *num_docs.
LocalStream tokenize_own_documents(const WordPieceTokenizer& tok, const SequenceOptions& seq,
                                   const ShardBuildOptions& o, int rank, int world, int64_t* num_docs) {
  LocalStream local;
  std::vector<std::vector<std::string>> batch;
  const size_t batch_docs = size_t(256 * o.threads);
  // Bytes read before the batch's last document was complete: all of them are tokenised once it is.
  int64_t bytes_read = 0, bytes_reported = -1;
  const ProgressHook reading{[&](int64_t total) { o.tokenize_progress.start(total); },
                             [&](int64_t done) { bytes_read = done; }};
  auto tokenize_and_report = [&] {
    tokenize_batch(tok, seq, batch, o.threads, local);
    batch.clear();
    if (bytes_read > bytes_reported) o.tokenize_progress.report(bytes_reported = bytes_read);
  };
  for_each_document(
      o.corpus,
      [&](const std::vector<std::string>& lines) {
        if ((*num_docs)++ % world != rank) return;
        batch.push_back(lines);
        if (batch.size() >= batch_docs) tokenize_and_report();
      },
      reading);
  tokenize_and_report();
  return local;
}

// 2. Every rank learns every document's piece length (rank r holds documents r, r + world, ...).
std::vector<int64_t> exchange_piece_lengths(HcclLike& comm, const LocalStream& local, int64_t num_docs,
                                            const ShardBuildOptions& o) {
  const int world = comm.size();
  int64_t doc_range[2] = {-num_docs, num_docs};
  comm.allReduce(doc_range, doc_range, 2, DataType::I64, ReduceOp::Max)->waitAlive(o.peer_silence);
  agree(
      comm, RunOn::EveryRank,
      [&] {
        if (-doc_range[0] != doc_range[1])
          throw std::runtime_error("build_shards: ranks read different numbers of documents (" +
                                   std::to_string(-doc_range[0]) + " to " + std::to_string(doc_range[1]) + ") from " +
                                   o.corpus.input + ": is the corpus changing while it is read?");
      },
      o.peer_silence);
  std::vector<size_t> counts(static_cast<size_t>(world)), starts(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) counts[size_t(r)] = size_t(num_docs > r ? (num_docs - r + world - 1) / world : 0);
  std::exclusive_scan(counts.begin(), counts.end(), starts.begin(), size_t(0));
  std::vector<int64_t> gathered(static_cast<size_t>(num_docs));
  comm.allGatherv(local.lengths.data(), gathered.data(), counts, DataType::I64)->waitAlive(o.peer_silence);
  std::vector<int64_t> lengths(static_cast<size_t>(num_docs));
  for (int64_t d = 0; d < num_docs; ++d) lengths[size_t(d)] = gathered[starts[size_t(d % world)] + size_t(d / world)];
  return lengths;
}

// 3. Rank 0 gathers one shard's tokens from their owners and writes it; returns its manifest entry
// (rank 0 only).
class ShardAssembler {
 public:
  ShardAssembler(HcclLike& comm, const StreamLayout& layout, const LocalStream& local, int64_t seq_len)
      : comm_(comm), layout_(layout), local_(local), seq_len_(seq_len), counts_(size_t(comm.size())) {}

  // Every rank: sends its pieces of `plan`'s sequences to rank 0, in the order it walks the segments.
  void gather(const ShardPlan& plan, std::chrono::milliseconds silence) {
    send_.clear();
    std::fill(counts_.begin(), counts_.end(), 0);
    for (int64_t s : plan.sequences) {
      layout_.segments(s, segs_);
      for (const auto& g : segs_) {
        if (g.rank == comm_.rank())
          send_.insert(send_.end(), local_.ids.begin() + g.offset, local_.ids.begin() + g.offset + g.length);
        counts_[size_t(g.rank)] += size_t(g.length);
      }
    }
    const bool root = comm_.rank() == 0;
    if (root) recv_.resize(std::accumulate(counts_.begin(), counts_.end(), size_t(0)));
    comm_.gatherv(send_.data(), root ? recv_.data() : nullptr, counts_, DataType::I32, 0)->waitAlive(silence);
  }

  // Rank 0: the shard's tokens in sequence order (each owner's tokens arrived in segment order).
  const std::vector<int32_t>& assemble(const ShardPlan& plan) {
    std::vector<size_t> cursor(counts_.size());
    std::exclusive_scan(counts_.begin(), counts_.end(), cursor.begin(), size_t(0));
    shard_.clear();
    shard_.reserve(plan.sequences.size() * size_t(seq_len_));
    for (int64_t s : plan.sequences) {
      layout_.segments(s, segs_);
      for (const auto& g : segs_) {
        auto from = recv_.begin() + int64_t(cursor[size_t(g.rank)]);
        shard_.insert(shard_.end(), from, from + g.length);
        cursor[size_t(g.rank)] += size_t(g.length);
      }
    }
    return shard_;
  }

 private:
  HcclLike& comm_;
  const StreamLayout& layout_;
  const LocalStream& local_;
  int64_t seq_len_;
  std::vector<size_t> counts_;
  std::vector<StreamLayout::Segment> segs_;
  std::vector<int32_t> send_, recv_, shard_;
};

// The agreed checks of the options; returns the SHA-256 of vocab_path (on rank 0, "" elsewhere).
std::string check_options_and_hash_vocab(HcclLike& comm, const SequenceOptions& seq, const std::string& vocab_path,
                                         const ShardBuildOptions& o) {
  const int64_t L = seq.seq_len;
  std::string vocab_sha;
  agree(
      comm, RunOn::EveryRank,
      [&] {
        check_sequence_options(seq, vocab_path);
        if (o.sequences_per_shard < 1 || o.sequences_per_shard > INT_MAX / L)
          throw UsageError("data.sequences_per_shard = " + std::to_string(o.sequences_per_shard) + " must be in [1, " +
                           std::to_string(INT_MAX / L) + "] for data.seq_len " + std::to_string(L) +
                           " (a shard holds at most 2^31-1 tokens)");
        if (o.threads < 1) throw UsageError("threads must be >= 1, got " + std::to_string(o.threads));
        if (comm.rank() == 0) vocab_sha = io::sha256_file(vocab_path);
      },
      o.peer_silence);
  return vocab_sha;
}

// This rank's share of the tokenised corpus, and what every rank knows about the whole of it.
struct TokenizedCorpus {
  LocalStream local;
  int64_t num_docs = 0;
  std::vector<int64_t> lengths;        // every document's piece length
  int64_t skipped = 0, truncated = 0;  // over all ranks
  double seconds = 0;                  // the slowest rank's
};

// Steps 1 and 2, with the counts summed over the ranks.
TokenizedCorpus tokenize_corpus(const WordPieceTokenizer& tok, const SequenceOptions& seq, const ShardBuildOptions& o,
                                HcclLike& comm) {
  const auto t0 = std::chrono::steady_clock::now();
  TokenizedCorpus c;
  agree(
      comm, RunOn::EveryRank,
      [&] { c.local = tokenize_own_documents(tok, seq, o, comm.rank(), comm.size(), &c.num_docs); }, o.peer_silence);
  c.lengths = exchange_piece_lengths(comm, c.local, c.num_docs, o);
  int64_t sums[2] = {c.local.skipped, c.local.truncated};
  comm.allReduce(sums, sums, 2, DataType::I64, ReduceOp::Sum)->waitAlive(o.peer_silence);
  c.skipped = sums[0];
  c.truncated = sums[1];
  c.seconds = seconds_since(t0);
  comm.allReduce(&c.seconds, &c.seconds, 1, DataType::F64, ReduceOp::Max)->waitAlive(o.peer_silence);
  return c;
}

// The agreed shard plans; UsageError when the corpus gives no text or no full sequence.
std::vector<ShardPlan> plan_corpus_shards(HcclLike& comm, const TokenizedCorpus& c, const StreamLayout& layout,
                                          const ShardBuildOptions& o) {
  const int64_t L = o.sequence.seq_len;
  std::vector<ShardPlan> plans;
  agree(
      comm, RunOn::EveryRank,
      [&] {
        if (c.num_docs == c.skipped)
          throw UsageError(o.corpus.input + ": the corpus holds no text to tokenise (" + std::to_string(c.num_docs) +
                           " documents, none with any token)");
        if (layout.num_sequences() == 0)
          throw UsageError(o.corpus.input + ": the corpus gives no full sequence of " + std::to_string(L) +
                           " tokens (" + std::to_string(layout.total_tokens()) + " tokens in " +
                           std::to_string(c.num_docs - c.skipped) + " documents): add text or lower data.seq_len");
        plans = plan_shards(layout.num_sequences(), o.validation_fraction, o.shuffle_seed, o.sequences_per_shard);
      },
      o.peer_silence);
  return plans;
}

ShardAttributes shard_attributes(const WordPieceTokenizer& tok, const ShardBuildOptions& o,
                                 const std::string& vocab_sha) {
  ShardAttributes attrs;
  attrs.seq_len = o.sequence.seq_len;
  attrs.vocab_size = int64_t(tok.vocab_size());
  attrs.vocab_sha256 = vocab_sha;
  attrs.special_ids = tok.special_ids();
  attrs.lowercase = tok.lowercase();
  attrs.source = o.source.empty() ? o.corpus.input : o.source;
  return attrs;
}

// Step 3 for every plan, then the switch to the new set (shard_set.h). Returns the manifest on every
// rank.
Manifest write_shards(HcclLike& comm, const std::vector<ShardPlan>& plans, ShardAssembler& assembler,
                      const ShardAttributes& attrs, const ShardBuildOptions& o) {
  ShardSetWriter writer(o.shards_dir, attrs.vocab_size, attrs.seq_len);  // used on rank 0 only
  int64_t total = 0, written = 0;
  for (const ShardPlan& plan : plans) total += int64_t(plan.sequences.size());
  o.write_progress.start(total);
  for (const ShardPlan& plan : plans) {
    assembler.gather(plan, o.peer_silence);
    agree(
        comm, RunOn::Root,
        [&] {
          const std::vector<int32_t>& shard = assembler.assemble(plan);
          writer.write(plan.split, plan.index, attrs, shard.data(), int64_t(plan.sequences.size()));
        },
        o.peer_silence);
    o.write_progress.report(written += int64_t(plan.sequences.size()));
  }
  const nlohmann::json manifest_json = agree_on_root_json(
      comm, [&] { return manifest_to_json(writer.publish(o.before_publish)); }, o.peer_silence);
  return manifest_from_json(manifest_json, join_path(o.shards_dir, kManifestFileName));
}

ShardBuildStats build_stats(const TokenizedCorpus& c, const StreamLayout& layout, const Manifest& manifest,
                            double write_seconds) {
  ShardBuildStats st;
  st.documents = c.num_docs - c.skipped;
  st.skipped_documents = c.skipped;
  st.truncated_documents = c.truncated;
  st.tokens = layout.total_tokens();
  st.dropped_tokens = layout.dropped_tokens();
  st.train_sequences = manifest.num_sequences(kTrainSplit);
  st.validation_sequences = manifest.num_sequences(kValidationSplit);
  st.tokenize_seconds = c.seconds;
  st.write_seconds = write_seconds;
  return st;
}

}  // namespace

Manifest build_shards(const WordPieceTokenizer& tok, const std::string& vocab_path, const ShardBuildOptions& o,
                      HcclLike& comm, ShardBuildStats* stats_out) {
  SequenceOptions seq = o.sequence;
  seq.special_ids = tok.special_ids();
  const std::string vocab_sha = check_options_and_hash_vocab(comm, seq, vocab_path, o);
  const TokenizedCorpus corpus = tokenize_corpus(tok, seq, o, comm);
  const StreamLayout layout(corpus.lengths, comm.size(), o.sequence.seq_len);
  const std::vector<ShardPlan> plans = plan_corpus_shards(comm, corpus, layout, o);

  const auto t0 = std::chrono::steady_clock::now();
  ShardAssembler assembler(comm, layout, corpus.local, o.sequence.seq_len);
  const Manifest manifest = write_shards(comm, plans, assembler, shard_attributes(tok, o, vocab_sha), o);
  if (stats_out) *stats_out = build_stats(corpus, layout, manifest, seconds_since(t0));
  return manifest;
}

}  // namespace mpibert::data
