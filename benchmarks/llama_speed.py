"""llama_speed (a random-initialised ~100 M-parameter Llama saved as a local HF checkpoint) on the
local device: fp32 vs 8da4w decode and prefill tokens/s at llama-bench's pp512 / tg128, with
pocketbench's p50 and 95 % CI beside llama-bench's mean ± sd, the bytes each decoded token reads,
this CPU's caches, and the ExecuTorch Llama README's phone figures for context. Writes its section
of RESULTS.md.

The variants go through `pocketbench bench --llama-bench` itself (the command a user runs).

    .venv/bin/python benchmarks/llama_speed.py [--repetitions 5] [--threads 1,2]   # default: 1 and every core
    .venv/bin/python benchmarks/llama_speed.py --small   # the same at 1/40 size: prints, writes nothing
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _results_md import load_note, write_section

VARIANTS = ("fp32", "8da4w")
MODELS = {False: "llama_speed", True: "pocketbench_models.llama_speed:small"}
# ExecuTorch's Llama README (examples/models/llama), OnePlus 12, XNNPACK, Llama 3.2 1B.
PHONE = (
    "Llama 3.2 1B on a OnePlus 12 (ExecuTorch's Llama README): 8da4w (SpinQuant) 50.2 decode / 260.5 prefill "
    "tok/s, bf16 19.2 / 60.3 tok/s (2.6× decode)"
)
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")


def bench_rows(model: str, repetitions: int, threads: int, results: Path) -> list[dict]:
    argv = [sys.executable, "-m", "pocketbench", "bench", "-m", model, "-v", ",".join(VARIANTS), "-d", "local"]
    argv += ["--llama-bench", "--repetitions", str(repetitions), "--threads", str(threads)]
    argv += ["--results", str(results), "--json", "--yes"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 4) or not proc.stdout.strip():
        raise SystemExit(f"bench failed ({proc.returncode}): {proc.stderr[-2000:]}")
    print(proc.stderr[-6000:], file=sys.stderr)
    return json.loads(proc.stdout)["rows"]


def lscpu() -> dict[str, str]:
    """lscpu's fields (model name, L2, L3, flags); empty where lscpu is missing."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}


def embedding_bytes(model: str) -> int:
    """The fp32 embedding table: in the `.pte` of both variants (8da4w quantizes linear layers only),
    and each decoded token reads one of its rows, not all of it."""
    from pocketbench.models.registry import resolve

    bundle = resolve(model).load()
    table = bundle.module.cached.model.get_input_embeddings().weight
    return table.numel() * table.element_size()


def _fmt(value: object, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def render(rows: list[dict], embedding: int, cpu: dict[str, str], load: tuple[float, float], model: str) -> str:
    flags = set(cpu.get("Flags", "").split())
    first = rows[0]
    counts = sorted({r["threads"] for r in rows if r.get("threads")})
    lines = [
        f"`pocketbench bench -m {model} -v {','.join(VARIANTS)} -d local --llama-bench --threads T` for T in "
        f"{', '.join(map(str, counts))} (P = 512 prompt tokens, "
        "N = 128 teacher-forced decode steps per generation, KV cache of 640 slots; runner processes × "
        f"generations: {first.get('generations')} timed generations per variant and thread count). "
        "p50 and its 95 % CI: bootstrap over tokens and runner processes; mean ± sd: llama-bench's "
        "statistic over the timed generations. Speed only: the weights are random, so no perplexity is shown.",
        "",
        f"CPU: {cpu.get('Model name', '?')}; flags {', '.join(f for f in CPU_FLAGS if f in flags) or 'none of'} "
        f"({', '.join(CPU_FLAGS)} looked for); L2 {cpu.get('L2 cache', '?')}, L3 {cpu.get('L3 cache', '?')} "
        "(lscpu). " + load_note(*load),
        "",
        "| variant | threads | status | params | .pte size | bytes read / token | decode tok/s p50 [95 % CI] "
        "| tg128 t/s mean ± sd | pp512 t/s mean ± sd | TTFT ms (P = 512) | effective GB/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['variant']} | {r.get('threads')} | {r['status']}: {r['error']} |" + " |" * 8)
            continue
        per_token = r["size_bytes"] - embedding + (r.get("kv_cache_bytes") or 0)
        lines.append(
            f"| {r['variant']} | {r['threads']} | ok | {r['model_params'] / 1e6:.1f} M "
            f"| {r['size_bytes'] / 1e6:.1f} MB "
            f"| {per_token / 1e6:.1f} MB | {r['decode_tok_s']:.2f} [{_fmt(r['decode_tok_s_ci_low'], '.2f')}–"
            f"{_fmt(r['decode_tok_s_ci_high'], '.2f')}] | {r['decode_tok_s_mean']:.2f} ± "
            f"{_fmt(r['decode_tok_s_sd'], '.2f')} | {r['prefill_tok_s_mean']:.1f} ± "
            f"{_fmt(r['prefill_tok_s_sd'], '.1f')} "
            f"| {r['ttft_ms']:.0f} | {per_token * r['decode_tok_s'] / 1e9:.1f} |"
        )
    lines += [
        "",
        "Bytes read per decoded token: the `.pte` less the fp32 embedding table "
        f"({embedding / 1e6:.1f} MB, of which a token reads one row), plus the KV cache it attends over "
        "(every step attends over all 640 slots); effective GB/s = that × decode tok/s.",
        "",
        *(goal_line({r["variant"]: r for r in rows if r["status"] == "ok" and r["threads"] == t}, t) for t in counts),
        "",
        f"For context, a phone: {PHONE}. Decode gains track the drop in bytes read per token when decode is "
        "bound by memory bandwidth; prefill gains come from int8 dynamic-activation GEMMs (compute bound).",
    ]
    return "\n".join(lines)


def goal_line(by: dict[str, dict], threads: int) -> str:
    """The goal: on this bandwidth-bound model, 8da4w decodes at least 2× as fast as fp32."""
    if "fp32" not in by or "8da4w" not in by:
        return f"- {threads} thread(s): goal (8da4w ≥ 2× fp32 decode tok/s) not measured (a variant failed)."
    speed = by["8da4w"]["decode_tok_s"] / by["fp32"]["decode_tok_s"]
    prefill = by["8da4w"]["prefill_tok_s_mean"] / by["fp32"]["prefill_tok_s_mean"]
    return (
        f"- {threads} thread(s): goal (8da4w ≥ 2× fp32 decode tok/s on this bandwidth-bound model): decode "
        f"{speed:.2f}×, prefill "
        f"{prefill:.2f}× — **{'met' if speed >= 2 else 'not met'}**."
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=5)
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--threads", default=",".join(dict.fromkeys(("1", str(cores)))), help="runtime thread counts")
    parser.add_argument("--small", action="store_true", help="the 1/40-size config: check the script, write nothing")
    args, _ = parser.parse_known_args()  # run_all.py passes benchmark names through
    model = MODELS[args.small]
    before = os.getloadavg()[0]
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        with tempfile.TemporaryDirectory() as scratch:
            rows += bench_rows(model, args.repetitions, threads, Path(scratch) / "results")
    body = render(rows, embedding_bytes(model), lscpu(), (before, os.getloadavg()[0]), model)
    if args.small:
        print(body)
        return
    write_section("llama_speed", "llama_speed: 4-bit weights on a bandwidth-bound decode (fp32 vs 8da4w)", body)


if __name__ == "__main__":
    main()
