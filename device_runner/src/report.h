// The runner's raw readings and their JSON form (schema_version 1, documented in README.md and
// parsed by host/pocketbench/devices/base.py:parse_runner_report).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sampler.h"

namespace pocket {

enum class Status { kOk, kBadArguments, kLoadFailed, kExecutionFailed };

// Process exit code for a status: 0 ok, 2 bad arguments, 3 load failure, 4 execution failure.
int exit_code(Status status);

struct OutputSummary {
  std::vector<int64_t> shape;
  std::string dtype;
  std::string sha256;
};

// A generation run (--generate, schema_minor 4): per timed repetition, the prefill's time and each
// decode step's time; the ids the model predicted (argmax after the prefill and after each decode
// step) in the last repetition.
struct Generation {
  int64_t prompt_tokens = 0;
  int64_t decode_tokens = 0;
  bool teacher_forced = false;
  int64_t context = 0;
  std::vector<int64_t> prefill_ns;
  std::vector<std::vector<int64_t>> decode_ns;
  std::vector<int64_t> generated_ids;
};

struct Report {
  // A run is ok only once `main` says so: anything that ends it earlier (a hook, an exception)
  // reports the phase it was in, never a default "ok".
  Status status = Status::kExecutionFailed;
  std::string error;  // one line; empty when ok
  // What the runner was doing when the run ended ("inputs", "program_load", ...; "done" when ok),
  // and the status a failure in it is reported with.
  std::string phase = "arguments";
  Status phase_failure = Status::kBadArguments;
  std::string model;
  std::string method;
  int threads = 0;
  std::optional<double> program_load_ms;
  std::optional<double> method_load_ms;
  std::optional<double> first_inference_ms;
  int warmup_iterations = 0;
  std::vector<int64_t> iterations_ns;  // per call: each batch's time / batch_calls, rounded
  // Calibrated samples (schema_minor 3): the target asked for, the calls per batch chosen, the
  // raw batch times, and the calibration's (calls, ns) trials.
  double batch_min_ms = 0.0;
  int64_t batch_calls = 1;
  std::vector<int64_t> batches_ns;
  std::vector<std::pair<int64_t, int64_t>> calibration;
  std::optional<int64_t> rss_kb_before_load;
  std::optional<int64_t> rss_kb_after_load;
  std::optional<int64_t> rss_kb_after_loop;
  std::optional<int64_t> peak_rss_kb;
  std::vector<int64_t> planned_buffers_bytes;
  std::string inputs_source;  // "file:<path>" or "seed:<n>"
  size_t input_sets = 0;
  size_t output_sets_written = 0;
  std::vector<OutputSummary> outputs;  // set 0
  std::vector<std::string> backends;   // delegates the method uses, from its metadata
  std::string etdump;                  // path written, empty when not asked for
  // steady_clock ns (the samples' clock) at the edges of the idle window and the timed loop.
  std::optional<int64_t> idle_start_ns, idle_end_ns, loop_start_ns, loop_end_ns;
  std::optional<Samples> samples;        // with --sample-interval-ms
  std::optional<Generation> generation;  // with --generate
};

// A /proc/self/status field in kB ("VmRSS", "VmHWM"); nullopt where /proc is unavailable.
std::optional<int64_t> proc_status_kb(const char* field);

std::string to_json(const Report& report);

}  // namespace pocket
