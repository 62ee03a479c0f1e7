"""Per-op profiles: the pure functions on fixed events, then real ETDump traces from the native
runner and the Python runtime, read with ExecuTorch's Inspector and the artifact's ETRecord."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from pocketbench.compress.recipe import parse_variant
from pocketbench.devices.local import PYTHON_BACKEND, LocalDevice
from pocketbench.lower.export import build_artifact
from pocketbench.measure.etdump import (
    DELEGATE_CALL,
    DELEGATE_OP,
    EXECUTE,
    OUTSIDE,
    OUTSIDE_OP,
    XNNPACK,
    compare_ops,
    events_from_inspector,
    explain,
    kernel_op_name,
    op_table,
    op_type_names,
    read_trace,
    summarize,
    typical_executes,
    xnnpack_op_class,
)
from pocketbench.models.registry import resolve
from pocketbench.report.profile_view import SPLIT_HEADERS, profile_sections, render_profiles
from pocketbench.runner.report import BenchJob
from rich.console import Console

from tests.runner_support import host_runner, input_sets, tiny_ptes, write_inputs


def record(name: str, p50: float, calls: int = 4, delegated: bool = False, op_types=()) -> dict:
    """One row as `Inspector.to_dataframe()` gives it (only the columns profile.py reads)."""
    return {
        "event_block_name": "Execute",
        "event_name": name,
        "raw": [p50] * calls,
        "p50 (ms)": p50,
        "op_types": list(op_types),
        "is_delegated_op": delegated,
        "delegate_backend_name": "XnnpackBackend" if delegated else None,
    }


# One inference of 3 ms: a delegate call of 2 ms (1.5 ms in two convolutions, 0.25 ms in a
# conversion), a layer norm outside the delegate (0.5 ms), and 0.5 ms of interpreter.
RECORDS = [
    record("Method::init", 7.0, calls=1),
    record("Convolution (NHWC, QC8) IGEMM #1", 1.0, delegated=True),
    record("Convolution (NHWC, QC8) IGEMM #2", 0.5, delegated=True),
    record("Convert (NC) #1", 0.25, delegated=True),
    record("DELEGATE_CALL", 2.0),
    record("native_call_native_layer_norm.out", 0.45),
    record("OPERATOR_CALL", 0.5, op_types=["aten.native_layer_norm.default"]),
    record("Method::execute", 3.0),
]


def test_events_count_each_op_once_and_skip_loading():
    events = events_from_inspector(RECORDS)
    assert list(events["kind"]) == [DELEGATE_OP, DELEGATE_OP, DELEGATE_OP, DELEGATE_CALL, OUTSIDE_OP, EXECUTE]
    assert list(events["op"]) == [
        "Convolution IGEMM", "Convolution IGEMM", "Convert", "delegate call", "native_layer_norm", "execute",
    ]  # fmt: skip
    assert events.loc[0, "kernel"] == "Convolution (NHWC, QC8) IGEMM" and events.loc[0, "calls"] == 4


def test_the_cold_first_call_and_hiccups_are_left_out_and_the_parts_still_add_up():
    totals = [10.0, 2.0, 2.2, 2.1, 1.9, 6.0, 2.05, 2.15]  # a cold first call, a hiccup at 6 ms
    typical = typical_executes(totals)
    assert typical == [2, 3, 6, 7]  # between the quartiles 2.0375 and 3.15 ms
    records = [
        {**record("Convolution (NHWC, F32) IGEMM #1", 0, delegated=True), "raw": [t - 1.0 for t in totals]},
        {**record("DELEGATE_CALL", 0), "raw": [t - 0.5 for t in totals]},
        {**record("Method::execute", 0), "raw": totals},
    ]
    events = events_from_inspector(records)
    assert events["ms"].tolist() == pytest.approx([1.125, 1.625, 2.125])
    summary = summarize(events)
    assert summary.delegated_ms + summary.runtime_ms == pytest.approx(summary.execute_ms)


def test_an_operator_without_an_etrecord_is_named_by_its_kernel():
    records = [record("native_call_embedding.out", 0.1), record("OPERATOR_CALL", 0.12)]
    assert events_from_inspector(records)["op"].tolist() == ["embedding"]


def test_an_operator_the_etrecord_maps_to_many_nodes_is_named_by_its_kernel():
    """Captured from tiny_llama 8da4w: the Inspector shortens a long op_types list to a string."""
    shortened = "['scalar_tensor.default', 'scalar_tensor.default' ... 'aten.permute_copy.default'] (29 total)"
    records = [
        {**record("native_call_scalar_tensor.out", 0.1), "op_types": shortened},
        {**record("OPERATOR_CALL", 0.12), "op_types": shortened},
        {**record("OPERATOR_CALL", 0.01), "op_types": shortened},  # no kernel scope of its own
        record("OPERATOR_CALL", 0.01, op_types=["sym_size.int"]),
        record("OPERATOR_CALL", 0.01),
    ]
    assert events_from_inspector(records)["op"].tolist() == [
        "scalar_tensor",
        "scalar_tensor",
        "sym_size.int",
        "prim op (view/shape)",
    ]
    assert op_type_names(shortened) == ["scalar_tensor.default", "scalar_tensor.default", "aten.permute_copy.default"]
    assert kernel_op_name("native_call_mul.Scalar_out") == "mul.Scalar"
    assert kernel_op_name("native_call_index_put.out") == "index_put"
    assert op_type_names(None) == [] and op_type_names(["aten.mean.dim"]) == ["aten.mean.dim"]


def test_the_split_adds_up_to_the_inference():
    summary = summarize(events_from_inspector(RECORDS))
    assert (summary.execute_ms, summary.delegated_ms, summary.outside_ms) == (3.0, 2.0, 0.5)
    assert summary.runtime_ms == pytest.approx(0.5) and summary.delegated_share == pytest.approx(2 / 3)
    assert summary.executes == 4


def test_op_table_groups_op_classes_and_names_the_overheads():
    table = op_table(events_from_inspector(RECORDS)).set_index(["where", "op"])
    assert table.loc[(XNNPACK, "Convolution IGEMM"), "ms"] == 1.5
    assert table.loc[(XNNPACK, "Convolution IGEMM"), "instances"] == 2
    assert table.loc[(XNNPACK, "delegate call overhead"), "ms"] == pytest.approx(0.25)
    assert table.loc[(OUTSIDE, "native_layer_norm"), "share"] == pytest.approx(0.5 / 3)
    assert table.loc[("runtime", "between ops"), "ms"] == pytest.approx(0.5)
    assert table["ms"].sum() == pytest.approx(3.0)


def test_xnnpack_op_classes_line_up_across_datatypes():
    assert xnnpack_op_class("Convolution (NHWC, F32) IGEMM") == xnnpack_op_class("Convolution (NHWC, QC8) IGEMM")
    assert xnnpack_op_class("Fully Connected (NC, QS8, QC8W) GEMM") == "Fully Connected GEMM"
    assert xnnpack_op_class("Convert (NC)") == "Convert"


def test_a_profile_against_itself_has_no_speedup():
    events = events_from_inspector(RECORDS)
    summary, table = summarize(events), op_table(events)
    sentence = explain("int8", "int8", summary, summary, compare_ops(table, table))
    assert "no speedup" in sentence and "no op changed" in sentence


def test_the_explanation_names_what_got_slower_and_what_runs_outside():
    base = events_from_inspector(RECORDS)
    slower = base.copy()
    slower.loc[slower["op"] == "Convert", "ms"] = 1.25  # conversions now cost 1 ms more
    slower.loc[slower["kind"] == DELEGATE_CALL, "ms"] = 3.0
    slower.loc[slower["kind"] == EXECUTE, "ms"] = 4.0
    diff = compare_ops(op_table(base), op_table(slower))
    assert diff.loc[0, "op"] == "Convert" and diff.loc[0, "delta_ms"] == pytest.approx(1.0)
    sentence = explain("int8", "fp32", summarize(base), summarize(slower), diff)
    assert sentence.startswith("int8 is 1.33× slower than fp32")
    assert "slower: Convert +1 ms [fp32↔int8 conversions" in sentence
    assert "12% of int8's time is in ops outside XNNPACK" in sentence


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_the_profile_tables_keep_to_the_terminal_width_and_break_no_figure(width):
    base = events_from_inspector(RECORDS)
    slower = base.copy()
    slower.loc[slower["op"] == "Convert", "ms"] = 1.25
    variants = (("fp32", base), ("int8", slower), ("int8-dynamic", base))
    events = pd.concat([f.assign(model="digits_cnn", device="pixel-7-pro", variant=v) for v, f in variants])
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(render_profiles(events))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= width
    flat = " ".join(text.split())
    notes = re.findall(r"not shown at \d+ columns: (.*?) \(", flat)
    hidden = {key.strip() for note in notes for key in note.split(",")}
    (section,) = profile_sections(events)
    tables = [(SPLIT_HEADERS, section.split), (section.ops_headers, section.ops)]
    for headers, rows in tables:
        for position, header in enumerate(headers):
            keys = {header.split(" ")[0], header.split(" (")[0]}
            if keys & hidden or header in ("outside XNNPACK", "top ops (share)"):
                continue  # left out (and named), or a list that wraps between its items
            for row in rows:  # an op name, a figure and its share or change stay on one line
                assert any(row[position] in line for line in text.splitlines()), (header, row[position])
    assert ("not shown at" in flat) == (width < 100)


# -- real traces -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(isolated_cache: Path):
    return tiny_ptes(isolated_cache)


def traced(tmp_path: Path, artifact, device: LocalDevice, iterations: int = 10):
    """Run `artifact` once with ETDump on and read the trace with its ETRecord."""
    inputs = write_inputs(tmp_path / "inputs.pbtf", input_sets(1, seed=0))
    trace = tmp_path / f"{artifact.manifest['variant']}.etdp"
    job = BenchJob(pte=artifact.path, inputs=inputs, warmup=2, iterations=iterations, etdump=trace)
    report = device.benchmark(job)
    assert report.ok, report.error
    return read_trace(trace, artifact.etrecord)


def test_the_native_runner_traces_every_xnnpack_op(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETBENCH_RUNNER", str(host_runner()))
    fp32, int8 = (traced(tmp_path, tiny[v], LocalDevice()) for v in ("fp32", "int8"))
    for events in (fp32, int8):
        summary = summarize(events)
        assert summary.executes == 1 + 2 + 10  # first inference, warm-up, timed loop
        assert 0 < summary.delegated_ms <= summary.execute_ms and summary.outside_ms == 0
        assert {"Convolution IGEMM", "Fully Connected GEMM"} <= set(events["op"])
    # The kernels themselves say which arithmetic ran: float in fp32, int8 (QC8/QS8) in int8.
    assert all("F32" in k for k in fp32.loc[fp32["op"] == "Convolution IGEMM", "kernel"])
    assert all("QC8" in k for k in int8.loc[int8["op"] == "Convolution IGEMM", "kernel"])
    assert "Convert" in set(int8["op"]) and "Convert" not in set(fp32["op"])


def test_the_python_runtime_traces_the_same_ops(tiny, tmp_path):
    native_ops = set(read_trace_ops(tmp_path / "native", tiny["int8"], LocalDevice(backend="native-runner")))
    python_ops = set(read_trace_ops(tmp_path / "python", tiny["int8"], LocalDevice(backend=PYTHON_BACKEND)))
    assert python_ops == native_ops


def read_trace_ops(folder: Path, artifact, device: LocalDevice) -> list[str]:
    host_runner()
    folder.mkdir()
    return traced(folder, artifact, device, iterations=3)["op"].tolist()


def test_ops_left_outside_xnnpack_are_named_from_the_etrecord(tmp_path):
    """tiny_transformer's layer norms run on ExecuTorch's own kernels, beside its XNNPACK calls."""
    host_runner()
    spec = resolve("tiny_transformer")
    bundle = spec.load()
    artifact = build_artifact(spec, bundle, parse_variant("fp32"))
    assert artifact.etrecord is not None and artifact.manifest["etrecord"] == artifact.etrecord.name
    inputs = write_inputs(tmp_path / "tokens.pbtf", [[t.numpy() for t in bundle.eval_inputs[0]]])
    trace = tmp_path / "t.etdp"
    report = LocalDevice(backend="native-runner").benchmark(
        BenchJob(pte=artifact.path, inputs=inputs, warmup=1, iterations=3, etdump=trace)
    )
    assert report.ok, report.error
    events = read_trace(trace, artifact.etrecord)
    summary, table = summarize(events), op_table(events)
    outside = set(table.loc[table["where"] == OUTSIDE, "op"])
    assert "native_layer_norm" in outside
    assert summary.outside_ms > 0 and summary.delegated_ms > 0
    assert summary.delegated_ms + summary.outside_ms <= summary.execute_ms


# -- through the CLI ---------------------------------------------------------------------------


def test_bench_profile_shows_where_the_time_goes_and_keeps_the_traces(tmp_path, monkeypatch):
    from pocketbench.cli import app
    from pocketbench.results.store import read_profiles
    from typer.testing import CliRunner

    monkeypatch.setenv("POCKETBENCH_RUNNER", str(host_runner()))
    args = ["bench", "--model", "digits_cnn", "--variants", "fp32,int8-dynamic", "--iterations", "5"]
    args += ["--repetitions", "1", "--profile", "--profile-iterations", "5", "--device", "local"]
    results = tmp_path / "results"
    result = CliRunner().invoke(app, [*args, "--results", str(results), "--json"])
    assert result.exit_code == 0, result.stderr
    import json

    run = json.loads(result.stdout)
    folder = Path(run["results_dir"])
    for row in run["rows"]:
        assert row["profile_note"] is None
        assert 0 < row["profile_delegated_ms"] <= row["profile_execute_ms"]
        assert (folder / row["profile_trace"]).stat().st_size > 0
    assert set(read_profiles(folder)["variant"]) == {"fp32", "int8-dynamic"}
    shown = " ".join(result.stderr.split())
    assert "per-op profile: digits_cnn on local" in shown and "why: int8-dynamic" in shown
    # A saved run shows its profile again.
    again = CliRunner().invoke(app, ["report", str(folder)])
    assert again.exit_code == 0 and "why: int8-dynamic" in " ".join(again.stdout.split())
    markdown = CliRunner().invoke(app, ["report", str(folder), "--format", "md"])
    assert "### per-op profile: digits\\_cnn on local" in markdown.stdout
    assert "| op | where | fp32 ms | int8-dynamic ms (Δ) |" in markdown.stdout
    assert "- why: int8-dynamic" in markdown.stdout
    page = tmp_path / "report.html"
    assert CliRunner().invoke(app, ["report", str(folder), "--format", "html", "--out", str(page)]).exit_code == 0
    assert "<h2>per-op profile: digits_cnn on local" in page.read_text() and "<li>why: int8-dynamic" in page.read_text()
