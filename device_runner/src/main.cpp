// pocket_runner: loads a .pte, runs one method, and prints raw measurements as JSON.
//
// The runner only measures; every statistic is computed on the host from the raw samples it
// prints. Exit codes: 0 ok, 2 bad arguments, 3 load failure, 4 execution failure.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <executorch/devtools/etdump/etdump_flatcc.h>
#include <executorch/extension/data_loader/mmap_data_loader.h>
#include <executorch/extension/memory_allocator/malloc_memory_allocator.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/runtime.h>

#include "cli.h"
#include "inputs.h"
#include "outputs.h"
#include "report.h"
#include "runtime_hooks.h"
#include "sampler.h"
#include "tensor_file.h"
#include "threadpool_decl.h"

namespace et = executorch::runtime;

using executorch::extension::MallocMemoryAllocator;
using executorch::extension::MmapDataLoader;
using pocket::Report;
using pocket::Status;

namespace {

// steady_clock is monotonic: wall-clock adjustments (NTP, the phone syncing its time) cannot
// stretch or shrink a sample, which system_clock would allow.
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string with_runtime_reason(const std::string& what, et::Error error) {
  const std::string reason = pocket::runtime_error_cause();
  return what + ": " + (reason.empty() ? et::to_string(error) : reason);
}

int fail(Report* report, const pocket::Options& options, Status status, const std::string& error) {
  report->status = status;
  report->error = error;
  report->peak_rss_kb = pocket::proc_status_kb("VmHWM");
  return pocket::finish(*report, options);
}

// Sets the inputs again, then times `method.execute()` alone. The inputs must be set before every
// execute: memory planning may reuse a planned input's bytes for a later tensor, so the previous
// execute can have overwritten them (ExecuTorch's executor_runner re-prepares its inputs per
// execution for the same reason). The clock brackets nothing else (no input copies, no output
// reads) so a sample is the inference itself; everything around it is identical per iteration and
// belongs to the caller, not to the model.
bool timed_execute(et::Method& method, const pocket::BoundInputs& inputs, int64_t* ns, et::Error* error) {
  *error = inputs.reapply(method);
  if (*error != et::Error::Ok) return false;
  const Clock::time_point start = Clock::now();
  *error = method.execute();
  const Clock::time_point end = Clock::now();
  *ns = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
  return *error == et::Error::Ok;
}

}  // namespace

int main(int argc, char** argv) {
  pocket::Options options;
  Report report;
  std::string error;
  const bool parsed = pocket::parse_args(argc, argv, &options, &error);
  if (options.help) {
    std::fputs(pocket::kUsage, stdout);
    return 0;
  }
  report.model = options.model;
  report.method = options.method;
  if (!parsed) return fail(&report, options, Status::kBadArguments, error);
  pocket::install_runtime_hooks(options);
  et::runtime_init();

  // Threads first: the XNNPACK delegate takes the pool when the method loads.
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (options.threads > 0 && (pool == nullptr || !pool->_unsafe_reset_threadpool(options.threads))) {
    return fail(&report, options, Status::kBadArguments,
                "cannot size the thread pool to " + std::to_string(options.threads) + " threads");
  }
  report.threads = pool ? static_cast<int>(pool->get_thread_count()) : 1;

  // The sampler starts before the load so memory readings cover it; energy is cut by the host
  // from the same readings using the idle and loop timestamps below.
  std::unique_ptr<pocket::Sampler> sampler;
  if (options.sample_interval_ms > 0) {
    sampler = std::make_unique<pocket::Sampler>(options.sample_files, options.sample_interval_ms);
    sampler->start();
  }

  // Inputs are read before the model so a bad tensor file is reported as an argument error.
  std::vector<pocket::TensorSet> input_sets;
  if (!options.inputs.empty()) {
    if (!pocket::read_tensor_file(options.inputs, &input_sets, &error)) {
      return fail(&report, options, Status::kBadArguments, error);
    }
    report.inputs_source = "file:" + options.inputs;
  } else {
    report.inputs_source = "seed:" + std::to_string(options.seed);
  }

  // Program load: map the file and parse/verify the flatbuffer. InternalConsistency verification
  // (as the Python runtime uses) makes a corrupt file fail here instead of crashing later.
  report.rss_kb_before_load = pocket::proc_status_kb("VmRSS");
  pocket::set_phase(report, Status::kLoadFailed, "loading program " + options.model);
  Clock::time_point start = Clock::now();
  // mmap rather than read: pages come in as the runtime touches them, and the delegate's blob is
  // unmapped once XNNPACK has packed it (the Python runtime maps the file too).
  auto loader = MmapDataLoader::from(options.model.c_str(), MmapDataLoader::MlockConfig::NoMlock);
  if (!loader.ok()) {
    return fail(&report, options, Status::kLoadFailed,
                with_runtime_reason("cannot open model " + options.model, loader.error()));
  }
  auto program = et::Program::load(&loader.get(), et::Program::Verification::InternalConsistency);
  if (!program.ok()) {
    return fail(&report, options, Status::kLoadFailed,
                with_runtime_reason(options.model + " is not a loadable .pte", program.error()));
  }
  report.program_load_ms = ms_since(start);

  auto meta = program->method_meta(options.method.c_str());
  if (!meta.ok()) {
    std::string names;
    for (size_t i = 0; i < program->num_methods(); ++i) {
      auto name = program->get_method_name(i);
      if (name.ok()) names += (names.empty() ? "" : ", ") + pocket::printable(name.get());
    }
    return fail(&report, options, Status::kBadArguments,
                "method '" + options.method + "' is not in " + options.model + " (it has: " + names + ")");
  }
  // A corrupt program can claim any size; refuse one that cannot fit in this device's memory
  // instead of letting the allocation thrash or get the process killed.
  const uint64_t ram = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  uint64_t planned_total = 0;
  for (size_t i = 0; i < meta->num_memory_planned_buffers(); ++i) {
    auto size = meta->memory_planned_buffer_size(i);
    if (!size.ok() || size.get() < 0) {
      return fail(&report, options, Status::kLoadFailed,
                  "cannot read planned buffer " + std::to_string(i) + " of method '" + options.method +
                      "': the .pte is corrupt");
    }
    report.planned_buffers_bytes.push_back(size.get());
    planned_total += static_cast<uint64_t>(size.get());
  }
  if (planned_total > ram) {
    return fail(&report, options, Status::kLoadFailed,
                "method '" + options.method + "' plans " + std::to_string(planned_total >> 20) +
                    " MiB of buffers, more than this device's " + std::to_string(ram >> 20) +
                    " MiB of RAM: the .pte is corrupt or too big for it");
  }
  for (size_t i = 0; i < meta->num_backends(); ++i) {
    auto name = meta->get_backend_name(i);
    if (name.ok()) report.backends.emplace_back(name.get());
  }

  if (!pocket::check_input_metadata(meta.get(), &error)) {
    return fail(&report, options, Status::kLoadFailed, error);
  }
  if (options.inputs.empty()) {
    input_sets.emplace_back();
    if (!pocket::make_random_inputs(meta.get(), options.seed, &input_sets[0], &error)) {
      return fail(&report, options, Status::kBadArguments, error);
    }
  }
  if (!pocket::check_inputs(meta.get(), input_sets, &error)) {
    return fail(&report, options, Status::kBadArguments, error);
  }
  report.input_sets = input_sets.size();

  pocket::set_phase(report, Status::kLoadFailed, "loading method '" + options.method + "'");
  // Method load: allocate the memory-planned buffers and initialize the method, which includes
  // each delegate's init (XNNPACK packs its weights here), so it belongs in load time.
  start = Clock::now();
  // Left uninitialized, as the runtime expects: zero-filling would touch every page up front and
  // inflate both method load time and RSS beyond what an app pays.
  std::vector<std::unique_ptr<uint8_t[]>> planned;
  std::vector<et::Span<uint8_t>> spans;
  for (int64_t size : report.planned_buffers_bytes) {
    planned.emplace_back(new uint8_t[static_cast<size_t>(size)]);
    spans.emplace_back(planned.back().get(), static_cast<size_t>(size));
  }
  et::HierarchicalAllocator planned_memory({spans.data(), spans.size()});
  MallocMemoryAllocator method_allocator;
  MallocMemoryAllocator temp_allocator;
  et::MemoryManager memory_manager(&method_allocator, &planned_memory, &temp_allocator);
  std::unique_ptr<executorch::etdump::ETDumpGen> etdump;
  if (!options.etdump.empty()) etdump = std::make_unique<executorch::etdump::ETDumpGen>();
  auto method = program->load_method(options.method.c_str(), &memory_manager, etdump.get());
  if (!method.ok()) {
    return fail(&report, options, Status::kLoadFailed,
                with_runtime_reason("cannot load method '" + options.method + "'", method.error()));
  }
  report.method_load_ms = ms_since(start);
  report.rss_kb_after_load = pocket::proc_status_kb("VmRSS");

  pocket::BoundInputs bound;
  if (!bound.bind(method.get(), input_sets[0], &error)) {
    return fail(&report, options, Status::kBadArguments, error);
  }
  pocket::set_phase(report, Status::kExecutionFailed, "running method '" + options.method + "'");
  int64_t ns = 0;
  et::Error status = et::Error::Ok;
  if (!timed_execute(method.get(), bound, &ns, &status)) {
    return fail(&report, options, Status::kExecutionFailed,
                with_runtime_reason("first inference failed", status));
  }
  report.first_inference_ms = static_cast<double>(ns) / 1e6;

  for (int i = 0; i < options.warmup; ++i) {
    if (!timed_execute(method.get(), bound, &ns, &status)) {
      return fail(&report, options, Status::kExecutionFailed,
                  with_runtime_reason("warm-up inference failed", status));
    }
    report.warmup_iterations = i + 1;
  }

  // The idle window: the process sleeps with the model loaded and warm, so the host can subtract
  // what the device draws anyway (screen, radios, other apps) from the loop's energy.
  if (options.idle_baseline_s > 0) {
    report.idle_start_ns = pocket::steady_now_ns();
    std::this_thread::sleep_for(std::chrono::duration<double>(options.idle_baseline_s));
    report.idle_end_ns = pocket::steady_now_ns();
  }

  const int64_t min_ns = static_cast<int64_t>(options.min_seconds * 1e9);
  int64_t total_ns = 0;
  report.iterations_ns.reserve(static_cast<size_t>(options.iterations));
  report.loop_start_ns = pocket::steady_now_ns();
  while (static_cast<int>(report.iterations_ns.size()) < options.iterations || total_ns < min_ns) {
    if (!timed_execute(method.get(), bound, &ns, &status)) {
      return fail(&report, options, Status::kExecutionFailed,
                  with_runtime_reason("inference failed", status));
    }
    report.iterations_ns.push_back(ns);
    total_ns += ns;
  }
  report.loop_end_ns = pocket::steady_now_ns();
  if (sampler) {
    sampler->stop();
    report.samples = sampler->samples();
  }
  report.rss_kb_after_loop = pocket::proc_status_kb("VmRSS");

  pocket::TensorSet outputs;
  if (!pocket::collect_outputs(method.get(), &outputs, &error)) {
    return fail(&report, options, Status::kExecutionFailed, error);
  }
  report.outputs = pocket::summarize(outputs);

  if (!options.outputs.empty()) {
    // One execute per input set, outside the timed loop, for the host's fidelity checks.
    std::vector<pocket::TensorSet> output_sets;
    for (size_t s = 0; s < input_sets.size(); ++s) {
      pocket::BoundInputs set_inputs;
      if (!set_inputs.bind(method.get(), input_sets[s], &error)) {
        return fail(&report, options, Status::kBadArguments, "input set " + std::to_string(s) + ": " + error);
      }
      if (!timed_execute(method.get(), set_inputs, &ns, &status)) {
        return fail(&report, options, Status::kExecutionFailed,
                    with_runtime_reason("inference on input set " + std::to_string(s) + " failed", status));
      }
      output_sets.emplace_back();
      if (!pocket::collect_outputs(method.get(), &output_sets.back(), &error)) {
        return fail(&report, options, Status::kExecutionFailed, error);
      }
    }
    if (!pocket::write_tensor_file(options.outputs, output_sets, &error)) {
      return fail(&report, options, Status::kBadArguments, error);
    }
    report.output_sets_written = output_sets.size();
  }

  if (etdump) {
    const auto trace = etdump->get_etdump_data();
    std::ofstream file(options.etdump, std::ios::binary | std::ios::trunc);
    const bool written = trace.buf != nullptr &&
                         file.write(static_cast<const char*>(trace.buf), trace.size) && file.flush();
    std::free(trace.buf);
    if (!written) {
      return fail(&report, options, Status::kBadArguments, "cannot write the ETDump trace to " + options.etdump);
    }
    report.etdump = options.etdump;
  }

  report.peak_rss_kb = pocket::proc_status_kb("VmHWM");
  return pocket::finish(report, options);
}
