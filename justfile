# pocketbench — every task a user or CI runs. `just --list` shows them.
set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
py := venv / "bin/python"

# Create .venv and install pocketbench with its dev tools (re-runs only when pyproject changes).
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    stamp="{{venv}}/.pocketbench-installed"
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
    [ -x "{{py}}" ] || python3 -m venv "{{venv}}"
    "{{py}}" -m pip install --quiet --upgrade pip
    # torch first and exactly pinned: it comes from the local CPU wheel, never a CUDA build.
    "{{py}}" -m pip install --quiet "torch==2.13.0"
    "{{py}}" -m pip install --quiet -e ".[dev]"
    echo "$want" > "$stamp"

# Benchmark the default models on the first attached phone, or on this computer without one.
bench *ARGS: setup
    {{venv}}/bin/pocketbench bench {{ARGS}}

# Run the whole test suite.
test *ARGS: setup
    {{py}} -m pytest {{ARGS}}

# Lint and format check.
lint: setup
    {{venv}}/bin/ruff check .
    {{venv}}/bin/ruff format --check .

# Speed and memory figures, written to benchmarks/RESULTS.md.
benchmark: setup
    {{py}} benchmarks/run_all.py
