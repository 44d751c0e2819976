// The schema's flag-only command lines (gaudi_spawn's kind): flat keys, switches, optional values,
// enums, repeatable list flags, `[options] PROGRAM [ARGS...]`, and the generated option help.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "common/config/schema.h"
#include "tests/usage_error_of.h"

namespace mpibert::config {
namespace {

using mpibert::testing::usage_error_of;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

enum class Color { Red, Green };

struct Tool {
  std::optional<int> count;
  bool dry_run;
  Color color;
  double wait_s;
  std::string name;
  std::vector<std::string> words;                        // each --words text split at spaces
  std::vector<std::pair<std::string, std::string>> env;  // --env KEY=VALUE
};

std::vector<std::string> split_at_spaces(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : text) {
    if (c != ' ')
      word += c;
    else if (!word.empty())
      out.push_back(word), word.clear();
  }
  if (!word.empty()) out.push_back(word);
  return out;
}

const Schema<Tool>& tool_schema() {
  static const Schema<Tool> schema = [] {
    Schema<Tool> s;
    s.add<std::optional<int>>(
         "count", [](Tool& t) -> std::optional<int>& { return t.count; }, std::nullopt, "how many")
        .range(1, 64)
        .when_unset("as many as there are")
        .value_named("N");
    s.add<bool>(
         "dry_run", [](Tool& t) -> bool& { return t.dry_run; }, false, "do nothing")
        .as_switch();
    s.add_enum<Color>("color", [](Tool& t) -> Color& { return t.color; }, Color::Red, "the color",
                      {{"red", Color::Red}, {"green", Color::Green}});
    s.add<double>(
         "wait", [](Tool& t) -> double& { return t.wait_s; }, 0.0, "seconds to wait")
        .at_least(0)
        .expects("seconds >= 0; 0 = forever");
    s.add<std::string>(
         "name", [](Tool& t) -> std::string& { return t.name; }, "", "a name")
        .satisfies([](const std::string& v) { return !v.empty(); }, "a non-empty name");
    s.add_list<std::string>(
        "words", [](Tool& t) -> std::vector<std::string>& { return t.words; }, "words, split at spaces (repeatable)",
        split_at_spaces, [](const std::string& w) { return w; });
    s.add_list<std::pair<std::string, std::string>>(
         "env", [](Tool& t) -> std::vector<std::pair<std::string, std::string>>& { return t.env; },
         "KEY=VALUE (repeatable)",
         [](const std::string& text) {
           auto eq = text.find('=');
           return std::vector<std::pair<std::string, std::string>>{{text.substr(0, eq), text.substr(eq + 1)}};
         },
         [](const std::pair<std::string, std::string>& kv) { return kv.first + "=" + kv.second; })
        .satisfies([](const std::string& v) { return v.find('=') != std::string::npos && v[0] != '='; }, "KEY=VALUE")
        .value_named("KEY=VALUE");
    return s;
  }();
  return schema;
}

ArgsSyntax program_syntax() {
  ArgsSyntax s;
  s.config_file = false;
  s.stop_at_first_positional = true;
  s.value_always_next = true;
  s.dashes_as_underscores = true;
  s.foreign_spellings = {{"-n", "count"}};
  s.unknown_option_note = "options come before PROGRAM";
  s.extra_flags = {{"legacy", true}};
  return s;
}

Tool parse(const std::vector<std::string>& args, ParsedArgs* parsed = nullptr,
           const ArgsSyntax& syntax = program_syntax()) {
  Tool t = tool_schema().defaults();
  ParsedArgs p = tool_schema().parse_args(&t, args, syntax);
  if (parsed) *parsed = p;
  return t;
}

std::string error_of(const std::vector<std::string>& args, const ArgsSyntax& syntax = program_syntax()) {
  return usage_error_of([&] { parse(args, nullptr, syntax); });
}

TEST(SchemaArgs, DefaultsOfOptionalEnumAndListFields) {
  Tool t = tool_schema().defaults();
  EXPECT_FALSE(t.count.has_value());
  EXPECT_FALSE(t.dry_run);
  EXPECT_EQ(t.color, Color::Red);
  EXPECT_THAT(t.words, IsEmpty());
}

TEST(SchemaArgs, OptionsStopAtTheFirstPositionalAndTheRestPassesUntouched) {
  ParsedArgs p;
  Tool t = parse({"--count", "3", "prog", "--count", "9", "--help", "--", "-x", ""}, &p);
  EXPECT_EQ(t.count, 3);
  EXPECT_FALSE(p.help);
  EXPECT_THAT(p.positionals, ElementsAre("prog", "--count", "9", "--help", "--", "-x", ""));
}

TEST(SchemaArgs, DoubleDashEndsOptionsSoAProgramMayStartWithADash) {
  ParsedArgs p;
  parse({"--count=2", "--", "--prog", "a"}, &p);
  EXPECT_THAT(p.positionals, ElementsAre("--prog", "a"));
}

TEST(SchemaArgs, HelpBeforeTheProgramIsSeen) {
  ParsedArgs p;
  parse({"-h"}, &p);
  EXPECT_TRUE(p.help);
  parse({"--help", "prog"}, &p);
  EXPECT_TRUE(p.help);
}

TEST(SchemaArgs, ValueSpellingsAndDashesAsUnderscores) {
  EXPECT_EQ(parse({"--count", "4", "p"}).count, 4);
  EXPECT_EQ(parse({"--count=4", "p"}).count, 4);
  EXPECT_TRUE(parse({"--dry-run", "p"}).dry_run);
  EXPECT_EQ(parse({"--color", "green", "p"}).color, Color::Green);
}

TEST(SchemaArgs, ValueAlwaysNextTakesAWordThatStartsWithADash) {
  EXPECT_THAT(parse({"--words", "--a -b", "p"}).words, ElementsAre("--a", "-b"));
  ArgsSyntax plain = program_syntax();
  plain.value_always_next = false;
  EXPECT_EQ(error_of({"--words", "--a"}, plain), "option '--words' needs a value");
  EXPECT_EQ(error_of({"--count"}), "option '--count' needs a value");
}

TEST(SchemaArgs, SwitchesTakeNoValueAndNeverSwallowTheProgram) {
  ParsedArgs p;
  Tool t = parse({"--dry_run", "true"}, &p);  // `true` is the program, not the switch's value
  EXPECT_TRUE(t.dry_run);
  EXPECT_THAT(p.positionals, ElementsAre("true"));
  EXPECT_EQ(error_of({"--dry_run=yes", "p"}), "option '--dry_run' takes no value (got 'yes')");
}

TEST(SchemaArgs, ListFieldsAppendEveryOccurrenceInOrder) {
  Tool t = parse({"--words", "a b", "--env", "A=1", "--words=c", "--env", "B=x=y", "p"});
  EXPECT_THAT(t.words, ElementsAre("a", "b", "c"));
  ASSERT_EQ(t.env.size(), 2u);
  EXPECT_EQ(t.env[0], std::make_pair(std::string("A"), std::string("1")));
  EXPECT_EQ(t.env[1], std::make_pair(std::string("B"), std::string("x=y")));
  EXPECT_EQ(tool_schema().get(&t, "words"), "[\"a\", \"b\", \"c\"]");
}

TEST(SchemaArgs, ValuesAreCheckedAgainstTheirDeclarations) {
  EXPECT_EQ(error_of({"--count", "0", "p"}), "--count: '0' is out of range (expected an integer in [1, 64])");
  EXPECT_EQ(error_of({"--count", "two", "p"}), "--count: 'two' is not an integer (expected an integer in [1, 64])");
  EXPECT_EQ(error_of({"--wait", "soon", "p"}), "--wait: 'soon' is not a number (expected seconds >= 0; 0 = forever)");
  EXPECT_EQ(error_of({"--wait", "-1", "p"}), "--wait: '-1' is out of range (expected seconds >= 0; 0 = forever)");
  EXPECT_EQ(error_of({"--color", "gren", "p"}),
            "--color: 'gren' is not valid (expected one of red, green); did you mean 'green'?");
  EXPECT_EQ(error_of({"--name", "", "p"}), "--name: '' is not valid (expected a non-empty name)");
  EXPECT_EQ(error_of({"--env", "=1", "p"}), "--env: '=1' is not valid (expected KEY=VALUE)");
  // The spelling the user typed is named.
  EXPECT_EQ(error_of({"--dry-run=1", "p"}), "option '--dry-run' takes no value (got '1')");
}

TEST(SchemaArgs, AnEmptyValueUnsetsAnOptionalField) {
  EXPECT_FALSE(parse({"--count=", "p"}).count.has_value());
}

TEST(SchemaArgs, UnknownOptionsNameTheNearestOneOrTheForeignSpellingsEquivalent) {
  EXPECT_EQ(error_of({"--cuont", "2", "p"}),
            "unknown option '--cuont'; did you mean '--count'? (options come before PROGRAM)");
  EXPECT_EQ(error_of({"-n", "2", "p"}),
            "unknown option '-n'; did you mean '--count'? (options start with --; options come before PROGRAM)");
  EXPECT_EQ(error_of({"-dry_run", "p"}),
            "unknown option '-dry_run'; did you mean '--dry_run'? (options start with --; options come before "
            "PROGRAM)");
  // Without a config file, --config is nobody's option.
  EXPECT_THAT(error_of({"--config", "x.yaml", "p"}), HasSubstr("unknown option '--config'"));
}

TEST(SchemaArgs, ExtraFlagsAreReturnedNotApplied) {
  ParsedArgs p;
  parse({"--legacy", "v", "p"}, &p);
  EXPECT_EQ(p.extras.at("legacy"), "v");
}

TEST(SchemaArgs, DefaultSyntaxKeepsPositionalsBetweenFlags) {
  ArgsSyntax plain;
  plain.config_file = false;
  ParsedArgs p;
  Tool t = parse({"a", "--count", "2", "-x", "b"}, &p, plain);
  EXPECT_EQ(t.count, 2);
  EXPECT_THAT(p.positionals, ElementsAre("a", "-x", "b"));
}

TEST(SchemaArgs, FlatKeysAndListsRoundTripThroughYaml) {
  Tool t = parse({"--count", "5", "--color", "green", "--words", "x y", "--env", "K=a \"b\"", "--name", "n", "p"});
  const std::string yaml = tool_schema().to_yaml(&t);
  EXPECT_THAT(yaml, HasSubstr("count: 5\n"));
  EXPECT_THAT(yaml, HasSubstr("words: [\"x\", \"y\"]\n"));
  Tool back = tool_schema().defaults();
  tool_schema().load_yaml_text(&back, yaml, "dump");
  EXPECT_EQ(tool_schema().to_yaml(&back), yaml);
  EXPECT_EQ(back.env, t.env);
  // An unset optional is written as null and read back as unset.
  Tool unset = tool_schema().defaults();
  unset.name = "n";  // the default "" is no valid name
  Tool reread = tool_schema().defaults();
  reread.count = 3;
  tool_schema().load_yaml_text(&reread, tool_schema().to_yaml(&unset), "dump");
  EXPECT_FALSE(reread.count.has_value());
}

TEST(SchemaArgs, OptionsHelpIsGeneratedFromTheDeclarations) {
  // Help text starts in one column: two spaces after the longest option (at most 24 columns in all).
  EXPECT_EQ(tool_schema().options_help(),
            "  --count N         how many (default: as many as there are; an integer in [1, 64])\n"
            "  --dry_run         do nothing\n"
            "  --color <string>  the color (default: red; one of red, green)\n"
            "  --wait <float>    seconds to wait (default: 0; seconds >= 0; 0 = forever)\n"
            "  --name <string>   a name\n"
            "  --words <list>    words, split at spaces (repeatable)\n"
            "  --env KEY=VALUE   KEY=VALUE (repeatable)\n"
            "  -h, --help        this help\n");
}

TEST(SchemaArgs, OptionsHelpWrapsLongTextUnderItsColumn) {
  Schema<Tool> s;
  s.add<std::string>(
       "name", [](Tool& t) -> std::string& { return t.name; }, "",
       "first line of a long explanation\nsecond line, which is long enough that it has to wrap at "
       "one hundred columns so that it stays readable")
      .value_named("X");
  const std::string help = s.options_help();
  // Lines stay within 100 columns; '\n' in the help starts a new line.
  EXPECT_EQ(help,
            "  --name X    first line of a long explanation\n"
            "              second line, which is long enough that it has to wrap at one hundred columns so that\n"
            "              it stays readable\n"
            "  -h, --help  this help\n");
}

}  // namespace
}  // namespace mpibert::config
