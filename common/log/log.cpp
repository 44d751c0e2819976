#include "common/log/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <filesystem>

#include "common/error.h"

namespace mpibert {

spdlog::level::level_enum parse_log_level(const std::string& name) {
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warning" || name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  if (name == "off") return spdlog::level::off;
  throw UsageError("log level '" + name + "' is not valid (expected trace, debug, info, warning, error or off)");
}

namespace {

// Lines logged while a file was being held for (LogOptions::hold_for_file), formatted as the file wants.
std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt>& held_lines() {
  static std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
  return sink;
}

}  // namespace

void init_logging(const LogOptions& o) {
  const std::string pattern = "[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(o.rank) + "] [%^%l%$] %v";
  auto console_level =
      o.level.empty() ? (o.rank == 0 ? spdlog::level::info : spdlog::level::warn) : parse_log_level(o.level);
  if (!o.level.empty() && o.rank != 0 && !o.all_ranks_console)
    console_level = std::max(console_level, spdlog::level::warn);
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_level(console_level);
  console->set_pattern(pattern);
  std::vector<spdlog::sink_ptr> sinks{console};
  auto file_level = o.level.empty() ? spdlog::level::info : parse_log_level(o.level);
  if (!o.file.empty()) {
    auto parent = std::filesystem::path(o.file).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(o.file, /*truncate=*/false);
    file->set_level(file_level);
    file->set_pattern("%v");
    if (auto& held = held_lines()) {
      for (std::string line : held->last_formatted()) {
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        file->log(spdlog::details::log_msg("", spdlog::level::info, line));
      }
      held.reset();
    }
    file->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(o.rank) + "] [%l] %v");
    sinks.push_back(file);
  } else if (o.hold_for_file) {
    held_lines() = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(10000);
    held_lines()->set_level(file_level);
    held_lines()->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(o.rank) + "] [%l] %v");
    sinks.push_back(held_lines());
  }
  auto logger = std::make_shared<spdlog::logger>("mpibert", sinks.begin(), sinks.end());
  logger->set_level(std::min(console_level, o.file.empty() ? console_level : file_level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace mpibert
