"""Nightly device-farm runs: matrix, orchestration, regression verdicts, AWS Device Farm."""
