"""The screen's credit for distillation is learned from the study: a network that a prune leaves
at chance and distillation brings back is not screened out by a fixed guess."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from pocketbench.tune.goal import TuneSettings
from pocketbench.tune.trial import _recovery_credit


def _study(*recovered: float) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for points in recovered:
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                values=[99.0, 1.5],
                params={"prune_ratio": 0.5},
                distributions={"prune_ratio": CategoricalDistribution([0.5])},
                user_attrs={"recovered": points},
            )
        )
    return study


def test_the_credit_is_the_most_distillation_recovered_and_at_least_the_setting():
    settings = TuneSettings()
    assert _recovery_credit(_study(), settings) == settings.recovery_credit
    assert _recovery_credit(_study(5.0), settings) == settings.recovery_credit
    assert _recovery_credit(_study(12.0, 88.0), settings) == 88.0
