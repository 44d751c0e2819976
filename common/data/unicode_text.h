#pragma once
// Unicode helpers for the BERT tokenizer: lossy UTF-8 decoding and the character classes that
// Hugging Face tokenizers' BertNormalizer / BertPreTokenizer use. Categories, canonical
// decomposition and case come from utf8proc; the only hand-written ranges are the CJK blocks.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mpibert::data::unicode {

// Returned by decode_utf8 for an ill-formed sequence.
constexpr char32_t kInvalid = 0xFFFFFFFFu;

// Decodes the code point at s[i] and advances i past it. An ill-formed sequence yields kInvalid and
// advances past its "maximal subpart" (Unicode 3.9, the policy of WHATWG decoders and Rust's
// from_utf8_lossy): never past a byte that could start a well-formed character.
char32_t decode_utf8(std::string_view s, size_t& i);

void append_utf8(std::string& out, char32_t cp);

// Rust char::is_whitespace (the Unicode White_Space property: Zs, Zl, Zp, U+0009..U+000D, U+0085).
bool is_whitespace(char32_t cp);
// BertNormalizer's is_control: general category Cc, Cf or Co, except \t \n \r (whitespace there).
bool is_control(char32_t cp);
// BertPreTokenizer's punctuation: ASCII punctuation (33-47, 58-64, 91-96, 123-126) or category P*.
bool is_punctuation(char32_t cp);
// The CJK ideograph blocks that BertNormalizer surrounds with spaces (as tokenizers writes them).
bool is_cjk_ideograph(char32_t cp);
// General category Mn (stripped with accents).
bool is_nonspacing_mark(char32_t cp);
int combining_class(char32_t cp);
// Simple lowercase mapping (equal to Rust char::to_lowercase except U+0130, see basic_tokenizer.cpp).
char32_t to_lower(char32_t cp);
// Canonical (NFD) decomposition of one code point into out[0..n); returns n (1 when it has none).
size_t canonical_decompose(char32_t cp, char32_t* out, size_t capacity);

// True when every character of `line` is whitespace (is_whitespace) or the line is empty. Ill-formed
// bytes are not whitespace.
bool is_blank(std::string_view line);

}  // namespace mpibert::data::unicode
