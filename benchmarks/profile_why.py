"""What `--profile` says about the built-in models: where each variant's time goes and why it is
(or is not) faster than fp32, from real ETDump traces on this computer."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _results_md import write_section
from pocketbench.devices.local import LocalDevice
from pocketbench.measure.etdump import compare_ops, explain, op_table, summarize
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.measure.sweep import run_sweep
from pocketbench.results.store import RunStore, read_profiles

MODELS = ["digits_cnn", "mobilenet_v2", "tiny_transformer"]
VARIANTS = ["fp32", "int8", "int8-dynamic"]


def main() -> None:
    settings = ProtocolSettings(profile=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        store = RunStore(Path(scratch))
        store.write_manifest({"benchmark": "profile_why"}, {})
        run_sweep(MODELS, VARIANTS, [LocalDevice()], settings, store)
        frame = store.finish()
        events = read_profiles(store.folder)
    elapsed = time.perf_counter() - started
    lines = [
        "| model | variant | p50 ms (timed) | traced ms | in XNNPACK | outside XNNPACK | runtime | top op |",
        "|---|---|---|---|---|---|---|---|",
    ]
    whys = []
    for model in MODELS:
        tables, summaries = {}, {}
        for variant in VARIANTS:
            cell = events[(events["model"] == model) & (events["variant"] == variant)]
            row = frame[(frame["model"] == model) & (frame["variant"] == variant)].iloc[0]
            if cell.empty:
                lines.append(f"| {model} | {variant} | — | not profiled: {row['profile_note'] or row['error']} |||||")
                continue
            tables[variant], summaries[variant] = op_table(cell), summarize(cell)
            s, top = summaries[variant], tables[variant].iloc[0]
            lines.append(
                f"| {model} | {variant} | {row['latency_p50_ms']:.3f} | {s.execute_ms:.3f} | "
                f"{100 * s.delegated_ms / s.execute_ms:.0f}% | {100 * s.outside_ms / s.execute_ms:.0f}% | "
                f"{100 * s.runtime_ms / s.execute_ms:.0f}% | {top['op']} ({100 * top['share']:.0f}%) |"
            )
        for variant in [v for v in VARIANTS if v != "fp32" and v in tables and "fp32" in tables]:
            diff = compare_ops(tables["fp32"], tables[variant])
            whys.append(f"- {model}: {explain(variant, 'fp32', summaries['fp32'], summaries[variant], diff)}")
    body = "\n".join(
        [
            f"`pocketbench bench -m {' -m '.join(MODELS)} -v {','.join(VARIANTS)} --profile` on `local` "
            f"({settings.repetitions} timed processes × {settings.iterations} iterations, then one traced process × "
            f"{settings.profile_iterations} per cell); {elapsed:.0f} s in all, artifacts from the cache when present.",
            "",
            *lines,
            "",
            "The `why:` lines, as the table under the results shows them:",
            "",
            *whys,
        ]
    )
    write_section("profile_why", "Per-op profiles: where the time goes and why", body)
    print(body)


if __name__ == "__main__":
    main()
