#include "common/data/classification_blob.h"

#include <cstring>
#include <stdexcept>
#include <type_traits>

namespace mpibert::data {
namespace {

constexpr uint32_t kMagic = 0x6d62636c;  // "mbcl"

class Writer {
 public:
  template <class T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void text(const std::string& s) {
    pod<uint64_t>(s.size());
    out += s;
  }
  template <class T>
  void vec(const std::vector<T>& v) {
    pod<uint64_t>(v.size());
    if (!v.empty()) out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  std::string out;
};

class Reader {
 public:
  explicit Reader(const std::string& in) : in_(in) {}
  template <class T>
  T pod() {
    T v;
    take(&v, sizeof v);
    return v;
  }
  std::string text() {
    std::string s(size(1), '\0');
    take(s.data(), s.size());
    return s;
  }
  template <class T>
  std::vector<T> vec() {
    std::vector<T> v(size(sizeof(T)));
    take(v.data(), v.size() * sizeof(T));
    return v;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  size_t size(size_t element) {
    const auto n = pod<uint64_t>();
    if (n > (in_.size() - pos_) / element) throw std::runtime_error("classification data blob: truncated");
    return static_cast<size_t>(n);
  }
  void take(void* dst, size_t n) {
    if (n > in_.size() - pos_) throw std::runtime_error("classification data blob: truncated");
    if (n) std::memcpy(dst, in_.data() + pos_, n);
    pos_ += n;
  }
  const std::string& in_;
  size_t pos_ = 0;
};

void write_dataset(Writer& w, const ClassificationDataset& d) {
  w.text(d.source);
  w.pod<uint64_t>(d.truncated_examples);
  w.pod<uint64_t>(d.longest_input);
  w.pod<uint64_t>(d.examples.size());
  for (const auto& e : d.examples) {
    w.vec(e.input.input_ids);
    w.vec(e.input.token_type_ids);
    w.pod(e.input.num_truncated);
    w.pod<uint8_t>(e.has_label);
    w.pod(e.label.class_id);
    w.vec(e.label.multi_hot);
    w.pod(e.label.value);
    w.pod<uint64_t>(e.line);
  }
}

void read_dataset(Reader& r, ClassificationDataset& d) {
  d.source = r.text();
  d.truncated_examples = r.pod<uint64_t>();
  d.longest_input = r.pod<uint64_t>();
  d.examples.resize(r.pod<uint64_t>());
  for (auto& e : d.examples) {
    e.input.input_ids = r.vec<int32_t>();
    e.input.token_type_ids = r.vec<int32_t>();
    e.input.num_truncated = r.pod<int32_t>();
    e.has_label = r.pod<uint8_t>() != 0;
    e.label.class_id = r.pod<int32_t>();
    e.label.multi_hot = r.vec<float>();
    e.label.value = r.pod<float>();
    e.line = r.pod<uint64_t>();
  }
}

}  // namespace

std::string to_blob(const LabelSpace& labels, const std::vector<const ClassificationDataset*>& datasets) {
  Writer w;
  w.pod(kMagic);
  w.pod(static_cast<int32_t>(labels.problem_type));
  w.pod<uint64_t>(labels.labels.size());
  for (const auto& l : labels.labels) w.text(l);
  w.text(labels.label_column);
  w.text(labels.source);
  w.pod<uint64_t>(datasets.size());
  for (const auto* d : datasets) write_dataset(w, *d);
  return w.out;
}

void from_blob(const std::string& blob, LabelSpace& labels, std::vector<ClassificationDataset*>& datasets) {
  Reader r(blob);
  if (r.pod<uint32_t>() != kMagic) throw std::runtime_error("classification data blob: bad magic");
  labels.problem_type = static_cast<ProblemType>(r.pod<int32_t>());
  labels.labels.resize(r.pod<uint64_t>());
  for (auto& l : labels.labels) l = r.text();
  labels.label_column = r.text();
  labels.source = r.text();
  if (r.pod<uint64_t>() != datasets.size()) throw std::runtime_error("classification data blob: dataset count");
  for (auto* d : datasets) read_dataset(r, *d);
  if (!r.done()) throw std::runtime_error("classification data blob: trailing bytes");
}

void renumber_labels(ClassificationDataset& dataset, const std::vector<int32_t>& order) {
  for (auto& e : dataset.examples) {
    if (!e.has_label) continue;
    if (e.label.class_id >= 0) e.label.class_id = order.at(static_cast<size_t>(e.label.class_id));
    if (!e.label.multi_hot.empty()) {
      std::vector<float> moved(e.label.multi_hot.size(), 0.0f);
      for (size_t i = 0; i < moved.size(); ++i) moved[static_cast<size_t>(order.at(i))] = e.label.multi_hot[i];
      e.label.multi_hot = std::move(moved);
    }
  }
}

}  // namespace mpibert::data
