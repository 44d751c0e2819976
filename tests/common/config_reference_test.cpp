// The configuration reference in docs/configuration.md is generated from the declarations: the text
// between each program's markers must equal markdown_reference(that program's schema) exactly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/config/classification_config.h"
#include "common/config/run_config.h"
#include "common/config/schema_markdown.h"

namespace mpibert {
namespace {

namespace fs = std::filesystem;

const std::string kEnd = "<!-- END GENERATED -->";

std::string begin_marker(const std::string& program) {
  return "<!-- BEGIN GENERATED: " + program + " --help --markdown -->\n";
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

struct Marked {
  size_t begin = std::string::npos;  // first character after the BEGIN line
  size_t end = std::string::npos;    // first character of the END marker
};

Marked find_markers(const std::string& doc, const std::string& begin_line) {
  Marked m;
  size_t b = doc.find(begin_line);
  if (b == std::string::npos || doc.find(begin_line, b + 1) != std::string::npos) return m;
  size_t e = doc.find(kEnd, b + begin_line.size());  // the block's own END: the first after its BEGIN
  if (e == std::string::npos) return m;
  m.begin = b + begin_line.size();
  m.end = e;
  return m;
}

TEST(ConfigReference, DocsConfigurationMdMatchesTheDeclarations) {
  const fs::path doc_path = fs::path(MPIBERT_SOURCE_DIR) / "docs" / "configuration.md";
  const std::string original = read_text(doc_path);
  ASSERT_FALSE(original.empty()) << doc_path << " is missing or empty";
  std::string doc = original;
  const std::vector<std::pair<std::string, const config::SchemaBase*>> programs = {
      {"run_mlm", &run_schema()}, {"run_classification", &classification_schema()}};
  for (const auto& [program, schema] : programs) {
    const std::string begin = begin_marker(program);
    const Marked m = find_markers(doc, begin);
    ASSERT_NE(m.begin, std::string::npos)
        << doc_path << " must hold exactly one line '" << begin.substr(0, begin.size() - 1) << "' followed (later) by '"
        << kEnd << "'";
    doc = doc.substr(0, m.begin) + config::markdown_reference(*schema) + doc.substr(m.end);
  }
  if (doc == original) return;
  // Leave the regenerated page where the message says, so the fix is one copy.
  const fs::path updated_doc = fs::path(MPIBERT_BIN_DIR).parent_path() / "configuration.md";
  write_text(updated_doc, doc);
  FAIL() << doc_path << " is out of date with the declarations (common/config/run_config.cpp, "
         << "classification_config.cpp, shared_keys.h).\nRegenerate it: cp " << updated_doc << " " << doc_path
         << "\n(`run_mlm --help --markdown` and `run_classification --help --markdown` print the blocks). Review "
            "the diff before committing.";
}

// A small schema of its own, so the table format itself is pinned.
struct Tiny {
  std::string mode, path;
  int64_t count = 0;
  double rate = 0;
  bool flag = false;
};

config::Schema<Tiny> tiny_schema() {
  config::Schema<Tiny> s;
  s.add<std::string>(
       "alpha.mode", [](Tiny& t) -> std::string& { return t.mode; }, "fast", "a|b style help for *.txt <files>")
      .one_of({"fast", "slow"})
      .alias("mode");
  s.add<std::string>(
       "alpha.path", [](Tiny& t) -> std::string& { return t.path; }, "", "where; bare = latest")
      .implicit("latest");
  s.add<int64_t>(
       "beta.count", [](Tiny& t) -> int64_t& { return t.count; }, 3, "how many")
      .range(0, 9e18);
  s.add<double>(
       "beta.rate", [](Tiny& t) -> double& { return t.rate; }, 5e-5, "how fast")
      .range(0.001, 4096);
  s.add<double>(
       "beta.floor", [](Tiny& t) -> double& { return t.rate; }, 1.0, "at least")
      .at_least(0.5);
  s.add<bool>(
       "beta.flag", [](Tiny& t) -> bool& { return t.flag; }, true, "on or off")
      .alias("flag")
      .alias("f");
  return s;
}

TEST(ConfigReference, OneTablePerSectionWithRangesChoicesAliasesAndEscapedPipes) {
  const std::string expected =
      "### Section `alpha`\n"
      "\n"
      "| key | type | default | valid values | flat aliases | help |\n"
      "|---|---|---|---|---|---|\n"
      "| `alpha.mode` | string | `fast` | one of `fast`, `slow` | `--mode` | a\\|b style help for \\*.txt &lt;files> "
      "|\n"
      "| `alpha.path` | string | `\"\"` | string; a bare flag means `latest` |  | where; bare = latest |\n"
      "\n"
      "### Section `beta`\n"
      "\n"
      "| key | type | default | valid values | flat aliases | help |\n"
      "|---|---|---|---|---|---|\n"
      "| `beta.count` | int | `3` | integer in [0, 9000000000000000000] |  | how many |\n"
      "| `beta.rate` | float | `5e-05` | number in [0.001, 4096] |  | how fast |\n"
      "| `beta.floor` | float | `1.0` | number >= 0.5 |  | at least |\n"
      "| `beta.flag` | bool | `true` | `true` or `false` | `--flag`, `--f` | on or off |\n"
      "\n";
  EXPECT_EQ(config::markdown_reference(tiny_schema()), expected);
}

TEST(ConfigReference, EveryRunKeyAndAliasAppearsOnce) {
  const std::string text = config::markdown_reference(run_schema());
  for (const auto& field : run_schema().fields()) {
    const std::string row = "| `" + field.key + "` |";
    EXPECT_NE(text.find(row), std::string::npos) << field.key;
    EXPECT_EQ(text.find(row), text.rfind(row)) << field.key << " listed twice";
    for (const auto& alias : field.aliases) EXPECT_NE(text.find("`--" + alias + "`"), std::string::npos) << alias;
  }
}

}  // namespace
}  // namespace mpibert
