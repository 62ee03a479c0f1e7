"""`pocketbench devices --check`: does the runner work on this phone? PASS, or FAIL with the fix.

Pushes the phone's runner (as a bench would), runs a tiny built-in model (conv + linear, fp32 and
int8) on it, and compares its outputs with this computer's on the same inputs. The model is
lowered through pocketbench's own export path once and kept in the artifact cache.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pocketbench.errors import PocketbenchError
from pocketbench.runner.report import BenchJob, RunnerReport

INPUT_SHAPE = (1, 3, 8, 8)
VARIANTS = ("fp32", "int8")
# fp32: ARM and x86 kernels add in different orders; int8: allow one requantization step.
TOLERANCE = {"fp32": 1e-5, "int8": 0.01}  # × the largest |output| of this computer's run


@dataclass(frozen=True)
class CheckResult:
    spec: str
    passed: bool
    detail: str  # PASS: what ran; FAIL: the reason and the fix
    seconds: float

    def line(self) -> str:
        if self.passed:
            return f"{self.spec}: PASS ({self.detail}; {self.seconds:.1f} s)"
        return f"{self.spec}: FAIL: {self.detail} ({self.seconds:.1f} s)"


def selfcheck_spec():  # type: ignore[no-untyped-def]
    """The check model (also the runner tests' tiny model): torch is imported only when asked."""
    import torch
    from torch import nn

    from pocketbench.models.registry import ModelBundle, ModelSpec

    class SelfCheckNet(nn.Module):
        """Conv + ReLU + Linear: the two op families (conv, gemm) every vision model leans on."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.fc = nn.Linear(8 * 8 * 8, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.conv(x)).flatten(1))

    def factory() -> ModelBundle:
        torch.manual_seed(0)
        module = SelfCheckNet().eval()

        def calibration() -> Iterator[tuple[torch.Tensor]]:
            generator = torch.Generator().manual_seed(1)
            for _ in range(8):
                yield (torch.randn(INPUT_SHAPE, generator=generator),)

        return ModelBundle(
            module=module,
            example_inputs=(torch.randn(INPUT_SHAPE),),
            calibration=calibration,
            eval_inputs=[],
            description="pocketbench self-check",
        )

    return ModelSpec(name="selfcheck", factory=factory, source_file=Path(__file__))


def selfcheck_ptes() -> dict[str, Path]:
    """The built-in check model as fp32 and int8 .pte files (lowered once, then from the cache)."""
    from pocketbench.compress.recipe import parse_variant
    from pocketbench.lower.export import build_artifact

    spec = selfcheck_spec()
    bundle = spec.load()
    return {v: build_artifact(spec, bundle, parse_variant(v)).path for v in VARIANTS}


def write_selfcheck_inputs(path: Path) -> Path:
    from pocketbench.runner import tensorfile

    rng = np.random.default_rng(13)
    tensorfile.write(path, [[rng.standard_normal(INPUT_SHAPE).astype(np.float32)] for _ in range(3)])
    return path


def compare_outputs(variant: str, phone: list[list[np.ndarray]], here: list[list[np.ndarray]]) -> str | None:
    """None when the phone's outputs match this computer's within the variant's tolerance, else why."""
    if len(phone) != len(here) or any(len(a) != len(b) for a, b in zip(phone, here, strict=False)):
        return f"{variant}: the phone returned {len(phone)} output sets, this computer {len(here)}"
    worst = 0.0
    for got_set, want_set in zip(phone, here, strict=True):
        for got, want in zip(got_set, want_set, strict=True):
            if got.shape != want.shape or got.dtype != want.dtype:
                phone_kind, here_kind = f"{got.dtype}{list(got.shape)}", f"{want.dtype}{list(want.shape)}"
                return f"{variant}: output {phone_kind} on the phone, {here_kind} on this computer"
            scale = float(np.abs(want).max()) or 1.0
            worst = max(worst, float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) / scale)
    if worst > TOLERANCE[variant]:
        return (
            f"{variant}: outputs differ from this computer's by {worst:.2g} of their range (allowed"
            f" {TOLERANCE[variant]:g}): the phone computes differently; do not trust its fidelity column and"
            " report the phone's model and `adb shell cat /proc/cpuinfo`"
        )
    return None


def check_phone(
    spec: str, ptes: dict[str, Path], local_outputs: dict[str, list[list[np.ndarray]]], inputs: Path, scratch: Path
) -> CheckResult:
    """Push the runner to the phone `spec`, run every check model there, compare with this computer."""
    from pocketbench.devices.adb.device import AdbDevice
    from pocketbench.runner import tensorfile

    started = time.monotonic()
    device = AdbDevice(spec, reconnect_wait_s=10, timeout_floor_s=60)

    def result(passed: bool, detail: str) -> CheckResult:
        return CheckResult(spec, passed, detail, time.monotonic() - started)

    try:
        abi = device.identity().abi
        placed = ""
        for variant, pte in ptes.items():
            outputs = scratch / f"{spec.replace('/', '_')}-{variant}.pbtf"
            report = device.benchmark(BenchJob(pte=pte, inputs=inputs, warmup=0, iterations=1, outputs=outputs))
            if not report.ok:
                return result(False, f"{variant} run failed: {report.error}")
            problem = compare_outputs(variant, tensorfile.read(outputs), local_outputs[variant])
            if problem:
                return result(False, problem)
            placed = placed or _placement(report)
        return result(True, f"{abi}, {placed}; {' and '.join(ptes)} outputs match this computer's")
    except PocketbenchError as exc:
        return result(False, str(exc))
    finally:
        device.close()


def _placement(report: RunnerReport) -> str:
    columns = report.raw.get("device_columns") or {}
    pushed = int(columns.get("device_runner_pushed_bytes") or 0)
    seconds = float(columns.get("device_runner_deploy_s") or 0.0)
    cost = f"pushed {pushed / 1e6:.1f} MB in {seconds:.1f} s" if pushed else "already on the phone"
    return f"runner {columns.get('device_runner', '?')} ({cost})"


def run_checks(specs: list[str]) -> list[CheckResult]:
    """Check every phone in `specs` against this computer's run of the same models and inputs."""
    from pocketbench.devices.local import LocalDevice
    from pocketbench.runner import tensorfile

    ptes = selfcheck_ptes()
    results = []
    with tempfile.TemporaryDirectory(prefix="pocketbench-check-") as folder:
        scratch = Path(folder)
        inputs = write_selfcheck_inputs(scratch / "inputs.pbtf")
        local: dict[str, list[list[np.ndarray]]] = {}
        for variant, pte in ptes.items():
            outputs = scratch / f"local-{variant}.pbtf"
            job = BenchJob(pte=pte, inputs=inputs, warmup=0, iterations=1, outputs=outputs)
            report = LocalDevice().benchmark(job)
            if not report.ok:
                raise PocketbenchError(f"the self-check model does not run on this computer: {report.error}")
            local[variant] = tensorfile.read(outputs)
        for spec in specs:
            results.append(check_phone(spec, ptes, local, inputs, scratch))
    return results
