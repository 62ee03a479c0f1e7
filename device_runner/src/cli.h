// Command line of pocket_runner (documented in README.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pocket {

struct Options {
  std::string model;
  std::string method = "forward";
  std::string inputs;  // PBTF file; empty: random inputs from `seed`
  uint64_t seed = 0;
  int warmup = 5;
  // The timed loop runs until it has done `iterations` executions and spent `min_seconds`
  // executing. --min-seconds alone lowers the iteration floor to 1.
  int iterations = 50;
  double min_seconds = 0.0;
  // Calibrated samples: each timed sample is a batch of k consecutive executes, k chosen after
  // the warm-up so a batch lasts at least `batch_min_ms` (k = 1 for calls already that long).
  // 0: every sample is one execute. `iterations` and `min_seconds` then count batches.
  double batch_min_ms = 0.0;
  int threads = 0;  // 0: the thread pool's default size
  std::string outputs;
  std::string etdump;
  std::string json;
  // Sampling (README.md, "Sampling"): files read every `sample_interval_ms` by a background
  // thread, with the process's own memory; an idle window of `idle_baseline_s` before the loop.
  std::vector<std::string> sample_files;
  int sample_interval_ms = 0;  // 0: no sampler
  double idle_baseline_s = 0.0;
  // Generation mode (--generate P,N): the inputs file holds a token stream; the run is a prefill
  // of its first P tokens and N one-token decode steps, repeated warmup + iterations times.
  bool generate = false;
  int64_t prompt_tokens = 0;
  int64_t decode_tokens = 0;
  bool teacher_forced = false;  // decode feeds the stream's next token instead of the argmax
  bool verbose = false;         // forward the runtime's own log lines to stderr
  bool help = false;
};

extern const char* const kUsage;

// Parses argv. On failure returns false with a one-line reason; `options->json` is still set
// when --json was seen, so the failure can be reported where the caller asked for it.
bool parse_args(int argc, char** argv, Options* options, std::string* error);

}  // namespace pocket
