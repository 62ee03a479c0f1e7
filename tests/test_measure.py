import math

import numpy as np
import pytest
from pocketbench.measure.fidelity import fidelity
from pocketbench.measure.latency import latency_summary
from pocketbench.stats import sqnr_db


def test_latency_summary_matches_numpy_on_fixed_samples():
    samples_ns = [1_000_000, 2_000_000, 3_000_000, 4_000_000, 10_000_000]
    summary = latency_summary(samples_ns)
    ms = np.array(samples_ns) / 1e6
    assert summary["latency_p50_ms"] == pytest.approx(3.0)
    assert summary["latency_p90_ms"] == pytest.approx(np.percentile(ms, 90))
    assert summary["latency_mean_ms"] == pytest.approx(4.0)
    assert summary["latency_std_ms"] == pytest.approx(np.std(ms, ddof=1))
    assert summary["latency_min_ms"] == 1.0 and summary["latency_max_ms"] == 10.0


def test_latency_summary_of_no_samples_is_empty_not_zero():
    assert all(v is None for v in latency_summary([]).values())


def test_sqnr_of_a_tenth_amplitude_noise_is_20_db():
    signal = np.ones(1000)
    assert sqnr_db(signal, signal + 0.1) == pytest.approx(20.0)
    assert math.isinf(sqnr_db(signal, signal))


def test_fidelity_counts_argmax_agreement_per_sample():
    reference = [np.array([[0.1, 0.9]]), np.array([[0.8, 0.2]])]
    candidate = [np.array([[0.2, 0.8]]), np.array([[0.3, 0.7]])]
    result = fidelity(reference, candidate)
    assert result["top1_agreement"] == 0.5
    assert result["max_abs_error"] == pytest.approx(0.5)


def test_fidelity_refuses_mismatched_outputs():
    with pytest.raises(ValueError, match="matching"):
        fidelity([np.zeros(2)], [])
