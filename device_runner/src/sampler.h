// A background thread that reads files and the process's own memory at a fixed interval, stamped
// with the same steady_clock the timed loop uses, so the host can cut the readings into the idle
// window and the loop exactly (energy from battery/ODPM/RAPL files, RSS + swap over the run).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pocket {

struct Samples {
  int interval_ms = 0;
  std::vector<std::string> files;
  std::vector<int64_t> t_ns;                                    // steady_clock time_since_epoch of each sample
  std::vector<std::vector<std::optional<std::string>>> values;  // [sample][file], nullopt: unreadable
  std::vector<std::string> errors;  // per file: why its first failed read failed, empty if none
  std::vector<std::optional<int64_t>> rss_kb, swap_kb, hwm_kb;  // /proc/self/status per sample
};

// steady_clock::now() as integer ns since its epoch (CLOCK_MONOTONIC on Linux and Android).
int64_t steady_now_ns();

class Sampler {
 public:
  Sampler(std::vector<std::string> files, int interval_ms);
  ~Sampler();
  void start();
  // Stops the thread after one last sample; the readings are then final.
  void stop();
  const Samples& samples() const { return samples_; }

 private:
  void run();
  void take();

  Samples samples_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pocket
