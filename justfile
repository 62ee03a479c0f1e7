# pocketbench — every task a user or CI runs. `just --list` shows them.
set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
# Debian packages the tests use (real adb client, arm64 cross toolchain and qemu, chromium).
debian_packages := "chromium"
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

# Install the Debian packages the tests need (only those missing; needs root or sudo).
system-deps:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    for pkg in {{debian_packages}}; do
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && exit 0
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing Debian packages: ${missing[*]}"
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"

# Run the whole test suite.
test *ARGS: setup system-deps
    {{py}} -m pytest {{ARGS}}

# Lint and format check.
lint: setup
    {{venv}}/bin/ruff check .
    {{venv}}/bin/ruff format --check .

# Speed and memory figures, written to benchmarks/RESULTS.md (all, or the ones named).
benchmark *NAMES: setup
    {{py}} benchmarks/run_all.py {{NAMES}}
