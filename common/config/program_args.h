#pragma once
// The command line of a per-rank program (run_mlm, run_classification): `--config FILE`, then flags,
// parsed with the program's schema. Before MPI is up only the launcher's environment tells which rank
// this is, so only rank 0 reports a usage error: a bad flag prints one line, not one per rank.
// `--help` prints the generated help, `--help --markdown` the configuration reference.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "common/config/schema.h"
#include "common/config/schema_markdown.h"
#include "common/error.h"

namespace mpibert::config {

inline bool is_quiet_rank() {
  const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
  return rank && std::atoi(rank) != 0;
}

// Returns the exit code when the program is done (help printed, or a usage error reported), or
// nullopt to go on with `cfg` filled in. `extra_flags` are the program's own flags (name -> takes a value).
template <class Root>
std::optional<int> parse_program_args(const Schema<Root>& schema, Root& cfg, int argc, char** argv, const char* program,
                                      const std::string& usage, std::map<std::string, bool> extra_flags,
                                      ParsedArgs& parsed) {
  extra_flags.emplace("markdown", false);
  try {
    cfg = schema.defaults();
    parsed = schema.parse_args(&cfg, argc, argv, extra_flags);
    if (!parsed.positionals.empty())
      throw UsageError("unexpected argument '" + parsed.positionals[0] + "' (options are --key value)");
  } catch (const UsageError& e) {
    if (!is_quiet_rank()) std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    return kExitUsage;
  }
  if (parsed.help) {
    std::printf("%s",
                parsed.extras.count("markdown") ? markdown_reference(schema).c_str() : schema.help_text(usage).c_str());
    return kExitOk;
  }
  return std::nullopt;
}

}  // namespace mpibert::config
