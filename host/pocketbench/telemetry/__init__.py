"""Device state beside the timings: energy, memory over the run, temperatures and frequencies.

Every device-side reading goes through one seam, a `Shell` (`pocketbench.devices.shell`): a
callable that runs a command on the device and returns its stdout. Everything read is parsed by
pure functions (parsers.py) tested on captured text; energy.py and thermal.py compute from those.
Memory over the run is sampled by the runner itself and read from its report
(`pocketbench.runner.procstat` parses /proc status text).
"""
