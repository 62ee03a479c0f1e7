import math
from dataclasses import replace

import numpy as np
import pytest
from pocketbench.measure.fidelity import fidelity
from pocketbench.measure.rows import LATENCY_FIGURES, latency_columns
from pocketbench.runner.process import failed_report
from pocketbench.runner.schema import RunnerStatus
from pocketbench.stats import sqnr_db


def _timed(samples_ns):
    """A finished runner report holding `samples_ns` (one process)."""
    return replace(failed_report(RunnerStatus.OK, "", "python-runtime"), error=None, iterations_ns=samples_ns)


def test_latency_columns_match_numpy_on_fixed_samples():
    """The row's pooled figures, from the one summary (stats.summarize), over two processes."""
    first, second = [1_000_000, 2_000_000, 3_000_000], [4_000_000, 10_000_000, 5_000_000]
    columns = latency_columns([_timed(first), _timed(second)])
    ms = np.array(first + second) / 1e6
    assert columns["latency_p50_ms"] == pytest.approx(np.median(ms))
    assert columns["latency_p90_ms"] == pytest.approx(np.percentile(ms, 90))
    assert columns["latency_p99_ms"] == pytest.approx(np.percentile(ms, 99))
    assert columns["latency_mean_ms"] == pytest.approx(ms.mean())
    assert columns["latency_std_ms"] == pytest.approx(np.std(ms, ddof=1))
    assert columns["latency_min_ms"] == 1.0 and columns["latency_max_ms"] == 10.0
    assert columns["repetitions"] == 2 and columns["iterations"] == 6


def test_latency_columns_of_no_samples_are_empty_not_zero():
    columns = latency_columns([_timed([])])
    assert all(columns[k] is None for k in LATENCY_FIGURES)


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
