#pragma once
// Where TensorBoard event files go by default, as Hugging Face's TrainingArguments builds logging_dir:
// OUTPUT_DIR/runs/<Mon><DD>_<HH>-<MM>-<SS>_<hostname> in local time, e.g. out/runs/Dec01_12-00-00_node1.
#include <ctime>
#include <string>

namespace mpibert::report {

// The last part of the default logging dir for a local time and host, e.g. "Dec01_12-00-00_node1"
// (English month abbreviations whatever the locale, like Python's strftime("%b%d_%H-%M-%S") in C locale).
std::string logging_dir_name(const std::tm& local_time, const std::string& hostname);

// OUTPUT_DIR/runs/<logging_dir_name(now, this host)>. Creates nothing.
std::string default_logging_dir(const std::string& output_dir);

// This machine's name (gethostname), "localhost" if it has none.
std::string host_name();

}  // namespace mpibert::report
