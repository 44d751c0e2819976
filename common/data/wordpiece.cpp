#include "common/data/wordpiece.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/data/unicode_text.h"
#include "common/error.h"

namespace mpibert::data {

namespace {

// Short-string hash (the overlapping-read tricks of wyhash): one multiply per 8 bytes.
inline uint64_t hash_bytes(const char* p, size_t n) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0x243F6A8885A308D3ull ^ (static_cast<uint64_t>(n) * kMul);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * kMul;
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    h = (h ^ ((static_cast<uint64_t>(a) << 32) | b)) * kMul;
    h ^= h >> 32;
  } else if (n > 0) {
    const uint64_t v = static_cast<uint64_t>(static_cast<unsigned char>(p[0])) |
                       (static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8) |
                       (static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16);
    h = (h ^ v) * kMul;
    h ^= h >> 32;
  }
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  return h;
}

// The first min(n, 8) bytes of p, zero-padded (fixed-size loads only; overlapping reads for n < 8).
inline uint64_t head_of(const char* p, size_t n) {
  if (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }
  if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    return static_cast<uint64_t>(a) | (static_cast<uint64_t>(b) << (8 * (n - 4)));
  }
  if (n == 0) return 0;
  const auto byte = [&](size_t i) { return static_cast<uint64_t>(static_cast<unsigned char>(p[i])); };
  return byte(0) | (byte(n / 2) << (8 * (n / 2))) | (byte(n - 1) << (8 * (n - 1)));
}

inline bool is_utf8_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// Rust's str::trim_end: drop trailing White_Space characters.
std::string_view trim_end(std::string_view s) {
  size_t keep = 0;
  size_t i = 0;
  while (i < s.size()) {
    const char32_t cp = unicode::decode_utf8(s, i);
    if (cp == unicode::kInvalid || !unicode::is_whitespace(cp)) keep = i;
  }
  return s.substr(0, keep);
}

const char* const kSpecialNames[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

}  // namespace

namespace {
inline uint32_t meta_of(uint64_t hash, size_t size) {
  return (static_cast<uint32_t>(hash >> 40) << 8) | static_cast<uint32_t>(size < 255 ? size : 255);
}
}  // namespace

void WordPieceTokenizer::Table::build(const std::string& arena, const std::vector<uint32_t>& offsets,
                                      bool continuations) {
  const size_t count = offsets.size() - 1;
  size_t capacity = 16;
  while (capacity < 2 * count) capacity <<= 1;
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  max_key_bytes_ = 0;
  skip_ = continuations ? 2 : 0;
  for (size_t id = 0; id < count; ++id) {
    const uint32_t end = offsets[id + 1];
    if (continuations && (end - offsets[id] < 2 || arena[offsets[id]] != '#' || arena[offsets[id] + 1] != '#'))
      continue;
    const char* key = arena.data() + offsets[id] + skip_;
    const size_t size = end - offsets[id] - skip_;
    // find() also tells whether the key is already present (a repeated token): the later id wins.
    const uint64_t h = hash_bytes(key, size);
    const Slot fresh{head_of(key, size), meta_of(h, size), static_cast<int32_t>(id)};
    for (uint64_t s = h & mask_;; s = (s + 1) & mask_) {
      Slot& slot = slots_[s];
      if (slot.id < 0) {
        slot = fresh;
        break;
      }
      if (slot.meta == fresh.meta && slot.head == fresh.head) {
        const uint32_t other = offsets[slot.id] + skip_;
        if (offsets[slot.id + 1] - other == size && std::memcmp(arena.data() + other, key, size) == 0) {
          slot.id = static_cast<int32_t>(id);
          break;
        }
      }
    }
    max_key_bytes_ = std::max(max_key_bytes_, size);
  }
}

int32_t WordPieceTokenizer::Table::find(const std::string& arena, const std::vector<uint32_t>& offsets, const char* p,
                                        size_t n) const {
  const uint64_t h = hash_bytes(p, n);
  const uint32_t meta = meta_of(h, n);
  const uint64_t head = head_of(p, n);
  for (uint64_t s = h & mask_;; s = (s + 1) & mask_) {
    const Slot& slot = slots_[s];
    if (slot.id < 0) return -1;
    if (slot.meta != meta || slot.head != head) continue;
    if (n <= 8) return slot.id;  // size, and so every byte, already compared
    const uint32_t key = offsets[slot.id] + skip_;
    if (offsets[slot.id + 1] - key == n && std::memcmp(arena.data() + key + 8, p + 8, n - 8) == 0) return slot.id;
  }
}

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> tokens, bool lowercase, const std::string& source)
    : tokens_(std::move(tokens)), basic_(lowercase) {
  if (tokens_.empty()) throw UsageError(source + ": the vocabulary is empty (expected one token per line)");
  if (tokens_.size() > static_cast<size_t>(INT32_MAX)) throw UsageError(source + ": too many tokens");
  offsets_.reserve(tokens_.size() + 1);
  offsets_.push_back(0);
  for (const std::string& t : tokens_) {
    arena_ += t;
    if (arena_.size() > UINT32_MAX) throw UsageError(source + ": the vocabulary is larger than 4 GiB");
    offsets_.push_back(static_cast<uint32_t>(arena_.size()));
  }
  whole_.build(arena_, offsets_, false);
  suffix_.build(arena_, offsets_, true);
  continuation_.resize(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const std::string& t = tokens_[i];
    continuation_[i] = t.size() > 2 && t[0] == '#' && t[1] == '#';
  }
  special_.pad = token_to_id("[PAD]");
  special_.unk = token_to_id("[UNK]");
  special_.cls = token_to_id("[CLS]");
  special_.sep = token_to_id("[SEP]");
  special_.mask = token_to_id("[MASK]");
  if (special_.unk < 0) {
    throw UsageError(source + ": the vocabulary has no [UNK] token (WordPiece needs it for unknown words)");
  }
  for (const char* name : kSpecialNames) {
    const int32_t id = token_to_id(name);
    if (id >= 0) special_tokens_.emplace_back(name, id);
  }
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

WordPieceTokenizer WordPieceTokenizer::from_tokens(std::vector<std::string> tokens, bool lowercase) {
  return WordPieceTokenizer(std::move(tokens), lowercase, "vocabulary");
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& path, bool lowercase) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw UsageError(path + ": is a directory, expected a BERT vocab.txt file (one token per line)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw UsageError(path + ": cannot open vocab file: " + std::strerror(errno) +
                     " (expected a BERT vocab.txt, one token per line)");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw UsageError(path + ": cannot read vocab file: " + std::strerror(errno));
  const std::string text = buffer.str();
  std::vector<std::string> tokens;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    tokens.emplace_back(trim_end(std::string_view(text).substr(pos, nl - pos)));
    pos = nl + 1;
  }
  return WordPieceTokenizer(std::move(tokens), lowercase, path);
}

void WordPieceTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  const size_t n = word.size();
  if (n > kMaxInputCharsPerWord) {  // bytes >= chars, so only long words need counting
    size_t chars = 0;
    for (char c : word) chars += !is_utf8_continuation(c);
    if (chars > kMaxInputCharsPerWord) {
      out.push_back(special_.unk);
      return;
    }
  }
  const int32_t whole = whole_.find(arena_, offsets_, word.data(), n);
  if (whole >= 0) {
    out.push_back(whole);
    return;
  }
  // Greedy longest match first; no piece can be longer than the longest key of its table.
  const size_t base = out.size();
  size_t start = 0;
  while (start < n) {
    const Table& table = start == 0 ? whole_ : suffix_;
    size_t end = std::min(n, start + table.max_key_bytes());
    while (end > start && end < n && is_utf8_continuation(word[end])) --end;
    int32_t id = -1;
    while (end > start) {
      id = table.find(arena_, offsets_, word.data() + start, end - start);
      if (id >= 0) break;
      do {
        --end;
      } while (end > start && is_utf8_continuation(word[end]));
    }
    if (id < 0) {  // some piece is not in the vocabulary: the whole word is [UNK]
      out.resize(base);
      out.push_back(special_.unk);
      return;
    }
    out.push_back(id);
    start = end;
  }
}

void WordPieceTokenizer::encode_segment(std::string_view text, std::vector<int32_t>& out, WordList& scratch) const {
  scratch.clear();
  basic_.split(text, scratch);
  for (size_t i = 0; i < scratch.size(); ++i) encode_word(scratch[i], out);
}

void WordPieceTokenizer::encode(std::string_view text, std::vector<int32_t>& out, WordList& scratch) const {
  // Special tokens split the raw text before normalization; the pieces between are independent.
  size_t segment = 0;
  size_t pos = 0;
  if (!special_tokens_.empty()) {
    while ((pos = text.find('[', pos)) != std::string_view::npos) {
      const std::pair<std::string, int32_t>* hit = nullptr;
      for (const auto& special : special_tokens_) {
        if (text.compare(pos, special.first.size(), special.first) == 0) {
          hit = &special;
          break;
        }
      }
      if (hit == nullptr) {
        ++pos;
        continue;
      }
      encode_segment(text.substr(segment, pos - segment), out, scratch);
      out.push_back(hit->second);
      pos += hit->first.size();
      segment = pos;
    }
  }
  encode_segment(text.substr(segment), out, scratch);
}

void WordPieceTokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  thread_local WordList scratch;
  encode(text, out, scratch);
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  encode(text, out);
  return out;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> result;
  for (int32_t id : encode(text)) result.push_back(tokens_[static_cast<size_t>(id)]);
  return result;
}

int32_t WordPieceTokenizer::token_to_id(std::string_view token) const {
  return whole_.find(arena_, offsets_, token.data(), token.size());
}

const std::string& WordPieceTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) {
    throw std::out_of_range("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                            std::to_string(tokens_.size()) + ")");
  }
  return tokens_[static_cast<size_t>(id)];
}

bool WordPieceTokenizer::is_continuation(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < continuation_.size() && continuation_[static_cast<size_t>(id)] != 0;
}

}  // namespace mpibert::data
