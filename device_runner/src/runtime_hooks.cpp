#include "runtime_hooks.h"

#include <fcntl.h>
#include <unistd.h>

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>

#include <executorch/runtime/platform/platform.h>

namespace pocket {
namespace {

const Options* g_options = nullptr;
std::string g_first_error;  // since the last set_phase
std::string g_fatal;        // an ET_CHECK's failed condition, logged just before the runtime aborts
// The report of the current phase; the abort hook completes it with the runtime's last words.
Report g_phase_report;
std::string g_phase_doing;
// Pre-rendered for the signal handler, which may only write() bytes that already exist.
std::string g_crash_json;
std::string g_crash_line;
int g_crash_code = 4;

void capture_log(et_timestamp_t, et_pal_log_level_t level, const char* filename, const char*, size_t line,
                 const char* message, size_t length) {
  std::string text(message, length);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  // The first error is the cause; the lines after it are the runtime unwinding (for a failed
  // kernel: "KernelCall failed ...", then one line per argument).
  if (level == kError && g_first_error.empty()) g_first_error = printable(text);
  if (level == kFatal) g_fatal = printable(text);
  if (g_options && g_options->verbose) {
    std::fprintf(stderr, "[executorch %c %s:%zu] %s\n", level, filename, line, text.c_str());
  }
}

[[noreturn]] void report_and_exit(const std::string& what) {
  Report report = g_phase_report;
  report.status = report.phase_failure;
  report.error = g_phase_doing + " failed: " + what;
  report.peak_rss_kb = proc_status_kb("VmHWM");
  std::_Exit(finish(report, *g_options));
}

// ET_CHECK failures inside the runtime (an index out of range in a corrupt program) end here.
void runtime_abort() {
  const std::string& why = !g_fatal.empty() ? g_fatal : g_first_error;
  report_and_exit("runtime assertion: " + (why.empty() ? std::string("abort") : why));
}

void on_terminate() {
  std::string what = "uncaught exception";
  try {
    if (auto error = std::current_exception()) std::rethrow_exception(error);
  } catch (const std::exception& error) {
    what = std::string("uncaught exception: ") + error.what();
  } catch (...) {
  }
  report_and_exit(what);
}

void write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Only async-signal-safe calls here: open/write/close/_exit on buffers rendered in advance.
void on_fatal_signal(int sig, siginfo_t* info, void*) {
  if (info != nullptr && info->si_code <= 0) {
    // Sent by another process (kill, tgkill, sigqueue), not raised by a fault in the program:
    // die of it as if unhandled, so the host names the signal instead of blaming the model.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  if (!g_options->json.empty()) {
    const int fd = ::open(g_options->json.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      write_all(fd, g_crash_json);
      ::close(fd);
    }
  } else {
    write_all(STDOUT_FILENO, g_crash_json);
  }
  write_all(STDERR_FILENO, g_crash_line);
  ::_exit(g_crash_code);
}

}  // namespace

std::string printable(std::string text) {
  for (char& c : text) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return text;
}

namespace {

// The fatal-signal handler runs on its own stack so a stack overflow (deep recursion on a corrupt
// program) still gets its JSON written.
alignas(16) char g_signal_stack[64 * 1024];

void install_signal_handlers() {
  stack_t stack{};
  stack.ss_sp = g_signal_stack;
  stack.ss_size = sizeof(g_signal_stack);
  const bool alt_stack = sigaltstack(&stack, nullptr) == 0;
  struct sigaction action {};
  action.sa_sigaction = on_fatal_signal;
  sigemptyset(&action.sa_mask);
  // SA_RESETHAND: a fault inside the handler itself ends the process instead of looping.
  action.sa_flags = SA_SIGINFO | SA_RESETHAND | (alt_stack ? SA_ONSTACK : 0);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
    if (sigaction(sig, &action, nullptr) != 0) {
      std::fprintf(stderr, "pocket_runner: cannot install the handler for signal %d: %s\n", sig, std::strerror(errno));
    }
  }
}

}  // namespace

void install_runtime_hooks(const Options& options, const Report& report) {
  g_options = &options;
  Report first = report;  // its default phase: parsing the arguments
  set_phase(&first, "arguments", Status::kBadArguments, "parsing arguments");
  executorch::runtime::register_pal(executorch::runtime::PalImpl::create(
      /*init=*/nullptr, runtime_abort, /*current_ticks=*/nullptr,
      /*ticks_to_ns_multiplier=*/nullptr, capture_log, /*allocate=*/nullptr, /*free=*/nullptr, __FILE__));
  std::set_terminate(on_terminate);
  install_signal_handlers();
}

std::string runtime_error_cause() { return g_first_error; }

void set_phase(Report* report, const char* phase, Status on_failure, const std::string& doing) {
  report->phase = phase;
  report->phase_failure = on_failure;
  g_first_error.clear();
  g_phase_report = *report;
  g_phase_doing = doing;
  Report crashed = g_phase_report;
  crashed.status = on_failure;
  crashed.error = doing + " crashed the runtime (fatal signal): the .pte is corrupt or unsupported";
  g_crash_json = to_json(crashed);
  g_crash_line = "pocket_runner: " + crashed.error + "\n";
  g_crash_code = exit_code(on_failure);
}

const std::string& phase_doing() { return g_phase_doing; }

int finish(const Report& report, const Options& options) {
  const std::string json = to_json(report);
  if (!options.json.empty()) {
    std::ofstream file(options.json, std::ios::trunc);
    if (!(file << json) || !file.flush()) {
      std::fprintf(stderr, "pocket_runner: cannot write the JSON result to %s\n", options.json.c_str());
      return exit_code(report.status == Status::kOk ? Status::kBadArguments : report.status);
    }
  } else {
    std::fputs(json.c_str(), stdout);
    std::fflush(stdout);
  }
  if (report.status != Status::kOk) std::fprintf(stderr, "pocket_runner: %s\n", report.error.c_str());
  return exit_code(report.status);
}

}  // namespace pocket
