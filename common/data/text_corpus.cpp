#include "common/data/text_corpus.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>
#include <string_view>

#include "common/data/unicode_text.h"
#include "common/error.h"

namespace mpibert::data {

namespace fs = std::filesystem;

namespace {

enum class Format { Text, JsonLines, Json };

Format format_of(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".jsonl") return Format::JsonLines;
  if (ext == ".json") return Format::Json;
  return Format::Text;
}

bool is_corpus_file(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".txt" || ext == ".jsonl" || ext == ".json";
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return std::string(s.substr(b, e - b));
}

bool per_line_documents(const CorpusOptions& options) {
  if (options.document_separator == "line") return true;
  if (options.document_separator == "blank_line") return false;
  throw UsageError("data.document_separator: unknown value '" + options.document_separator +
                   "' (valid: blank_line, line)");
}

// Groups lines into documents and hands each finished document to fn.
class DocumentBuilder {
 public:
  DocumentBuilder(bool per_line, const std::function<void(const std::vector<std::string>&)>& fn)
      : per_line_(per_line), fn_(fn) {}

  void add_line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (unicode::is_blank(line)) {
      end_document();
      return;
    }
    lines_.emplace_back(line);
    if (per_line_) end_document();
  }
  // Every line of a text; the text's end does not end the document (the caller decides).
  void add_text(std::string_view text) {
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) nl = text.size();
      add_line(text.substr(pos, nl - pos));
      pos = nl + 1;
    }
  }
  void end_document() {
    if (lines_.empty()) return;
    fn_(lines_);
    lines_.clear();
  }

 private:
  bool per_line_;
  const std::function<void(const std::vector<std::string>&)>& fn_;
  std::vector<std::string> lines_;
};

// Bytes of the corpus read so far, for the caller's ProgressHook: reported every kCorpusProgressBytes
// within a file and at each file's end, where the count becomes the sizes of the files read so far
// (clamped to them, so a file that grows while it is read never pushes the count past the total).
class ByteProgress {
 public:
  explicit ByteProgress(const ProgressHook& hook) : hook_(hook) {}

  void begin_file(int64_t size) {
    size_ = size;
    in_file_ = 0;
    next_report_ = kCorpusProgressBytes;
  }
  void add(size_t bytes) {
    in_file_ += static_cast<int64_t>(bytes);
    if (in_file_ < next_report_) return;
    next_report_ = in_file_ + kCorpusProgressBytes;
    report(before_ + std::min(in_file_, size_));
  }
  void end_file() {
    before_ += size_;
    report(before_);
  }

 private:
  void report(int64_t done) {
    if (done <= last_) return;
    last_ = done;
    hook_.report(done);
  }

  const ProgressHook& hook_;
  int64_t before_ = 0, size_ = 0, in_file_ = 0, next_report_ = 0;
  int64_t last_ = -1;  // so that an empty corpus still reports its 0 bytes once
};

std::ifstream open_input(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(path + ": cannot open corpus file: " + std::strerror(errno));
  return in;
}

void check_read(const std::ifstream& in, const std::string& path) {
  if (in.bad()) throw std::runtime_error(path + ": read error: " + std::strerror(errno));
}

void read_text_file(const std::string& path, DocumentBuilder& docs, ByteProgress& bytes) {
  std::ifstream in = open_input(path);
  std::string line;
  while (std::getline(in, line)) {
    docs.add_line(line);
    bytes.add(line.size() + 1);
  }
  check_read(in, path);
  docs.end_document();
}

// The text of one JSON record; `where` is "FILE:LINE" or "FILE: element K".
const std::string& record_text(const nlohmann::json& record, const std::string& field, const std::string& where) {
  if (record.is_string()) return record.get_ref<const std::string&>();
  if (!record.is_object()) {
    throw UsageError(where + ": expected a JSON object with a \"" + field + "\" field, got " + record.type_name());
  }
  const auto it = record.find(field);
  if (it == record.end()) {
    std::string present;
    for (const auto& item : record.items()) present += (present.empty() ? "" : ", ") + item.key();
    throw UsageError(where + ": no \"" + field +
                     "\" field (data.text_field); the record has: " + (present.empty() ? "no fields" : present));
  }
  if (!it->is_string()) {
    throw UsageError(where + ": field \"" + field + "\" is " + it->type_name() + ", expected a string");
  }
  return it->get_ref<const std::string&>();
}

void read_json_lines(const std::string& path, std::istream& in, const std::string& field, DocumentBuilder& docs,
                     ByteProgress& bytes, size_t first_line_number, std::string first_line) {
  std::string line = std::move(first_line);
  size_t number = first_line_number;
  bool have = true;
  while (have) {
    if (!unicode::is_blank(line)) {
      const std::string where = path + ":" + std::to_string(number);
      nlohmann::json record;
      try {
        record = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        throw UsageError(where + ": invalid JSON: " + e.what());
      }
      docs.add_text(record_text(record, field, where));
      docs.end_document();
    }
    have = static_cast<bool>(std::getline(in, line));
    if (have) bytes.add(line.size() + 1);
    ++number;
  }
}

void read_json_file(const std::string& path, Format format, const std::string& field, DocumentBuilder& docs,
                    ByteProgress& bytes) {
  std::ifstream in = open_input(path);
  // A *.json file is JSON lines unless it starts with '[' (one array of records).
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    bytes.add(line.size() + 1);
    if (!unicode::is_blank(line)) break;
  }
  check_read(in, path);
  if (number == 0 || unicode::is_blank(line)) return;  // empty file
  const size_t first = line.find_first_not_of(" \t\r");
  if (format == Format::Json && first != std::string::npos && line[first] == '[') {
    std::string text = line + "\n";
    text.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    check_read(in, path);
    nlohmann::json array;
    try {
      array = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw UsageError(path + ": invalid JSON: " + e.what());
    }
    for (size_t k = 0; k < array.size(); ++k) {
      docs.add_text(record_text(array[k], field, path + ": element " + std::to_string(k)));
      docs.end_document();
    }
    return;
  }
  read_json_lines(path, in, field, docs, bytes, number, std::move(line));
  check_read(in, path);
}

}  // namespace

std::vector<std::string> list_corpus_files(const CorpusOptions& options) {
  per_line_documents(options);  // validates the separator early
  std::vector<std::string> files;
  bool any = false;
  size_t pos = 0;
  const std::string& input = options.input;
  while (pos <= input.size()) {
    size_t comma = input.find(',', pos);
    if (comma == std::string::npos) comma = input.size();
    const std::string item = trim(std::string_view(input).substr(pos, comma - pos));
    pos = comma + 1;
    if (item.empty()) continue;
    any = true;
    std::error_code ec;
    const fs::file_status status = fs::status(item, ec);
    if (ec || !fs::exists(status)) {
      throw UsageError("data.input: '" + item + "' does not exist (expected files or directories, comma-separated)");
    }
    if (fs::is_directory(status)) {
      std::vector<std::string> found;
      for (fs::recursive_directory_iterator it(item, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file(ec) && is_corpus_file(it->path())) found.push_back(it->path().string());
      }
      if (ec) throw UsageError("data.input: cannot list directory '" + item + "': " + ec.message());
      if (found.empty()) {
        throw UsageError("data.input: directory '" + item + "' holds no *.txt, *.jsonl or *.json files");
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(item);
    }
  }
  if (!any) throw UsageError("data.input is empty: give text files or directories, comma-separated");
  return files;
}

void for_each_document(const CorpusOptions& options, const std::function<void(const std::vector<std::string>&)>& fn,
                       const ProgressHook& bytes_read) {
  DocumentBuilder docs(per_line_documents(options), fn);
  const std::vector<std::string> files = list_corpus_files(options);
  std::vector<int64_t> sizes(files.size(), 0);
  for (size_t f = 0; f < files.size(); ++f) {
    std::error_code ec;
    const auto size = fs::file_size(files[f], ec);  // not a regular file (a pipe): counted as 0
    if (!ec) sizes[f] = static_cast<int64_t>(size);
  }
  bytes_read.start(std::accumulate(sizes.begin(), sizes.end(), int64_t{0}));
  ByteProgress bytes(bytes_read);
  for (size_t f = 0; f < files.size(); ++f) {
    bytes.begin_file(sizes[f]);
    const Format format = format_of(files[f]);
    if (format == Format::Text) {
      read_text_file(files[f], docs, bytes);
    } else {
      read_json_file(files[f], format, options.text_field, docs, bytes);
    }
    docs.end_document();  // a document never spans files
    bytes.end_file();
  }
}

}  // namespace mpibert::data
