// Tokenizer throughput on a real corpus, with Hugging Face tokenizers (Node binding) as the baseline.
//   bench_tokenizer [CORPUS] [--vocab VOCAB] [--cased] [--threads N] [--repeat R] [--hf-script PATH]
//   (--help lists the options)
// CORPUS (default data/corpus): files/directories as data.input takes them. Without --vocab a vocab
// (30522, min_frequency 2) is trained on the corpus first. Prints JSON lines:
//   tokenizer_train         training time (when no vocab was given)
//   tokenizer_encode        in_memory (tokenizer only) and encode_file (read + encode + write, the
//                           whole `prepare_data encode` path) at 1 thread and N threads: MB/s, tokens/s
//   hf_tokenizers_encode    the same text and vocab through npm tokenizers, single thread
//                           (RAYON_NUM_THREADS=1), encode only, timed inside Node
//   tokenizer_vs_hf         ratio of our single-thread encode_file MB/s to HF's single-thread MB/s
// The baseline runs when node and tests/e2e/tokenizer_reference/node_modules exist (install them
// with tests/e2e/tokenizer_reference/install.sh); otherwise a "skipped" line says why.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_args.h"
#include "common/data/encode_file.h"
#include "common/data/text_corpus.h"
#include "common/data/wordpiece.h"
#include "common/data/wordpiece_trainer.h"
#include "common/error.h"

namespace fs = std::filesystem;
using namespace mpibert;
using namespace mpibert::data;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void emit(const nlohmann::json& j) {
  std::cout << j.dump() << std::endl;
}

std::string run_command(const std::string& cmd, int& status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  status = pclose(p);
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Options {
  std::string vocab, hf_script;
  bool cased = false;
  std::optional<int64_t> threads;
  int64_t repeat = 0;
};

// function-size: table
config::Schema<Options> build_schema() {
  config::Schema<Options> s;
  s.add<std::string>(
       "tokenizer.vocab", [](Options& o) -> std::string& { return o.vocab; }, "",
       "vocab.txt to encode with (\"\" = train a 30522-token vocab on the corpus first)")
      .alias("vocab");
  s.add<bool>(
       "tokenizer.cased", [](Options& o) -> bool& { return o.cased; }, false, "keep case and accents (a cased vocab)")
      .alias("cased");
  s.add<std::optional<int64_t>>(
       "bench.threads", [](Options& o) -> std::optional<int64_t>& { return o.threads; }, std::nullopt,
       "threads of the multi-threaded encode_file run")
      .range(1, 4096)
      .when_unset("all cores")
      .alias("threads");
  s.add<int64_t>(
       "bench.repeat", [](Options& o) -> int64_t& { return o.repeat; }, 3, "runs per measurement (best of them)")
      .range(1, 1e6)
      .alias("repeat");
  s.add<std::string>(
       "baseline.hf_script", [](Options& o) -> std::string& { return o.hf_script; },
       "tests/e2e/tokenizer_reference/hf.mjs", "the Node script that runs Hugging Face tokenizers")
      .alias("hf-script");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("bench_tokenizer", [&] {
    static const config::Schema<Options> schema = build_schema();
    Options o;
    const auto positionals = bench::parse_bench_args(
        schema, o, argc, argv,
        "bench_tokenizer [CORPUS] [options]: WordPiece encoding throughput against Hugging Face tokenizers (Node);\n"
        "CORPUS (default data/corpus): files/directories as data.input takes them.",
        1);
    const std::string corpus = positionals.empty() ? "data/corpus" : positionals[0];
    std::string vocab_path = o.vocab;
    const std::string& hf_script = o.hf_script;
    const bool lowercase = !o.cased;
    const int threads =
        static_cast<int>(o.threads.value_or(static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()))));
    const int repeat = static_cast<int>(o.repeat);
    if (!fs::exists(corpus)) {
      throw UsageError(corpus + " does not exist: run scripts/fetch-corpus.sh from the repository root first");
    }

    // One text file with the corpus (documents separated by blank lines), so every run reads the same bytes.
    char tmpl[] = "/tmp/mpibert-bench-tokenizer.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("cannot create a temporary directory under /tmp");
    const std::string tmp = tmpl;
    struct Cleanup {
      std::string dir;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(dir, ec);
      }
    } cleanup{tmp};
    const std::string text_path = tmp + "/corpus.txt";
    CorpusOptions corpus_options;
    corpus_options.input = corpus;
    WordCounter counter(lowercase);
    {
      std::ofstream text(text_path, std::ios::binary);
      for_each_document(corpus_options, [&](const std::vector<std::string>& lines) {
        for (const std::string& l : lines) {
          text << l << '\n';
          if (vocab_path.empty()) counter.add_text(l);
        }
        text << '\n';
      });
      if (!text) throw std::runtime_error(text_path + ": write error");
    }
    const uint64_t bytes = fs::file_size(text_path);

    if (vocab_path.empty()) {
      WordPieceTrainerOptions options;
      options.lowercase = lowercase;
      const auto t0 = Clock::now();
      const auto tokens = train_wordpiece(counter, options);
      const double s = seconds_since(t0);
      vocab_path = tmp + "/vocab.txt";
      write_vocab_file(vocab_path, tokens);
      emit({{"bench", "tokenizer_train"},
            {"corpus", corpus},
            {"corpus_bytes", bytes},
            {"distinct_words", counter.counts().size()},
            {"vocab_size", tokens.size()},
            {"merge_seconds", s}});
    }
    const auto tok = WordPieceTokenizer::from_vocab_file(vocab_path, lowercase);

    // Tokenizer alone, in memory, one thread.
    std::string text;
    {
      std::ifstream in(text_path, std::ios::binary);
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    double best = 1e30;
    uint64_t tokens = 0;
    for (int r = 0; r < repeat; ++r) {
      std::vector<int32_t> ids;
      WordList scratch;
      uint64_t n = 0;
      const auto t0 = Clock::now();
      size_t pos = 0;
      while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        ids.clear();
        tok.encode(std::string_view(text).substr(pos, nl - pos), ids, scratch);
        n += ids.size();
        pos = nl + 1;
      }
      best = std::min(best, seconds_since(t0));
      tokens = n;
    }
    emit({{"bench", "tokenizer_encode"},
          {"mode", "in_memory"},
          {"threads", 1},
          {"bytes", bytes},
          {"tokens", tokens},
          {"seconds", best},
          {"mb_per_s", bytes / 1e6 / best},
          {"tokens_per_s", tokens / best},
          {"vocab_size", tok.vocab_size()},
          {"lowercase", lowercase}});

    // The whole prepare_data encode path: read + encode + write.
    double single_mb_s = 0;
    std::vector<int> thread_counts{1};
    if (threads > 1) thread_counts.push_back(threads);
    for (int t : thread_counts) {
      EncodeStats bestStats;
      bestStats.seconds = 1e30;
      for (int r = 0; r < repeat; ++r) {
        const EncodeStats s = encode_file(tok, text_path, tmp + "/ids.txt", t);
        if (s.seconds < bestStats.seconds) bestStats = s;
      }
      const double mb_s = bestStats.bytes / 1e6 / bestStats.seconds;
      if (t == 1) single_mb_s = mb_s;
      emit({{"bench", "tokenizer_encode"},
            {"mode", "encode_file"},
            {"threads", t},
            {"bytes", bestStats.bytes},
            {"lines", bestStats.lines},
            {"tokens", bestStats.tokens},
            {"seconds", bestStats.seconds},
            {"mb_per_s", mb_s},
            {"mb_per_s_per_thread", mb_s / t},
            {"tokens_per_s", bestStats.tokens / bestStats.seconds}});
    }

    // Baseline: Hugging Face tokenizers through Node, one thread.
    const fs::path modules = fs::path(hf_script).parent_path() / "node_modules" / "tokenizers";
    int status = 0;
    run_command("command -v node >/dev/null 2>&1", status);
    if (status != 0 || !fs::exists(hf_script) || !fs::exists(modules)) {
      emit({{"bench", "hf_tokenizers_encode"},
            {"skipped", "needs node, " + hf_script + " and " + modules.string() +
                            " (run tests/e2e/tokenizer_reference/install.sh)"}});
      return 0;
    }
    double hf_best = 0;
    nlohmann::json hf_line;
    for (int r = 0; r < repeat; ++r) {
      const std::string cmd = "RAYON_NUM_THREADS=1 RAYON_RS_NUM_CPUS=1 TOKENIZERS_PARALLELISM=false node " +
                              shell_quote(hf_script) + " bench --vocab " + shell_quote(vocab_path) + " --input " +
                              shell_quote(text_path) + (lowercase ? "" : " --cased") + " 2>&1";
      const std::string out = run_command(cmd, status);
      if (status != 0) {
        emit({{"bench", "hf_tokenizers_encode"}, {"skipped", "node failed: " + out.substr(0, 400)}});
        return 0;
      }
      const auto j = nlohmann::json::parse(out.substr(out.find('{')));
      if (j.at("mb_per_s").get<double>() > hf_best) {
        hf_best = j.at("mb_per_s").get<double>();
        hf_line = j;
      }
    }
    hf_line["threads"] = 1;
    emit(hf_line);
    if (hf_line.at("tokens").get<uint64_t>() != tokens) {
      emit({{"bench", "tokenizer_vs_hf"},
            {"warning", "token counts differ"},
            {"ours", tokens},
            {"hf", hf_line.at("tokens")}});
    }
    emit({{"bench", "tokenizer_vs_hf"},
          {"ours", "encode_file 1 thread (read+encode+write)"},
          {"hf", "tokenizers encodeBatch 1 thread (encode only)"},
          {"ours_mb_per_s", single_mb_s},
          {"hf_mb_per_s", hf_best},
          {"ratio", single_mb_s / hf_best}});
    return 0;
  });
}
