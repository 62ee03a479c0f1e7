"""The runner's C++ unit tests and fuzz targets, run from pytest so `just test` (and CI) runs them.

Unit tests (device_runner/tests/unit_tests.cpp) run in the release and the ASan + UBSan build. Each
libFuzzer target (device_runner/fuzz/) replays its seeds (every crash found is added there), then fuzzes
for a few seconds; `just fuzz` runs them for longer.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import runner_support as support

FUZZ_SECONDS = 3
SEEDS = {
    "fuzz_tensor_file": ["tests/data/tensorfile/valid", "tests/data/tensorfile/invalid"],
    "fuzz_cli": ["device_runner/fuzz/corpus/cli"],
}


@pytest.mark.parametrize("build", ["release", "asan"])
def test_cpp_unit_tests_pass(build: str) -> None:
    folder = support.asan_build() if build == "asan" else support.host_runner().parent
    proc = subprocess.run(
        [str(folder / "pocket_unit_tests")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **support.SANITIZER_ENV},
    )
    assert proc.returncode == 0, proc.stderr
    assert "all unit tests passed" in proc.stdout


@pytest.mark.parametrize("target", sorted(SEEDS))
def test_fuzz_target_finds_nothing_in_a_short_run(target: str, tmp_path: Path) -> None:
    binary = support.asan_build() / target
    work = tmp_path / "corpus"  # new findings land here, never in the repo's seeds
    work.mkdir()
    seeds = [str(support.REPO / s) for s in SEEDS[target]]
    # No RSS limit: getrusage's peak RSS, which libFuzzer polls, carries over the forking pytest's
    # own (1.5 GB once torch is loaded). Any single allocation over 128 MB still fails the run: no
    # input of 4 kB may make the readers allocate that much.
    argv = [str(binary), f"-max_total_time={FUZZ_SECONDS}", "-max_len=4096", "-timeout=5"]
    argv += ["-rss_limit_mb=0", "-malloc_limit_mb=128"]
    argv += [f"-artifact_prefix={tmp_path}/", str(work), *seeds]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-", "timeout-", "oom-")))
    assert proc.returncode == 0 and not crashes, f"{target} found {crashes}:\n{proc.stderr[-3000:]}"
    assert "Done" in proc.stderr
