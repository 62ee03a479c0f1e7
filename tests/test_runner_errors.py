"""Every way pocket_runner can fail ends with its exit code, one line on stderr and the JSON saying why.

Each test runs against the release build and the ASan + UBSan build (`just build-runner-asan`), so
the error paths are also checked for memory errors and undefined behaviour.
"""

from __future__ import annotations

import json
import os
import shlex
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from pocketbench.runner import tensorfile
from pocketbench.runner.native import run_native_runner
from pocketbench.runner.report import BenchJob
from torch import nn

from tests import runner_support as support

EXIT = {"bad_arguments": 2, "load_failed": 3, "execution_failed": 4}


@pytest.fixture(scope="module", params=["release", "asan"])
def runner(request: pytest.FixtureRequest) -> Path:
    if request.param == "asan":
        return support.asan_build() / "pocket_runner"
    return support.host_runner()


@pytest.fixture(scope="module")
def pte(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return support.tiny_ptes(tmp_path_factory.getbasetemp() / "runner-ptes")["fp32"].path


def assert_failed(run: support.Run, status: str, *words: str) -> None:
    """Exit code, exactly one stderr line, and the same message in the JSON."""
    assert run.returncode == EXIT[status], run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pocket_runner: "), run.stderr
    assert run.report is not None and run.report["status"] == status
    assert run.report["error"] == lines[0].removeprefix("pocket_runner: ")
    for word in words:
        assert word in run.report["error"]


def corrupt_files(pte: Path, folder: Path) -> dict[str, Path]:
    blob = pte.read_bytes()
    cases = {
        "empty": b"",
        "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "header-only": blob[:64],
        "truncated-half": blob[: len(blob) // 2],
        "truncated-last-byte": blob[:-1],
    }
    paths = {}
    for name, data in cases.items():
        paths[name] = folder / f"{name}.pte"
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize("case", ["empty", "random", "header-only", "truncated-half", "truncated-last-byte"])
def test_corrupt_pte_fails_to_load_cleanly(runner: Path, pte: Path, tmp_path: Path, case: str) -> None:
    bad = corrupt_files(pte, tmp_path)[case]
    run = support.run_runner(runner, "--model", bad, "--iterations", "1", json_path=tmp_path / "r.json")
    assert_failed(run, "load_failed", str(bad))
    assert run.report["program_load_ms"] is None and run.report["iterations_ns"] == []


def test_missing_pte(runner: Path, tmp_path: Path) -> None:
    run = support.run_runner(runner, "--model", tmp_path / "absent.pte", json_path=tmp_path / "r.json")
    assert_failed(run, "load_failed", "absent.pte", "No such file")


def test_random_pte_error_is_valid_json_even_with_binary_garbage(runner: Path, pte: Path, tmp_path: Path) -> None:
    # The runtime quotes the file's 4 "identifier" bytes; they must not break the JSON or stderr.
    bad = tmp_path / "garbage.pte"
    bad.write_bytes(b"\x00\x01\xff\xfe" * 64 + b"\x80\x81\x82\x83" * 64)
    run = support.run_runner(runner, "--model", bad, json_path=tmp_path / "r.json")
    assert_failed(run, "load_failed", "ET12")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], ["--model is required"]),
        (["--model", "{pte}", "--bogus", "1"], ["unknown option --bogus"]),
        (["--model", "{pte}", "--iterations", "0"], ["--iterations"]),
        (["--model", "{pte}", "--threads", "many"], ["--threads", "many"]),
        (["--model", "{pte}", "--min-seconds", "-1"], ["--min-seconds"]),
        (["--model", "{pte}", "--seed", "1", "--inputs", "x.bin"], ["exclude"]),
        (["--model", "{pte}", "--warmup"], ["--warmup needs a value"]),
        (["--model", "{pte}", "--method", "backward"], ["'backward'", "forward"]),
    ],
)
def test_bad_arguments(runner: Path, pte: Path, tmp_path: Path, args: list[str], words: list[str]) -> None:
    argv = [a.replace("{pte}", str(pte)) for a in args]
    run = support.run_runner(runner, *argv, json_path=tmp_path / "r.json")
    assert_failed(run, "bad_arguments", *words)


def test_help_exits_zero(runner: Path) -> None:
    import subprocess

    proc = subprocess.run([str(runner), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: pocket_runner --model")


def bad_inputs(folder: Path) -> dict[str, Path]:
    good = np.zeros(support.INPUT_SHAPE, dtype=np.float32)
    cases = {
        "wrong-dtype": [[good.astype(np.float64)]],
        "wrong-count": [[good, good]],
        "wrong-shape": [[np.zeros((1, 3, 9, 9), dtype=np.float32)]],
        "no-sets": [],
    }
    paths = {name: folder / f"{name}.bin" for name in [*cases, "garbage", "truncated"]}
    for name, sets in cases.items():
        tensorfile.write(paths[name], sets)
    paths["garbage"].write_bytes(b"not a tensor file at all")
    paths["truncated"].write_bytes(tensorfile.encode([[good]])[:-10])
    return paths


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("wrong-dtype", ["float64", "float32"]),
        ("wrong-count", ["holds 2 tensors", "1 inputs"]),
        ("wrong-shape", ["[1, 3, 9, 9]", "[1, 3, 8, 8]"]),
        ("no-sets", ["no input set"]),
        ("garbage", ["not a valid tensor file", "bad-magic"]),
        ("truncated", ["truncated"]),
    ],
)
def test_bad_inputs_file(runner: Path, pte: Path, tmp_path: Path, case: str, words: list[str]) -> None:
    inputs = bad_inputs(tmp_path)[case]
    run = support.run_runner(runner, "--model", pte, "--inputs", inputs, json_path=tmp_path / "r.json")
    assert_failed(run, "bad_arguments", *words)


def test_issue_15_sixteen_byte_file_fails_fast(runner: Path, pte: Path, tmp_path: Path) -> None:
    """`PBTF`, v1, n_sets = 0xFFFFFFFF, 0 tensors per set, then junk: it used to spin until killed."""
    bad = support.REPO / "tests/data/tensorfile/invalid/zero-count--issue-15-16-bytes.pbtf"
    started = time.monotonic()
    run = support.run_runner(runner, "--model", pte, "--inputs", bad, json_path=tmp_path / "r.json", timeout_s=20)
    assert time.monotonic() - started < 5  # well under 1 s on its own; the margin is for a busy CI
    assert_failed(run, "bad_arguments", "zero-count", str(bad))
    assert run.report["phase"] == "inputs"


def test_tensor_file_too_large_for_memory_is_a_failure_not_ok(runner: Path, pte: Path, tmp_path: Path) -> None:
    """A valid 300 MB input under `ulimit -v 250000` used to exit 0 with "ok" and a bad_alloc."""
    if "asan" in runner.parts:
        pytest.skip("ASan reserves terabytes of shadow memory: it cannot run under ulimit -v")
    big = tmp_path / "big.pbtf"
    head = struct.pack("<4sIII", b"PBTF", 1, 1, 1) + struct.pack("<BBHqQ", 6, 1, 0, 75_000_000, 300_000_000)
    with big.open("wb") as out:  # sparse: 300 MB of zeros that take no disk
        out.write(head)
        out.truncate(len(head) + 300_000_000)
    json_path = tmp_path / "r.json"
    command = f"ulimit -v 250000; exec {shlex.quote(str(runner))} --model {shlex.quote(str(pte))} "
    command += f"--inputs {shlex.quote(str(big))} --json {shlex.quote(str(json_path))}"
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False)
    report = json.loads(json_path.read_text())
    assert proc.returncode == EXIT["bad_arguments"], proc.stderr
    assert report["status"] == "bad_arguments" and report["phase"] == "inputs"
    assert "out-of-memory" in report["error"] and "300000000 bytes" in report["error"]
    assert report["model"] == str(pte) and report["method"] == "forward"


def corrupt_input_dims(pte: Path, folder: Path, dims: list[int]) -> Path:
    """A copy of `pte` whose input tensor's int32 sizes are `dims` (same count): a crafted program."""
    blob = bytearray(pte.read_bytes())
    wanted = struct.pack(f"<I{len(support.INPUT_SHAPE)}i", len(support.INPUT_SHAPE), *support.INPUT_SHAPE)
    at = blob.find(wanted)
    assert at > 0, "the input's sizes vector is not in the program"
    blob[at : at + len(wanted)] = struct.pack(f"<I{len(dims)}i", len(dims), *dims)
    path = folder / "crafted.pte"
    path.write_bytes(bytes(blob))
    return path


@pytest.mark.parametrize(
    ("dims", "words"),
    [([1, -3, 8, 8], ["-3"]), ([65536, 65536, 65536, 65536], ["not a loadable .pte"])],
)
def test_seeded_inputs_from_crafted_dims_fail_cleanly(
    runner: Path, pte: Path, tmp_path: Path, dims: list[int], words: list[str]
) -> None:
    """--seed builds inputs from the program's dims: negative or huge ones must not wrap around.

    ExecuTorch 1.5.1 already refuses both at program load; the runner's own checked arithmetic
    (inputs.cpp) stands behind it for runtimes that do not."""
    crafted = corrupt_input_dims(pte, tmp_path, dims)
    args = ("--model", crafted, "--seed", "1", "--iterations", "1")
    run = support.run_runner(runner, *args, json_path=tmp_path / "r.json")
    assert run.returncode in (EXIT["bad_arguments"], EXIT["load_failed"]), run.stderr
    assert run.report is not None and run.report["status"] != "ok" and run.report["phase"] != "done"
    for word in words:
        assert word in run.report["error"]


class Lookup(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(10, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids)


def test_kernel_error_is_an_execution_failure(runner: Path, tmp_path: Path) -> None:
    """An index past the embedding table makes the kernel refuse: exit 4 with the runtime's reason."""
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(Lookup().eval(), (torch.zeros(1, 3, dtype=torch.long),))
    pte = tmp_path / "lookup.pte"
    pte.write_bytes(to_edge_transform_and_lower(exported).to_executorch().buffer)
    tensorfile.write(tmp_path / "ok.bin", [[np.array([[1, 2, 3]], dtype=np.int64)]])
    good = support.run_runner(runner, "--model", pte, "--inputs", tmp_path / "ok.bin", json_path=tmp_path / "a.json")
    assert good.returncode == 0, good.stderr
    tensorfile.write(tmp_path / "bad.bin", [[np.array([[1, 50, 2]], dtype=np.int64)]])
    run = support.run_runner(runner, "--model", pte, "--inputs", tmp_path / "bad.bin", json_path=tmp_path / "r.json")
    assert_failed(run, "execution_failed", "first inference failed", "50")
    assert run.report["method_load_ms"] is not None  # it got as far as loading


def test_failed_run_becomes_a_failed_report(runner: Path, tmp_path: Path) -> None:
    bad = tmp_path / "empty.pte"
    bad.write_bytes(b"")
    inputs = support.write_inputs(tmp_path / "in.bin", support.input_sets(1, seed=0))
    report = run_native_runner(runner, BenchJob(pte=bad, inputs=inputs), timeout_s=60)
    assert report.status == "load_failed" and not report.ok
    assert report.backend == "native-runner" and "empty.pte" in (report.error or "")


def test_unwritable_json_path_still_fails_cleanly(runner: Path, pte: Path, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "r.json"
    run = support.run_runner(runner, "--model", pte, "--iterations", "1", json_path=target)
    assert run.returncode == EXIT["bad_arguments"] and "cannot write the JSON result" in run.stderr
    assert not os.path.exists(target)


def test_a_signal_from_outside_is_not_reported_as_a_corrupt_model(runner: Path, pte: Path, tmp_path: Path) -> None:
    """The fault handler (sigaction, SA_SIGINFO) writes the "crashed the runtime" JSON only for
    faults the program raised; a SIGSEGV another process sends kills the runner as unhandled."""
    import signal

    json_path = tmp_path / "r.json"
    argv = [str(runner), "--model", str(pte), "--min-seconds", "30", "--json", str(json_path)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **support.SANITIZER_ENV}
    )
    try:
        time.sleep(1.0)  # into the timed loop
        proc.send_signal(signal.SIGSEGV)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGSEGV
    assert not json_path.exists()


def test_a_death_by_signal_names_the_signal_and_does_not_blame_the_model():
    from pocketbench.runner.process import killed_by, report_from_exit

    assert killed_by(0) is None and killed_by(3) is None and killed_by(1) is None
    shell = report_from_exit(None, 128 + 11, "", "native-runner")
    assert shell.status == "crashed" and "killed by signal SIGSEGV (11, exit status 139) from outside" in shell.error
    local = report_from_exit(None, -9, "", "native-runner")
    assert "killed by signal SIGKILL (9, exit status -9)" in local.error and "model" in local.error
