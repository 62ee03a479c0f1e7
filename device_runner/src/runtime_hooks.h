// Hooks into the ExecuTorch runtime's platform layer so that every way a run can end, including a
// runtime assertion or a crash on a corrupt .pte that passed verification, ends with the JSON
// result and a distinct exit code instead of a bare core dump.
#pragma once

#include <string>

#include "cli.h"
#include "report.h"

namespace pocket {

// Registers the log capture and abort hook with the runtime, the terminate handler and the
// fatal-signal handlers (sigaction, on their own stack). Call once, first thing in main, with the
// report already in its first phase: from here on every way the process ends writes the JSON.
// `options.verbose` forwards the runtime's log lines to stderr.
void install_runtime_hooks(const Options& options, const Report& report);

// The runtime's first error-level log line since the last set_phase ("Program identifier 'xxxx'
// != expected 'ET12'"), reduced to printable ASCII; empty when it logged none.
std::string runtime_error_cause();

// `text` with every byte outside printable ASCII replaced by '?': names read from a corrupt
// program may hold anything.
std::string printable(std::string text);

// Declares what the runner does from now on: `report` enters `phase`, whose failures are reported
// with `on_failure`. If the runtime aborts, an exception escapes or the process takes a fatal
// signal before the next call, the report is written with that status and an error naming `doing`.
void set_phase(Report* report, const char* phase, Status on_failure, const std::string& doing);

// What the current phase is doing ("reading inputs file x.pbtf"), for error messages.
const std::string& phase_doing();

// Writes the JSON (to --json, else stdout) and the one-line error on stderr; returns the exit code.
int finish(const Report& report, const Options& options);

}  // namespace pocket
