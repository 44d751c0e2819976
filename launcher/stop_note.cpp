#include "launcher/stop_note.h"

#include <regex>

namespace mpibert::launcher {
namespace {

std::string without_colour(const std::string& line) {
  static const std::regex escape("\x1b\\[[0-9;]*m");
  return std::regex_replace(line, escape, "");
}

}  // namespace

void StopNote::observe(const std::string& raw) {
  if (raw.find("saved ") == std::string::npos && raw.find("stopped by signal") == std::string::npos) return;
  static const std::regex saved(R"(\] saved (\S.*?)\s*$)");
  static const std::regex stopped(R"(stopped by signal \d+ after step (\d{1,9}))");
  const std::string line = without_colour(raw);
  std::smatch m;
  if (std::regex_search(line, m, stopped))
    step = std::stoi(m[1].str());
  else if (std::regex_search(line, m, saved))
    checkpoint = m[1].str();
}

std::string describe_clean_stop(const StopNote& note) {
  std::string text = "stopped cleanly";
  if (note.step >= 0) text += " at step " + std::to_string(note.step);
  if (!note.checkpoint.empty()) text += (note.step >= 0 ? ", checkpoint " : ", last checkpoint ") + note.checkpoint;
  if (note.empty()) text += " (exit 75: the program saved its state)";
  return text + "; rerun the same command to resume";
}

}  // namespace mpibert::launcher
