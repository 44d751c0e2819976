// prepare_data: text corpus -> WordPiece vocabulary -> HDF5 shards (docs/data.md).
//
//   prepare_data train-tokenizer | encode | shards | all [--config FILE] [--data.KEY VALUE ...]
//
// Runs as one process or as N MPI ranks (gaudi_spawn --world_size N prepare_data ...): shards are
// tokenised in parallel and come out byte-identical to a 1-rank run; word counting for the tokenizer
// is parallel too (the merges run on rank 0); rank 0 writes every file. The corpus (data.input) must
// be readable by every rank; the vocabulary is sent from rank 0. Each long phase (counting words,
// the merges, tokenising, writing shards, encode) shows a progress line with rate and ETA on rank 0.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "common/comm/agreement.h"
#include "common/comm/distributed_main.h"
#include "common/comm/mpi_backend.h"
#include "common/config/run_config.h"
#include "common/data/encode_file.h"
#include "common/data/sequence_builder.h"
#include "common/data/shard_format.h"
#include "common/data/shard_set.h"
#include "common/data/text_corpus.h"
#include "common/data/wordpiece.h"
#include "common/data/wordpiece_trainer.h"
#include "common/error.h"
#include "common/io/atomic_file.h"
#include "common/io/dir_lock.h"
#include "common/io/hf_tokenizer_files.h"
#include "common/io/json_file.h"
#include "common/io/sha256.h"
#include "common/log/log.h"
#include "common/log/progress.h"

namespace mpibert {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kUsage =
    "usage: prepare_data COMMAND [--config FILE] [--data.KEY VALUE ...] [options]\n"
    "\n"
    "commands:\n"
    "  train-tokenizer  train a WordPiece vocabulary on data.input -> data.shards_dir/vocab.txt and\n"
    "                   tokenizer_config.json (copies data.vocab_file instead when it is set)\n"
    "  shards           tokenise data.input with data.shards_dir/vocab.txt -> HDF5 shards + manifest.json\n"
    "  all              train-tokenizer (unless data.shards_dir/vocab.txt exists), then shards\n"
    "  encode           --input TEXT --output IDS [--vocab V] [--threads N] [--lowercase true|false]:\n"
    "                   one line of space-separated ids per non-blank input line\n"
    "\n"
    "options:\n"
    "  --overwrite      replace an existing vocabulary / shards made with different settings\n"
    "  --threads N      tokenising threads per rank (default: cores / ranks on the node; encode: all cores)\n"
    "  --vocab V        (encode) vocab.txt (default: data.vocab_file, else data.shards_dir/vocab.txt)\n"
    "  --input TEXT     (encode) text file\n"
    "  --output IDS     (encode) output file\n"
    "  --lowercase B    (encode) default: tokenizer_config.json beside the vocab, else data.lowercase\n"
    "\n"
    "Run under MPI to use N ranks: gaudi_spawn --world_size N prepare_data all --config FILE";

constexpr const char* kRecordFile = "prepare_data.json";

// ---------------------------------------------------------------------------------------------
// Ranks: every decision is taken on rank 0 (or on every rank alike) and shared through agree(), so all
// ranks fail together with the same message (main prints it on rank 0 only).

struct Job {
  HcclLike& comm;
  // A rank waiting for others (while rank 0 trains the vocabulary or writes files) gives up only when a
  // peer has been silent this long (dist.timeout_s once the configuration is read).
  std::chrono::milliseconds silence = kDefaultPeerSilence;
  int node_ranks = 1;        // ranks sharing this node's cores
  bool console_tty = false;  // progress lines redraw in place (console_is_tty(), checked on every rank)
  int rank() const { return comm.rank(); }
  int size() const { return comm.size(); }
  bool root() const { return comm.rank() == 0; }
};

void agreed(const Job& job, RunOn where, const std::function<void()>& body) {
  agree(job.comm, where, body, job.silence);
}

// ---------------------------------------------------------------------------------------------
// Progress of each phase: one line on rank 0 (redrawn on a terminal, every few seconds in a log).

// "tokenize (rank 0's share)": with several ranks, rank 0's line stands for all of them.
std::string share_label(const Job& job, const std::string& what) {
  return job.size() > 1 ? what + " (rank 0's share)" : what;
}

// A data::ProgressHook shown as a Progress line: the line begins when the library function knows its
// total and prints its final line when the count reaches it (or on finish(), for work that stops
// short of its total or has none).
class PhaseProgress {
 public:
  PhaseProgress(const Job& job, std::string label, std::string unit)
      : label_(std::move(label)), unit_(std::move(unit)), is_rank0_(job.root()) {
    options_.tty = job.console_tty;
  }

  data::ProgressHook hook() {
    return {[this](int64_t total) {
              total_ = total;
              progress_.emplace(label_, total, unit_, is_rank0_, options_);
            },
            [this](int64_t done) {
              if (!progress_) return;
              progress_->update(done);
              if (total_ > 0 && done >= total_) progress_->finish();
            }};
  }
  void finish() {
    if (progress_) progress_->finish();
  }

 private:
  std::string label_, unit_;
  bool is_rank0_;
  ProgressOptions options_;
  int64_t total_ = 0;
  std::optional<Progress> progress_;
};

// ---------------------------------------------------------------------------------------------
// Small helpers.

// Test hooks (tests/e2e/prepare_data_cli.sh): with VARIABLE=FILE in the environment, creates FILE
// (holding the pid) and waits until it is removed, so that a test can act while the run is at this
// point, or kill it there. MPIBERT_TEST_PAUSE_AFTER_LOCK: rank 0 holds data.shards_dir's lock;
// MPIBERT_TEST_PAUSE_BEFORE_PUBLISH: the new shards are written, manifest.json not yet;
// MPIBERT_TEST_PAUSE_AFTER_PUBLISH: manifest.json is switched, prepare_data.json not yet updated.
void pause_at_test_hook(const char* variable) {
  const char* file = std::getenv(variable);
  if (file == nullptr || *file == '\0') return;
  io::write_file_atomic(file, std::to_string(::getpid()) + "\n");
  spdlog::info("{}: paused until {} is removed", variable, file);
  while (fs::exists(file)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(path + ": cannot read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

data::CorpusOptions corpus_options(const DataConfig& d) {
  data::CorpusOptions c;
  c.input = d.input;
  c.text_field = d.text_field;
  c.document_separator = d.document_separator;
  return c;
}

// Whether the tokenizer files in `dir` lowercase (as transformers would read them), if there are any.
std::optional<bool> recorded_lowercase(const std::string& dir) {
  if (!fs::exists(fs::path(dir) / "tokenizer_config.json") && !fs::exists(fs::path(dir) / "tokenizer.json"))
    return std::nullopt;
  return io::read_hf_do_lower_case(dir);
}

int64_t tokenizer_max_length(const DataConfig& d) {
  return std::max<int64_t>(512, d.seq_len);
}

// The ranks on this node share its cores.
int default_threads(int node_ranks) {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, node_ranks));
}

int parse_threads(const std::map<std::string, std::string>& extras, int fallback) {
  auto it = extras.find("threads");
  if (it == extras.end()) return fallback;
  try {
    size_t used = 0;
    int v = std::stoi(it->second, &used);
    if (used == it->second.size() && v >= 0 && v <= 4096) return v == 0 ? fallback : v;
  } catch (...) {
  }
  throw UsageError("--threads: '" + it->second + "' is not a thread count (0..4096; 0 = default)");
}

// ---------------------------------------------------------------------------------------------
// The record (DIR/prepare_data.json) of the settings and inputs each step was made from, so that a
// rerun with the same configuration is a no-op (or a rebuild when the corpus changed) and a rerun
// with different settings is refused unless --overwrite.

json input_fingerprint(const DataConfig& d) {
  json files = json::array();
  for (const auto& path : data::list_corpus_files(corpus_options(d))) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw UsageError(path + ": cannot stat corpus file");
    files.push_back({{"path", path},
                     {"size", int64_t(st.st_size)},
                     {"mtime_ns", int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec}});
  }
  return files;
}

json tokenizer_settings(const DataConfig& d) {
  json s = {{"input", d.input},
            {"text_field", d.text_field},
            {"document_separator", d.document_separator},
            {"lowercase", d.lowercase},
            {"vocab_file", d.vocab_file}};
  if (d.vocab_file.empty()) {
    s["vocab_size"] = d.vocab_size;
    s["min_frequency"] = d.min_frequency;
    s["limit_alphabet"] = d.limit_alphabet;
  } else {
    // A copied vocabulary does not depend on the corpus or the training settings.
    s.erase("input");
    s.erase("text_field");
    s.erase("document_separator");
  }
  return s;
}

json shard_settings(const DataConfig& d) {
  return {{"input", d.input},
          {"text_field", d.text_field},
          {"document_separator", d.document_separator},
          {"lowercase", d.lowercase},
          {"seq_len", d.seq_len},
          {"line_by_line", d.line_by_line},
          {"validation_fraction", d.validation_fraction},
          {"shuffle_seed", d.shuffle_seed},
          {"sequences_per_shard", d.sequences_per_shard}};
}

json read_record(const std::string& dir) {
  const std::string path = data::join_path(dir, kRecordFile);
  if (!fs::exists(path)) return json::object();
  try {
    json r = io::read_json_file(path);
    return r.is_object() ? r : json::object();
  } catch (const UsageError&) {
    return json::object();  // unreadable record: treated as "made by someone else"
  }
}

void write_record_part(const std::string& dir, const std::string& part, const json& value) {
  json r = read_record(dir);
  r[part] = value;
  io::write_json_file(data::join_path(dir, kRecordFile), r, 2);
}

// "seq_len 128 -> 256, shuffle_seed 34 -> 1" for the keys that differ.
std::string describe_differences(const json& before, const json& now) {
  std::string out;
  for (auto it = now.begin(); it != now.end(); ++it) {
    const json old = before.contains(it.key()) ? before[it.key()] : json();
    if (old != it.value()) out += (out.empty() ? "" : ", ") + it.key() + " " + old.dump() + " -> " + it.value().dump();
  }
  for (auto it = before.begin(); it != before.end(); ++it)
    if (!now.contains(it.key())) out += (out.empty() ? "" : ", ") + it.key() + " " + it.value().dump() + " -> (unset)";
  return out;
}

// ---------------------------------------------------------------------------------------------
// train-tokenizer

// Counts words of this rank's documents (d mod size == rank) and merges all counts on rank 0.
std::vector<std::string> train_vocabulary(const Job& job, const DataConfig& d, int64_t* documents) {
  data::WordCounter counter(d.lowercase);
  int64_t docs = 0;
  PhaseProgress counting(job, share_label(job, "count words"), "bytes");
  agreed(job, RunOn::EveryRank, [&] {
    data::for_each_document(
        corpus_options(d),
        [&](const std::vector<std::string>& lines) {
          if (docs++ % job.size() != job.rank()) return;
          for (const auto& line : lines) counter.add_text(line);
        },
        counting.hook());
  });
  counting.finish();
  *documents = docs;
  // Serialise (word, count) pairs and gather them on rank 0.
  std::string blob;
  for (const auto& [word, count] : counter.counts()) {
    uint32_t n = uint32_t(word.size());
    blob.append(reinterpret_cast<const char*>(&n), sizeof(n));
    blob += word;
    blob.append(reinterpret_cast<const char*>(&count), sizeof(count));
  }
  const std::vector<std::string> blobs = gather_strings(job.comm, blob, 0, job.silence);
  blob = {};
  std::vector<std::string> tokens;
  agreed(job, RunOn::Root, [&] {
    data::WordCounter merged(d.lowercase);
    for (const std::string& part : blobs) {
      for (size_t p = 0; p < part.size();) {
        uint32_t n;
        uint64_t count;
        std::memcpy(&n, part.data() + p, sizeof(n));
        p += sizeof(n);
        std::string_view word(part.data() + p, n);
        p += n;
        std::memcpy(&count, part.data() + p, sizeof(count));
        p += sizeof(count);
        merged.add_word(word, count);
      }
    }
    if (merged.counts().empty())
      throw UsageError(d.input + ": the corpus holds no words to train a vocabulary on (" + std::to_string(docs) +
                       " documents)");
    data::WordPieceTrainerOptions t;
    t.vocab_size = size_t(d.vocab_size);
    t.min_frequency = size_t(d.min_frequency);
    t.limit_alphabet = size_t(d.limit_alphabet);
    t.lowercase = d.lowercase;
    PhaseProgress merging(job, "train WordPiece (merges)", "tokens");
    t.progress = merging.hook();
    tokens = data::train_wordpiece(merged, t);
    merging.finish();
  });
  return tokens;
}

enum class VocabMode { Command, All };
enum class VocabAction { UpToDate, UseExisting, Copy, Train };

// What rank 0 decided for the vocabulary, and the record part it writes once the vocabulary is made.
struct VocabPlan {
  VocabAction action = VocabAction::UpToDate;
  json settings, inputs;
};

// data.vocab_file is set: Copy it unless SHARDS_DIR already holds this copy. Adds the source's
// SHA-256 to `settings`.
VocabAction decide_vocab_copy(const DataConfig& d, bool overwrite, json& settings) {
  const std::string vocab = data::join_path(d.shards_dir, data::kVocabFileName);
  const std::string tok_config = data::join_path(d.shards_dir, data::kTokenizerConfigFileName);
  if (!fs::is_regular_file(d.vocab_file)) throw UsageError("data.vocab_file = " + d.vocab_file + ": no such file");
  const std::string src_dir = fs::path(d.vocab_file).parent_path().string();
  if (auto lower = recorded_lowercase(src_dir.empty() ? "." : src_dir); lower && *lower != d.lowercase)
    throw UsageError("vocab mismatch: " + data::join_path(src_dir, "tokenizer_config.json") +
                     " says do_lower_case=" + (*lower ? "true" : "false") + " but data.lowercase is " +
                     (d.lowercase ? "true" : "false") + "; set data.lowercase to match the vocabulary");
  const std::string source_sha = io::sha256_file(d.vocab_file);
  settings["vocab_file_sha256"] = source_sha;
  if (fs::exists(vocab) && !overwrite && io::sha256_file(vocab) != source_sha)
    throw UsageError("vocab mismatch: " + vocab + " differs from data.vocab_file " + d.vocab_file +
                     " (shards made with one cannot be read with the other); pass --overwrite to replace it, "
                     "or choose another data.shards_dir");
  const json record = read_record(d.shards_dir);
  // Up to date when the copy is already there: recorded with these settings, or (copied by `shards`,
  // which records nothing for the tokenizer) byte-identical with its tokenizer_config.json beside it.
  const bool recorded_other = record.contains("tokenizer") && record["tokenizer"].value("settings", json()) != settings;
  const bool same =
      fs::exists(vocab) && fs::exists(tok_config) && io::sha256_file(vocab) == source_sha && !recorded_other;
  return same ? VocabAction::UpToDate : VocabAction::Copy;
}

// No data.vocab_file: Train unless SHARDS_DIR/vocab.txt was trained with these settings on these
// corpus files; a vocab.txt from elsewhere is used as it is by `all` and refused by train-tokenizer.
VocabAction decide_vocab_training(const DataConfig& d, bool overwrite, VocabMode mode, const json& settings,
                                  const json& inputs) {
  const std::string vocab = data::join_path(d.shards_dir, data::kVocabFileName);
  if (!fs::exists(vocab) || overwrite) return VocabAction::Train;
  const json record = read_record(d.shards_dir);
  const bool ours =
      record.contains("tokenizer") && record["tokenizer"].value("vocab_sha256", "") == io::sha256_file(vocab);
  if (ours) {
    const json& before = record["tokenizer"]["settings"];
    if (before != settings)
      throw UsageError(vocab + " was trained with other settings (" + describe_differences(before, settings) +
                       "); pass --overwrite to retrain it (shards made with the old one must then be rebuilt), "
                       "or choose another data.shards_dir");
    return record["tokenizer"]["inputs"] == inputs ? VocabAction::UpToDate : VocabAction::Train;
  }
  if (mode == VocabMode::Command)
    throw UsageError(vocab +
                     " already exists and was not trained by prepare_data with this configuration; "
                     "pass --overwrite to replace it, or run `prepare_data shards` to use it");
  return VocabAction::UseExisting;
}

// Rank 0 only.
VocabPlan plan_vocabulary(const DataConfig& d, bool overwrite, VocabMode mode) {
  fs::create_directories(d.shards_dir);
  VocabPlan plan;
  plan.settings = tokenizer_settings(d);
  if (!d.vocab_file.empty()) {
    plan.action = decide_vocab_copy(d, overwrite, plan.settings);
    return plan;
  }
  plan.inputs = input_fingerprint(d);
  plan.action = decide_vocab_training(d, overwrite, mode, plan.settings, plan.inputs);
  return plan;
}

// Copies data.vocab_file (and the tokenizer_config.json beside it, else a new one) into SHARDS_DIR.
void copy_vocabulary(const Job& job, const DataConfig& d, const json& settings) {
  const std::string vocab = data::join_path(d.shards_dir, data::kVocabFileName);
  const std::string tok_config = data::join_path(d.shards_dir, data::kTokenizerConfigFileName);
  agreed(job, RunOn::Root, [&] {
    io::write_file_atomic(vocab, read_file_bytes(d.vocab_file));
    // Check it loads and has what BERT needs before anything is built on it.
    auto tok = data::WordPieceTokenizer::from_vocab_file(vocab, d.lowercase);
    const std::string src_config =
        data::join_path(fs::path(d.vocab_file).parent_path().string(), data::kTokenizerConfigFileName);
    if (fs::exists(src_config) && fs::path(src_config) != fs::path(tok_config))
      io::write_file_atomic(tok_config, read_file_bytes(src_config));
    else
      data::write_tokenizer_config(tok_config, d.lowercase, tokenizer_max_length(d));
    json part = {{"settings", settings}, {"vocab_sha256", io::sha256_file(vocab)}};
    write_record_part(d.shards_dir, "tokenizer", part);
    spdlog::info("copied {} ({} tokens) to {}", d.vocab_file, tok.vocab_size(), vocab);
  });
}

void train_and_write_vocabulary(const Job& job, const DataConfig& d, const json& settings, const json& inputs) {
  const std::string vocab = data::join_path(d.shards_dir, data::kVocabFileName);
  const std::string tok_config = data::join_path(d.shards_dir, data::kTokenizerConfigFileName);
  spdlog::info("training a WordPiece vocabulary of up to {} tokens on {} ({} rank(s) count words)", d.vocab_size,
               d.input, job.size());
  const auto t0 = std::chrono::steady_clock::now();
  int64_t documents = 0;
  const std::vector<std::string> tokens = train_vocabulary(job, d, &documents);
  agreed(job, RunOn::Root, [&] {
    data::write_vocab_file(vocab, tokens);
    data::write_tokenizer_config(tok_config, d.lowercase, tokenizer_max_length(d));
    json part = {{"settings", settings}, {"inputs", inputs}, {"vocab_sha256", io::sha256_file(vocab)}};
    write_record_part(d.shards_dir, "tokenizer", part);
    spdlog::info("wrote {} ({} tokens from {} documents) and {} in {:.1f} s", vocab, tokens.size(), documents,
                 tok_config, seconds_since(t0));
  });
}

// Makes SHARDS_DIR/vocab.txt + tokenizer_config.json exist for the current settings (see docs/data.md).
void ensure_vocabulary(const Job& job, const DataConfig& d, bool overwrite, VocabMode mode) {
  const std::string vocab = data::join_path(d.shards_dir, data::kVocabFileName);
  VocabPlan plan;  // settings and inputs: rank 0 only
  agreed(job, RunOn::Root, [&] { plan = plan_vocabulary(d, overwrite, mode); });
  switch (broadcast_value(job.comm, plan.action, 0, job.silence)) {
    case VocabAction::UpToDate:
      spdlog::info("{} is up to date (same settings and corpus files)", vocab);
      return;
    case VocabAction::UseExisting:
      spdlog::info("using the existing {} (not trained by this configuration; --overwrite retrains)", vocab);
      return;
    case VocabAction::Copy:
      copy_vocabulary(job, d, plan.settings);
      return;
    case VocabAction::Train:
      train_and_write_vocabulary(job, d, plan.settings, plan.inputs);
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// shards

// Rank 0: removes the shard files DIR's manifest does not list (leftovers of an interrupted run).
void remove_leftover_shard_files(const std::string& dir, const std::set<std::string>& listed) {
  const auto removed = data::remove_shard_files_except(dir, listed);
  if (!removed.empty())
    spdlog::info("removed {} shard file(s) no manifest lists from {} (left by an interrupted run), e.g. {}",
                 removed.size(), dir, removed.front());
}

// Rank 0: "" when every shard manifest.json lists has the listed SHA-256, else what is wrong.
std::string check_published_shards(const std::string& dir) {
  const auto t0 = std::chrono::steady_clock::now();
  data::Manifest live;
  try {
    live = data::read_manifest(dir);
  } catch (const UsageError& e) {
    return e.what();
  }
  const std::string problem = data::verify_shard_files(dir, live);
  if (problem.empty())
    spdlog::info("checked the sha256 of the {} shard(s) {} lists in {:.2f} s", live.shards.size(),
                 data::join_path(dir, data::kManifestFileName), seconds_since(t0));
  return problem;
}

// Rank 0: whether the shards must be built, or are up to date (same settings and inputs, every
// listed shard intact); UsageError when SHARDS_DIR holds shards this configuration may not replace.
// The published set stays until a new one replaces it (data/shard_set.h).
bool decide_shard_build(const DataConfig& d, bool overwrite, const json& settings, const json& derived) {
  const std::string dir = d.shards_dir;
  const auto files = data::list_shard_files(dir);
  const bool finished = fs::exists(data::join_path(dir, data::kManifestFileName));
  if (overwrite) return true;
  if (!finished) {
    // Published names are ours (an interrupted first run); legacy names may be anyone's.
    for (const auto& f : files)
      if (data::shard_file_kind(f) == data::ShardFileKind::Legacy)
        throw UsageError(dir + " already holds shard files (" + f +
                         ", no manifest.json: an interrupted run?) not made with this configuration; pass "
                         "--overwrite to replace them, or choose another data.shards_dir");
    remove_leftover_shard_files(dir, {});
    return true;
  }
  const json record = read_record(dir);
  if (!record.contains("shards"))
    throw UsageError(dir + " already holds shard files (" + (files.empty() ? data::kManifestFileName : files.front()) +
                     ") not made with this configuration; pass --overwrite to replace them, or choose another "
                     "data.shards_dir");
  // The record describes the set it was written after; a run stopped between its switch and its
  // record leaves a set the record does not describe (records of older versions name no manifest).
  const json& recorded_manifest = record["shards"].value("manifest_sha256", json());
  if (!recorded_manifest.is_null() &&
      recorded_manifest != io::sha256_file(data::join_path(dir, data::kManifestFileName))) {
    spdlog::warn("{} is not the one {} describes (a run stopped after publishing its shards): rebuilding",
                 data::join_path(dir, data::kManifestFileName), kRecordFile);
    return true;
  }
  const json& before = record["shards"]["settings"];
  if (before != settings)
    throw UsageError(dir + " holds shards made with other settings (" + describe_differences(before, settings) +
                     "); pass --overwrite to replace them, or choose another data.shards_dir");
  if (record["shards"]["derived"] != derived) {
    spdlog::info("the corpus or the vocabulary changed since {} was built: rebuilding", dir);
    return true;
  }
  const std::string problem = check_published_shards(dir);
  if (!problem.empty()) {
    spdlog::warn("{}: rebuilding the shards", problem);
    return true;
  }
  remove_leftover_shard_files(dir, data::listed_files(data::read_manifest(dir)));
  return false;
}

// Rank 0 loads the vocabulary and sends its tokens, so other nodes need not see the file.
data::WordPieceTokenizer tokenizer_from_root(const Job& job, const std::string& vocab, bool lowercase) {
  const std::string token_text = agree_on_root(
      job.comm,
      [&] {
        const auto tok = data::WordPieceTokenizer::from_vocab_file(vocab, lowercase);
        std::string text;
        for (const auto& t : tok.tokens()) text += t + "\n";
        return text;
      },
      job.silence);
  std::vector<std::string> tokens;
  for (size_t p = 0; p < token_text.size();) {
    size_t nl = token_text.find('\n', p);
    tokens.push_back(token_text.substr(p, nl - p));
    p = nl + 1;
  }
  return data::WordPieceTokenizer::from_tokens(std::move(tokens), lowercase);
}

data::ShardBuildOptions shard_build_options(const Job& job, const DataConfig& d, int threads) {
  data::ShardBuildOptions o;
  o.corpus = corpus_options(d);
  o.shards_dir = d.shards_dir;
  o.sequence.seq_len = d.seq_len;
  o.sequence.line_by_line = d.line_by_line;
  o.validation_fraction = d.validation_fraction;
  o.shuffle_seed = uint64_t(d.shuffle_seed);
  o.sequences_per_shard = d.sequences_per_shard;
  o.source = d.input;
  o.threads = threads;
  o.peer_silence = job.silence;
  return o;
}

void log_shard_stats(const DataConfig& d, const data::ShardBuildStats& st, const data::Manifest& manifest) {
  spdlog::info(
      "tokenised {} documents ({} skipped without tokens, {} truncated) into {} tokens in {:.1f} s "
      "({:.0f} tokens/s)",
      st.documents, st.skipped_documents, st.truncated_documents, st.tokens, st.tokenize_seconds,
      double(st.tokens) / std::max(st.tokenize_seconds, 1e-9));
  spdlog::info(
      "wrote {} train + {} validation sequences of {} tokens in {} shard(s) to {} in {:.1f} s ({} tokens "
      "of the last partial sequence dropped)",
      st.train_sequences, st.validation_sequences, d.seq_len, manifest.shards.size(), d.shards_dir, st.write_seconds,
      st.dropped_tokens);
}

void build_shard_directory(const Job& job, const DataConfig& d, bool overwrite, int threads) {
  const std::string dir = d.shards_dir;
  const std::string vocab = data::join_path(dir, data::kVocabFileName);
  json settings, derived;  // rank 0 only
  bool build = false;
  agreed(job, RunOn::Root, [&] {
    if (!fs::exists(vocab))
      throw UsageError(vocab +
                       ": missing: run `prepare_data train-tokenizer` (or `all`) first, or set "
                       "data.vocab_file to an existing BERT vocab.txt");
    if (auto lower = recorded_lowercase(dir); lower && *lower != d.lowercase)
      throw UsageError("vocab mismatch: " + data::join_path(dir, data::kTokenizerConfigFileName) +
                       " says do_lower_case=" + (*lower ? "true" : "false") + " but data.lowercase is " +
                       (d.lowercase ? "true" : "false") +
                       "; set data.lowercase to match the vocabulary or retrain it (train-tokenizer --overwrite)");
    settings = shard_settings(d);
    derived = {{"vocab_sha256", io::sha256_file(vocab)}, {"inputs", input_fingerprint(d)}};
    build = decide_shard_build(d, overwrite, settings, derived);
  });
  if (!broadcast_value(job.comm, build, 0, job.silence)) {
    spdlog::info("{} is up to date (same settings, vocabulary and corpus files, every shard intact); nothing to do",
                 dir);
    return;
  }

  const data::WordPieceTokenizer tok = tokenizer_from_root(job, vocab, d.lowercase);
  spdlog::info("building shards of {} tokens ({}) from {} on {} rank(s) x {} thread(s)", d.seq_len,
               d.line_by_line ? "line by line" : "packed", d.input, job.size(), threads);
  data::ShardBuildOptions options = shard_build_options(job, d, threads);
  PhaseProgress tokenizing(job, share_label(job, "tokenize"), "bytes");
  PhaseProgress writing(job, "write shards", "sequences");
  options.tokenize_progress = tokenizing.hook();
  options.write_progress = writing.hook();
  options.before_publish = [] { pause_at_test_hook("MPIBERT_TEST_PAUSE_BEFORE_PUBLISH"); };
  data::ShardBuildStats st;
  const data::Manifest manifest = data::build_shards(tok, vocab, options, job.comm, &st);  // errors: agreed
  tokenizing.finish();
  writing.finish();
  agreed(job, RunOn::Root, [&] {
    pause_at_test_hook("MPIBERT_TEST_PAUSE_AFTER_PUBLISH");
    const std::string manifest_sha256 = io::sha256_file(data::join_path(dir, data::kManifestFileName));
    write_record_part(dir, "shards",
                      {{"settings", settings}, {"derived", derived}, {"manifest_sha256", manifest_sha256}});
  });
  log_shard_stats(d, st, manifest);
}

// ---------------------------------------------------------------------------------------------
// encode

void encode_command(const Job& job, const RunConfig& cfg, const config::ParsedArgs& parsed) {
  const auto& ex = parsed.extras;
  auto get = [&](const char* name) { return ex.count(name) ? ex.at(name) : std::string(); };
  const std::string input = get("input"), output = get("output");
  std::string vocab = get("vocab");
  if (input.empty() || output.empty())
    throw UsageError("encode needs --input TEXT and --output IDS (see prepare_data --help)");
  if (vocab.empty())
    vocab =
        cfg.data.vocab_file.empty() ? data::join_path(cfg.data.shards_dir, data::kVocabFileName) : cfg.data.vocab_file;
  bool lowercase = cfg.data.lowercase;
  std::string lowercase_from = "data.lowercase";
  if (ex.count("lowercase")) {
    const std::string v = ex.at("lowercase");
    if (v != "true" && v != "false") throw UsageError("--lowercase: '" + v + "' must be true or false");
    lowercase = v == "true";
    lowercase_from = "--lowercase";
  } else {
    const std::string vocab_dir = fs::path(vocab).parent_path().string();
    if (auto lower = recorded_lowercase(vocab_dir.empty() ? "." : vocab_dir)) {
      lowercase = *lower;
      lowercase_from = data::join_path(vocab_dir, data::kTokenizerConfigFileName);
    }
  }
  const int threads = parse_threads(ex, 0);
  if (job.size() > 1) spdlog::info("encode runs on rank 0 only (with {} threads)", threads);
  agreed(job, RunOn::Root, [&] {
    const auto tok = data::WordPieceTokenizer::from_vocab_file(vocab, lowercase);
    spdlog::info("encoding {} with {} ({} tokens, lowercase {} from {})", input, vocab, tok.vocab_size(),
                 lowercase ? "true" : "false", lowercase_from);
    PhaseProgress encoding(job, "encode", "bytes");
    const data::EncodeStats st = data::encode_file(tok, input, output, threads, encoding.hook());
    encoding.finish();
    const double mb = double(st.bytes) / 1e6;
    std::fprintf(stderr,
                 "prepare_data encode: %llu lines, %.2f MB, %llu tokens in %.3f s (%.2f MB/s, %.0f tokens/s) -> %s\n",
                 static_cast<unsigned long long>(st.lines), mb, static_cast<unsigned long long>(st.tokens), st.seconds,
                 mb / std::max(st.seconds, 1e-9), double(st.tokens) / std::max(st.seconds, 1e-9), output.c_str());
  });
}

// ---------------------------------------------------------------------------------------------

// train-tokenizer, shards and all write into data.shards_dir: rank 0 holds it exclusively until they
// end, so that a second prepare_data (or a run_mlm reading it) fails at once, naming this run.
void run_directory_command(const Job& job, const RunConfig& cfg, const config::ParsedArgs& parsed,
                           const std::string& command) {
  io::DirLock lock;  // rank 0 only
  agreed(job, RunOn::Root, [&] {
    lock = io::DirLock::acquire(cfg.data.shards_dir, io::LockMode::Exclusive, "prepare_data " + command);
    pause_at_test_hook("MPIBERT_TEST_PAUSE_AFTER_LOCK");
  });
  const bool overwrite = parsed.extras.count("overwrite") > 0;
  int threads = 1;
  agreed(job, RunOn::EveryRank, [&] { threads = parse_threads(parsed.extras, default_threads(job.node_ranks)); });
  if (command == "train-tokenizer") {
    ensure_vocabulary(job, cfg.data, overwrite, VocabMode::Command);
  } else if (command == "shards") {
    if (!cfg.data.vocab_file.empty()) ensure_vocabulary(job, cfg.data, overwrite, VocabMode::All);
    build_shard_directory(job, cfg.data, overwrite, threads);
  } else {  // all
    ensure_vocabulary(job, cfg.data, overwrite, VocabMode::All);
    build_shard_directory(job, cfg.data, overwrite, threads);
  }
}

int prepare_data_main(Job job, int argc, char** argv) {
  static const std::vector<std::string> kCommands = {"train-tokenizer", "encode", "shards", "all"};
  const std::map<std::string, bool> extras = {{"overwrite", false}, {"threads", true}, {"vocab", true},
                                              {"input", true},      {"output", true},  {"lowercase", true}};
  config::ParsedArgs parsed;
  RunConfig cfg;
  agreed(job, RunOn::EveryRank, [&] { cfg = parse_run_config(argc, argv, &parsed, extras); });
  if (parsed.help) {
    if (job.root()) std::printf("%s\n", run_schema().help_text(kUsage).c_str());
    return kExitOk;
  }
  const std::string command = parsed.positionals.empty() ? "" : parsed.positionals.front();
  agreed(job, RunOn::EveryRank, [&] {
    if (command.empty())
      throw UsageError("missing command: train-tokenizer | encode | shards | all (prepare_data --help)");
    if (std::find(kCommands.begin(), kCommands.end(), command) == kCommands.end()) {
      std::string hint = config::nearest(command, kCommands);
      throw UsageError("unknown command '" + command + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?") +
                       " (train-tokenizer | encode | shards | all)");
    }
    if (parsed.positionals.size() > 1)
      throw UsageError("unexpected argument '" + parsed.positionals[1] + "' after the command " + command);
    if (command != "encode") {
      const std::map<std::string, std::string> instead = {{"vocab", "data.vocab_file"},
                                                          {"input", "data.input"},
                                                          {"output", "data.shards_dir"},
                                                          {"lowercase", "data.lowercase"}};
      for (const auto& [flag, key] : instead)
        if (parsed.extras.count(flag))
          throw UsageError("--" + flag + " is an option of encode; for " + command + " use --" + key +
                           " (prepare_data --help)");
    }
    if (cfg.data.shards_dir.empty()) throw UsageError("data.shards_dir must not be empty");
  });
  job.silence = std::chrono::milliseconds(int64_t(cfg.dist.timeout_s * 1000));
  agreed(job, RunOn::EveryRank, [&] { job.console_tty = console_is_tty(); });
  init_logging(LogOptions{job.rank(), job.size(), cfg.train.log_level, "", false});
  if (job.root()) {
    spdlog::info("prepare_data {} on {} rank(s){}", command, job.size(),
                 parsed.config_file.empty() ? "" : " with " + parsed.config_file);
    for (const auto& f : run_schema().fields())
      if (f.key.rfind("data.", 0) == 0) spdlog::info("  {} = {}", f.key, run_schema().get(&cfg, f.key));
  }

  if (command == "encode")
    encode_command(job, cfg, parsed);
  else
    run_directory_command(job, cfg, parsed, command);
  return kExitOk;
}

}  // namespace
}  // namespace mpibert

int main(int argc, char** argv) {
  // MPI is always initialised: under mpirun (gaudi_spawn) each rank gets its place, and a plain run is
  // an MPI singleton of one rank. Only the backend's progress thread and this thread call MPI (through
  // common/comm); the tokenising threads never do.
  return mpibert::run_distributed_main(
      "prepare_data", &argc, &argv, [&](mpibert::HcclLike& comm, const mpibert::MpiEnvironment& env) {
        const mpibert::Job job{comm, mpibert::kDefaultPeerSilence, env.ranksOnThisNode()};
        return mpibert::prepare_data_main(job, argc, argv);
      });
}
