// Fuzz target: the declare-once configuration schema (common/config/schema.h).
// Every input is read three ways: as a YAML config file for run_mlm (run_schema()) and for
// run_classification (classification_schema()), and, one word per line, as the command line of
// run_mlm (parse_args) and of gaudi_spawn (parse_launch_options, flag-only syntax).
// Properties: bad input is a UsageError; an accepted config dumps (to_yaml) to YAML that loads back
// to the same dump, as the checkpoints' config.yaml relies on.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/config/classification_config.h"
#include "common/config/run_config.h"
#include "fuzz_support.h"
#include "launcher/launch_options.h"

namespace {

using namespace mpibert;

template <class Root>
void check_yaml(const config::Schema<Root>& schema, const std::string& text) {
  Root cfg = schema.defaults();
  if (!fuzz::accepts_or_usage_error([&] { schema.load_yaml_text(&cfg, text, "fuzz.yaml"); })) return;
  const std::string dump = schema.to_yaml(&cfg);
  Root back = schema.defaults();
  try {
    schema.load_yaml_text(&back, dump, "dump");
  } catch (const std::exception& e) {
    fuzz::property_failed("the dump of an accepted config does not load back: " + std::string(e.what()) +
                          "\n--- dump ---\n" + dump);
  }
  if (schema.to_yaml(&back) != dump) fuzz::property_failed("the dump does not round-trip:\n" + dump);
}

// `--config FILE` would read whatever file the input names; the YAML reading is fuzzed above.
bool names_config_file(const std::vector<std::string>& words) {
  for (const auto& word : words) {
    const size_t start = word.find_first_not_of('-');
    if (start != std::string::npos && start > 0 && word.compare(start, 6, "config") == 0) return true;
  }
  return false;
}

void check_command_lines(const std::vector<std::string>& words) {
  fuzz::accepts_or_usage_error([&] { launcher::parse_launch_options(words); });
  if (names_config_file(words)) return;
  RunConfig cfg = run_schema().defaults();
  fuzz::accepts_or_usage_error([&] { run_schema().parse_args(&cfg, words, config::ArgsSyntax{}); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(fuzz::as_text(data, size));
  check_yaml(run_schema(), text);
  check_yaml(classification_schema(), text);
  check_command_lines(fuzz::lines_of(text));
  return 0;
}
