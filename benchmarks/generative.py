"""tiny_llama on the local device: per variant size, TTFT (P=128), prefill and decode tokens/s
with CIs, perplexity and its change, peak memory; decode tokens/s vs context; native runner vs
the Python runtime on decode ms/token; writes its section of RESULTS.md.

The variants go through `pocketbench bench` itself (the command a user runs);
the context sweep and the runner comparison run the same cached `.pte` files directly.

    .venv/bin/python benchmarks/generative.py [--repetitions 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _results_md import write_section
from pocketbench.compress.recipe import parse_variant
from pocketbench.devices.local import PYTHON_BACKEND, LocalDevice
from pocketbench.lower.export import build_artifact
from pocketbench.measure.model import load_model
from pocketbench.progress import Reporter
from pocketbench.runner.native import BACKEND as NATIVE_BACKEND
from pocketbench.runner.report import BenchJob

MODEL, VARIANTS, PROMPT, DECODE = "tiny_llama", ("fp32", "int8-dynamic", "8da4w"), 128, 64
CONTEXTS, SWEEP_DECODE = (128, 256, 512), 32


def bench_rows(repetitions: int, results: Path) -> list[dict]:
    argv = [sys.executable, "-m", "pocketbench", "bench", "-m", MODEL, "-v", ",".join(VARIANTS), "-d", "local"]
    argv += ["--repetitions", str(repetitions), "--results", str(results), "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 4) or not proc.stdout.strip():
        raise SystemExit(f"bench failed ({proc.returncode}): {proc.stderr[-2000:]}")
    print(proc.stderr[-6000:], file=sys.stderr)
    return json.loads(proc.stdout)["rows"]


def decode_ms(device: LocalDevice, pte: Path, stream: Path, prompt: int, decode: int) -> float:
    # At the bench rows' thread count: this computer's default (devices/local.py says why).
    report = device.benchmark(
        BenchJob(
            pte=pte,
            inputs=stream,
            warmup=1,
            iterations=3,
            generate=(prompt, decode),
            teacher_forced=True,
            threads=LocalDevice.default_threads,
        )
    )
    if not report.ok:
        raise SystemExit(f"{pte}: {report.status}: {report.error}")
    return statistics.median(report.iterations_ns) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args, _ = parser.parse_known_args()  # run_all.py passes benchmark names through
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        rows = bench_rows(args.repetitions, Path(scratch) / "results")
        context = load_model(MODEL, Path(scratch), Reporter(), (PROMPT, DECODE))
        ptes = {v: build_artifact(context.spec, context.bundle, parse_variant(v)).path for v in VARIANTS}
        native, python = LocalDevice(backend=NATIVE_BACKEND), LocalDevice(backend=PYTHON_BACKEND)
        runs: dict[str, dict[int, list[float]]] = {v: {c: [] for c in CONTEXTS} for v in VARIANTS}
        for _ in range(args.rounds):  # interleaved: drift on the shared machine hits every cell alike
            for variant in VARIANTS:
                for c in CONTEXTS:
                    ms = decode_ms(native, ptes[variant], context.inputs_file, c - SWEEP_DECODE, SWEEP_DECODE)
                    runs[variant][c].append(ms)
        sweep = {v: {c: statistics.median(values) for c, values in by_c.items()} for v, by_c in runs.items()}
        versus = {}
        for variant in ("fp32", "8da4w"):
            ratios, own = [], {NATIVE_BACKEND: [], PYTHON_BACKEND: []}
            for round_index in range(args.rounds):
                devices = [native, python] if round_index % 2 == 0 else [python, native]
                times = {d.backend: decode_ms(d, ptes[variant], context.inputs_file, PROMPT, DECODE) for d in devices}
                for name, value in times.items():
                    own[name].append(value)
                ratios.append(times[NATIVE_BACKEND] / times[PYTHON_BACKEND])
            versus[variant] = (statistics.median(own[NATIVE_BACKEND]), statistics.median(own[PYTHON_BACKEND]), ratios)
    write_section("generative", "Generative: tiny_llama tokens/s, perplexity, context and runner",
                  render(rows, sweep, versus, load_before, os.getloadavg(), args.repetitions))  # fmt: skip


def goal_line(rows: list[dict]) -> str:
    """The goal for 8da4w vs fp32: ≥ 2× decode tokens/s at ≤ 0.35× size, perplexity within 10 %."""
    by = {r["variant"]: r for r in rows if r["status"] == "ok"}
    if "fp32" not in by or "8da4w" not in by:
        return "Goal (8da4w vs fp32): not measured (a variant failed)."
    fp32, w4 = by["fp32"], by["8da4w"]
    speed, size, ppl = (
        w4["decode_tok_s"] / fp32["decode_tok_s"],
        w4["size_bytes"] / fp32["size_bytes"],
        w4["perplexity_delta_pct"],
    )
    met = speed >= 2 and size <= 0.35 and abs(ppl) <= 10
    return (
        f"Goal (8da4w vs fp32: ≥ 2× decode tok/s at ≤ 0.35× size, perplexity within 10 %): decode {speed:.2f}×, "
        f"size {size:.2f}×, perplexity {ppl:+.2f} % — **{'met' if met else 'not met'}**."
    )


def explained(by: dict[str, dict]) -> str:
    """Why 8da4w's decode gain is what it is, with the delegated shares of these rows."""
    share = " % fp32, ".join(f"{100 * (by[v].get('delegated_fraction') or 0):.0f}" for v in ("fp32", "8da4w"))
    return (
        "Why 4-bit weights do not double decode speed here: tiny_llama has 3.15 M parameters, so fp32 decode reads "
        "12.6 MB of weights per token, which fits in this EPYC VM's 32 MB L3 cache, so it is not bound by memory "
        "bandwidth the way a phone's decode of a 1 B-parameter model is; 8da4w also quantizes each token's "
        f"activations at run time. And part of every token's cost does not depend on the weights (delegated share "
        f"{share} % 8da4w in `pocketbench bench`'s table): the calls into XNNPACK's delegate, RMSNorm's `mean` and "
        "the cache's `index_put` outside it (the profile below splits it). Decode tokens/s vs context is flat by "
        "construction: every decode step attends over all 512 cache slots (the mask hides the future ones), so the "
        "cost does not grow as the cache fills; a curve that grows needs models exported with different cache lengths."
    )


def _fmt(value: object, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def render(rows: list[dict], sweep: dict, versus: dict, load_before: tuple, load_after: tuple, repetitions: int) -> str:
    fp32 = next(r for r in rows if r["variant"] == "fp32")
    lines = [
        f"`pocketbench bench -m {MODEL} -v {','.join(VARIANTS)} -d local` (P = {PROMPT} prompt tokens, N = {DECODE} "
        f"teacher-forced decode steps per generation, {repetitions} runner processes per variant at "
        f"{fp32.get('threads')} thread(s), this computer's default; CIs: 95 % bootstrap over tokens and "
        "runner processes). Perplexity: the `.pte` on the held-out windows (16 × 256 bytes of held-out stdlib "
        "files); greedy agreement: the variant's argmax equals fp32's at each of the N + 1 teacher-forced steps. "
        f"Load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
        + (
            ": **other work was running on the machine, so absolute times are pessimistic and noisy.**"
            if load_before[0] > (os.cpu_count() or 1) / 2
            else " (no other work running; the load is the benchmark's own)."
        ),
        "",
        "| variant | status | size | × fp32 | TTFT ms (P=128) [CI] | prefill tok/s [CI] | decode tok/s [CI] "
        "| ms/token p50 / p90 | perplexity (Δ vs fp32) | greedy agree | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['variant']} | {r['status']}: {r['error']} |" + " |" * 9)
            continue
        lines.append(
            f"| {r['variant']} | ok | {r['size_bytes'] / 1e6:.2f} MB | {r['size_bytes'] / fp32['size_bytes']:.2f} "
            f"| {r['ttft_ms']:.2f} [{r['ttft_ci_low_ms']:.2f}–{r['ttft_ci_high_ms']:.2f}] "
            f"| {r['prefill_tok_s']:.0f} [{r['prefill_tok_s_ci_low']:.0f}–{r['prefill_tok_s_ci_high']:.0f}] "
            f"| {r['decode_tok_s']:.0f} [{r['decode_tok_s_ci_low']:.0f}–{r['decode_tok_s_ci_high']:.0f}] "
            f"| {r['decode_ms_p50']:.3f} / {r['decode_ms_p90']:.3f} "
            f"| {r['perplexity']:.3f} ({r['perplexity_delta_pct']:+.2f} %) | {100 * r['greedy_agreement']:.0f} % "
            f"| {r['peak_rss_kb'] / 1e3:.1f} |"
        )
    lines += ["", goal_line(rows), "", explained({r["variant"]: r for r in rows if r["status"] == "ok"})]
    lines += [
        "",
        f"Decode tokens/s vs context (the cache filled to C − {SWEEP_DECODE} by the prompt, then "
        f"{SWEEP_DECODE} decode steps; native runner, median over 3 rounds of one process × 3 generations):",
        "",
        "| variant | " + " | ".join(f"C = {c}" for c in CONTEXTS) + " |",
        "|---|" + "---|" * len(CONTEXTS),
    ]
    for variant, by_context in sweep.items():
        cells = [f"{1000 / ms:.0f} tok/s ({ms:.3f} ms)" for ms in by_context.values()]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += ["", "Native runner vs ExecuTorch's Python runtime, same `.pte`, decode ms/token (P = 128, N = 64), "
              "interleaved rounds (goal: the runner adds < 3 %):", "",
              "| variant | runner ms/token | Python ms/token | runner / Python per round |",
              "|---|---|---|---|"]  # fmt: skip
    for variant, (native, python, ratios) in versus.items():
        lines.append(f"| {variant} | {native:.3f} | {python:.3f} | {', '.join(f'{x:.3f}' for x in ratios)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
