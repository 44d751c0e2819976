#pragma once
// Deterministic data order (docs/architecture.md "Determinism rules"): one global shuffle of the training sequences per
// epoch, derived from (seed, epoch) only, so the order does not depend on the world size, the
// standard library or thread timing.
//
// The order is a stream of "positions" 0, 1, 2, ... (global sequences consumed). Epoch e covers
// positions [e * epoch_length, (e + 1) * epoch_length); position p of that epoch holds sequence
// permutation_e[p - e * epoch_length]. Step s consumes positions [s * G, s * G + G) (G = global batch)
// when drop_last is set (the default for training): the last N mod G sequences of each epoch's
// permutation are skipped, so every step is full and position = step * G + k. Resuming after
// `consumed` sequences means continuing at position `consumed`.
//
// The PRNG is fixed and written out here (never std::shuffle or std::uniform_int_distribution, whose
// outputs differ between standard libraries): xoshiro256** seeded through splitmix64, bounded
// integers by Lemire's multiply-shift with rejection, and a downward Fisher-Yates shuffle.
#include <cstdint>
#include <memory>
#include <vector>

namespace mpibert::data {

// The splitmix64 finaliser (a bijective 64-bit mix).
uint64_t mix64(uint64_t x);

// xoshiro256** (Blackman & Vigna). The state is the first four outputs of splitmix64 started at
// seed ^ mix64(stream), so (seed, stream) pairs give independent-looking streams.
class Xoshiro256 {
 public:
  Xoshiro256(uint64_t seed, uint64_t stream);
  uint64_t next();
  // Uniform integer in [0, bound), bound >= 1 (Lemire's method with rejection: unbiased).
  uint64_t uniform(uint64_t bound);

 private:
  uint64_t s_[4];
};

// A uniformly random permutation of 0..n-1: Fisher-Yates from i = n-1 down to 1, swapping i with
// uniform(i + 1), drawn from Xoshiro256(seed, stream).
std::vector<int64_t> shuffled_range(int64_t n, uint64_t seed, uint64_t stream);

class GlobalBatchSampler {
 public:
  // Throws mpibert::UsageError if there is not a single full batch to take (num_sequences <
  // global_batch with drop_last) or the arguments are not positive.
  GlobalBatchSampler(int64_t num_sequences, int64_t global_batch, uint64_t seed, bool drop_last = true);
  ~GlobalBatchSampler();
  GlobalBatchSampler(GlobalBatchSampler&&) noexcept;
  GlobalBatchSampler& operator=(GlobalBatchSampler&&) noexcept;

  int64_t num_sequences() const { return num_sequences_; }
  int64_t global_batch() const { return global_batch_; }
  // drop_last: floor(N / G); otherwise ceil(N / G) with a shorter last batch.
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  // Positions per epoch: steps_per_epoch * G with drop_last, else N.
  int64_t epoch_length() const { return epoch_length_; }

  int64_t epoch_of_step(int64_t step) const { return step / steps_per_epoch_; }
  int64_t epoch_of_position(int64_t position) const { return position / epoch_length_; }
  // Position of the k-th sequence of step `step` (0 <= k < batch size of that step).
  int64_t position(int64_t step, int64_t k) const;
  // Sequence index at a position.
  int64_t index_at(int64_t position) const;
  // Sequence indices at positions [position, position + count) (may cross epochs): resume from an
  // exact number of consumed sequences with sequences(consumed, G).
  std::vector<int64_t> sequences(int64_t position, int64_t count) const;

  // The global batch of step `step` (0-based, from the start of training), in order. Its size is
  // G, except the last step of an epoch without drop_last.
  std::vector<int64_t> global_batch(int64_t step) const;
  // Size of that batch.
  int64_t batch_size_of_step(int64_t step) const;

  // The part of step `step` that rank `rank` processes at micro-step `micro_step`. The global batch
  // is cut into world_size * accumulation_steps equal micro-batches, micro-step major then rank:
  // micro-batch (micro_step, rank) is global-batch entries [(micro_step * world_size + rank) * B, +B),
  // B = G / (world_size * accumulation_steps). So micro-step m of all ranks together is one
  // contiguous chunk of the global batch. G must divide evenly (else std::invalid_argument). For a
  // short last batch (no drop_last) the same cut applies and slices are truncated (possibly empty).
  std::vector<int64_t> slice(int64_t step, int rank, int world_size, int micro_step, int accumulation_steps) const;
  // Global-batch offset of the first entry of that slice (so its k-th entry is at
  // position(step, slice_offset(...) + k)).
  int64_t slice_offset(int rank, int world_size, int micro_step, int accumulation_steps) const;

 private:
  struct Cache;

  int64_t num_sequences_;
  int64_t global_batch_;
  uint64_t seed_;
  bool drop_last_;
  int64_t steps_per_epoch_;
  int64_t epoch_length_;
  // The permutation of the most recently used epoch (computing one is O(N)), behind a mutex so
  // const calls are safe from several threads.
  std::unique_ptr<Cache> cache_;
};

}  // namespace mpibert::data
