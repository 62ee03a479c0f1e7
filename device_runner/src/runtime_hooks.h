// Hooks into the ExecuTorch runtime's platform layer so that every way a run can end, including a
// runtime assertion or a crash on a corrupt .pte that passed verification, ends with the JSON
// result and a distinct exit code instead of a bare core dump.
#pragma once

#include <string>

#include "cli.h"
#include "report.h"

namespace pocket {

// Registers the log capture and abort hook with the runtime and installs fatal-signal handlers.
// `verbose` forwards the runtime's log lines to stderr. Call once, before runtime_init().
void install_runtime_hooks(const Options& options);

// The runtime's first error-level log line since the last set_phase ("Program identifier 'xxxx'
// != expected 'ET12'"), reduced to printable ASCII; empty when it logged none.
std::string runtime_error_cause();

// `text` with every byte outside printable ASCII replaced by '?': names read from a corrupt
// program may hold anything.
std::string printable(std::string text);

// Declares what the runner does from now on. If the runtime aborts or the process takes a fatal
// signal before the next call, `report` is written with `status` and an error naming `doing`.
void set_phase(const Report& report, Status status, const std::string& doing);

// Writes the JSON (to --json, else stdout) and the one-line error on stderr; returns the exit code.
int finish(const Report& report, const Options& options);

}  // namespace pocket
