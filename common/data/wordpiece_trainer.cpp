#include "common/data/wordpiece_trainer.h"

#include <algorithm>
#include <map>
#include <queue>
#include <stdexcept>

#include "common/data/unicode_text.h"
#include "common/error.h"
#include "common/io/atomic_file.h"
#include "common/io/json_file.h"

namespace mpibert::data {

WordCounter::WordCounter(bool lowercase) : basic_(lowercase) {}

void WordCounter::add_text(std::string_view text) {
  scratch_.clear();
  basic_.split(text, scratch_);
  for (size_t i = 0; i < scratch_.size(); ++i) {
    key_.assign(scratch_[i]);
    ++counts_[key_];
  }
}

void WordCounter::add_word(std::string_view word, uint64_t count) {
  for (size_t i = 0; i < word.size();) {
    if (unicode::decode_utf8(word, i) == unicode::kInvalid) {
      throw std::invalid_argument("WordCounter::add_word: word is not valid UTF-8");
    }
  }
  if (word.empty() || count == 0) return;
  key_.assign(word);
  counts_[key_] += count;
}

void WordCounter::merge(const WordCounter& other) {
  if (other.lowercase() != lowercase()) {
    throw std::invalid_argument("WordCounter::merge: counters disagree on lowercase");
  }
  for (const auto& [word, count] : other.counts_) counts_[word] += count;
}

namespace {

using Pair = uint64_t;  // (left id << 32) | right id: orders like tokenizers' (u32, u32) tuple
inline Pair make_pair_key(uint32_t a, uint32_t b) {
  return (static_cast<uint64_t>(a) << 32) | b;
}
inline uint32_t left_of(Pair p) {
  return static_cast<uint32_t>(p >> 32);
}
inline uint32_t right_of(Pair p) {
  return static_cast<uint32_t>(p);
}

struct Merge {
  Pair pair;
  uint64_t count;
  std::vector<uint32_t> words;  // where the pair was seen (ascending word index)
};
// Max-heap order: larger count first; equal counts: smaller pair first.
struct MergeLess {
  bool operator()(const Merge& a, const Merge& b) const {
    if (a.count != b.count) return a.count < b.count;
    return a.pair > b.pair;
  }
};

struct Change {
  Pair pair;
  int delta;
};

// tokenizers' Word::merge: replaces each non-overlapping (c1, c2), left to right, and reports the pairs
// that disappeared (-1) and appeared (+1) around each replacement.
void merge_word(std::vector<uint32_t>& symbols, uint32_t c1, uint32_t c2, uint32_t replacement,
                std::vector<Change>& changes) {
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (symbols[i] != c1 || i + 1 >= symbols.size() || symbols[i + 1] != c2) continue;
    if (i > 0) {
      changes.push_back({make_pair_key(symbols[i - 1], c1), -1});
      changes.push_back({make_pair_key(symbols[i - 1], replacement), 1});
    }
    symbols[i] = replacement;
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    if (i + 1 < symbols.size()) {
      changes.push_back({make_pair_key(c2, symbols[i + 1]), -1});
      changes.push_back({make_pair_key(replacement, symbols[i + 1]), 1});
    }
  }
}

class Vocab {
 public:
  bool contains(const std::string& s) const { return ids_.count(s) != 0; }
  uint32_t add(const std::string& s) {
    const auto [it, inserted] = ids_.emplace(s, static_cast<uint32_t>(tokens_.size()));
    if (inserted) tokens_.push_back(s);
    return it->second;
  }
  uint32_t id(const std::string& s) const { return ids_.at(s); }
  const std::string& token(uint32_t id) const { return tokens_[id]; }
  size_t size() const { return tokens_.size(); }
  std::vector<std::string> release() { return std::move(tokens_); }

 private:
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<std::string> tokens_;
};

const std::string kPrefix = "##";

using WordCount = std::pair<std::string_view, uint64_t>;
using Symbols = std::vector<uint32_t>;  // a word as vocabulary ids

// Words in byte order, so ids and tie breaks do not depend on hash-map order.
std::vector<WordCount> words_in_byte_order(const WordCounter& counter) {
  std::vector<WordCount> words;
  words.reserve(counter.counts().size());
  for (const auto& [w, c] : counter.counts()) words.emplace_back(w, c);
  std::sort(words.begin(), words.end());
  return words;
}

// Alphabet: every character, weighted by word count; keeps the limit_alphabet most frequent
// (ties: the smaller code point stays), added in code point order.
void add_alphabet(const std::vector<WordCount>& words, size_t limit_alphabet, Vocab& vocab) {
  std::map<char32_t, uint64_t> alphabet;
  for (const auto& [w, c] : words) {
    for (size_t i = 0; i < w.size();) alphabet[unicode::decode_utf8(w, i)] += c;
  }
  std::vector<std::pair<char32_t, uint64_t>> kept(alphabet.begin(), alphabet.end());
  if (kept.size() > limit_alphabet) {
    std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second < b.second : a.first > b.first;
    });
    kept.erase(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(kept.size() - limit_alphabet));
    std::sort(kept.begin(), kept.end());
  }
  for (const auto& [cp, count] : kept) {
    std::string s;
    unicode::append_utf8(s, cp);
    vocab.add(s);
  }
}

// Words as symbol ids: characters outside the alphabet are skipped; every character but the word's
// first carries the "##" prefix (added to the vocabulary on first use).
std::vector<Symbols> words_as_symbols(const std::vector<WordCount>& words, Vocab& vocab) {
  std::vector<Symbols> symbols(words.size());
  for (size_t w = 0; w < words.size(); ++w) {
    const std::string_view word = words[w].first;
    for (size_t i = 0; i < word.size();) {
      const bool first = i == 0;
      const size_t begin = i;
      unicode::decode_utf8(word, i);
      std::string s(word.substr(begin, i - begin));
      if (!vocab.contains(s)) continue;
      if (!first) s = kPrefix + s;
      symbols[w].push_back(vocab.add(s));
    }
  }
  return symbols;
}

// The merges, exactly as tokenizers' BpeTrainer::do_train orders and stops them: pair counts, the
// words each pair occurs in, and a queue of candidate merges (possibly stale, checked when popped).
class PairMerger {
 public:
  PairMerger(std::vector<Symbols> symbols, std::vector<uint64_t> counts)
      : symbols_(std::move(symbols)), counts_(std::move(counts)) {
    for (size_t w = 0; w < symbols_.size(); ++w) {
      const auto& s = symbols_[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const Pair p = make_pair_key(s[i], s[i + 1]);
        pair_counts_[p] += static_cast<int64_t>(counts_[w]);
        note_word(p, static_cast<uint32_t>(w));
      }
    }
    queue_noted_pairs();
  }

  void run(const WordPieceTrainerOptions& options, Vocab& vocab) {
    const int64_t initial = static_cast<int64_t>(vocab.size());
    options.progress.start(std::max<int64_t>(0, static_cast<int64_t>(options.vocab_size) - initial));
    auto added = [&] { return static_cast<int64_t>(vocab.size()) - initial; };
    int64_t reported = -1;  // tokens added at the last report (none yet)
    auto report = [&] { options.progress.report(reported = added()); };
    merge_until_done(options, vocab, [&] {
      if (added() >= std::max<int64_t>(reported, 0) + kMergeProgressTokens) report();
    });
    if (added() != reported) report();  // the end, unless just reported
  }

 private:
  // The merge loop; after_merge runs after each merge (for the progress reports).
  template <typename AfterMerge>
  void merge_until_done(const WordPieceTrainerOptions& options, Vocab& vocab, AfterMerge after_merge) {
    while (vocab.size() < options.vocab_size && !queue_.empty()) {
      Merge top = std::move(const_cast<Merge&>(queue_.top()));
      queue_.pop();
      const int64_t current = std::max<int64_t>(0, pair_counts_[top.pair]);
      if (top.count != static_cast<uint64_t>(current)) {  // stale entry: requeue with today's count
        top.count = static_cast<uint64_t>(current);
        queue_.push(std::move(top));
        continue;
      }
      if (top.count < 1 || options.min_frequency > top.count) break;
      apply(top, vocab);
      after_merge();
    }
  }

  // Adds the merged token and replaces the pair in every word it occurs in.
  void apply(const Merge& top, Vocab& vocab) {
    const uint32_t a = left_of(top.pair), b = right_of(top.pair);
    std::string right = vocab.token(b);
    if (right.compare(0, kPrefix.size(), kPrefix) == 0) right.erase(0, kPrefix.size());
    const uint32_t merged = vocab.add(vocab.token(a) + right);

    for (const uint32_t w : top.words) {
      changes_.clear();
      merge_word(symbols_[w], a, b, merged, changes_);
      for (const Change& ch : changes_) {
        pair_counts_[ch.pair] += ch.delta * static_cast<int64_t>(counts_[w]);
        if (ch.delta > 0) note_word(ch.pair, w);
      }
    }
    queue_noted_pairs();
  }

  void note_word(Pair p, uint32_t w) {
    auto& list = where_[p];
    if (list.empty() || list.back() != w) list.push_back(w);
  }

  // Queues every pair noted since the last call (with a positive count) and forgets the notes.
  void queue_noted_pairs() {
    for (auto& [p, list] : where_) {
      const int64_t c = pair_counts_[p];
      if (c > 0) queue_.push(Merge{p, static_cast<uint64_t>(c), std::move(list)});
    }
    where_.clear();
  }

  std::vector<Symbols> symbols_;
  std::vector<uint64_t> counts_;  // of each word
  std::unordered_map<Pair, int64_t> pair_counts_;
  std::map<Pair, std::vector<uint32_t>> where_;  // words (ascending) of the pairs not yet queued
  std::priority_queue<Merge, std::vector<Merge>, MergeLess> queue_;
  std::vector<Change> changes_;
};

}  // namespace

std::vector<std::string> train_wordpiece(const WordCounter& counter, const WordPieceTrainerOptions& options) {
  if (counter.lowercase() != options.lowercase) {
    throw std::invalid_argument("train_wordpiece: the WordCounter's lowercase differs from the options'");
  }
  const std::vector<WordCount> words = words_in_byte_order(counter);
  Vocab vocab;
  for (const std::string& s : options.special_tokens) vocab.add(s);
  add_alphabet(words, options.limit_alphabet, vocab);
  std::vector<uint64_t> counts(words.size());
  for (size_t w = 0; w < words.size(); ++w) counts[w] = words[w].second;
  PairMerger merger(words_as_symbols(words, vocab), std::move(counts));
  merger.run(options, vocab);
  return vocab.release();
}

std::vector<std::string> train_wordpiece(const std::vector<std::string>& documents_or_lines,
                                         const WordPieceTrainerOptions& options) {
  WordCounter counter(options.lowercase);
  for (const std::string& text : documents_or_lines) counter.add_text(text);
  return train_wordpiece(counter, options);
}

std::vector<std::string> train_wordpiece(std::initializer_list<std::string> documents_or_lines,
                                         const WordPieceTrainerOptions& options) {
  return train_wordpiece(std::vector<std::string>(documents_or_lines), options);
}

void write_vocab_file(const std::string& path, const std::vector<std::string>& tokens) {
  std::string text;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].find_first_of("\r\n") != std::string::npos) {
      throw UsageError(path + ": token " + std::to_string(i) +
                       " holds a line break and cannot be written to vocab.txt");
    }
    text += tokens[i];
    text += '\n';
  }
  io::write_file_atomic(path, text);
}

void write_tokenizer_config(const std::string& path, bool lowercase, int64_t model_max_length) {
  // The keys transformers' BertTokenizer saves; tokenizer_class lets AutoTokenizer pick
  // BertTokenizerFast (built from vocab.txt) as well.
  nlohmann::json config = {
      {"tokenizer_class", "BertTokenizer"},
      {"do_lower_case", lowercase},
      {"do_basic_tokenize", true},
      {"never_split", nullptr},
      {"tokenize_chinese_chars", true},
      {"strip_accents", nullptr},
      {"unk_token", "[UNK]"},
      {"sep_token", "[SEP]"},
      {"pad_token", "[PAD]"},
      {"cls_token", "[CLS]"},
      {"mask_token", "[MASK]"},
      {"model_max_length", model_max_length},
      {"clean_up_tokenization_spaces", true},
  };
  io::write_json_file(path, config, 2);
}

}  // namespace mpibert::data
