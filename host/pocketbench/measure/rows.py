"""The rows of a cell: identity, artifact and compression columns, and every measured column
folded from its repetitions (latency with its CI, memory, temperatures, energy, runner facts)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pocketbench import stats
from pocketbench.devices.base import DeviceInfo
from pocketbench.measure import generation
from pocketbench.measure.adaptive import TARGET
from pocketbench.measure.protocol import Repetition
from pocketbench.models.registry import GenerativeBundle
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.store import SCHEMA_VERSION
from pocketbench.runner.report import RunnerReport
from pocketbench.telemetry.energy import EnergyPlan, combine


def base_row(run_id: str, model: str, variant: str, device: str, info: DeviceInfo | None) -> dict[str, Any]:
    """A cell's identity and its device's description: what every row has, measured or not."""
    row: dict[str, Any] = {
        "run_id": run_id,
        "model": model,
        "variant": variant,
        "device": device,
        "status": CellStatus.OK,
        "error": None,
        "started_at": datetime.now(UTC).isoformat(),
        "schema_version": SCHEMA_VERSION,
    }
    if info is not None:
        row.update(
            device_kind=info.kind,
            device_model=info.model,
            device_abi=info.abi,
            device_os=info.os,
            device_cpu=info.cpu,
            device_cpu_features=info.extra.get("cpu_features"),
            device_emulated=info.emulated,
            device_emulation=info.emulation or None,
        )
        # Whatever else the device says about itself (a phone's serial, SoC, clusters, battery).
        for key, value in info.extra.items():
            row.setdefault(f"device_{key}", value)
    return row


def failed_row(row: dict[str, Any], status: str, error: str) -> dict[str, Any]:
    """`row` as a failure: its status and the first line of the error (rows are one line each)."""
    return {**row, "status": status, "error": error.splitlines()[0] if error else status}


def artifact_columns(manifest: dict[str, Any], reused: bool) -> dict[str, Any]:
    """What the `.pte`'s manifest says: size, planned memory, delegation, build times, compression."""
    delegation = manifest["delegation"]
    return {
        "size_bytes": manifest["size_bytes"],
        "planned_memory_bytes": sum(manifest["planned_buffers_bytes"]),
        "kv_cache_bytes": manifest.get("mutable_buffers_bytes") or None,  # a decoder's cache, within planned
        "delegated_fraction": delegation["delegated_fraction"],
        "ops_outside_delegate": ", ".join(f"{op}×{n}" for op, n in delegation["ops_outside"].items()) or None,
        "delegation_note": delegation.get("outside_explained"),
        "artifact_sha256": manifest["sha256"],
        "artifact_reused": reused,
        "compress_seconds": manifest["compress_seconds"],
        "export_seconds": manifest["export_seconds"],
        "size_zipped_bytes": manifest.get("size_zipped_bytes"),
        **_compression_columns(manifest.get("compression", {})),
    }


def _compression_columns(stats: dict[str, Any]) -> dict[str, Any]:
    """Params, MACs, sparsity and per-layer int8 error the compression steps measured."""
    layer_sqnr = stats.get("layer_sqnr_db") or {}
    notes = []
    if stats.get("fp32_layers"):
        notes.append("fp32 layers: " + ", ".join(stats["fp32_layers"]))
    if stats.get("unquantized_layers"):
        notes.append(
            "left in fp32 (the XNNPACK int8 quantizer takes conv and linear layers only): "
            + ", ".join(stats["unquantized_layers"])
        )
    if stats.get("recovery_note"):
        notes.append(stats["recovery_note"])
    if stats.get("module_steps_reused"):
        notes.append(
            f"its first {stats['module_steps_reused']} pruning/training steps were reused from an earlier "
            f"variant; all its pruning/training steps took {stats.get('module_steps_seconds', '?')} s "
            "(the compress time counts only the steps run for this row)"
        )
    if stats.get("channel_pruned_layers"):
        notes.append("channel-pruned only: " + ", ".join(stats["channel_pruned_layers"]))
    return {
        "params": stats.get("params"),
        "macs": stats.get("macs"),
        "sparsity": stats.get("sparsity"),
        "layer_sqnr_min_db": min(layer_sqnr.values()) if layer_sqnr else float("nan"),
        "layer_sqnr_db": json.dumps(layer_sqnr),  # "{}" without a Quantize step: one dtype per column
        "compression_note": "; ".join(notes),
    }


# The pooled figures every latency row carries, all from stats.summarize (the one summary).
LATENCY_FIGURES = tuple(f"latency_{k}_ms" for k in ("p50", "p90", "p99", "mean", "std", "min", "max"))


def latency_columns(reports: Sequence[RunnerReport]) -> dict[str, Any]:
    """Pooled latency figures plus the repetition-aware median CI, CV, speed modes and unstable
    flag. With calibrated samples each figure is per call (a batch's time / its calls), so the
    p90/p99 are those of batches, and the raw batch times are kept beside them."""
    timed = [r for r in reports if r.iterations_ns]
    groups = [[ns / 1e6 for ns in r.iterations_ns] for r in timed]
    pooled_ns = [ns for r in timed for ns in r.iterations_ns]
    batched = any(r.batch_calls > 1 for r in timed)
    columns: dict[str, Any] = dict.fromkeys(LATENCY_FIGURES, None)  # empty, never zero, with no samples
    columns.update(
        latency_samples_ms=[v for g in groups for v in g],
        samples_repetition=[i for i, g in enumerate(groups) for _ in g],
        iterations=len(pooled_ns),
        repetitions=len(groups),
        batch_calls=max((r.batch_calls for r in timed), default=None),
        samples_batch_calls=[r.batch_calls for r in timed],
        latency_batches_ms=[ns / 1e6 for r in timed for ns in (r.batches_ns or r.iterations_ns)],
        latency_tails_from_batches=batched,
    )
    if groups:
        summary = stats.summarize(groups, batched=batched)
        columns.update(
            latency_p50_ms=summary.median,
            latency_p90_ms=summary.p90,
            latency_p99_ms=summary.p99,
            latency_mean_ms=summary.mean,
            latency_std_ms=summary.std,
            latency_min_ms=summary.minimum,
            latency_max_ms=summary.maximum,
            latency_p50_ci_low_ms=summary.ci_low,
            latency_p50_ci_high_ms=summary.ci_high,
            latency_p50_ci_halfwidth=(summary.ci_high - summary.ci_low) / 2 / summary.median
            if summary.median > 0 and not math.isnan(summary.ci_low)
            else None,
            latency_cv=summary.cv,
            latency_robust_cv=summary.robust_cv,
            latency_tail_note=summary.tail_note,
            latency_repetition_cv=summary.repetition_cv,
            latency_modes=stats.describe_modes(summary.modes) if summary.modes else None,
            unstable=summary.unstable,
            unstable_reason="; ".join(summary.unstable_reasons) or None,
        )
    return columns


def memory_columns(reports: Sequence[RunnerReport]) -> dict[str, Any]:
    """Peak RSS, peak RSS + swap over the samples, and the growth over the process baseline."""
    peaks = [r.peak_rss_kb for r in reports if r.peak_rss_kb is not None]
    with_swap = []
    for r in reports:
        s = r.samples
        if s is None:
            continue
        totals = [rss + (swap or 0) for rss, swap in zip(s.rss_kb, s.swap_kb, strict=True) if rss is not None]
        with_swap.append(max([*totals, r.peak_rss_kb or 0]))
    deltas = [
        r.peak_rss_kb - r.rss_kb_before_load
        for r in reports
        if r.peak_rss_kb is not None and r.rss_kb_before_load is not None
    ]
    return {
        "peak_rss_kb": max(peaks) if peaks else None,
        "peak_rss_swap_kb": max(with_swap) if with_swap else None,
        "rss_delta_kb": int(np.median(deltas)) if deltas else None,
    }


def thermal_columns(reps: Sequence[Repetition]) -> dict[str, Any]:
    """Temperatures and caps at the start of the first and end of the last repetition, waits, throttling."""
    starts = [r.start for r in reps if r.start is not None]
    ends = [r.end for r in reps if r.end is not None]
    reasons = list(dict.fromkeys(reason for r in reps for reason in r.throttle))
    waited = [r.cooldown.waited_s for r in reps if r.cooldown is not None]
    not_cool = [r.cooldown.still_hot for r in reps if r.cooldown is not None and not r.cooldown.reached]
    if not starts:
        return {"throttled": None}
    hottest = lambda s: max(s.zones.values()) if s.zones else None  # noqa: E731
    detail = {
        "repetitions": [
            {"start": r.start.summary(), "end": r.end.summary(), "cooldown_s": r.cooldown.waited_s}
            for r in reps
            if r.start is not None and r.end is not None and r.cooldown is not None
        ]
    }
    return {
        "temp_start_c": hottest(starts[0]),
        "temp_end_c": hottest(ends[-1]) if ends else None,
        "thermal_status_end": ends[-1].status if ends else None,
        "cooldown_s": float(sum(waited)),
        "cooldown_note": f"not cool after the timeout: {not_cool[0]}" if not_cool else None,
        "throttled": bool(reasons),
        "throttle_reason": "; ".join(reasons) or None,
        "thermal_json": json.dumps(detail, sort_keys=True),
    }


def cell_row(
    row: dict[str, Any],
    repetitions: Sequence[Repetition],
    energy_plan: EnergyPlan,
    quality: dict[str, Any],
    stopped: str | None = None,
    ci_target: float | None = None,
) -> dict[str, Any]:
    """The one builder of a measured cell's row, for the sweep and the farm alike:
    the identity and artifact columns in `row`, every column folded from the repetitions (the p50's
    CI and the stability flags included), why the cell stopped adding processes, and the accuracy
    and fidelity of the outputs the device computed (`quality`)."""
    row = {**row, **cell_columns(repetitions, energy_plan)}
    if stopped is not None:
        half = row.get("latency_p50_ci_halfwidth")
        row.update(
            repetitions_stop=stopped,
            repetitions_target_met=stopped == TARGET
            or (ci_target is not None and half is not None and half <= ci_target),
        )
    row.update(quality)
    return row


def generative_columns(
    reference: generation.GenerationReference,
    bundle: GenerativeBundle,
    row: dict[str, Any],
    reports: Sequence[RunnerReport],
    pte: Path,
) -> dict[str, Any]:
    """Timing and quality of a generative cell (measure/generation.py) from its row's latency
    columns; the quality needs the `.pte` (perplexity on this host's runtime): a `.pte` no longer
    on disk leaves the row its timings."""
    columns = generation.timing_columns(reports, row)
    columns["speed_only"] = generation.speed_only(bundle)
    # The fp32 model's parameters (llama-bench's `params`), whatever a variant did to its weights.
    columns["model_params"] = int(bundle.extra.get("params") or sum(p.numel() for p in bundle.module.parameters()))
    if pte.is_file():
        columns.update(generation.quality_columns(reference, bundle, pte, reports))
    return columns


def cut_short(done: int, total: int | None, status: str, error: str) -> str:
    """Why a cell is `partial`: how many repetitions it kept, and what ended it."""
    kept = f"{done} of {total}" if total else f"{done}"
    return f"{kept} repetitions, then {status}: {error}"


def cell_columns(reps: Sequence[Repetition], energy_plan: EnergyPlan) -> dict[str, Any]:
    """Every measured column of a cell from its repetitions."""
    reports = [r.report for r in reps]
    columns = latency_columns(reports)
    columns.update(memory_columns(reports))
    columns.update(thermal_columns(reps))
    columns.update(combine([r.energy for r in reps]))
    columns["energy_sources"] = energy_plan.describe()
    columns.update(runner_columns(reports))
    return columns


def runner_columns(reports: Sequence[RunnerReport]) -> dict[str, Any]:
    """What runner processes report besides latency (load and first inference as medians over the
    processes; memory, backend and placement from the first) — for the bench and farm paths alike."""
    first = reports[0]
    loads = [r.load_ms for r in reports if r.load_ms is not None]
    firsts = [r.first_inference_ms for r in reports if r.first_inference_ms is not None]
    columns: dict[str, Any] = {
        "load_ms": float(np.median(loads)) if loads else None,
        "first_inference_ms": float(np.median(firsts)) if firsts else None,
        "rss_kb_before_load": first.rss_kb_before_load,
        "rss_kb_after_loop": first.rss_kb_after_loop,
        "backend": first.backend,
        "runtime_version": first.runtime_version,
        "threads": first.threads,
    }
    # Placement and retries the device reports (an adb phone: cpu_mask, interruptions).
    columns.update(first.raw.get("device_columns") or {})
    if first.planned_buffers_bytes:
        columns["planned_memory_bytes"] = sum(first.planned_buffers_bytes)
    return columns
