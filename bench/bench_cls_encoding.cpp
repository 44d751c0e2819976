// Table reading and sequence-classification encoding speed on real text, with Python's csv / json
// modules (what datasets' loaders mirror) as the baseline; also the ids dump that
// tests/e2e/pair_encoding_reference.sh compares with Hugging Face tokenizers.
//   bench_cls_encoding [DATA_DIR] [--rows N] [--vocab V] [--repeat R]   (--help lists the options)
//     DATA_DIR (default data/brown-genres, from scripts/fetch-corpus.sh): train.csv's passages are
//     repeated into N rows (default 100000) written as CSV, TSV and JSON lines in a temporary folder.
//     JSON lines printed:
//       cls_table_read        per format: rows, bytes, best-of-R seconds of read_table, rows/s, MB/s
//       python_table_read     the same files through Python's csv / json modules (skipped without python3)
//       cls_table_read_vs_python  our rows/s over Python's, per format
//       cls_encode            encode_classification_table of the CSV table at max_seq_length 128
//     Without --vocab an uncased vocab (8000 tokens) is trained on the passages first.
//   bench_cls_encoding --write-ids OUT --vocab V --input TABLE --first COLS [--second COLS]
//                      --max-seq-length L [--cased]
//     writes a line per row: the input ids, a tab, the token type ids (space-separated).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_args.h"
#include "common/data/table_reader.h"
#include "common/data/text_classification.h"
#include "common/data/wordpiece.h"
#include "common/data/wordpiece_trainer.h"
#include "common/error.h"

namespace fs = std::filesystem;
using namespace mpibert;
using namespace mpibert::data;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string data_dir = "data/brown-genres";
  size_t rows = 0, max_seq_length = 0;
  int repeat = 0;
  std::string vocab, write_ids, input, first, second;
  bool cased = false;
  bool lowercase() const { return !cased; }
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
void emit(const nlohmann::json& j) {
  std::cout << j.dump() << std::endl;
}

// function-size: table
config::Schema<Options> build_schema() {
  config::Schema<Options> s;
  s.add<size_t>(
       "bench.rows", [](Options& o) -> size_t& { return o.rows; }, 100000,
       "rows of the generated CSV, TSV and JSON-lines tables")
      .range(1, 1e9)
      .alias("rows");
  s.add<int>(
       "bench.repeat", [](Options& o) -> int& { return o.repeat; }, 3, "runs per measurement (best of them)")
      .range(1, 1e6)
      .alias("repeat");
  s.add<std::string>(
       "tokenizer.vocab", [](Options& o) -> std::string& { return o.vocab; }, "",
       "vocab.txt to encode with (\"\" = train an uncased 8000-token vocab on the passages)")
      .alias("vocab");
  s.add<bool>(
       "tokenizer.cased", [](Options& o) -> bool& { return o.cased; }, false, "keep case and accents (a cased vocab)")
      .alias("cased");
  s.add<size_t>(
       "encode.max_seq_length", [](Options& o) -> size_t& { return o.max_seq_length; }, 128,
       "tokens per encoded example, [CLS] and [SEP] included")
      .range(1, 1 << 20)
      .alias("max-seq-length")
      .alias("max_seq_length");
  s.add<std::string>(
       "write_ids.out", [](Options& o) -> std::string& { return o.write_ids; }, "",
       "write the ids of --input's rows to this file instead of benchmarking (needs --vocab, --input, "
       "--first)")
      .alias("write-ids");
  s.add<std::string>(
       "write_ids.input", [](Options& o) -> std::string& { return o.input; }, "",
       "the table (CSV, TSV, JSON lines) whose rows --write-ids encodes")
      .alias("input");
  s.add<std::string>(
       "write_ids.first", [](Options& o) -> std::string& { return o.first; }, "",
       "column(s) of the first text, comma-separated")
      .alias("first");
  s.add<std::string>(
       "write_ids.second", [](Options& o) -> std::string& { return o.second; }, "",
       "column(s) of the second text of a pair (\"\" = single texts)")
      .alias("second");
  return s;
}

Options parse_options(int argc, char** argv) {
  static const config::Schema<Options> schema = build_schema();
  Options o;
  const auto positionals = bench::parse_bench_args(
      schema, o, argc, argv,
      "bench_cls_encoding [DATA_DIR] [options]: table reading and classification encoding speed against Python's\n"
      "csv / json modules; DATA_DIR (default data/brown-genres) from scripts/fetch-corpus.sh.\n"
      "bench_cls_encoding --write-ids OUT --vocab V --input TABLE --first COLS [--second COLS] --max-seq-length L\n"
      "[--cased]: the ids of each row (input ids, a tab, token type ids) for tests/e2e/pair_encoding_reference.sh.",
      1);
  if (!positionals.empty()) o.data_dir = positionals[0];
  return o;
}

int write_ids(const Options& o) {
  if (o.vocab.empty() || o.input.empty() || o.first.empty()) {
    throw UsageError("--write-ids needs --vocab, --input and --first");
  }
  const auto tok = WordPieceTokenizer::from_vocab_file(o.vocab, o.lowercase());
  TextColumns columns;
  columns.first = split_column_names(o.first, "--first");
  if (!o.second.empty()) columns.second = split_column_names(o.second, "--second");
  const Table table = read_table(o.input);
  const ClassificationDataset data = encode_classification_table(table, columns, nullptr, false, tok, o.max_seq_length);
  std::ofstream out(o.write_ids, std::ios::binary);
  const auto join = [](const std::vector<int32_t>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
    return s;
  };
  for (const ClassificationExample& ex : data.examples) {
    out << join(ex.input.input_ids) << '\t' << join(ex.input.token_type_ids) << '\n';
  }
  if (!out) throw std::runtime_error(o.write_ids + ": write error");
  return 0;
}

std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// Writes `rows` rows cycling through the passages as CSV, TSV and JSON lines; returns the paths.
std::vector<std::string> write_tables(const Table& train, size_t rows, const std::string& dir) {
  const int text = train.column_index("text"), label = train.column_index("label"), doc = train.column_index("doc_id");
  if (text < 0 || label < 0 || doc < 0) throw UsageError(train.source + ": expected columns text,label,doc_id");
  const std::vector<std::string> paths = {dir + "/rows.csv", dir + "/rows.tsv", dir + "/rows.jsonl"};
  std::ofstream csv(paths[0], std::ios::binary), tsv(paths[1], std::ios::binary), jsonl(paths[2], std::ios::binary);
  csv << "text,label,doc_id\n";
  tsv << "text\tlabel\tdoc_id\n";
  for (size_t r = 0; r < rows; ++r) {
    const auto& row = train.rows[r % train.rows.size()];
    csv << quoted(row[text].text) << ',' << row[label].text << ',' << row[doc].text << '\n';
    tsv << quoted(row[text].text) << '\t' << row[label].text << '\t' << row[doc].text << '\n';
    jsonl << nlohmann::json{{"text", row[text].text}, {"label", row[label].text}, {"doc_id", row[doc].text}}.dump()
          << '\n';
  }
  if (!csv || !tsv || !jsonl) throw std::runtime_error(dir + ": write error");
  return paths;
}

// Best-of-`repeat` seconds of Python's stdlib reading `path`, or a negative value when unavailable.
double python_seconds(const std::string& path, int repeat) {
  const std::string script =
      "import csv,json,sys,time\n"
      "p=sys.argv[1]; best=1e30\n"
      "for _ in range(int(sys.argv[2])):\n"
      "  t=time.perf_counter()\n"
      "  with open(p, newline='', encoding='utf-8') as f:\n"
      "    if p.endswith('.jsonl'): rows=[json.loads(l) for l in f if l.strip()]\n"
      "    else: rows=list(csv.reader(f, delimiter='\\t' if p.endswith('.tsv') else ','))\n"
      "  best=min(best, time.perf_counter()-t)\n"
      "print(best)\n";
  const std::string script_path = fs::path(path).parent_path() / "read.py";
  std::ofstream(script_path) << script;
  const std::string cmd = "python3 '" + script_path + "' '" + path + "' " + std::to_string(repeat) + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[128] = {0};
  const bool got = fgets(buf, sizeof buf, p) != nullptr;
  const int status = pclose(p);
  return got && status == 0 ? std::stod(buf) : -1;
}

WordPieceTokenizer bench_tokenizer(const Options& o, const Table& train) {
  if (!o.vocab.empty()) return WordPieceTokenizer::from_vocab_file(o.vocab, o.lowercase());
  std::vector<std::string> texts;
  const int text = train.column_index("text");
  for (const auto& row : train.rows) texts.push_back(row[text].text);
  WordPieceTrainerOptions options;
  options.vocab_size = 8000;
  options.lowercase = o.lowercase();
  return WordPieceTokenizer::from_tokens(train_wordpiece(texts, options), o.lowercase());
}

void bench_reading(const std::vector<std::string>& paths, int repeat) {
  const char* formats[] = {"csv", "tsv", "jsonl"};
  for (size_t f = 0; f < paths.size(); ++f) {
    double best = 1e30;
    size_t rows = 0;
    for (int r = 0; r < repeat; ++r) {
      const auto t0 = Clock::now();
      const Table t = read_table(paths[f]);
      best = std::min(best, seconds_since(t0));
      rows = t.rows.size();
    }
    const double bytes = static_cast<double>(fs::file_size(paths[f]));
    emit({{"bench", "cls_table_read"},
          {"format", formats[f]},
          {"rows", rows},
          {"bytes", bytes},
          {"seconds", best},
          {"rows_per_s", rows / best},
          {"mb_per_s", bytes / 1e6 / best}});
    const double py = python_seconds(paths[f], repeat);
    if (py < 0) {
      emit({{"bench", "python_table_read"}, {"format", formats[f]}, {"skipped", "python3 unavailable or failed"}});
      continue;
    }
    emit({{"bench", "python_table_read"},
          {"format", formats[f]},
          {"rows", rows},
          {"seconds", py},
          {"rows_per_s", rows / py},
          {"mb_per_s", bytes / 1e6 / py}});
    emit({{"bench", "cls_table_read_vs_python"}, {"format", formats[f]}, {"speedup", py / best}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("bench_cls_encoding", [&] {
    const Options o = parse_options(argc, argv);
    if (!o.write_ids.empty()) return write_ids(o);
    const std::string train_path = o.data_dir + "/train.csv";
    if (!fs::exists(train_path)) {
      throw UsageError(train_path + " does not exist: run scripts/fetch-corpus.sh from the repository root first");
    }
    const Table train = read_table(train_path);
    char tmpl[] = "/tmp/mpibert-bench-cls.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("cannot create a temporary directory under /tmp");
    struct Cleanup {
      std::string dir;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(dir, ec);
      }
    } cleanup{tmpl};
    const std::vector<std::string> paths = write_tables(train, o.rows, cleanup.dir);
    bench_reading(paths, o.repeat);

    const WordPieceTokenizer tok = bench_tokenizer(o, train);
    const Table table = read_table(paths[0]);
    TextColumns columns;
    columns.first = {"text"};
    const LabelSpace labels = build_label_space(table, "label");
    double best = 1e30;
    size_t tokens = 0, truncated = 0;
    for (int r = 0; r < o.repeat; ++r) {
      const auto t0 = Clock::now();
      const ClassificationDataset d = encode_classification_table(table, columns, &labels, true, tok, o.max_seq_length);
      best = std::min(best, seconds_since(t0));
      tokens = 0;
      for (const auto& ex : d.examples) tokens += ex.input.input_ids.size();
      truncated = d.truncated_examples;
    }
    emit({{"bench", "cls_encode"},
          {"rows", table.rows.size()},
          {"max_seq_length", o.max_seq_length},
          {"vocab_size", tok.vocab_size()},
          {"tokens", tokens},
          {"truncated_examples", truncated},
          {"seconds", best},
          {"examples_per_s", table.rows.size() / best},
          {"tokens_per_s", tokens / best}});
    return 0;
  });
}
