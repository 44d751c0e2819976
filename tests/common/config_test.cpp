// The run configuration: defaults, YAML, flags, aliases, and every kind of error message.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/config/classification_config.h"
#include "common/config/run_config.h"

namespace mpibert {
namespace {

RunConfig parse(std::vector<std::string> args, config::ParsedArgs* parsed = nullptr,
                const std::map<std::string, bool>& extra = {}) {
  args.insert(args.begin(), "prog");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  return parse_run_config(static_cast<int>(argv.size()), argv.data(), parsed, extra);
}

std::string error_of(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string write_temp(const std::string& name, const std::string& text) {
  auto path = std::filesystem::temp_directory_path() / ("mpibert_cfg_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(path) << text;
  return path.string();
}

TEST(Config, DefaultsComeFromTheDeclarations) {
  RunConfig c = parse({});
  EXPECT_EQ(c.train.learning_rate, 5e-5);
  EXPECT_EQ(c.train.seed, 34);
  EXPECT_EQ(c.train.logging_steps, 100);
  EXPECT_EQ(c.train.save_steps, 5000);
  EXPECT_EQ(c.train.save_total_limit, 2);
  EXPECT_EQ(c.train.throughput_warmup_steps, 2);
  EXPECT_EQ(c.train.mlm_probability, 0.15);
  EXPECT_EQ(c.data.seq_len, 128);
  EXPECT_EQ(c.model.preset, "bert-mini");
  EXPECT_TRUE(c.model.sparse_head);
  EXPECT_EQ(c.train.precision, "auto");
}

// Every optimizer setting the trainer reads has a declared key, in both programs' schemas: a field left out
// of the schema keeps its C++ zero (Adam with beta1 = beta2 = 0 is sign descent, and trains badly).
TEST(Config, AdamSettingsHaveHuggingFaceDefaultsAndFlags) {
  for (const auto& train : {parse({}).train, classification_schema().defaults().train}) {
    EXPECT_EQ(train.adam_beta1, 0.9);
    EXPECT_EQ(train.adam_beta2, 0.999);
    EXPECT_EQ(train.adam_epsilon, 1e-8);
  }
  RunConfig c = parse({"--adam_beta1", "0.8", "--train.adam_beta2", "0.98"});
  EXPECT_EQ(c.train.adam_beta1, 0.8);
  EXPECT_EQ(c.train.adam_beta2, 0.98);
  EXPECT_NE(error_of({"--adam_beta2", "1"}).find("--adam_beta2: '1' is out of range"), std::string::npos);
}

TEST(Config, SectionKeysFlatAliasesAndEqualsSpelling) {
  RunConfig c = parse({"--train.learning_rate", "1e-4", "--per_device_train_batch_size=16",
                       "--gradient_accumulation_steps", "4", "--max_steps", "100", "--output_dir", "/tmp/x",
                       "--model.preset", "bert-base-uncased", "--dist.overlap", "false"});
  EXPECT_EQ(c.train.learning_rate, 1e-4);
  EXPECT_EQ(c.train.per_device_train_batch_size, 16);
  EXPECT_EQ(c.train.gradient_accumulation_steps, 4);
  EXPECT_EQ(c.train.max_steps, 100);
  EXPECT_EQ(c.train.output_dir, "/tmp/x");
  EXPECT_EQ(c.model.preset, "bert-base-uncased");
  EXPECT_FALSE(c.dist.overlap);
}

TEST(Config, BareFlagsTakeTheirImplicitValue) {
  config::ParsedArgs p;
  RunConfig c = parse({"--overwrite_output_dir", "--resume_from_checkpoint", "--do_eval", "--seed", "7", "extra"}, &p);
  EXPECT_TRUE(c.train.overwrite_output_dir);
  EXPECT_EQ(c.train.resume_from_checkpoint, "latest");
  EXPECT_TRUE(c.train.do_eval);
  EXPECT_EQ(c.train.seed, 7);
  ASSERT_EQ(p.positionals.size(), 1u);
  EXPECT_EQ(p.positionals[0], "extra");
  c = parse({"--do_train", "false", "--resume_from_checkpoint", "runs/x/checkpoint-5"});
  EXPECT_FALSE(c.train.do_train);
  EXPECT_EQ(c.train.resume_from_checkpoint, "runs/x/checkpoint-5");
}

TEST(Config, YamlFileThenFlagsOverrideIt) {
  auto path = write_temp("ok.yaml",
                         "data:\n  seq_len: 64\nmodel:\n  preset: tiny\ntrain:\n  learning_rate: 3e-4\n"
                         "  max_steps: 20\n  whole_word_masking: yes\ndist:\n");
  RunConfig c = parse({"--config", path, "--max_steps", "30"});
  EXPECT_EQ(c.data.seq_len, 64);
  EXPECT_EQ(c.model.preset, "tiny");
  EXPECT_EQ(c.train.learning_rate, 3e-4);
  EXPECT_EQ(c.train.max_steps, 30);  // the flag wins even though it came after --config
  EXPECT_TRUE(c.train.whole_word_masking);
  // Flags given before --config still override the file.
  c = parse({"--max_steps", "40", "--config", path});
  EXPECT_EQ(c.train.max_steps, 40);
}

TEST(Config, UnknownKeysGetDidYouMean) {
  EXPECT_EQ(error_of({"--learning_rat", "1"}),
            "unknown option '--learning_rat'; did you mean '--learning_rate'? (--help lists every option)");
  EXPECT_NE(error_of({"--train.lerning_rate", "1"}).find("did you mean '--train.learning_rate'?"), std::string::npos);
  auto path = write_temp("unknown.yaml", "train:\n  warmup_step: 10\n");
  EXPECT_EQ(error_of({"--config", path}),
            path + ": unknown key 'train.warmup_step'; did you mean 'train.warmup_steps'?");
  path = write_temp("section.yaml", "trian:\n  seed: 1\n");
  EXPECT_EQ(error_of({"--config", path}), path + ": unknown section 'trian'; did you mean 'train'?");
}

TEST(Config, WrongTypesAndRangesNameKeyValueAndWhatIsValid) {
  EXPECT_EQ(error_of({"--learning_rate", "fast"}),
            "--learning_rate: 'fast' is not a number (expected a number in [0, 10])");
  EXPECT_EQ(error_of({"--max_steps", "1.5"}),
            "--max_steps: '1.5' is not an integer (expected -1 (train num_train_epochs) or a number of steps >= 1; 0 "
            "would train nothing)");
  EXPECT_EQ(error_of({"--max_steps", "0"}).find("--max_steps: '0' "), 0u);  // never a silent 3 epochs
  EXPECT_NE(error_of({"--adam_epsilon", "0"}).find("0 divides by zero"), std::string::npos);
  EXPECT_EQ(error_of({"--per_device_train_batch_size", "0"}),
            "--per_device_train_batch_size: '0' is out of range (expected an integer in [1, 1048576])");
  EXPECT_EQ(error_of({"--do_eval", "maybe"}).find("maybe"), std::string::npos);  // bare --do_eval + positional
  EXPECT_EQ(error_of({"--do_eval=maybe"}), "--do_eval: 'maybe' is not a boolean (expected true or false)");
  EXPECT_EQ(error_of({"--train.optimizer", "adam"}),
            "--train.optimizer: 'adam' is not valid (expected one of adamw, lamb); did you mean 'adamw'?");
  auto path = write_temp("types.yaml", "train:\n  seed: [1, 2]\n");
  EXPECT_EQ(error_of({"--config", path}), path + ": train.seed: expected a single value, not a list or mapping");
  path = write_temp("range.yaml", "data:\n  validation_fraction: 0.9\n");
  EXPECT_EQ(error_of({"--config", path}),
            path + ": data.validation_fraction: '0.9' is out of range (expected a number in [0, 0.5])");
  EXPECT_EQ(error_of({"--config", "/nonexistent/run.yaml"}), "/nonexistent/run.yaml: cannot open config file");
  path = write_temp("broken.yaml", "train: {seed: 1\n");
  EXPECT_NE(error_of({"--config", path}).find(path + ": invalid YAML at line"), std::string::npos);
  EXPECT_EQ(error_of({"--seed"}), "option '--seed' needs a value");
}

TEST(Config, ResolvedYamlRoundTripsExactly) {
  RunConfig c = parse({"--learning_rate", "0.000123", "--output_dir", "a: b \"c\"", "--max_time", "12.5"});
  std::string yaml = run_schema().to_yaml(&c);
  EXPECT_NE(yaml.find("train:\n"), std::string::npos);
  EXPECT_NE(yaml.find("  learning_rate: 0.000123\n"), std::string::npos);
  RunConfig back = run_schema().defaults();
  run_schema().load_yaml_text(&back, yaml, "dump");
  EXPECT_EQ(run_schema().to_yaml(&back), yaml);
  EXPECT_EQ(back.train.output_dir, "a: b \"c\"");
}

// Found by fuzzing (tests/fuzz/fuzz_config.cpp): a raw line break inside the dump's quoted string was
// folded into a space when the dump was read back.
TEST(Config, ResolvedYamlRoundTripsControlCharacters) {
  RunConfig c = parse({"--output_dir", "runs/a\nb\tc\rd\x01e\x7f"});
  const std::string yaml = run_schema().to_yaml(&c);
  RunConfig back = run_schema().defaults();
  run_schema().load_yaml_text(&back, yaml, "dump");
  EXPECT_EQ(back.train.output_dir, "runs/a\nb\tc\rd\x01e\x7f");
  EXPECT_EQ(run_schema().to_yaml(&back), yaml);
}

// Found by fuzzing: a list or mapping used as a YAML key escaped as yaml-cpp's "bad conversion" (exit 1).
TEST(Config, ListOrMappingAsKeyIsAUsageError) {
  RunConfig c = run_schema().defaults();
  for (const char* text : {"[a]: 1\n", "train:\n  ? [a]\n  : 1\n", "{x: 1}: 2\n"}) {
    try {
      run_schema().load_yaml_text(&c, text, "run.yaml");
      ADD_FAILURE() << "no error for " << text;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("run.yaml: line "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("a list or mapping cannot be a key"), std::string::npos) << e.what();
    }
  }
}

// Found by fuzzing: a subnormal number passed validation, then std::stod threw std::out_of_range ("stod").
TEST(Config, SubnormalNumbersAreAccepted) {
  EXPECT_EQ(parse({"--learning_rate", "1e-310"}).train.learning_rate, 1e-310);
  RunConfig c = run_schema().defaults();
  run_schema().load_yaml_text(&c, "train:\n  weight_decay: 4.9e-324\n", "run.yaml");
  EXPECT_EQ(c.train.weight_decay, 4.9e-324);
}

TEST(Config, HelpIsGeneratedFromTheDeclarations) {
  std::string help = run_schema().help_text("usage: run_mlm [--config FILE] [flags]");
  EXPECT_NE(help.find("--train.learning_rate <float>, --learning_rate"), std::string::npos);
  EXPECT_NE(help.find("peak learning rate (default: 5e-05; a number in [0, 10])"), std::string::npos);
  EXPECT_NE(help.find("--train.optimizer <string>, --optim"), std::string::npos);
  for (const auto& f : run_schema().fields()) EXPECT_NE(help.find("--" + f.key + " "), std::string::npos) << f.key;
}

TEST(Config, ProgramSpecificFlagsArePassedThrough) {
  config::ParsedArgs p;
  parse({"--vocab", "v.txt", "--json", "--top_k", "3"}, &p, {{"vocab", true}, {"json", false}, {"top_k", true}});
  EXPECT_EQ(p.extras.at("vocab"), "v.txt");
  EXPECT_EQ(p.extras.at("json"), "");
  EXPECT_EQ(p.extras.at("top_k"), "3");
}

// An elastic restart on fewer ranks keeps the global batch: accumulation follows from the world size.
TEST(Config, GlobalBatchSizeDerivesAccumulationForTheWorldSize) {
  RunConfig c = parse({"--per_device_train_batch_size", "4", "--global_batch_size", "16"});
  resolve_global_batch(c.train, 2);
  EXPECT_EQ(c.train.gradient_accumulation_steps, 2);
  resolve_global_batch(c.train, 1);
  EXPECT_EQ(c.train.gradient_accumulation_steps, 4);
  resolve_global_batch(c.train, 4);
  EXPECT_EQ(c.train.gradient_accumulation_steps, 1);
  try {
    resolve_global_batch(c.train, 3);
    FAIL() << "12 does not divide 16";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(),
                 "train.global_batch_size 16 is not a multiple of world_size x per_device_train_batch_size = 3 x 4 "
                 "= 12: choose a multiple of it, or change per_device_train_batch_size");
  }
  RunConfig unset = parse({"--gradient_accumulation_steps", "3"});  // 0: the configured accumulation stays
  resolve_global_batch(unset.train, 2);
  EXPECT_EQ(unset.train.gradient_accumulation_steps, 3);
}

}  // namespace
}  // namespace mpibert
