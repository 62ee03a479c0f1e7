// pocket_runner: loads a .pte, runs one method, and prints raw measurements as JSON.
//
// The runner only measures; every statistic is computed on the host from the raw samples it
// prints. Exit codes: 0 ok, 2 bad arguments, 3 load failure, 4 execution failure. A run goes
// through the phases below in order; each is entered with set_phase before it can fail, so the
// JSON of a failed run always names the phase ("phase") and the status it failed with.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <new>
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
#include "generate.h"
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

// This device's physical memory in bytes; 0 when sysconf cannot tell.
uint64_t physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  uint64_t bytes = 0;
  if (pages <= 0 || page_size <= 0 ||
      !pocket::checked_mul(static_cast<uint64_t>(pages), static_cast<uint64_t>(page_size), &bytes)) {
    return 0;
  }
  return bytes;
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

// Times `calls` consecutive executes as one sample. Each still sets its inputs first (see above);
// that copy is inside the clock here, a few hundred ns per call against calls of ≥ 10 µs, the
// price of not reading the clock (and not handing the thread pool a gap) between calls.
bool timed_batch(et::Method& method, const pocket::BoundInputs& inputs, int64_t calls, int64_t* ns, et::Error* error) {
  const Clock::time_point start = Clock::now();
  for (int64_t i = 0; i < calls; ++i) {
    *error = inputs.reapply(method);
    if (*error == et::Error::Ok) *error = method.execute();
    if (*error != et::Error::Ok) return false;
  }
  *ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  return true;
}

// Calls per batch so a batch lasts at least `min_ms`: double k until one batch of k does (k = 1
// when a single call already does), so calls of 10 µs and of 10 ms both give samples the timer
// and the scheduler tick cannot dominate. Every trial (calls, fastest of its tries) is reported.
constexpr int64_t kMaxBatchCalls = int64_t{1} << 20;
constexpr int kCalibrationTries = 3;

bool calibrate_batch(et::Method& method, const pocket::BoundInputs& inputs, double min_ms, Report* report,
                     et::Error* error) {
  const auto target_ns = static_cast<int64_t>(min_ms * 1e6);
  int64_t calls = 1;
  for (;;) {
    // The fastest of three tries: interference only ever lengthens a batch, so one preempted
    // try must not stop the search at a k whose batches are usually shorter than the target.
    int64_t ns = INT64_MAX;
    for (int attempt = 0; attempt < kCalibrationTries; ++attempt) {
      int64_t trial = 0;
      if (!timed_batch(method, inputs, calls, &trial, error)) return false;
      ns = std::min(ns, trial);
    }
    report->calibration.emplace_back(calls, ns);
    if (ns >= target_ns || calls >= kMaxBatchCalls) break;
    // Jump near the target when the trial says how far it is, never more than 16x at once.
    const double ratio = ns > 0 ? static_cast<double>(target_ns) / static_cast<double>(ns) : 16.0;
    calls = std::min(kMaxBatchCalls,
                     calls * std::max<int64_t>(2, std::min<int64_t>(16, static_cast<int64_t>(ratio * 1.2) + 1)));
  }
  report->batch_calls = calls;
  return true;
}

// One run of the runner: the state its phases hand each other. Each phase returns false after
// recording why it failed in `report`.
class Run {
 public:
  pocket::Options options;
  Report report;

  bool parse(int argc, char** argv);
  bool setup_threads();
  bool read_inputs();
  bool load_program();
  bool check_method();
  bool load_method();
  bool measure();
  bool measure_generation();
  bool end_loop();
  bool write_output_sets();
  bool write_etdump();

  // Ends the run in the current phase with its failure status (or `status` when given).
  bool fail(const std::string& error) { return fail(report.phase_failure, error); }
  bool fail(Status status, const std::string& error) {
    report.status = status;
    report.error = error;
    return false;
  }

  void enter(const char* phase, Status on_failure, const std::string& doing) {
    pocket::set_phase(&report, phase, on_failure, doing);
  }

 private:
  std::unique_ptr<pocket::Sampler> sampler_;
  std::vector<pocket::TensorSet> input_sets_;
  std::unique_ptr<MmapDataLoader> loader_;
  std::unique_ptr<et::Program> program_;
  std::unique_ptr<et::MethodMeta> meta_;
  // Left uninitialized, as the runtime expects: zero-filling would touch every page up front and
  // inflate both method load time and RSS beyond what an app pays.
  std::vector<std::unique_ptr<uint8_t[]>> planned_;
  std::vector<et::Span<uint8_t>> spans_;
  std::unique_ptr<et::HierarchicalAllocator> planned_memory_;
  MallocMemoryAllocator method_allocator_;
  MallocMemoryAllocator temp_allocator_;
  std::unique_ptr<et::MemoryManager> memory_manager_;
  std::unique_ptr<executorch::etdump::ETDumpGen> etdump_;
  std::unique_ptr<et::Method> method_;
  pocket::BoundInputs bound_;
  pocket::GenerationPlan plan_;
  std::vector<int64_t> stream_;

  bool generate_once(pocket::Generation* out, int64_t* prefill_ns, std::vector<int64_t>* decode_ns);
};

bool Run::parse(int argc, char** argv) {
  std::string error;
  const bool parsed = pocket::parse_args(argc, argv, &options, &error);
  report.model = options.model;
  report.method = options.method;
  return parsed || fail(error);
}

// Threads first: the XNNPACK delegate takes the pool when the method loads. The sampler starts
// here too, before the load, so memory readings cover it; energy is cut by the host from the same
// readings using the idle and loop timestamps.
bool Run::setup_threads() {
  enter("setup", Status::kBadArguments, "setting up the thread pool");
  et::runtime_init();
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (options.threads > 0 && (pool == nullptr || !pool->_unsafe_reset_threadpool(options.threads))) {
    return fail("cannot size the thread pool to " + std::to_string(options.threads) + " threads");
  }
  report.threads = pool ? static_cast<int>(pool->get_thread_count()) : 1;
  if (options.sample_interval_ms > 0) {
    sampler_ = std::make_unique<pocket::Sampler>(options.sample_files, options.sample_interval_ms);
    sampler_->start();
  }
  return true;
}

// Inputs are read before the model so a bad tensor file is reported as an argument error.
bool Run::read_inputs() {
  if (options.inputs.empty()) {
    report.inputs_source = "seed:" + std::to_string(options.seed);
    return true;
  }
  enter("inputs", Status::kBadArguments, "reading inputs file " + options.inputs);
  std::string error;
  if (!pocket::read_tensor_file(options.inputs, &input_sets_, &error)) return fail(error);
  report.inputs_source = "file:" + options.inputs;
  return true;
}

// Program load: map the file and parse/verify the flatbuffer. InternalConsistency verification
// (as the Python runtime uses) makes a corrupt file fail here instead of crashing later.
bool Run::load_program() {
  report.rss_kb_before_load = pocket::proc_status_kb("VmRSS");
  enter("program_load", Status::kLoadFailed, "loading program " + options.model);
  const Clock::time_point start = Clock::now();
  // mmap rather than read: pages come in as the runtime touches them, and the delegate's blob is
  // unmapped once XNNPACK has packed it (the Python runtime maps the file too).
  auto loader = MmapDataLoader::from(options.model.c_str(), MmapDataLoader::MlockConfig::NoMlock);
  if (!loader.ok()) {
    return fail(with_runtime_reason("cannot open model " + options.model, loader.error()));
  }
  loader_ = std::make_unique<MmapDataLoader>(std::move(loader.get()));
  auto program = et::Program::load(loader_.get(), et::Program::Verification::InternalConsistency);
  if (!program.ok()) {
    return fail(with_runtime_reason(options.model + " is not a loadable .pte", program.error()));
  }
  program_ = std::make_unique<et::Program>(std::move(program.get()));
  report.program_load_ms = ms_since(start);
  return true;
}

// The method's metadata, checked before anything is allocated from it: a corrupt or crafted
// program can claim any buffer size, input count, dtype or dims.
bool Run::check_method() {
  enter("method_check", Status::kLoadFailed, "checking method '" + options.method + "'");
  auto meta = program_->method_meta(options.method.c_str());
  if (!meta.ok()) {
    std::string names;
    for (size_t i = 0; i < program_->num_methods(); ++i) {
      auto name = program_->get_method_name(i);
      if (name.ok()) names += (names.empty() ? "" : ", ") + pocket::printable(name.get());
    }
    return fail(Status::kBadArguments,
                "method '" + options.method + "' is not in " + options.model + " (it has: " + names + ")");
  }
  meta_ = std::make_unique<et::MethodMeta>(meta.get());
  // Refuse plans that cannot fit in this device's memory instead of letting the allocation
  // thrash or get the process killed.
  const uint64_t ram = physical_memory();
  uint64_t planned_total = 0;
  for (size_t i = 0; i < meta_->num_memory_planned_buffers(); ++i) {
    auto size = meta_->memory_planned_buffer_size(i);
    if (!size.ok() || size.get() < 0 ||
        __builtin_add_overflow(planned_total, static_cast<uint64_t>(size.get()), &planned_total)) {
      return fail("cannot read planned buffer " + std::to_string(i) + " of method '" + options.method +
                  "': the .pte is corrupt");
    }
    report.planned_buffers_bytes.push_back(size.get());
  }
  if (ram > 0 && planned_total > ram) {
    return fail("method '" + options.method + "' plans " + std::to_string(planned_total >> 20) +
                " MiB of buffers, more than this device's " + std::to_string(ram >> 20) +
                " MiB of RAM: the .pte is corrupt or too big for it");
  }
  for (size_t i = 0; i < meta_->num_backends(); ++i) {
    auto name = meta_->get_backend_name(i);
    if (name.ok()) report.backends.emplace_back(name.get());
  }
  std::string error;
  if (!pocket::check_input_metadata(*meta_, &error)) return fail(error);
  if (options.generate) {
    plan_ = {options.prompt_tokens, options.decode_tokens, options.teacher_forced, 0};
    if (!pocket::generative_context(*meta_, &plan_.context, &error)) return fail(Status::kBadArguments, error);
    if (input_sets_.empty() || input_sets_[0].empty()) {
      return fail(Status::kBadArguments, "--generate: the inputs file holds no token stream");
    }
    if (!pocket::check_generation(plan_, input_sets_[0][0], &error)) return fail(Status::kBadArguments, error);
    stream_ = pocket::stream_ids(input_sets_[0][0]);
    report.input_sets = input_sets_.size();
    return true;
  }
  if (options.inputs.empty()) {
    input_sets_.emplace_back();
    if (!pocket::make_random_inputs(*meta_, options.seed, &input_sets_[0], &error)) {
      return fail(Status::kBadArguments, error);
    }
  }
  if (!pocket::check_inputs(*meta_, input_sets_, &error)) return fail(Status::kBadArguments, error);
  report.input_sets = input_sets_.size();
  return true;
}

// Method load: allocate the memory-planned buffers and initialize the method, which includes each
// delegate's init (XNNPACK packs its weights here), so it belongs in load time.
bool Run::load_method() {
  enter("method_load", Status::kLoadFailed, "loading method '" + options.method + "'");
  const Clock::time_point start = Clock::now();
  for (int64_t size : report.planned_buffers_bytes) {
    planned_.emplace_back(new (std::nothrow) uint8_t[static_cast<size_t>(size)]);
    if (!planned_.back()) {
      return fail("cannot allocate a planned buffer of " + std::to_string(size) + " bytes: not enough memory");
    }
    spans_.emplace_back(planned_.back().get(), static_cast<size_t>(size));
  }
  planned_memory_ =
      std::make_unique<et::HierarchicalAllocator>(et::Span<et::Span<uint8_t>>(spans_.data(), spans_.size()));
  memory_manager_ = std::make_unique<et::MemoryManager>(&method_allocator_, planned_memory_.get(), &temp_allocator_);
  if (!options.etdump.empty()) etdump_ = std::make_unique<executorch::etdump::ETDumpGen>();
  auto method = program_->load_method(options.method.c_str(), memory_manager_.get(), etdump_.get());
  if (!method.ok()) {
    return fail(with_runtime_reason("cannot load method '" + options.method + "'", method.error()));
  }
  method_ = std::make_unique<et::Method>(std::move(method.get()));
  report.method_load_ms = ms_since(start);
  report.rss_kb_after_load = pocket::proc_status_kb("VmRSS");
  enter("bind_inputs", Status::kBadArguments, "binding the inputs of method '" + options.method + "'");
  std::string error;
  if (options.generate) return true;  // each generation step binds its own tokens
  return bound_.bind(*method_, input_sets_[0], &error) || fail(error);
}

// One generation: the prompt in one execute, then one execute per decode token, each timed alone
// (the clock brackets the execute only; binding the next token and the argmax are outside it).
bool Run::generate_once(pocket::Generation* out, int64_t* prefill_ns, std::vector<int64_t>* decode_ns) {
  const int64_t p = plan_.prompt_tokens;
  std::vector<int64_t> ids;
  decode_ns->clear();
  for (int64_t step = 0; step <= plan_.decode_tokens; ++step) {
    std::vector<int64_t> tokens;
    if (step == 0) {
      tokens.assign(stream_.begin(), stream_.begin() + p);
    } else {
      tokens.push_back(plan_.teacher_forced ? stream_[static_cast<size_t>(p + step - 1)] : ids.back());
    }
    const pocket::TensorSet set = pocket::step_inputs(tokens, step == 0 ? 0 : p + step - 1);
    pocket::BoundInputs inputs;
    std::string error;
    if (!inputs.bind(*method_, set, &error)) return fail(Status::kBadArguments, error);
    int64_t ns = 0;
    et::Error status = et::Error::Ok;
    if (!timed_execute(*method_, inputs, &ns, &status)) {
      return fail(with_runtime_reason(step == 0 ? "prefill failed" : "decode step " + std::to_string(step) + " failed",
                                      status));
    }
    (step == 0 ? *prefill_ns : decode_ns->emplace_back()) = ns;
    const int64_t next = pocket::last_argmax(*method_, &error);
    if (next < 0) return fail(error);
    ids.push_back(next);
  }
  out->generated_ids = std::move(ids);
  return true;
}

// Generation mode: a first generation (its prefill is the first inference), warm-up generations,
// the idle window, then timed generations; every decode step's time is one timed sample.
bool Run::measure_generation() {
  pocket::Generation generation;
  generation.prompt_tokens = plan_.prompt_tokens;
  generation.decode_tokens = plan_.decode_tokens;
  generation.teacher_forced = plan_.teacher_forced;
  generation.context = plan_.context;
  int64_t prefill_ns = 0;
  std::vector<int64_t> decode_ns;
  enter("first_inference", Status::kExecutionFailed, "generating");
  if (!generate_once(&generation, &prefill_ns, &decode_ns)) return false;
  report.first_inference_ms = static_cast<double>(prefill_ns) / 1e6;
  enter("warmup", Status::kExecutionFailed, "generating");
  for (int i = 0; i < options.warmup; ++i) {
    if (!generate_once(&generation, &prefill_ns, &decode_ns)) return false;
    report.warmup_iterations = i + 1;
  }
  if (options.idle_baseline_s > 0) {
    report.idle_start_ns = pocket::steady_now_ns();
    std::this_thread::sleep_for(std::chrono::duration<double>(options.idle_baseline_s));
    report.idle_end_ns = pocket::steady_now_ns();
  }
  enter("loop", Status::kExecutionFailed, "generating");
  const auto min_ns = static_cast<int64_t>(options.min_seconds * 1e9);
  int64_t total_ns = 0;
  report.loop_start_ns = pocket::steady_now_ns();
  while (static_cast<int>(generation.prefill_ns.size()) < options.iterations || total_ns < min_ns) {
    if (!generate_once(&generation, &prefill_ns, &decode_ns)) return false;
    generation.prefill_ns.push_back(prefill_ns);
    total_ns += prefill_ns;
    for (int64_t ns : decode_ns) total_ns += ns;
    if (decode_ns.empty()) report.iterations_ns.push_back(prefill_ns);
    report.iterations_ns.insert(report.iterations_ns.end(), decode_ns.begin(), decode_ns.end());
    generation.decode_ns.push_back(decode_ns);
  }
  report.generation = std::move(generation);
  return end_loop();
}

// The first inference, the warm-up, the idle window and the timed loop, then set 0's outputs.
bool Run::measure() {
  if (options.generate) return measure_generation();
  const std::string running = "running method '" + options.method + "'";
  enter("first_inference", Status::kExecutionFailed, running);
  int64_t ns = 0;
  et::Error status = et::Error::Ok;
  if (!timed_execute(*method_, bound_, &ns, &status)) {
    return fail(with_runtime_reason("first inference failed", status));
  }
  report.first_inference_ms = static_cast<double>(ns) / 1e6;

  enter("warmup", Status::kExecutionFailed, running);
  for (int i = 0; i < options.warmup; ++i) {
    if (!timed_execute(*method_, bound_, &ns, &status)) {
      return fail(with_runtime_reason("warm-up inference failed", status));
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

  report.batch_min_ms = options.batch_min_ms;
  if (options.batch_min_ms > 0) {
    enter("calibration", Status::kExecutionFailed, running);
    if (!calibrate_batch(*method_, bound_, options.batch_min_ms, &report, &status)) {
      return fail(with_runtime_reason("calibration inference failed", status));
    }
  }

  enter("loop", Status::kExecutionFailed, running);
  const int64_t calls = report.batch_calls;
  const int64_t min_ns = static_cast<int64_t>(options.min_seconds * 1e9);
  int64_t total_ns = 0;
  report.iterations_ns.reserve(static_cast<size_t>(options.iterations));
  report.loop_start_ns = pocket::steady_now_ns();
  while (static_cast<int>(report.iterations_ns.size()) < options.iterations || total_ns < min_ns) {
    const bool ok =
        calls == 1 ? timed_execute(*method_, bound_, &ns, &status) : timed_batch(*method_, bound_, calls, &ns, &status);
    if (!ok) return fail(with_runtime_reason("inference failed", status));
    if (calls > 1) report.batches_ns.push_back(ns);
    report.iterations_ns.push_back((ns + calls / 2) / calls);
    total_ns += ns;
  }
  return end_loop();
}

// After the timed loop: its end time, the sampler's readings, RSS, then the last outputs' digests.
bool Run::end_loop() {
  report.loop_end_ns = pocket::steady_now_ns();
  if (sampler_) {
    sampler_->stop();
    report.samples = sampler_->samples();
  }
  report.rss_kb_after_loop = pocket::proc_status_kb("VmRSS");

  enter("outputs", Status::kExecutionFailed, "reading the outputs of method '" + options.method + "'");
  pocket::TensorSet outputs;
  std::string error;
  if (!pocket::collect_outputs(*method_, &outputs, &error)) return fail(error);
  report.outputs = pocket::summarize(outputs);
  return true;
}

// One execute per input set, outside the timed loop, for the host's fidelity checks.
bool Run::write_output_sets() {
  if (options.outputs.empty()) return true;
  enter("output_sets", Status::kExecutionFailed, "running every input set");
  std::vector<pocket::TensorSet> output_sets;
  std::string error;
  int64_t ns = 0;
  et::Error status = et::Error::Ok;
  for (size_t s = 0; s < input_sets_.size(); ++s) {
    pocket::BoundInputs set_inputs;
    if (!set_inputs.bind(*method_, input_sets_[s], &error)) {
      return fail(Status::kBadArguments, "input set " + std::to_string(s) + ": " + error);
    }
    if (!timed_execute(*method_, set_inputs, &ns, &status)) {
      return fail(with_runtime_reason("inference on input set " + std::to_string(s) + " failed", status));
    }
    output_sets.emplace_back();
    if (!pocket::collect_outputs(*method_, &output_sets.back(), &error)) return fail(error);
  }
  enter("output_file", Status::kBadArguments, "writing outputs file " + options.outputs);
  if (!pocket::write_tensor_file(options.outputs, output_sets, &error)) return fail(error);
  report.output_sets_written = output_sets.size();
  return true;
}

bool Run::write_etdump() {
  if (!etdump_) return true;
  enter("etdump", Status::kBadArguments, "writing the ETDump trace to " + options.etdump);
  const auto trace = etdump_->get_etdump_data();
  std::ofstream file(options.etdump, std::ios::binary | std::ios::trunc);
  const bool written =
      trace.buf != nullptr && file.write(static_cast<const char*>(trace.buf), trace.size) && file.flush();
  std::free(trace.buf);
  if (!written) return fail("cannot write the ETDump trace to " + options.etdump);
  report.etdump = options.etdump;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // The hooks come first, with the report in its first phase: from here on every way the process
  // ends (an argument error, an exception, a runtime abort, a fatal signal) writes the JSON.
  Run run;
  pocket::install_runtime_hooks(run.options, run.report);
  bool ok = false;
  try {
    run.enter("arguments", Status::kBadArguments, "parsing arguments");
    const bool parsed = run.parse(argc, argv);
    if (run.options.help) {
      std::fputs(pocket::kUsage, stdout);
      return 0;
    }
    ok = parsed && run.setup_threads() && run.read_inputs() && run.load_program() && run.check_method() &&
         run.load_method() && run.measure() && run.write_output_sets() && run.write_etdump();
  } catch (const std::bad_alloc&) {
    run.fail(pocket::phase_doing() + " failed: out of memory (std::bad_alloc)");
  } catch (const std::exception& error) {
    run.fail(pocket::phase_doing() + " failed: " + error.what());
  }
  if (ok) {
    run.report.status = Status::kOk;
    run.report.error.clear();
    run.report.phase = "done";
  }
  run.report.peak_rss_kb = pocket::proc_status_kb("VmHWM");
  return pocket::finish(run.report, run.options);
}
