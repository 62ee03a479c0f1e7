"""The linux-aarch64 pocket_runner under qemu-aarch64: same source, real ARM kernels, same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pocketbench.runner import tensorfile

from tests import runner_support as support

pytestmark = pytest.mark.slow  # a cross build (~1 min) and emulated runs; still part of `just test`

EM_AARCH64 = 183


@pytest.fixture(scope="module")
def arm64() -> Path:
    return support.arm64_runner()


@pytest.fixture(scope="module")
def ptes(tmp_path_factory: pytest.TempPathFactory):
    return support.tiny_ptes(tmp_path_factory.getbasetemp() / "runner-ptes")


def test_binary_is_aarch64(arm64: Path) -> None:
    header = arm64.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == EM_AARCH64


@pytest.mark.parametrize("cpu", sorted(support.QEMU_CPUS))
@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_arm64_outputs_match_the_host_runner(arm64: Path, ptes, variant: str, cpu: str, tmp_path: Path) -> None:
    pte = ptes[variant].path
    inputs = support.write_inputs(tmp_path / "in.bin", support.input_sets(3, seed=5))
    common = ("--model", pte, "--inputs", inputs, "--warmup", "1", "--iterations", "2")
    host = support.run_runner(support.host_runner(), *common, "--outputs", tmp_path / "host.bin",
                              json_path=tmp_path / "host.json")  # fmt: skip
    arm = support.run_runner(arm64, *common, "--outputs", tmp_path / "arm.bin", json_path=tmp_path / "arm.json",
                             qemu_cpu=support.QEMU_CPUS[cpu])  # fmt: skip
    assert host.returncode == 0, host.stderr
    assert arm.returncode == 0, arm.stderr
    assert arm.report["runtime"] == host.report["runtime"]
    assert arm.report["planned_buffers_bytes"] == host.report["planned_buffers_bytes"]
    assert len(arm.report["iterations_ns"]) == 2
    got, want = tensorfile.read(tmp_path / "arm.bin"), tensorfile.read(tmp_path / "host.bin")
    assert len(got) == len(want) == 3
    for a, h in zip(got, want, strict=True):
        assert a[0].shape == h[0].shape and a[0].dtype == h[0].dtype
        # fp32: NEON and AVX kernels sum in different orders. int8: allow one requantization
        # step (≈ 1 % of the output range); measured here, the outputs are bit-identical.
        scale = float(np.abs(h[0]).max())
        tolerance = 1e-5 * scale if variant == "fp32" else 0.01 * scale
        np.testing.assert_allclose(a[0], h[0], rtol=0, atol=tolerance)
        assert np.argmax(a[0]) == np.argmax(h[0])


def test_arm64_load_failure_is_clean(arm64: Path, tmp_path: Path) -> None:
    bad = tmp_path / "empty.pte"
    bad.write_bytes(b"")
    run = support.run_runner(arm64, "--model", bad, json_path=tmp_path / "r.json", qemu_cpu="max,sme=off")
    assert run.returncode == 3 and run.report["status"] == "load_failed"
