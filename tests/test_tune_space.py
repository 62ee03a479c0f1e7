"""The search space and the search settings, without measuring anything (fast)."""

from __future__ import annotations

import pytest
from pocketbench.compress.recipe import (
    ChannelPrune,
    Distill,
    Int4Weights,
    Quantize,
    Recalibrate,
    RecipeError,
    parse_variant,
)
from pocketbench.compress.sweepfile import load_sweep
from pocketbench.measure.settings import SettingsError
from pocketbench.tune.goal import TuneSettings, parse_duration
from pocketbench.tune.space import SPACE, Space, narrow, recipe_from, recipe_key
from pocketbench.tune.trial import expected_seconds


def test_every_recipe_of_the_default_space_is_valid_and_named_uniquely():
    recipes = Space.default().enumerate()
    assert len({r.name for r in recipes}) == len(recipes) == len({recipe_key(r) for r in recipes})
    names = {r.name for r in recipes}
    assert {"tuned-fp32", "tuned-int8", "tuned-w4", "tuned-p50-d2-int8-histogram-k1", "tuned-p25-uniform"} <= names


def test_choices_become_the_steps_in_pipeline_order():
    recipe = recipe_from(
        {
            "prune_ratio": 0.5,
            "prune_allocation": "sensitivity",
            "distill_epochs": 2,
            "quantization": "int8",
            "observer": "meanstd-auto",
            "keep_fp32": 1,
        }
    )
    assert recipe.steps == (
        ChannelPrune(ratio=0.5, allocation="sensitivity"),
        Recalibrate(),  # recovery always recalibrates what pruning changed
        Distill(epochs=2),
        Recalibrate(),  # and what distillation changed, as the hand-written `distill` does
        Quantize(scheme="int8", observer="meanstd", k="auto", keep_fp32=1),
    )
    assert recipe.name == "tuned-p50-d2-int8-meanstd-auto-k1"
    # Dimensions that do not apply are ignored: no distillation without pruning, no observer for w4.
    assert recipe_from(
        {"prune_ratio": 0.0, "distill_epochs": 3, "quantization": "w4", "observer": "meanstd"}
    ).steps == (Int4Weights(),)


def test_a_tune_table_narrows_and_widens(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[tune]\nprune_ratio = [0, 0.3, 0.6]\nquantization = ["int8"]\n')
    space = narrow(load_sweep(path).tune, "x")
    assert space.choices["prune_ratio"] == (0.0, 0.3, 0.6)  # widened past the defaults
    assert space.choices["quantization"] == ("int8",)
    assert {type(s) for r in space.enumerate() for s in r.steps} <= {ChannelPrune, Recalibrate, Distill, Quantize}


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"pruning": [0.5]}, "'pruning' is not a dimension"),
        ({"prune_ratio": [1.5]}, "ratio must be in (0, 1)"),
        ({"prune_ratio": []}, "must be a non-empty list"),
        ({"quantization": ["int3"]}, "'int3' is not one of"),
        ({"observer": ["minmax", "minmax"]}, "names a choice twice"),
        ({"distill_epochs": ["two"]}, "choice 'two' is not a int"),
    ],
)
def test_a_bad_tune_table_is_one_line(table, says):
    with pytest.raises(RecipeError, match=None) as caught:
        narrow(table, "sweep file s.toml")
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_each_dimension_is_one_entry_with_its_own_label_and_patch():
    for dim in SPACE:
        for value in dim.choices:
            assert isinstance(dim.label(value), str)
            assert isinstance(dim.patch(value), dict)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"objective": "speed"}, "objective must be one of latency, energy, size"),
        ({"max_accuracy_drop": -1}, "max_accuracy_drop must be points in [0, 100]"),
        ({"max_size_mb": 0}, "max_size_mb must be a positive number"),
        ({"trials": 0}, "trials must be at least 1"),
        ({"storage": "redis://x"}, "storage must be an SQLAlchemy URL"),
        ({"storage": "postgresql://h/db"}, "study must be named with a shared storage"),
        ({"study": "../x"}, "study must be letters"),
    ],
)
def test_bad_search_settings_name_the_field(fields, says):
    with pytest.raises(SettingsError) as caught:
        TuneSettings(**fields)
    assert says in str(caught.value)


def test_durations():
    assert parse_duration("60m") == 3600 and parse_duration("1h30m") == 5400 and parse_duration("90") == 90
    for bad in ("5x", "m", "0s", "1h-2m"):
        with pytest.raises(Exception, match="--time"):
            parse_duration(bad)


@pytest.mark.parametrize("name", ["fp32", "int8", "int8-meanstd-auto", "w4", "prune50", "prune50+distill+int8"])
def test_the_compression_tables_recipes_are_points_of_the_space_step_for_step(name):
    """So a trial equal to a hand-written recipe reuses its artifact, and a search can start there."""
    chosen = Space.default().choices_of(parse_variant(name))
    assert chosen is not None and recipe_key(recipe_from(chosen)) == recipe_key(parse_variant(name))


def test_the_best_hand_written_recipe_pushed_further_prunes_more_with_the_same_recovery():
    space = Space.default()
    best = space.choices_of(parse_variant("prune50+distill+int8"))
    further = [recipe_from(c) for c in space.pushed_further(best)]
    assert [r.name for r in further] == ["tuned-p60-d3-int8", "tuned-p70-d3-int8"]
    assert [s for s in further[0].steps if not isinstance(s, ChannelPrune)] == [
        s for s in parse_variant("prune50+distill+int8").steps if not isinstance(s, ChannelPrune)
    ]
    # A recipe that did not prune is pushed into pruning with the hand-written recovery.
    int8 = space.pushed_further(space.choices_of(parse_variant("int8")), count=1)
    assert [recipe_from(c).name for c in int8] == ["tuned-p25-d3-int8"]
    narrow_space = narrow({"prune_ratio": [0.0, 0.5]}, "x")
    assert narrow_space.pushed_further(best) == []  # nothing further in this space


def test_a_trial_is_expected_to_take_as_long_as_the_like_ones_before_it():
    p60_d3, p25_d1 = (
        recipe_from({"prune_ratio": 0.6, "distill_epochs": 3}),
        recipe_from({"prune_ratio": 0.25, "distill_epochs": 1}),
    )
    int8 = recipe_from({"quantization": "int8"})
    assert expected_seconds(p60_d3, []) == 0  # nothing known: it is started
    timings = [(False, 0, 20.0), (True, 3, 540.0), (True, 3, 600.0)]
    assert expected_seconds(p60_d3, timings) == 600.0  # the longest alike
    assert expected_seconds(p25_d1, timings) == pytest.approx(200.0)  # scaled by epochs
    assert expected_seconds(int8, timings) == 20.0
