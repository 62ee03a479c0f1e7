# pocketbench — every task a user or CI runs. `just --list` shows them.
set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
# Debian packages the tests use (real adb client, arm64 cross toolchain and qemu, chromium, clang
# with its sanitizer and libFuzzer runtimes for the runner's checked build, clang-format for `just check`,
# jq for the docs' examples, PostgreSQL for the tune study that several workers share).
debian_packages := "adb g++ ninja-build g++-aarch64-linux-gnu qemu-user chromium clang libclang-rt-14-dev clang-format jq postgresql"
py := venv / "bin/python"
cmake := venv / "bin/cmake"
# The native runner links the same ExecuTorch release as the Python package.
executorch_version := "1.5.1"
runner_build := "device_runner/build"

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
    "{{py}}" -m pip install --quiet -e ".[dev,docs,hf]"
    echo "$want" > "$stamp"

# Benchmark the default models on the first attached phone, or on this computer without one.
bench *ARGS: setup
    #!/usr/bin/env bash
    set -euo pipefail
    [ -x {{runner_build}}/host/pocket_runner ] || just build-runner
    # What the attached phone needs (its runner bundle), built first; a host that cannot build it gets one line.
    recipes=$("{{py}}" -m pocketbench.devices.adb.runner_plan {{ARGS}})
    for recipe in $recipes; do just "$recipe"; done
    "{{venv}}/bin/pocketbench" bench {{ARGS}}

# Build the native runner for this computer against the installed executorch wheel.
build-runner: setup
    #!/usr/bin/env bash
    set -euo pipefail
    prefix=$("{{py}}" -c "import executorch; print(executorch.__path__[0])")
    gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
    [ -f {{runner_build}}/host/CMakeCache.txt ] && gen=()
    "{{cmake}}" -S device_runner -B {{runner_build}}/host "${gen[@]}" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix"
    "{{cmake}}" --build {{runner_build}}/host -j 2
    echo "built {{runner_build}}/host/pocket_runner"

# Build the runner, its unit tests and fuzz targets with clang, ASan and UBSan (device_runner/build/asan).
build-runner-asan: setup
    #!/usr/bin/env bash
    set -euo pipefail
    command -v clang++ >/dev/null || { echo "clang++ is not installed: run \`just system-deps\` (clang, libclang-rt-14-dev)" >&2; exit 2; }
    prefix=$("{{py}}" -c "import executorch; print(executorch.__path__[0])")
    gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
    [ -f {{runner_build}}/asan/CMakeCache.txt ] && gen=()
    "{{cmake}}" -S device_runner -B {{runner_build}}/asan "${gen[@]}" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_PREFIX_PATH="$prefix" \
      -DPOCKET_SANITIZE=ON -DPOCKET_FUZZ=ON
    "{{cmake}}" --build {{runner_build}}/asan -j 2
    echo "built {{runner_build}}/asan/pocket_runner (ASan + UBSan) and its fuzz targets"

# Fuzz the tensor-file reader and the argument parser for SECONDS each (crashes land in device_runner/fuzz/crashes/).
fuzz SECONDS="60": build-runner-asan
    #!/usr/bin/env bash
    set -euo pipefail
    crashes=device_runner/fuzz/crashes; mkdir -p "$crashes"
    # Findings go to a scratch corpus: the seeds in the repo change only when a human adds one.
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    declare -A seeds=([fuzz_tensor_file]="tests/data/tensorfile/valid tests/data/tensorfile/invalid" [fuzz_cli]="device_runner/fuzz/corpus/cli")
    for target in fuzz_tensor_file fuzz_cli; do
      mkdir -p "$work/$target"
      echo "fuzzing $target for {{SECONDS}} s"
      {{runner_build}}/asan/$target -max_total_time={{SECONDS}} -max_len=4096 -timeout=5 -rss_limit_mb=2048 -malloc_limit_mb=128 \
        -artifact_prefix="$crashes/$target-" -print_final_stats=1 "$work/$target" ${seeds[$target]} 2>&1 | tail -n 12
    done
    echo "no crash found; add any file from $crashes to the seeds and a test (see docs/tensor-file.md)"

# Cross-build the runner for linux-aarch64 against the aarch64 executorch wheel (runs under qemu-aarch64).
build-runner-arm64: setup system-deps
    #!/usr/bin/env bash
    set -euo pipefail
    cache={{runner_build}}/cache
    wheel=$(ls "$cache"/executorch-{{executorch_version}}-*manylinux*aarch64.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
      "{{py}}" -m pip download --quiet --platform manylinux_2_28_aarch64 --only-binary=:all: \
        --no-deps -d "$cache" "executorch=={{executorch_version}}"
      wheel=$(ls "$cache"/executorch-{{executorch_version}}-*manylinux*aarch64.whl | head -n 1)
    fi
    prefix="$cache/aarch64-{{executorch_version}}/executorch"
    if [ ! -f "$prefix/share/cmake/executorch-config.cmake" ] || [ ! -d "$cache/aarch64-{{executorch_version}}/executorch-{{executorch_version}}.dist-info" ]; then
      # Only the C++ package (libraries, headers, CMake config) and the dist-info (version, licence).
      "{{py}}" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith(("executorch/lib/", "executorch/include/", "executorch/share/", "executorch-"))])' "$wheel" "$cache/aarch64-{{executorch_version}}"
    fi
    gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
    [ -f {{runner_build}}/arm64/CMakeCache.txt ] && gen=()
    "{{cmake}}" -S device_runner -B {{runner_build}}/arm64 "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_TOOLCHAIN_FILE="$PWD/device_runner/cmake/aarch64-linux-gnu.cmake" \
      -DCMAKE_PREFIX_PATH="$PWD/$prefix"
    "{{cmake}}" --build {{runner_build}}/arm64 -j 2
    echo "built {{runner_build}}/arm64/pocket_runner (run: qemu-aarch64 -cpu max,sme=off -L /usr/aarch64-linux-gnu {{runner_build}}/arm64/pocket_runner --help)"

# Runner bundles for Android phones, no NDK needed: arm64-v8a and x86_64 (device_runner/README.md).
build-runner-android: build-runner-android-arm64 build-runner-android-x86_64

# The arm64-v8a bundle: the cross-built runner, the aarch64 wheel's libraries, glibc, launcher, licences.
build-runner-android-arm64: build-runner-arm64
    #!/usr/bin/env bash
    set -euo pipefail
    root="{{runner_build}}/cache/aarch64-{{executorch_version}}"
    "{{py}}" -m pocketbench.devices.bundle.assemble --abi arm64-v8a --runner {{runner_build}}/arm64/pocket_runner \
      --executorch-lib "$root/executorch/lib" --dist-info "$root/executorch-{{executorch_version}}.dist-info" \
      --out {{runner_build}}/android-arm64

# The x86_64 bundle (Android Studio's emulator images, Chromebooks): the host build with the host's glibc.
build-runner-android-x86_64: build-runner
    #!/usr/bin/env bash
    set -euo pipefail
    lib=$("{{py}}" -c "import executorch, os; print(os.path.join(executorch.__path__[0], 'lib'))")
    dist=$("{{py}}" -c "import importlib.metadata as m; print(next(f for f in m.distribution('executorch').files if f.name == 'METADATA').locate().parent)")
    "{{py}}" -m pocketbench.devices.bundle.assemble --abi x86_64 --runner {{runner_build}}/host/pocket_runner \
      --executorch-lib "$lib" --dist-info "$dist" --out {{runner_build}}/android-x86_64

# Build the runner for Android arm64-v8a from an ExecuTorch source checkout (UNVERIFIED here: no NDK).
runner-android NDK EXECUTORCH_SRC: setup
    #!/usr/bin/env bash
    set -euo pipefail
    # Called as `just runner-android NDK=/ndk EXECUTORCH_SRC=/src`: just passes "NDK=/ndk" as the value.
    ndk='{{NDK}}'; ndk="${ndk#NDK=}"; src='{{EXECUTORCH_SRC}}'; src="${src#EXECUTORCH_SRC=}"
    toolchain="$ndk/build/cmake/android.toolchain.cmake"
    [ -f "$toolchain" ] || { echo "no $toolchain: pass NDK=<path to the Android NDK>" >&2; exit 2; }
    [ -f "$src/CMakeLists.txt" ] || { echo "no CMakeLists.txt in $src: pass EXECUTORCH_SRC=<executorch checkout>" >&2; exit 2; }
    et_build="$PWD/{{runner_build}}/android-executorch"
    android=(-DCMAKE_TOOLCHAIN_FILE="$toolchain" -DANDROID_ABI=arm64-v8a -DANDROID_PLATFORM=android-26 -DCMAKE_BUILD_TYPE=Release)
    "{{cmake}}" -S "$src" -B "$et_build" "${android[@]}" \
      -DCMAKE_INSTALL_PREFIX="$et_build/install" \
      -DEXECUTORCH_BUILD_XNNPACK=ON -DEXECUTORCH_BUILD_KERNELS_OPTIMIZED=ON \
      -DEXECUTORCH_BUILD_KERNELS_QUANTIZED=ON -DEXECUTORCH_BUILD_EXTENSION_DATA_LOADER=ON \
      -DEXECUTORCH_BUILD_DEVTOOLS=ON -DEXECUTORCH_ENABLE_EVENT_TRACER=ON -DEXECUTORCH_ENABLE_LOGGING=ON
    "{{cmake}}" --build "$et_build" -j 2 --target install
    "{{cmake}}" -S device_runner -B {{runner_build}}/android "${android[@]}" \
      -DPOCKET_EXECUTORCH_SOURCE_INSTALL=ON -DPOCKET_RUNTIME_VERSION="source $(git -C "$src" describe --tags --always 2>/dev/null || echo unknown)" \
      -DCMAKE_PREFIX_PATH="$et_build/install" -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=BOTH
    "{{cmake}}" --build {{runner_build}}/android -j 2
    echo "built {{runner_build}}/android/pocket_runner (static; push it alone to the phone)"

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

# Run the whole test suite and print its coverage of the package and the built-in models. One
# worker per core, each given whole modules (module fixtures are built once); the workers share
# the session's cache, so each model trains once (tests/conftest.py). The tests of a built-in
# trained with its shipped recipe from scratch (`full_training`: mobilenet_v2 takes minutes) do
# not fit CI's 30 minutes: `just test-training` runs them.
test *ARGS: setup system-deps
    {{py}} -m pytest --cov --cov-report= -n auto --dist loadfile --no-loadscope-reorder -m "not full_training" {{ARGS}}
    echo "coverage of host/pocketbench and models/ (lines, subprocesses included): $({{venv}}/bin/coverage report --format=total)%"

# The trained mobilenet_v2's claims (≥ 98 % held out, its own batch-norm statistics, cached
# weights reused): trains it from scratch in the session's cache, 6–8 minutes on one core.
test-training *ARGS: setup
    {{py}} -m pytest -m full_training {{ARGS}}

# The edit-test loop: every test not marked slow (tests/conftest.py marks each by what it does:
# phone, qemu, needs_runner, training; `-m "not phone"` and the like pick finer sets). One worker
# per core.
test-fast *ARGS: setup
    {{py}} -m pytest -m "not slow" -n auto {{ARGS}}

# Lint and format check.
lint: setup
    {{venv}}/bin/ruff check .
    {{venv}}/bin/ruff format --check .

# Type check host/pocketbench (config in pyproject.toml, [tool.mypy]).
typecheck: setup
    {{venv}}/bin/mypy

# The C++ sources clang-format reads (style: .clang-format).
cpp_sources := "find device_runner/src device_runner/tests device_runner/fuzz -name '*.cpp' -o -name '*.h'"

# Check the runner's C++ formatting (clang-format --dry-run -Werror; `just format-cpp` fixes it).
lint-cpp:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v clang-format >/dev/null || { echo "clang-format is not installed: run \`just system-deps\`" >&2; exit 2; }
    {{cpp_sources}} | sort | xargs clang-format --dry-run -Werror
    echo "C++ formatted ($(clang-format --version | head -n 1))"

# Format the runner's C++ sources in place.
format-cpp:
    {{cpp_sources}} | xargs clang-format -i

# The checks that keep the house in order (CI runs them before the suite): lint, C++ format, types, import layers.
check: lint lint-cpp typecheck
    {{py}} -m pytest -q -p no:cacheprovider tests/test_import_layers.py

# Build the documentation site from docs/ into build/docs (every warning is an error) and check
# the links of README.md and docs/ (no network: web links are not followed).
docs: setup
    {{venv}}/bin/sphinx-build -W --keep-going -q -b html docs build/docs
    {{py}} -m pytest -q -p no:cacheprovider tests/test_docs_links.py
    echo "built build/docs/index.html"

# Speed and memory figures, written to benchmarks/RESULTS.md (all, or the ones named).
benchmark *NAMES: setup
    {{py}} benchmarks/run_all.py {{NAMES}}
