"""Per-op profiles from ETDump traces: where an inference's time goes, and why a variant is (or
is not) faster than its baseline.

`read_trace` is the one place that touches ExecuTorch's Inspector; it turns a trace into a small
events table. Everything after it is a pure function of that table: the per-op breakdown, the
split between XNNPACK, ops left outside it and the runtime between ops, and the op-by-op
difference between two variants that explains a speedup or the lack of one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Kinds of events a trace holds, per execute.
EXECUTE = "execute"  # Method::execute: one whole inference
DELEGATE_CALL = "delegate_call"  # one call into a delegated (XNNPACK) subgraph
DELEGATE_OP = "delegate_op"  # one XNNPACK operator inside such a call
OUTSIDE_OP = "outside_op"  # one operator run by ExecuTorch's own kernels, outside any delegate
EVENT_COLUMNS = ["event", "kind", "op", "kernel", "backend", "calls", "ms", "p50_ms"]

XNNPACK, OUTSIDE, RUNTIME = "XNNPACK", "outside XNNPACK", "runtime"
# What an op means when the reason is not obvious from its name.
OP_HINTS = {
    "Convert": "fp32↔int8 conversions at the quantized region's edges",
    "Fully Connected GEMM": "linear layers and 1×1 convolutions",
}
NO_SPEEDUP = 1.05  # a traced ratio below this is "no speedup" in the explanation


def read_trace(etdump: Path, etrecord: Path | None = None) -> pd.DataFrame:
    """An ETDump trace (and the artifact's ETRecord, which names ops outside the delegate) → events."""
    import warnings

    from executorch.devtools import Inspector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Inspector warns about every kwarg it cannot display
        inspector = Inspector(etdump_path=str(etdump), etrecord=str(etrecord) if etrecord else None)
        frame = inspector.to_dataframe()
    return events_from_inspector(frame.to_dict("records"))


def events_from_inspector(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of `Inspector.to_dataframe()` → one row per traced event with its time per inference.

    `ms` is the event's mean over the typical executes: those whose whole time lies in the
    interquartile range (the cold first call and scheduler hiccups drop out). Taken over the
    same executes, the parts add up to the whole, which per-event medians do not.
    A kernel's own `native_call_*` scope sits inside its OPERATOR_CALL and is not counted
    twice; it only names the operator when no ETRecord was given.
    """
    totals = next((list(r["raw"]) for r in records if r["event_name"] == "Method::execute"), [])
    typical = typical_executes(totals)
    rows, last_kernel = [], ""
    for record in records:
        name = str(record["event_name"])
        samples = record.get("raw")
        raw = list(samples) if samples is not None else []
        per_inference = float(np.mean([raw[i] for i in typical])) if len(raw) == len(totals) and typical else None
        base = {
            "event": name,
            "calls": len(raw),
            "ms": per_inference if per_inference is not None else float(record["p50 (ms)"]),
            "p50_ms": float(record["p50 (ms)"]),
        }
        if name.startswith("native_call_"):
            last_kernel = kernel_op_name(name)
        elif name == "Method::execute":
            rows.append({**base, "kind": EXECUTE, "op": "execute", "kernel": "", "backend": ""})
        elif name == "DELEGATE_CALL":
            rows.append({**base, "kind": DELEGATE_CALL, "op": "delegate call", "kernel": "", "backend": ""})
        elif name == "OPERATOR_CALL":
            op = _operator_name(op_type_names(record.get("op_types")), last_kernel)
            last_kernel = ""  # a kernel's scope names only the call it sits in
            rows.append({**base, "kind": OUTSIDE_OP, "op": op, "kernel": op, "backend": ""})
        elif record.get("is_delegated_op"):
            kernel = re.sub(r"\s*#\d+$", "", name)
            backend = str(record.get("delegate_backend_name") or "")
            op = xnnpack_op_class(kernel)
            rows.append({**base, "kind": DELEGATE_OP, "op": op, "kernel": kernel, "backend": backend})
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def kernel_op_name(scope: str) -> str:
    """A kernel scope as the op it runs: native_call_mean.out → mean; native_call_mul.Scalar_out
    → mul.Scalar (the out variant of an overload, named like the ETRecord's nodes)."""
    name = scope.removeprefix("native_call_").removesuffix(".out")
    return name.removesuffix("_out") if "." in name else name


def op_type_names(op_types: Any) -> list[str]:
    """The Inspector's `op_types` of an event: a list of node targets, or for a long one the
    string it shortens it to, `"['a', 'b' ... 'z'] (29 total)"` (seen on tiny_llama, where one
    debug handle covers 29 nodes): its names, never its characters."""
    if op_types is None:
        return []
    if isinstance(op_types, str):
        return re.findall(r"'([^']+)'", op_types)
    return [str(t) for t in op_types]


def _operator_name(types: list[str], kernel: str) -> str:
    """One ETRecord node names the call; when it maps the call to several nodes (or there is no
    ETRecord), the kernel's own `native_call_*` scope does; else the first node; else it is a
    prim op, which has no kernel scope."""
    if len(types) == 1:
        return short_aten_name(types[0])
    return kernel or (short_aten_name(types[0]) if types else UNNAMED_PRIM_OP)


# A call with neither a node nor a kernel scope: one of the runtime's own prim ops (et_view,
# which ExecuTorch puts where a view_copy stood and which only aliases memory; sym_size, which
# reads a shape): ~0.1 µs each on tiny_llama.
UNNAMED_PRIM_OP = "prim op (view/shape)"


def typical_executes(totals: list[float]) -> list[int]:
    """Indices of the executes whose time lies between the 25th and 75th percentile."""
    if not totals:
        return []
    low, high = np.percentile(totals, [25, 75])
    return [i for i, t in enumerate(totals) if low <= t <= high]


def short_aten_name(op_type: str) -> str:
    """aten.native_layer_norm.default → native_layer_norm; aten.mean.dim → mean.dim."""
    return op_type.removeprefix("aten.").removesuffix(".default")


def xnnpack_op_class(kernel: str) -> str:
    """An XNNPACK operator without its layout and datatypes, so fp32 and int8 runs line up:
    'Convolution (NHWC, QC8) IGEMM' → 'Convolution IGEMM'."""
    return re.sub(r"\s+", " ", re.sub(r"\([^)]*\)", " ", kernel)).strip()


@dataclass(frozen=True)
class ProfileSummary:
    """Time per inference in ms (mean over the typical executes): the whole and where it went."""

    execute_ms: float
    delegated_ms: float  # inside delegate calls (XNNPACK operators plus the call's own cost)
    outside_ms: float  # operators ExecuTorch ran itself, outside the delegate
    runtime_ms: float  # the rest: the interpreter between instructions
    executes: int

    @property
    def delegated_share(self) -> float:
        return self.delegated_ms / self.execute_ms if self.execute_ms else 0.0


def summarize(events: pd.DataFrame) -> ProfileSummary:
    """The split of one variant's inference time."""
    by_kind = events.groupby("kind")["ms"].sum()
    delegated, outside = float(by_kind.get(DELEGATE_CALL, 0.0)), float(by_kind.get(OUTSIDE_OP, 0.0))
    execute_rows = events[events["kind"] == EXECUTE]
    execute = float(execute_rows["ms"].sum()) if len(execute_rows) else delegated + outside
    executes = int(execute_rows["calls"].max()) if len(execute_rows) else 0
    return ProfileSummary(execute, delegated, outside, max(execute - delegated - outside, 0.0), executes)


def op_table(events: pd.DataFrame) -> pd.DataFrame:
    """Time per op class and place (XNNPACK, outside XNNPACK, runtime), largest first, with the
    share of the whole inference. The delegate's call cost and the interpreter get a row each."""
    summary = summarize(events)
    rows = []
    for (kind, op), group in events[events["kind"].isin([DELEGATE_OP, OUTSIDE_OP])].groupby(["kind", "op"]):
        rows.append(
            {
                "where": XNNPACK if kind == DELEGATE_OP else OUTSIDE,
                "op": op,
                "kernels": ", ".join(sorted(set(group["kernel"]))),
                "instances": len(group),
                "ms": float(group["ms"].sum()),
            }
        )
    inside_ops = float(events.loc[events["kind"] == DELEGATE_OP, "ms"].sum())
    if summary.delegated_ms:
        rows.append(
            {
                "where": XNNPACK,
                "op": "delegate call overhead",
                "kernels": "",
                "instances": 0,
                "ms": max(summary.delegated_ms - inside_ops, 0.0),
            }
        )
    rows.append({"where": RUNTIME, "op": "between ops", "kernels": "", "instances": 0, "ms": summary.runtime_ms})
    table = pd.DataFrame(rows, columns=["where", "op", "kernels", "instances", "ms"])
    table["share"] = table["ms"] / summary.execute_ms if summary.execute_ms else 0.0
    return table.sort_values("ms", ascending=False, ignore_index=True)


def compare_ops(baseline: pd.DataFrame, variant: pd.DataFrame) -> pd.DataFrame:
    """Op-by-op time of a variant against its baseline (both `op_table`s), largest change first."""
    keys = ["where", "op"]
    merged = baseline[[*keys, "ms"]].merge(variant[[*keys, "ms"]], on=keys, how="outer", suffixes=("_base", "_variant"))
    merged = merged.rename(columns={"ms_base": "baseline_ms", "ms_variant": "variant_ms"}).fillna(
        {"baseline_ms": 0.0, "variant_ms": 0.0}
    )
    merged["delta_ms"] = merged["variant_ms"] - merged["baseline_ms"]
    order = merged["delta_ms"].abs().sort_values(ascending=False).index
    return merged.loc[order].reset_index(drop=True)


def explain(name: str, baseline_name: str, base: ProfileSummary, variant: ProfileSummary, diff: pd.DataFrame) -> str:
    """One sentence a user can act on: how the traced time changed and which ops made it so."""
    ratio = base.execute_ms / variant.execute_ms if variant.execute_ms else float("nan")
    change = f"{base.execute_ms:.3g} → {variant.execute_ms:.3g} ms"
    if ratio >= NO_SPEEDUP:
        head = f"{name} is {ratio:.2f}× faster than {baseline_name} in the trace ({change})"
    elif ratio > 1 / NO_SPEEDUP:
        head = f"{name} has no speedup over {baseline_name} in the trace ({change})"
    else:
        head = f"{name} is {1 / ratio:.2f}× slower than {baseline_name} in the trace ({change})"
    parts = [head]
    threshold = 0.02 * max(base.execute_ms, variant.execute_ms)
    gains = diff[diff["delta_ms"] < -threshold].nsmallest(3, "delta_ms")
    losses = diff[diff["delta_ms"] > threshold].nlargest(3, "delta_ms")
    if len(gains):
        parts.append("faster: " + ", ".join(_describe_op(r) for r in gains.to_dict("records")))
    if len(losses):
        parts.append("slower: " + ", ".join(_describe_op(r) for r in losses.to_dict("records")))
    if not len(gains) and not len(losses):
        parts.append("no op changed by more than 2 % of the inference")
    outside_share = variant.outside_ms / variant.execute_ms if variant.execute_ms else 0.0
    if outside_share >= 0.1:
        parts.append(f"{outside_share:.0%} of {name}'s time is in ops outside XNNPACK")
    return "; ".join(parts)


def _describe_op(row: dict[str, Any]) -> str:
    where = "" if row["where"] == XNNPACK else f" ({row['where']})"
    hint = f" [{OP_HINTS[row['op']]}]" if row["op"] in OP_HINTS else ""
    return f"{row['op']}{where} {row['delta_ms']:+.3g} ms{hint}"
