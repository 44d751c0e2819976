#include "worker/train/masking.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "common/error.h"

namespace mpibert::train {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Draw `slot` of position j: independent 64-bit values per (key, j, slot).
inline uint64_t draw(uint64_t key, int64_t j, int slot) {
  return splitmix64(key + (static_cast<uint64_t>(j) * 2 + static_cast<uint64_t>(slot) + 1) * kGolden);
}

uint32_t fraction_to_u32(double f) {
  const double scaled = std::round(f * 4294967296.0);
  return scaled >= 4294967295.0 ? 0xFFFFFFFFu : static_cast<uint32_t>(scaled);
}

}  // namespace

uint64_t masking_key(uint64_t seed, int64_t epoch, int64_t global_index) {
  uint64_t k = splitmix64(seed ^ 0x6D6C6D2D6D61736Bull);  // "mlm-mask": a stream of its own
  k = splitmix64(k + splitmix64(static_cast<uint64_t>(epoch) + kGolden));
  k = splitmix64(k + splitmix64(static_cast<uint64_t>(global_index) ^ 0xA0761D6478BD642Full));
  return k;
}

MlmMasker::MlmMasker(MaskingOptions options) : opt_(std::move(options)) {
  auto bad = [](const std::string& what) { throw UsageError("masking: " + what); };
  if (!(opt_.mlm_probability >= 0.0 && opt_.mlm_probability <= 1.0))
    bad("train.mlm_probability must be in [0, 1], got " + std::to_string(opt_.mlm_probability));
  if (opt_.vocab_size <= 0) bad("vocab_size must be > 0, got " + std::to_string(opt_.vocab_size));
  auto in_vocab = [&](int64_t id, const char* what) {
    if (id < 0 || id >= opt_.vocab_size)
      bad(std::string(what) + " " + std::to_string(id) + " is outside the vocabulary [0, " +
          std::to_string(opt_.vocab_size) + ")");
  };
  in_vocab(opt_.mask_id, "mask_id");
  in_vocab(opt_.pad_id, "pad_id");
  if (!(opt_.mask_fraction >= 0 && opt_.random_fraction >= 0 && opt_.mask_fraction + opt_.random_fraction <= 1.0))
    bad("mask_fraction and random_fraction must be >= 0 with a sum <= 1");
  special_.assign(static_cast<size_t>(opt_.vocab_size), 0);
  for (int64_t id : opt_.special_ids) {
    in_vocab(id, "special id");
    special_[static_cast<size_t>(id)] = 1;
  }
  special_[static_cast<size_t>(opt_.pad_id)] = 1;
  special_[static_cast<size_t>(opt_.mask_id)] = 1;
  for (int64_t id = 0; id < opt_.vocab_size; ++id)
    if (special_[static_cast<size_t>(id)]) sorted_specials_.push_back(id);
  if (opt_.random_fraction > 0 && static_cast<int64_t>(sorted_specials_.size()) >= opt_.vocab_size)
    bad("no non-special token left to draw random replacements from");
  if (opt_.whole_word) {
    if (!opt_.is_continuation) bad("whole-word masking needs the per-id continuation ('##') table");
    if (static_cast<int64_t>(opt_.is_continuation->size()) < opt_.vocab_size)
      bad("the continuation table has " + std::to_string(opt_.is_continuation->size()) + " entries, the vocabulary " +
          std::to_string(opt_.vocab_size));
  }
  // Selection compares the top 53 bits of a draw with p * 2^53 (p = 1 selects everything).
  select_threshold_ = static_cast<uint64_t>(std::llround(opt_.mlm_probability * 9007199254740992.0));
  mask_threshold_ = fraction_to_u32(opt_.mask_fraction);
  random_threshold_ = fraction_to_u32(opt_.mask_fraction + opt_.random_fraction);
}

int64_t MlmMasker::random_token(uint32_t r) const {
  const auto n = static_cast<uint64_t>(opt_.vocab_size - static_cast<int64_t>(sorted_specials_.size()));
  // Multiply-shift: uniform up to a relative bias of n / 2^32 (< 2e-5 for 65k-token vocabularies).
  auto t = static_cast<int64_t>((static_cast<uint64_t>(r) * n) >> 32);
  for (int64_t s : sorted_specials_) {  // t-th non-special id
    if (s <= t)
      ++t;
    else
      break;
  }
  return t;
}

template <typename Id>
int64_t MlmMasker::mask_impl(const Id* ids, int64_t len, uint64_t seed, int64_t epoch, int64_t global_index,
                             int64_t* input_out, int64_t* labels_out) const {
  const uint64_t key = masking_key(seed, epoch, global_index);
  const std::vector<uint8_t>* cont = opt_.whole_word ? opt_.is_continuation : nullptr;
  int64_t selected = 0;
  bool word_selected = false;  // whole_word: selection of the word the previous token belongs to
  bool prev_maskable = false;
  for (int64_t j = 0; j < len; ++j) {
    const auto id = static_cast<int64_t>(ids[j]);
    if (id < 0 || id >= opt_.vocab_size)
      throw std::out_of_range("masking: token id " + std::to_string(id) + " at position " + std::to_string(j) +
                              " of sequence " + std::to_string(global_index) + " is outside the vocabulary [0, " +
                              std::to_string(opt_.vocab_size) + ")");
    input_out[j] = id;
    labels_out[j] = kIgnoreLabel;
    if (is_special(id)) {
      prev_maskable = false;
      continue;
    }
    bool select;
    const bool starts_word = !cont || !prev_maskable || !(*cont)[static_cast<size_t>(id)];
    if (starts_word) {
      select = (draw(key, j, 0) >> 11) < select_threshold_;
      word_selected = select;
    } else {
      select = word_selected;  // continuation token follows its word
    }
    prev_maskable = true;
    if (!select) continue;
    ++selected;
    labels_out[j] = id;
    const uint64_t r = draw(key, j, 1);
    const auto action = static_cast<uint32_t>(r);
    if (action < mask_threshold_) {
      input_out[j] = opt_.mask_id;
    } else if (action < random_threshold_) {
      input_out[j] = random_token(static_cast<uint32_t>(r >> 32));
    }  // else: keep the original token
  }
  return selected;
}

int64_t MlmMasker::mask_sequence(const int32_t* ids, int64_t len, uint64_t seed, int64_t epoch, int64_t global_index,
                                 int64_t* input_out, int64_t* labels_out) const {
  return mask_impl(ids, len, seed, epoch, global_index, input_out, labels_out);
}
int64_t MlmMasker::mask_sequence(const uint16_t* ids, int64_t len, uint64_t seed, int64_t epoch, int64_t global_index,
                                 int64_t* input_out, int64_t* labels_out) const {
  return mask_impl(ids, len, seed, epoch, global_index, input_out, labels_out);
}
int64_t MlmMasker::mask_sequence(const int64_t* ids, int64_t len, uint64_t seed, int64_t epoch, int64_t global_index,
                                 int64_t* input_out, int64_t* labels_out) const {
  return mask_impl(ids, len, seed, epoch, global_index, input_out, labels_out);
}

int64_t mask_sequence(const int32_t* ids, int64_t len, const MaskingOptions& options, uint64_t seed, int64_t epoch,
                      int64_t global_index, int64_t* input_out, int64_t* labels_out) {
  return MlmMasker(options).mask_sequence(ids, len, seed, epoch, global_index, input_out, labels_out);
}

}  // namespace mpibert::train
