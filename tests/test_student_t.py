"""The standard-library t quantile gives what scipy.stats.t.ppf gives (scipy is the reference)."""

from __future__ import annotations

import pytest
from pocketbench.student_t import student_t_quantile
from scipy.stats import t

PROBABILITIES = (0.025, 0.1, 0.5, 0.6, 0.9, 0.95, 0.975, 0.99, 0.995, 0.9995, 0.99995)


@pytest.mark.parametrize("freedom", [1, 2, 3, 4, 5, 6, 7, 10, 29, 30, 100, 364, 999])
def test_matches_scipy(freedom):
    for probability in PROBABILITIES:
        assert student_t_quantile(probability, freedom) == pytest.approx(
            float(t.ppf(probability, freedom)), rel=1e-11, abs=1e-15
        ), probability


@pytest.mark.parametrize(("probability", "freedom"), [(0.0, 3), (1.0, 3), (0.9, 0), (0.9, 2.5)])
def test_refuses_what_has_no_quantile(probability, freedom):
    with pytest.raises(ValueError):
        student_t_quantile(probability, freedom)
