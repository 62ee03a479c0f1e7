"""How a measurement protocol measures each cell: one settings type for bench and farm."""

from __future__ import annotations

from dataclasses import dataclass

from pocketbench.errors import PocketbenchError
from pocketbench.measure.adaptive import RepetitionPolicy
from pocketbench.measure.protocol import ProtocolSettings


@dataclass(frozen=True)
class BenchSettings:
    """How each cell is measured (stored in the run manifest)."""

    warmup: int = 5
    iterations: int = 50
    min_seconds: float = 0.0
    threads: int = 0
    # Fresh runner processes per cell; None: adaptive (adaptive.py) — at least 3, more until the
    # p50's 95 % CI half-width is within `ci_target` or the cell has spent `cell_budget_s`.
    repetitions: int | None = None
    ci_target: float = 0.02
    cell_budget_s: float = 15.0
    # Calibrated samples: each timed sample is a batch of calls lasting ≥ this (0: single calls).
    batch_min_ms: float = 1.0
    energy_window_s: float = 2.0
    allow_charging: bool = False
    cooldown_timeout_s: float = 120.0
    profile: bool = False  # one more runner process per cell with ETDump on (profile.py)
    profile_iterations: int = 20

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise PocketbenchError("--iterations must be at least 1")
        if self.profile_iterations < 1:
            raise PocketbenchError("--profile-iterations must be at least 1")
        if not 0 <= self.batch_min_ms <= 10_000:
            raise PocketbenchError("--batch-min-ms must be in [0, 10000] ms (0: time single calls)")
        self.policy  # noqa: B018 (validates the repetition settings)
        if self.warmup < 0:
            raise PocketbenchError("--warmup cannot be negative")
        self.protocol  # noqa: B018 (validates the protocol settings)

    @property
    def policy(self) -> RepetitionPolicy:
        return RepetitionPolicy(self.repetitions, ci_target=self.ci_target, budget_s=self.cell_budget_s)

    @property
    def protocol(self) -> ProtocolSettings:
        return ProtocolSettings(
            self.repetitions or 1, self.energy_window_s, self.allow_charging, self.cooldown_timeout_s
        )
