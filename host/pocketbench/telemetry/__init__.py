"""Device state beside the timings: energy, memory over the run, temperatures and frequencies.

Every device-side reading goes through one seam, a `Shell` (shell.py): a callable that runs a
command on the device and returns its stdout. Everything read is parsed by pure functions
(parsers.py) tested on captured text; energy.py, thermal.py and memory.py compute from those.
"""
