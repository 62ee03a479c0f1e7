"""What a reader must know before trusting a report's numbers: failed, retried and partial cells,
unstable or throttled measurements, energy not measured, partial delegation, emulated devices,
cells without a baseline, int8 slower than fp32. One line each, under every renderer's tables.

Each warning is decided by typed columns (flags, numbers, null or not); text columns are only
quoted, never searched, so rewording a message cannot change which warnings a run gets.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pocketbench import stats
from pocketbench.report.column_formats import BATCHED, as_text, field, fmt_bytes, missing, row_dicts, truthy
from pocketbench.results.cell_status import MEASURED, CellStatus
from pocketbench.results.compare import latest_attempts, unstable_reason
from pocketbench.results.store import list_value


def _cell_name(row: pd.Series) -> str:
    return f"{row['model']} {row['variant']} on {row['device']}"


def measured(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose numbers are shown and judged: ok cells and partial ones (a cell cut short that
    kept its finished repetitions)."""
    return frame[frame["status"].isin(MEASURED)]


def warnings(frame: pd.DataFrame) -> list[str]:
    """What a reader must know before trusting the table (absent columns simply warn of nothing).

    Row by row rather than by boolean masks: a run whose cells all failed has empty columns of
    any dtype (parquet gives strings), and `&` between those raises."""
    notes = []
    current = latest_attempts(frame)
    failed = current[~current["status"].isin(MEASURED)]
    for (model, device, error), group in failed.groupby(["model", "device", "error"], sort=False, dropna=False):
        notes.append(f"failed: {model} {', '.join(map(str, group['variant']))} on {device}: {as_text(error)}")
    retried = frame.drop(index=current.index)
    for row in row_dicts(retried):
        attempt = as_text(row["attempt"])
        notes.append(f"retried: {_cell_name(row)}, attempt {attempt} ended {row['status']}: {as_text(row['error'])}")
    ok = measured(current)
    rows = row_dicts(ok)  # dicts, once: a Series' lookup per cell is slow
    no_energy: dict[tuple[str, str], int] = {}
    for row in rows:
        if row["status"] == CellStatus.PARTIAL:
            kept = as_text(field(row, "repetitions"))
            notes.append(f"partial: {_cell_name(row)}: only {kept} repetition(s) finished: {as_text(row['error'])}")
        if isinstance(row["ops_outside_delegate"], str) and row["ops_outside_delegate"]:
            explained = field(row, "delegation_note")
            ops = explained if isinstance(explained, str) and explained else row["ops_outside_delegate"]
            notes.append(f"partial delegation: {row['model']} {row['variant']} runs outside XNNPACK: {ops}")
        notes.extend(_measurement_warnings(row))
        status = field(row, "energy_status")
        if isinstance(status, str) and missing(field(row, "energy_mj_per_inference")) and not _charging(row):
            key = (str(row["device"]), status)
            no_energy[key] = no_energy.get(key, 0) + 1
    notes.extend(_protocol_notes(ok, rows))
    for (device, status), count in no_energy.items():
        notes.append(f"energy not measured on {device} ({count} cell(s)): {status}")
    notes.extend(_compression_warnings(rows))
    if "device_emulated" in ok:
        for device, group in ok[ok["device_emulated"].map(truthy)].groupby("device", sort=False):
            how = group["device_emulation"].dropna() if "device_emulation" in group else pd.Series(dtype=object)
            notes.append(
                f"emulated: {device} is an emulator ({how.iloc[0] if len(how) else 'Android emulator'}):"
                " its timings are not a phone's"
            )
    if "fidelity_note" in ok:  # once per model: its fidelity figures describe an untrained network
        labelled = ok[ok["fidelity_note"].map(lambda v: isinstance(v, str))]
        notes.extend(
            f"{model}: {note}" for model, note in labelled.groupby("model", sort=False)["fidelity_note"].first().items()
        )
    if "baseline_run_id" in ok:
        unmatched = [row for row in rows if missing(row["baseline_run_id"])]
        if unmatched:
            cells = ", ".join(_cell_name(row) for row in unmatched)
            notes.append(f"not in the baseline (no ok cell of the same model, variant and device): {cells}")
    if (ok["backend"] == "python-runtime").any():
        notes.append(
            "measured with the ExecuTorch Python runtime: the native runner is not built (`just build-runner`)"
        )
    notes.extend(_slow_int8(rows))
    return notes


def _slow_int8(ok: list[dict[str, Any]]) -> list[str]:
    """int8 significantly slower than fp32 (a `n.s.` difference is noise, not slower)."""
    slow: dict[str, list[dict[str, Any]]] = {}
    for row in ok:
        speedup = row["speedup_vs_fp32"]
        if "int8" in str(row["variant"]) and not missing(speedup) and speedup < 1.0 and _significant(row):
            slow.setdefault(str(row["device"]), []).append(row)
    notes = []
    for device, rows in sorted(slow.items()):
        features = [r["device_cpu_features"] for r in rows if not missing(r["device_cpu_features"])]
        listed = features[0] if features else "unknown"
        notes.append(
            f"int8 slower than fp32 on {device} for {', '.join(sorted({str(r['model']) for r in rows}))}: "
            f"int8 speed depends on the CPU's int8 dot-product instructions (this one has: {listed})"
        )
    return notes


def _significant(row: pd.Series) -> bool:
    """The speedup test says the difference is real; untested (older runs) counts as real."""
    significant = field(row, "speedup_significant")
    return missing(significant) or bool(significant)


def _charging(row: pd.Series) -> bool:
    """The battery said Charging or Full while the fuel gauge the energy comes from was read."""
    return truthy(field(row, "energy_charging"))


def _compression_warnings(ok: list[dict[str, Any]]) -> list[str]:
    """Sparse variants (zeros don't speed up dense kernels) and layers a step left alone."""
    notes = []
    for row in ok:
        sparsity = field(row, "sparsity")
        if not missing(sparsity) and sparsity > 0.01:
            notes.append(
                f"{row['model']} {row['variant']}: {100 * sparsity:.0f}% of weights are zero, which shrinks the "
                f"zipped file ({fmt_bytes(field(row, 'size_zipped_bytes'))}) but not the latency: dense XNNPACK "
                "kernels don't run faster on zeros"
            )
        note = field(row, "compression_note")
        if isinstance(note, str) and note:
            notes.append(f"{row['model']} {row['variant']}: {note}")
    return notes


def _measurement_warnings(row: pd.Series) -> list[str]:
    """Unstable, throttled and charging flags of one ok cell."""
    notes = []
    if "unstable" in row:  # a Series' `in` looks in its index
        if truthy(row["unstable"]):
            reason = field(row, "unstable_reason") or "see its samples"
            notes.append(f"unstable: {_cell_name(row)}: {reason}{_threads_hint(row)}")
    elif reason := unstable_reason(list_value(row["latency_samples_ms"])):
        notes.append(f"unstable: {_cell_name(row)}: {reason}; rerun with more --iterations or --min-seconds")
    stop, half = field(row, "repetitions_stop"), field(row, "latency_p50_ci_halfwidth")
    if stop in ("budget", "max_processes") and not truthy(field(row, "repetitions_target_met")) and not missing(half):
        why = "its time budget (--cell-budget) ran out" if stop == "budget" else "it reached the most processes"
        notes.append(
            f"not settled: {_cell_name(row)}: p50 CI ±{100 * half:.1f}% after {as_text(row['repetitions'])} "
            f"processes, {why}"
        )
    modes, half = field(row, "latency_modes"), field(row, "latency_p50_ci_halfwidth")
    if isinstance(modes, str) and (missing(half) or not stats.p50_ci_too_wide(float(half))):  # else named as unstable
        notes.append(f"two speeds: {_cell_name(row)}: {modes}; the p50's CI spans both")
    if isinstance(field(row, "device_repairs"), str):
        retried = truthy(field(row, "device_retried"))
        again = "; the runner could not start before, so the cell ran again" if retried else ""
        notes.append(f"repaired: {_cell_name(row)}: {row['device_repairs']}{again}")
    if truthy(field(row, "throttled")):
        slowed = field(row, "throttle_reason") or "the CPU slowed down during it"
        notes.append(f"throttled: {_cell_name(row)}: {slowed}")
    if _charging(row):
        why = field(row, "energy_status")
        notes.append(f"charging: {_cell_name(row)}: {why if isinstance(why, str) else 'the battery was charging'}")
    if isinstance(field(row, "cooldown_note"), str):
        notes.append(f"cooldown: {_cell_name(row)}: {row['cooldown_note']}")
    return notes


def _protocol_notes(ok: pd.DataFrame, rows: list[dict[str, Any]]) -> list[str]:
    """Calibrated batches, whose tails are of batches, and samples far out in the tail (the threads
    used are in the context line); `rows`: ok's row_dicts."""
    notes = []
    if "latency_tails_from_batches" in ok:
        batched = [r for r in rows if truthy(r["latency_tails_from_batches"])]
        if batched:
            cells = ", ".join(f"{_cell_name(r)} ({as_text(r['batch_calls'])} calls)" for r in batched)
            notes.append(
                f"batched{BATCHED}: {cells}: each sample times a batch of calls lasting ≥ the --batch-min-ms "
                "target; p50 is per call, p90/p99 are of those batches (single-call tails are hidden)"
            )
    if "threads_source" in ok:
        notes.extend(_threads_notes(ok))
    if "latency_tail_note" in ok:
        tails = [
            f"{_cell_name(r)} ({r['latency_tail_note']})"
            for r in rows
            if isinstance(field(r, "latency_tail_note"), str)
        ]
        if tails:
            notes.append(
                f"tails: {'; '.join(tails)}: preempted or slow calls, which move the mean, CV and p99 but not "
                "the p50 or its CI"
            )
    return notes


def _threads_notes(ok: pd.DataFrame) -> list[str]:
    """The thread policy, once per device: the device's own (and why), or the threads the settings
    or the runtime chose and the cores a phone pinned them to."""
    notes = []
    for device, group in ok.groupby("device", sort=False):
        counts = "/".join(sorted({as_text(t) for t in group["threads"]}))
        first = group.iloc[0]
        if first["threads_source"] in ("device-policy", "device"):  # "device": runs saved before the name
            notes.append(
                f"threads: {counts} on {device}, the device's policy: {as_text(first['threads_note'])}; "
                "--threads 0 for the runtime's own count"
            )
            continue
        clusters = field(first, "core_clusters")
        if isinstance(clusters, str):
            chosen = "--threads" if first["threads_source"] == "settings" else "the runtime's own count"
            mask = first["cpu_mask"]
            notes.append(f"threads: {counts} on {device} ({chosen}), pinned to {clusters} (taskset {mask})")
    return notes


def _threads_hint(row: pd.Series) -> str:
    """Processes disagreeing with several runtime threads: measured (benchmarks/RESULTS.md,
    "Run-to-run stability") to come from the threadpool, which one thread avoids."""
    spread, threads = field(row, "latency_repetition_cv"), field(row, "threads")
    if missing(spread) or missing(threads) or spread < stats.UNSTABLE_REPETITION_CV or threads <= 1:
        return ""
    return f"; with {threads} threads each process can settle at a different speed: try --threads 1"
