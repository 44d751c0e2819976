#include "common/data/basic_tokenizer.h"

#include <algorithm>
#include <stdexcept>

#include "common/data/unicode_text.h"

namespace mpibert::data {

using unicode::append_utf8;

// The pipeline, per character of the input, in the order tokenizers applies it to the whole string:
//  1. clean_text: drop U+0000, U+FFFD and controls (Cc/Cf/Co except \t \n \r); whitespace -> ' '.
//  2. handle_chinese_chars: ' ' before and after each CJK ideograph.
//  3. strip_accents (uncased only): NFD, then drop Mn.
//  4. lowercase (uncased only): Rust char::to_lowercase. It differs from the simple mapping only for
//     U+0130, which step 3 has already decomposed to I + U+0307, so the simple mapping is exact here.
//  5. BertPreTokenizer on the result: split on whitespace, each punctuation character alone.
// Ill-formed UTF-8 bytes are dropped: Node/Python/Rust decoders turn them into U+FFFD, which step 1
// removes, so "ab\xFFcd" is the single word "abcd".
//
// NFD also puts combining marks in canonical order. Marks that are Mn are dropped anyway, and a stable
// sort followed by a filter equals the filter followed by the sort, so only the kept marks (ccc > 0
// but not Mn, e.g. U+1D165) need reordering, within a run not broken by a ccc-0 character that was
// present during NFD (dropped controls were already gone then; a dropped Mn of ccc 0 was not).
class BasicTokenizer::Run {
 public:
  bool empty() const { return marks_.empty(); }
  void reset() { marks_.clear(); }
  void add(char32_t cp, int ccc, std::string& text) {
    if (marks_.empty()) begin_ = text.size();
    marks_.push_back({cp, ccc});
    const size_t n = marks_.size();
    if (n > 1 && marks_[n - 2].ccc > ccc) {
      std::stable_sort(marks_.begin(), marks_.end(), [](const Mark& a, const Mark& b) { return a.ccc < b.ccc; });
      text.resize(begin_);
      for (const Mark& m : marks_) append_utf8(text, m.cp);
    } else {
      append_utf8(text, cp);
    }
  }

 private:
  struct Mark {
    char32_t cp;
    int ccc;
  };
  std::vector<Mark> marks_;
  size_t begin_ = 0;
};

BasicTokenizer::BasicTokenizer(bool lowercase) : lowercase_(lowercase) {
  // Derived from the same predicates as the slow path, so the fast path cannot disagree with it.
  for (char32_t b = 0; b < 128; ++b) {
    AsciiClass cls = kWord;
    if (b == 0 || unicode::is_control(b)) {
      cls = kDrop;
    } else if (unicode::is_whitespace(b)) {
      cls = kSpace;
    } else if (unicode::is_punctuation(b)) {
      cls = kPunct;
    }
    ascii_class_[b] = cls;
    ascii_map_[b] = static_cast<char>(lowercase_ ? unicode::to_lower(b) : b);
  }
}

namespace {
inline void end_word(WordList& out, size_t& word_begin) {
  if (out.text.size() > word_begin) {
    out.ends.push_back(static_cast<uint32_t>(out.text.size()));
    word_begin = out.text.size();
  }
}
}  // namespace

void BasicTokenizer::split(std::string_view text, WordList& out) const {
  if (text.size() > (size_t{1} << 30) || out.text.size() > (size_t{1} << 30)) {
    throw std::length_error("BasicTokenizer::split: more than 1 GiB of text in one call");
  }
  std::string& t = out.text;
  size_t word_begin = t.size();
  Run run;
  const char* p = text.data();
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = static_cast<unsigned char>(p[i]);
    if (b >= 0x80) {
      const char32_t cp = unicode::decode_utf8(text, i);
      if (cp == unicode::kInvalid) continue;
      split_slow_char(cp, out, run, word_begin);
      continue;
    }
    switch (ascii_class_[b]) {
      case kWord: {
        size_t j = i + 1;
        while (j < n && static_cast<unsigned char>(p[j]) < 0x80 &&
               ascii_class_[static_cast<unsigned char>(p[j])] == kWord) {
          ++j;
        }
        const size_t old = t.size();
        t.append(p + i, j - i);  // a copy, then lowercase in place: no zero-fill as resize() would do
        if (lowercase_) {
          for (char* c = &t[old]; c != t.data() + t.size(); ++c) *c = ascii_map_[static_cast<unsigned char>(*c)];
        }
        i = j;
        break;
      }
      case kSpace:
        end_word(out, word_begin);
        ++i;
        break;
      case kPunct:
        end_word(out, word_begin);
        t.push_back(static_cast<char>(b));
        end_word(out, word_begin);
        ++i;
        break;
      default:  // kDrop: removed before NFD, so it does not break a run of marks
        ++i;
        continue;
    }
    if (!run.empty()) run.reset();
  }
  end_word(out, word_begin);
}

void BasicTokenizer::split_slow_char(char32_t cp, WordList& out, Run& run, size_t& word_begin) const {
  std::string& t = out.text;
  if (cp == 0xFFFD || unicode::is_control(cp)) return;
  if (unicode::is_whitespace(cp)) {
    run.reset();
    end_word(out, word_begin);
    return;
  }
  const auto emit = [&](char32_t c) {
    if (unicode::is_whitespace(c)) {
      run.reset();
      end_word(out, word_begin);
    } else if (unicode::is_punctuation(c)) {
      run.reset();
      end_word(out, word_begin);
      append_utf8(t, c);
      end_word(out, word_begin);
    } else if (lowercase_) {
      const int ccc = unicode::combining_class(c);
      if (ccc > 0) {
        run.add(c, ccc, t);
      } else {
        run.reset();
        append_utf8(t, c);
      }
    } else {
      append_utf8(t, c);
    }
  };
  const bool cjk = unicode::is_cjk_ideograph(cp);
  if (cjk) {
    run.reset();
    end_word(out, word_begin);
  }
  if (!lowercase_) {
    emit(cp);
  } else {
    char32_t decomposed[32];
    const size_t m = unicode::canonical_decompose(cp, decomposed, 32);
    for (size_t k = 0; k < m; ++k) {
      const char32_t c = decomposed[k];
      if (unicode::is_nonspacing_mark(c)) {
        if (unicode::combining_class(c) == 0) run.reset();
        continue;
      }
      emit(unicode::to_lower(c));
    }
  }
  if (cjk) end_word(out, word_begin);
}

std::vector<std::string> BasicTokenizer::split(std::string_view text) const {
  WordList words;
  split(text, words);
  std::vector<std::string> result;
  result.reserve(words.size());
  for (size_t i = 0; i < words.size(); ++i) result.emplace_back(words[i]);
  return result;
}

}  // namespace mpibert::data
