"""Nightly device-farm runs: matrix, orchestration, regression verdicts."""
