"""Student's t quantiles for whole degrees of freedom, exact, in the standard library.

Confidence intervals and prediction bands need t.ppf for a handful of (probability, freedom)
pairs; importing scipy.stats for them costs more than everything else a report or a night of
verdicts does. For whole degrees of freedom the t distribution's CDF is a finite sum
(Abramowitz & Stegun 26.7.3-4), so the quantile is found to machine precision by Newton's method
on that sum, started from the normal quantile.
"""

from __future__ import annotations

import math
from functools import cache
from statistics import NormalDist

_ITERATIONS = 200


def _central(x: float, freedom: int) -> float:
    """P(|T| ≤ x) for x ≥ 0: the A&S finite sum in θ = atan(x / √ν)."""
    theta = math.atan(x / math.sqrt(freedom))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if freedom % 2:  # odd: (2/π)(θ + sin θ cos θ (1 + 2/3 cos² θ + 2·4/(3·5) cos⁴ θ + …))
        if freedom == 1:
            return 2.0 * theta / math.pi
        term, total = 1.0, 1.0
        for k in range(2, freedom - 1, 2):
            term *= cos2 * k / (k + 1)
            total += term
        return 2.0 / math.pi * (theta + sin * math.sqrt(cos2) * total)
    term, total = 1.0, 1.0  # even: sin θ (1 + 1/2 cos² θ + 1·3/(2·4) cos⁴ θ + …)
    for k in range(1, freedom - 2, 2):
        term *= cos2 * k / (k + 1)
        total += term
    return sin * total


def _density(x: float, freedom: int) -> float:
    v = float(freedom)
    log = math.lgamma((v + 1) / 2) - math.lgamma(v / 2) - 0.5 * math.log(v * math.pi)
    return math.exp(log - (v + 1) / 2 * math.log1p(x * x / v))


@cache
def student_t_quantile(probability: float, freedom: int) -> float:
    """The `probability` quantile of Student's t with `freedom` (a whole number ≥ 1) degrees of
    freedom: what scipy.stats.t.ppf gives, to a few ulps."""
    if freedom < 1 or int(freedom) != freedom:
        raise ValueError(f"degrees of freedom must be a whole number ≥ 1, not {freedom}")
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must be between 0 and 1, not {probability}")
    if probability < 0.5:
        return -student_t_quantile(1.0 - probability, freedom)
    target = 2.0 * probability - 1.0  # P(|T| ≤ x)
    x = NormalDist().inv_cdf(probability)  # below the t quantile: the CDF is concave there, so
    for _ in range(_ITERATIONS):  # Newton climbs to the root from below without overshooting
        step = (target - _central(x, int(freedom))) / (2.0 * _density(x, int(freedom)))
        x += step
        if abs(step) <= 4 * math.ulp(x):
            break
    return x
