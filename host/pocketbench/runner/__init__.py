"""runner stage: the runner's job and report, the tensor file, and the native and Python runners."""
