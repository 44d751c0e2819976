#pragma once
// Draws a run's curves with plot_run (the program beside this one in build/bin: Python + matplotlib),
// for the model card. A missing plot_run or matplotlib is not an error: the card then goes without.
#include <string>

namespace mpibert::train {

// Runs `plot_run OUTPUT_DIR -o PNG`; returns true when the PNG was written. Its output goes to LOG.
bool draw_run_plot(const std::string& output_dir, const std::string& png, const std::string& log);

}  // namespace mpibert::train
