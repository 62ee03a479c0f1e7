#include "cli.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace pocket {

const char* const kUsage =
    "usage: pocket_runner --model m.pte [--method forward] [--inputs in.bin | --seed 0]\n"
    "                     [--warmup 5] [--iterations 50 | --min-seconds 2] [--threads N]\n"
    "                     [--batch-min-ms 1]\n"
    "                     [--outputs out.bin] [--etdump trace.etdp] [--json result.json]\n"
    "                     [--sample-files a,b,c] [--sample-interval-ms 20] [--idle-baseline-s 0]\n"
    "                     [--generate P,N [--teacher-forced]] [--verbose]\n";

namespace {

bool parse_int(const std::string& flag, const char* text, long lo, long hi, long* out, std::string* error) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < lo || value > hi) {
    *error = flag + " needs an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + text + "'";
    return false;
  }
  *out = value;
  return true;
}

// A number of `unit` in [lo, hi] (NaN and trailing text refused).
bool parse_real(const std::string& flag, const char* text, double lo, double hi, const char* unit, double* out,
                std::string* error) {
  char* end = nullptr;
  const double value = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(value >= lo && value <= hi)) {
    char range[64];
    std::snprintf(range, sizeof(range), "[%g, %g]", lo, hi);
    *error = flag + " needs a number of " + unit + " in " + range + ", got '" + text + "'";
    return false;
  }
  *out = value;
  return true;
}

}  // namespace

bool parse_args(int argc, char** argv, Options* options, std::string* error) {
  // A first pass picks up --json so that even an argument error is reported where asked.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) options->json = argv[i + 1];
  }
  bool seen_inputs = false, seen_seed = false, seen_iterations = false, seen_min_seconds = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      options->help = true;
      return true;
    }
    if (flag == "--verbose") {
      options->verbose = true;
      continue;
    }
    if (flag == "--teacher-forced") {
      options->teacher_forced = true;
      continue;
    }
    if (flag.rfind("--", 0) != 0) {
      *error = "unexpected argument '" + flag + "' (see --help)";
      return false;
    }
    // A value that looks like the next flag means this one's value was left out.
    if (i + 1 >= argc || std::strncmp(argv[i + 1], "--", 2) == 0) {
      *error = flag + " needs a value (see --help)";
      return false;
    }
    const char* value = argv[++i];
    long number = 0;
    if (flag == "--model") {
      options->model = value;
    } else if (flag == "--method") {
      options->method = value;
    } else if (flag == "--inputs") {
      options->inputs = value;
      seen_inputs = true;
    } else if (flag == "--seed") {
      if (!parse_int(flag, value, 0, 2147483647L, &number, error)) return false;
      options->seed = static_cast<uint64_t>(number);
      seen_seed = true;
    } else if (flag == "--warmup") {
      if (!parse_int(flag, value, 0, 1000000, &number, error)) return false;
      options->warmup = static_cast<int>(number);
    } else if (flag == "--iterations") {
      if (!parse_int(flag, value, 1, 10000000, &number, error)) return false;
      options->iterations = static_cast<int>(number);
      seen_iterations = true;
    } else if (flag == "--min-seconds") {
      if (!parse_real(flag, value, 0.0, 86400.0, "seconds", &options->min_seconds, error)) return false;
      seen_min_seconds = true;
    } else if (flag == "--batch-min-ms") {
      if (!parse_real(flag, value, 0.0, 10000.0, "milliseconds", &options->batch_min_ms, error)) return false;
    } else if (flag == "--threads") {
      if (!parse_int(flag, value, 0, 1024, &number, error)) return false;
      options->threads = static_cast<int>(number);
    } else if (flag == "--outputs") {
      options->outputs = value;
    } else if (flag == "--etdump") {
      options->etdump = value;
    } else if (flag == "--sample-files") {
      options->sample_files.clear();
      std::string list = value;
      for (size_t start = 0; start <= list.size();) {
        const size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) options->sample_files.push_back(list.substr(start, comma - start));
        start = comma + 1;
      }
    } else if (flag == "--sample-interval-ms") {
      if (!parse_int(flag, value, 1, 60000, &number, error)) return false;
      options->sample_interval_ms = static_cast<int>(number);
    } else if (flag == "--idle-baseline-s") {
      if (!parse_real(flag, value, 0.0, 3600.0, "seconds", &options->idle_baseline_s, error)) return false;
    } else if (flag == "--generate") {
      const char* comma = std::strchr(value, ',');
      long prompt = 0, decode = 0;
      const std::string first = comma ? std::string(value, comma) : std::string(value);
      if (comma == nullptr) {
        *error = "--generate needs P,N (prompt tokens, decode tokens), got '" + std::string(value) + "'";
        return false;
      }
      if (!parse_int("--generate P", first.c_str(), 1, 1000000, &prompt, error) ||
          !parse_int("--generate N", comma + 1, 0, 1000000, &decode, error)) {
        return false;
      }
      options->generate = true;
      options->prompt_tokens = prompt;
      options->decode_tokens = decode;
    } else if (flag == "--json") {
      options->json = value;
    } else {
      *error = "unknown option " + flag + " (see --help)";
      return false;
    }
  }
  if (options->model.empty()) {
    *error = "--model is required: pocket_runner --model m.pte (see --help)";
    return false;
  }
  if (seen_inputs && seen_seed) {
    *error = "--inputs and --seed exclude each other: give a tensor file or a seed";
    return false;
  }
  if (options->generate && !seen_inputs) {
    *error = "--generate needs --inputs: a tensor file whose first tensor is the int64 token stream";
    return false;
  }
  if (options->teacher_forced && !options->generate) {
    *error = "--teacher-forced only applies with --generate P,N";
    return false;
  }
  if (options->generate && (options->batch_min_ms > 0 || !options->outputs.empty())) {
    *error = "--generate times each token itself: --batch-min-ms and --outputs do not apply";
    return false;
  }
  if (seen_min_seconds && !seen_iterations) options->iterations = 1;
  if ((!options->sample_files.empty() || options->idle_baseline_s > 0) && options->sample_interval_ms == 0) {
    options->sample_interval_ms = 20;  // files to sample or an idle window: sample at the default rate
  }
  return true;
}

}  // namespace pocket
