#include "common/data/batch_sampler.h"

#include <mutex>
#include <stdexcept>
#include <string>

#include "common/error.h"

namespace mpibert::data {

uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

Xoshiro256::Xoshiro256(uint64_t seed, uint64_t stream) {
  uint64_t sm = seed ^ mix64(stream);
  for (auto& word : s_) {
    sm += 0x9e3779b97f4a7c15ULL;  // splitmix64: advance, then finalise
    word = mix64(sm);
  }
}

uint64_t Xoshiro256::next() {
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Xoshiro256::uniform(uint64_t bound) {
  if (bound == 0) throw std::invalid_argument("Xoshiro256::uniform: bound must be >= 1");
  // Lemire, "Fast random integer generation in an interval" (2019).
  unsigned __int128 m = static_cast<unsigned __int128>(next()) * bound;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(next()) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

std::vector<int64_t> shuffled_range(int64_t n, uint64_t seed, uint64_t stream) {
  if (n < 0) throw std::invalid_argument("shuffled_range: n must be >= 0, got " + std::to_string(n));
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  Xoshiro256 rng(seed, stream);
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(rng.uniform(static_cast<uint64_t>(i) + 1));
    std::swap(v[i], v[j]);
  }
  return v;
}

struct GlobalBatchSampler::Cache {
  std::mutex mutex;
  int64_t epoch = -1;
  std::vector<int64_t> permutation;
};

GlobalBatchSampler::GlobalBatchSampler(int64_t num_sequences, int64_t global_batch, uint64_t seed, bool drop_last)
    : num_sequences_(num_sequences),
      global_batch_(global_batch),
      seed_(seed),
      drop_last_(drop_last),
      cache_(std::make_unique<Cache>()) {
  if (num_sequences <= 0)
    throw UsageError("batch sampler: the split holds no sequences (num_sequences = " + std::to_string(num_sequences) +
                     ")");
  if (global_batch <= 0)
    throw UsageError("batch sampler: global batch must be >= 1, got " + std::to_string(global_batch));
  if (drop_last && num_sequences < global_batch)
    throw UsageError("the split has " + std::to_string(num_sequences) + " sequences, fewer than one global batch of " +
                     std::to_string(global_batch) +
                     " (world_size x per_device batch x gradient_accumulation_steps): use more data, a smaller "
                     "batch or fewer ranks");
  steps_per_epoch_ = drop_last ? num_sequences / global_batch : (num_sequences + global_batch - 1) / global_batch;
  epoch_length_ = drop_last ? steps_per_epoch_ * global_batch : num_sequences;
}

GlobalBatchSampler::~GlobalBatchSampler() = default;
GlobalBatchSampler::GlobalBatchSampler(GlobalBatchSampler&&) noexcept = default;
GlobalBatchSampler& GlobalBatchSampler::operator=(GlobalBatchSampler&&) noexcept = default;

int64_t GlobalBatchSampler::position(int64_t step, int64_t k) const {
  if (step < 0) throw std::invalid_argument("GlobalBatchSampler: negative step " + std::to_string(step));
  if (k < 0 || k >= batch_size_of_step(step))
    throw std::out_of_range("GlobalBatchSampler::position: k = " + std::to_string(k) + " outside the batch of step " +
                            std::to_string(step));
  const int64_t epoch = step / steps_per_epoch_;
  return epoch * epoch_length_ + (step % steps_per_epoch_) * global_batch_ + k;
}

int64_t GlobalBatchSampler::batch_size_of_step(int64_t step) const {
  if (step < 0) throw std::invalid_argument("GlobalBatchSampler: negative step " + std::to_string(step));
  const int64_t start = (step % steps_per_epoch_) * global_batch_;
  return std::min(global_batch_, epoch_length_ - start);
}

std::vector<int64_t> GlobalBatchSampler::sequences(int64_t position, int64_t count) const {
  if (position < 0 || count < 0)
    throw std::invalid_argument("GlobalBatchSampler::sequences: position and count must be >= 0");
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(count));
  std::lock_guard<std::mutex> lock(cache_->mutex);
  for (int64_t p = position; p < position + count;) {
    const int64_t epoch = p / epoch_length_;
    if (cache_->epoch != epoch) {
      // Stream = epoch: each epoch its own permutation, from (seed, epoch) alone.
      cache_->permutation = shuffled_range(num_sequences_, seed_, static_cast<uint64_t>(epoch));
      cache_->epoch = epoch;
    }
    const int64_t offset = p - epoch * epoch_length_;
    const int64_t take = std::min(position + count - p, epoch_length_ - offset);
    out.insert(out.end(), cache_->permutation.begin() + offset, cache_->permutation.begin() + offset + take);
    p += take;
  }
  return out;
}

int64_t GlobalBatchSampler::index_at(int64_t position) const {
  return sequences(position, 1)[0];
}

std::vector<int64_t> GlobalBatchSampler::global_batch(int64_t step) const {
  return sequences(position(step, 0), batch_size_of_step(step));
}

int64_t GlobalBatchSampler::slice_offset(int rank, int world_size, int micro_step, int accumulation_steps) const {
  if (world_size < 1 || accumulation_steps < 1 || rank < 0 || rank >= world_size || micro_step < 0 ||
      micro_step >= accumulation_steps)
    throw std::invalid_argument("GlobalBatchSampler::slice: rank " + std::to_string(rank) + " of " +
                                std::to_string(world_size) + ", micro-step " + std::to_string(micro_step) + " of " +
                                std::to_string(accumulation_steps) + " is out of range");
  const int64_t parts = int64_t(world_size) * accumulation_steps;
  if (global_batch_ % parts != 0)
    throw std::invalid_argument("GlobalBatchSampler::slice: global batch " + std::to_string(global_batch_) +
                                " is not divisible by world_size x accumulation_steps = " + std::to_string(parts));
  const int64_t per_device = global_batch_ / parts;
  return (int64_t(micro_step) * world_size + rank) * per_device;
}

std::vector<int64_t> GlobalBatchSampler::slice(int64_t step, int rank, int world_size, int micro_step,
                                               int accumulation_steps) const {
  const int64_t offset = slice_offset(rank, world_size, micro_step, accumulation_steps);
  const int64_t per_device = global_batch_ / (int64_t(world_size) * accumulation_steps);
  const int64_t size = batch_size_of_step(step);
  const int64_t begin = std::min(offset, size);
  const int64_t end = std::min(offset + per_device, size);
  return sequences(position(step, 0) + begin, end - begin);
}

}  // namespace mpibert::data
