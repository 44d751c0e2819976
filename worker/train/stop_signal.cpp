#include "worker/train/stop_signal.h"

#include <csignal>

namespace mpibert {
namespace {
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_stop_signal(int sig) {
  g_signal = sig;
}
}  // namespace

void install_stop_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

bool stop_requested() {
  return g_signal != 0;
}
int stop_signal_number() {
  return g_signal;
}
void request_stop_for_test(bool stop) {
  g_signal = stop ? SIGTERM : 0;
}

}  // namespace mpibert
