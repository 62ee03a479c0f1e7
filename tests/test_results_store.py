import pytest
from pocketbench.errors import PocketbenchError
from pocketbench.results.store import COLUMNS, RunStore, load_run, resolve_run


def _row(store, variant, **extra):
    return {"run_id": store.run_id, "model": "m", "variant": variant, "device": "local", "status": "ok", **extra}


def test_cells_are_on_disk_before_the_run_finishes(tmp_path):
    store = RunStore(tmp_path)
    store.write_manifest({}, {})
    store.write_cell(_row(store, "fp32", size_bytes=100, latency_p50_ms=2.0, latency_samples_ms=[2.0, 2.1]))
    # A run killed now still loads, from its cells.
    frame, _, _ = load_run(store.run_id, tmp_path)
    assert list(frame["variant"]) == ["fp32"] and list(frame["latency_samples_ms"][0]) == [2.0, 2.1]


def test_relative_columns_are_against_the_same_models_fp32(tmp_path):
    store = RunStore(tmp_path)
    store.write_manifest({}, {})
    store.write_cell(_row(store, "fp32", size_bytes=100, latency_p50_ms=2.0, accuracy=0.9))
    store.write_cell(_row(store, "int8", size_bytes=25, latency_p50_ms=1.0, accuracy=0.88))
    frame = store.finish()
    int8 = frame[frame["variant"] == "int8"].iloc[0]
    assert int8["size_ratio_vs_fp32"] == 0.25 and int8["speedup_vs_fp32"] == 2.0
    assert int8["accuracy_vs_fp32_points"] == pytest.approx(-2.0)
    assert list(frame.columns[: len(COLUMNS)]) == COLUMNS


def test_a_run_folder_is_never_reused(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(PocketbenchError, match="never overwritten"):
        RunStore(tmp_path, run_id=store.run_id)


def test_unknown_run_names_the_folder(tmp_path):
    with pytest.raises(PocketbenchError, match="no run 'nope'"):
        resolve_run("nope", tmp_path)
    with pytest.raises(PocketbenchError, match="no runs"):
        resolve_run("latest", tmp_path)
