#pragma once
// The configuration reference as Markdown, generated from a schema's declarations: one table per
// section (key, type, default, valid values, flat aliases, help). docs/configuration.md holds this
// text between its BEGIN/END GENERATED markers, and a test keeps the two equal.
#include <string>

#include "common/config/schema.h"

namespace mpibert::config {

// "### Section `data`" followed by its table, for each section in declaration order; every table is
// followed by a blank line. Pipes in help texts are escaped so a cell never splits.
std::string markdown_reference(const SchemaBase& schema);

}  // namespace mpibert::config
