"""Real export and run of digits_cnn in all three variants on the local device."""

import numpy as np
import pandas as pd
import pytest
from pocketbench.compress.recipe import parse_variant
from pocketbench.lower.export import build_artifact
from pocketbench.models.registry import resolve
from pocketbench.results.store import load_run


def _row(frame: pd.DataFrame, variant: str) -> pd.Series:
    (index,) = frame.index[frame["variant"] == variant]
    return frame.loc[index]


def test_every_variant_is_measured(digits_sweep):
    failures, frame, _ = digits_sweep
    assert failures == 0
    assert list(frame["variant"]) == ["fp32", "int8", "int8-dynamic"]
    assert (frame["status"] == "ok").all()
    # The default protocol: at least 3 fresh runner processes per cell × 20 samples, more until the
    # p50's CI is within ±2 % or the (short, here) budget is spent; samples kept with their process.
    assert (frame["repetitions"] >= 3).all() and (frame["iterations"] == 20 * frame["repetitions"]).all()
    assert set(frame["repetitions_stop"]) <= {"ci_target", "budget", "max_processes"}
    assert (frame["repetitions_target_met"] == (frame["latency_p50_ci_halfwidth"] <= 0.02)).all()
    for _, row in frame.iterrows():
        n = row["repetitions"]
        assert len(row["latency_samples_ms"]) == 20 * n and min(row["latency_samples_ms"]) > 0
        assert sorted(set(row["samples_repetition"])) == list(range(n))
        # digits_cnn's calls take µs: each sample is a calibrated batch of ≥ 2 calls, tails are of batches.
        assert row["batch_calls"] >= 2 and row["latency_tails_from_batches"]
        assert len(row["samples_batch_calls"]) == n and min(row["samples_batch_calls"]) >= 2
        per_call = np.repeat(row["samples_batch_calls"], 20) * np.asarray(row["latency_samples_ms"])
        np.testing.assert_allclose(per_call, row["latency_batches_ms"], rtol=1e-3)
    assert (frame["latency_p90_ms"] >= frame["latency_p50_ms"]).all()
    assert (frame["latency_p50_ci_low_ms"] <= frame["latency_p50_ms"]).all()
    assert (frame["latency_p50_ms"] <= frame["latency_p50_ci_high_ms"]).all()


def test_memory_energy_and_thermal_columns_on_this_vm(digits_sweep):
    _, frame, _ = digits_sweep
    assert (frame["peak_rss_swap_kb"] >= frame["peak_rss_kb"]).all()
    assert (frame["rss_delta_kb"] > 0).all()
    # This VM has no RAPL, no battery, no thermal zones: said so, never a number.
    assert frame["energy_mj_per_inference"].isna().all()
    assert all(note.startswith("not available: ") and "RAPL" in note for note in frame["energy_status"])
    assert frame["throttled"].isna().all() or not frame["throttled"].any()


def test_int8_accuracy_is_real_and_within_two_points_of_fp32(digits_sweep):
    _, frame, _ = digits_sweep
    fp32, int8 = _row(frame, "fp32"), _row(frame, "int8")
    assert fp32["accuracy"] > 0.9  # trained on real digits, scored on the held-out split
    assert abs(int8["accuracy"] - fp32["accuracy"]) <= 0.02
    assert int8["accuracy_vs_fp32_points"] == pytest.approx(100 * (int8["accuracy"] - fp32["accuracy"]))


def test_int8_fidelity_and_size_against_fp32(digits_sweep):
    _, frame, _ = digits_sweep
    fp32, int8 = _row(frame, "fp32"), _row(frame, "int8")
    assert int8["sqnr_db"] > 20
    assert fp32["sqnr_db"] > 60  # the fp32 .pte reproduces the eager model
    assert int8["size_bytes"] < 0.35 * fp32["size_bytes"]
    assert int8["size_ratio_vs_fp32"] == pytest.approx(int8["size_bytes"] / fp32["size_bytes"])
    assert 0.5 < int8["delegated_fraction"] <= 1.0


def test_recipe_is_stored_with_every_row(digits_sweep):
    _, frame, _ = digits_sweep
    recipe = _row(frame, "int8-dynamic")["recipe"]
    assert '"scheme": "int8-dynamic"' in recipe and '"_type": "Quantize"' in recipe


def test_saved_parquet_round_trips_to_the_same_frame(digits_sweep):
    _, frame, store = digits_sweep
    loaded, manifest, _ = load_run(store.run_id, store.root)
    pd.testing.assert_frame_equal(loaded, frame)
    assert manifest["run_id"] == store.run_id and manifest["versions"] == {}


def test_second_build_reuses_the_cached_artifact(digits_sweep):
    _, frame, _ = digits_sweep
    spec = resolve("digits_cnn")
    artifact = build_artifact(spec, spec.load(), parse_variant("int8"))
    assert artifact.reused
    assert artifact.sha256 == _row(frame, "int8")["artifact_sha256"]
    assert artifact.manifest["recipe"] == parse_variant("int8").to_dict()
    assert artifact.manifest["versions"]["executorch"] == "1.5.1"
