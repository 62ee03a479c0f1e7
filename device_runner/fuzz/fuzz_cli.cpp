// libFuzzer target: pocket_runner's argument parser on arbitrary argv (`just fuzz`; seeds in
// device_runner/fuzz/corpus/cli/). The input is split at NUL bytes into arguments. Besides "no
// crash", it checks the parser's contract: a failure always says why, and a success respects the
// documented ranges.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../src/cli.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args{"pocket_runner"};
  std::string current;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  if (!current.empty()) args.push_back(current);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pocket::Options options;
  std::string error;
  const bool ok = pocket::parse_args(static_cast<int>(args.size()), argv.data(), &options, &error);
  if (!ok && error.empty()) __builtin_trap();
  if (ok && !options.help) {
    if (options.model.empty() || options.iterations < 1 || options.warmup < 0 || options.threads < 0 ||
        !(options.min_seconds >= 0) || !(options.idle_baseline_s >= 0) || options.sample_interval_ms < 0) {
      __builtin_trap();
    }
  }
  return 0;
}
