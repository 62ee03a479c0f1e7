"""The host pocket_runner on real .pte files: same outputs as ExecuTorch's Python runtime, honest JSON."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from pocketbench.devices.local import LocalDevice
from pocketbench.runner import tensorfile
from pocketbench.runner.native import find_runner, run_native_runner
from pocketbench.runner.report import BenchJob, parse_runner_report

from tests import runner_support as support

# fp32 runs the same XNNPACK kernels in both processes; int8 too, but allow one rounding step.
TOLERANCE = {"fp32": 1e-5, "int8": 1e-3}


@pytest.fixture(scope="module")
def runner() -> Path:
    return support.host_runner()


@pytest.fixture(scope="module")
def ptes(tmp_path_factory: pytest.TempPathFactory):
    return support.tiny_ptes(tmp_path_factory.getbasetemp() / "runner-ptes")


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_outputs_equal_the_python_runtime(runner: Path, ptes, variant: str, tmp_path: Path) -> None:
    pte = ptes[variant].path
    sets = support.input_sets(3, seed=11)
    job = BenchJob(
        pte=pte,
        inputs=support.write_inputs(tmp_path / "in.bin", sets),
        warmup=2,
        iterations=5,
        outputs=tmp_path / "out.bin",
    )
    report = run_native_runner(runner, job, timeout_s=120)
    assert report.ok, report.error
    assert report.backend == "native-runner"
    native = tensorfile.read(tmp_path / "out.bin")
    python = support.python_runtime_outputs(pte, sets)
    assert len(native) == 3 and all(len(s) == 1 for s in native)
    for got, want in zip(native, python, strict=True):
        assert got[0].shape == want[0].shape == (1, 10) and got[0].dtype == np.float32
        np.testing.assert_allclose(got[0], want[0], rtol=0, atol=TOLERANCE[variant])
    # The digest in the JSON is of set 0's output bytes, as written to the outputs file.
    assert report.output_digests == [hashlib.sha256(native[0][0].tobytes()).hexdigest()]


def test_seeded_inputs_follow_the_documented_generator(runner: Path, ptes, tmp_path: Path) -> None:
    pte = ptes["fp32"].path
    run = support.run_runner(runner, "--model", pte, "--seed", "7", "--iterations", "1", "--outputs",
                             tmp_path / "out.bin", json_path=tmp_path / "r.json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.report["inputs"] == {"source": "seed:7", "sets": 1}
    expected = support.python_runtime_outputs(pte, [[splitmix_floats(7, support.INPUT_SHAPE)]])
    np.testing.assert_allclose(tensorfile.read(tmp_path / "out.bin")[0][0], expected[0][0], atol=1e-5)


def splitmix_floats(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """device_runner/README.md's random-input generator for float32: splitmix64, top 24 bits → [-1, 1)."""
    mask, state, values = (1 << 64) - 1, seed, []
    for _ in range(int(np.prod(shape))):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        values.append((z >> 40) / 16777216.0 * 2.0 - 1.0)
    return np.array(values, dtype=np.float32).reshape(shape)


def test_report_carries_every_reading(runner: Path, ptes, tmp_path: Path) -> None:
    artifact = ptes["int8"]
    run = support.run_runner(runner, "--model", artifact.path, "--warmup", "3", "--iterations", "7",
                             "--threads", "1", json_path=tmp_path / "r.json")  # fmt: skip
    assert run.returncode == 0 and run.stderr == ""
    data = run.report
    assert data["status"] == "ok" and data["error"] is None
    assert data["runtime"].startswith("executorch 1.5.1")
    assert data["threads"] == 1 and data["warmup_iterations"] == 3
    assert len(data["iterations_ns"]) == 7 and min(data["iterations_ns"]) > 0
    assert data["program_load_ms"] > 0 and data["method_load_ms"] > 0 and data["first_inference_ms"] > 0
    rss = data["rss_kb"]
    assert 0 < rss["before_load"] <= data["peak_rss_kb"] and rss["after_loop"] <= data["peak_rss_kb"]
    # The runtime's memory plan is what the exporter recorded in the artifact's manifest.
    assert data["planned_buffers_bytes"] == artifact.manifest["planned_buffers_bytes"]
    assert data["backends"] == ["XnnpackBackend"]
    assert data["outputs"][0]["shape"] == [1, 10] and data["outputs"][0]["dtype"] == "float32"
    report = parse_runner_report((tmp_path / "r.json").read_text())
    assert report.iterations_ns == data["iterations_ns"] and report.threads == 1


def test_min_seconds_keeps_the_loop_going(runner: Path, ptes, tmp_path: Path) -> None:
    run = support.run_runner(runner, "--model", ptes["fp32"].path, "--warmup", "0", "--min-seconds", "0.05",
                             json_path=tmp_path / "r.json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    samples = run.report["iterations_ns"]
    assert len(samples) >= 1 and sum(samples) >= 0.05e9


def test_json_goes_to_stdout_without_json_flag(runner: Path, ptes) -> None:
    import subprocess

    proc = subprocess.run([str(runner), "--model", str(ptes["fp32"].path), "--iterations", "2"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert parse_runner_report(proc.stdout).ok


def test_etdump_records_every_execution(runner: Path, ptes, tmp_path: Path) -> None:
    from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

    trace = tmp_path / "trace.etdp"
    run = support.run_runner(runner, "--model", ptes["int8"].path, "--warmup", "2", "--iterations", "3",
                             "--etdump", trace, json_path=tmp_path / "r.json")  # fmt: skip
    assert run.returncode == 0 and run.report["etdump"] == str(trace)
    blocks = deserialize_from_etdump_flatcc(trace.read_bytes()).run_data
    assert [b.name for b in blocks].count("Execute") == 1 + 2 + 3  # first, warm-up, timed


def test_local_device_uses_the_native_runner_when_built(runner: Path, ptes, tmp_path: Path) -> None:
    assert find_runner() == runner
    sets = support.input_sets(2, seed=3)
    job = BenchJob(pte=ptes["fp32"].path, inputs=support.write_inputs(tmp_path / "in.bin", sets), iterations=3)
    native = LocalDevice().benchmark(job)
    python = LocalDevice(backend="python-runtime").benchmark(job)
    assert (native.backend, python.backend) == ("native-runner", "python-runtime")
    assert native.ok and python.ok
    assert native.output_digests == python.output_digests  # same bytes from both runtimes


def test_runner_env_override_must_be_executable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pocketbench.errors import PocketbenchError

    monkeypatch.setenv("POCKETBENCH_RUNNER", str(tmp_path / "nope"))
    with pytest.raises(PocketbenchError, match="POCKETBENCH_RUNNER"):
        find_runner()


class TokenEmbedding(torch.nn.Module):
    """int64 token ids into an embedding: the memory plan gives the ids' bytes to the result."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.position = torch.nn.Parameter(torch.randn(1, 3, 4))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens) + self.position


def test_int64_embedding_inputs_survive_repeated_executes(runner: Path, tmp_path: Path) -> None:
    """Regression: the runner bound inputs once, so from the second execute on the embedding read
    its own float output as int64 indices (memory planning reuses a dead input's bytes)."""
    from executorch.exir import to_edge_transform_and_lower

    torch.manual_seed(0)
    tokens = torch.tensor([[1, 2, 3]])
    program = to_edge_transform_and_lower(torch.export.export(TokenEmbedding().eval(), (tokens,))).to_executorch()
    pte = tmp_path / "embedding.pte"
    pte.write_bytes(program.buffer)
    sets = [[np.array([[1, 2, 3]], dtype=np.int64)], [np.array([[9, 0, 4]], dtype=np.int64)]]
    run = support.run_runner(runner, "--model", pte, "--inputs", support.write_inputs(tmp_path / "in.bin", sets),
                             "--warmup", "2", "--iterations", "3", "--outputs", tmp_path / "out.bin",
                             json_path=tmp_path / "r.json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    python = support.python_runtime_outputs(pte, sets)
    native = tensorfile.read(tmp_path / "out.bin")
    for got, want in zip(native, python, strict=True):
        np.testing.assert_array_equal(got[0], want[0])
    # The JSON digest is of set 0's output after 1 + 2 + 3 executes on the same binding.
    assert run.report["outputs"][0]["sha256"] == hashlib.sha256(python[0][0].tobytes()).hexdigest()
