#pragma once
// MLM masking (torch-free). The mask of a sequence is a pure function of (seed, epoch, global
// sequence index) and its token ids: a counter-based splitmix64 hash, never std:: distributions or
// thread timing, so it does not depend on batch composition, rank count or threads.
//
// Semantics (as Hugging Face's DataCollatorForLanguageModeling, Bernoulli per token):
//   - each maskable token (not special, not padding) is selected with probability mlm_probability,
//     independently; a sequence can get 0 selected tokens (HF behaves the same);
//   - whole_word: a word is a token plus its following continuation ("##") tokens; each word is
//     selected with probability mlm_probability and then all its tokens are. A continuation token
//     that opens a sequence or follows a special token starts its own word. (HF's
//     DataCollatorForWholeWordMask picks a fixed count instead; we keep the Bernoulli rule.);
//   - a selected token becomes [MASK] with probability mask_fraction (0.8), a random token with
//     probability random_fraction (0.1), else stays (0.1) - drawn per token, also under whole_word;
//   - random tokens are uniform over the vocabulary minus the special ids (HF draws over the whole
//     vocabulary, specials included);
//   - labels = original id at selected positions, -100 elsewhere.
#include <cstdint>
#include <vector>

namespace mpibert::train {

constexpr int64_t kIgnoreLabel = -100;

struct MaskingOptions {
  double mlm_probability = 0.15;
  bool whole_word = false;
  std::vector<int64_t> special_ids;  // never selected, never drawn as random token: [CLS], [SEP], [UNK]...
                                     // (pad_id and mask_id are always added)
  int64_t vocab_size = 0;
  int64_t pad_id = 0;
  int64_t mask_id = -1;
  const std::vector<uint8_t>* is_continuation = nullptr;  // per id: 1 for "##" tokens; required by whole_word
  double mask_fraction = 0.8;                             // of the selected tokens: replaced by [MASK]
  double random_fraction = 0.1;                           // of the selected tokens: replaced by a random token
};

// Validates the options once (UsageError naming the field) and masks sequences.
class MlmMasker {
 public:
  explicit MlmMasker(MaskingOptions options);

  // ids: len token ids; writes input_out[len] (ids after masking) and labels_out[len].
  // Returns the number of selected (labelled) tokens. Ids outside [0, vocab_size) -> std::out_of_range.
  int64_t mask_sequence(const int32_t* ids, int64_t len, uint64_t seed, int64_t epoch, int64_t global_index,
                        int64_t* input_out, int64_t* labels_out) const;
  int64_t mask_sequence(const uint16_t* ids, int64_t len, uint64_t seed, int64_t epoch, int64_t global_index,
                        int64_t* input_out, int64_t* labels_out) const;
  int64_t mask_sequence(const int64_t* ids, int64_t len, uint64_t seed, int64_t epoch, int64_t global_index,
                        int64_t* input_out, int64_t* labels_out) const;

  // rows x len row-major; row r is sequence global_indices[r]. Returns the total selected tokens.
  template <typename Id>
  int64_t mask_batch(const Id* ids, int64_t rows, int64_t len, const int64_t* global_indices, uint64_t seed,
                     int64_t epoch, int64_t* input_out, int64_t* labels_out) const {
    int64_t total = 0;
    for (int64_t r = 0; r < rows; ++r)
      total +=
          mask_sequence(ids + r * len, len, seed, epoch, global_indices[r], input_out + r * len, labels_out + r * len);
    return total;
  }

  const MaskingOptions& options() const { return opt_; }

 private:
  template <typename Id>
  int64_t mask_impl(const Id* ids, int64_t len, uint64_t seed, int64_t epoch, int64_t global_index, int64_t* input_out,
                    int64_t* labels_out) const;
  bool is_special(int64_t id) const { return special_[static_cast<size_t>(id)] != 0; }
  int64_t random_token(uint32_t r) const;

  MaskingOptions opt_;
  std::vector<uint8_t> special_;          // per id
  std::vector<int64_t> sorted_specials_;  // unique, ascending, in range
  uint64_t select_threshold_ = 0;         // P(select) = threshold / 2^64 (53-bit precision)
  uint32_t mask_threshold_ = 0, random_threshold_ = 0;
};

// One-shot form (validates the options on every call; use MlmMasker in loops).
int64_t mask_sequence(const int32_t* ids, int64_t len, const MaskingOptions& options, uint64_t seed, int64_t epoch,
                      int64_t global_index, int64_t* input_out, int64_t* labels_out);

// The per-sequence stream key, exposed for tests: splitmix64 chain of (seed, epoch, global_index).
uint64_t masking_key(uint64_t seed, int64_t epoch, int64_t global_index);

}  // namespace mpibert::train
