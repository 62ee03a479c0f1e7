"""Recovery after pruning on the real digits model: batch-norm recalibration, the measured
sensitivity pass and its budget, the learning-rate schedule, and the meanstd observer's k = "auto"."""

import itertools

import pytest
import torch
from pocketbench.compress import pipeline
from pocketbench.compress.channel_budget import allocate
from pocketbench.compress.observers import RangeObserver, fake_quantize
from pocketbench.compress.pipeline import CompressionError, apply_recipe, recovery_note
from pocketbench.compress.recipe import ChannelPrune, Distill, Recalibrate, Recipe, parse_variant
from pocketbench.compress.training import lr_factor
from pocketbench.lower.export import weights_digest
from pocketbench.models.registry import resolve
from torch import nn


@pytest.fixture(scope="module")
def digits():
    return resolve("digits_cnn").load()


def _accuracy(bundle, module):
    with torch.no_grad():
        return bundle.score([module(*inputs) for inputs in bundle.eval_inputs])


# Half the stem's channels, nothing else: what the next batch-norm sees changes, the weights that
# are left do not, so new statistics alone should bring most of the accuracy back.
STEM_HALF = ChannelPrune(
    ratio=0.5, protect_ends=False, ratios={"features.0": 0.5, "features.3": 0.0, "classifier.1": 0.0}
)


def test_recalibration_restores_most_of_a_pruned_digits_cnns_lost_accuracy_without_training(digits):
    fp32 = _accuracy(digits, digits.module)
    pruned = apply_recipe(digits, Recipe("pruned", (STEM_HALF,)))
    recalibrated = apply_recipe(digits, Recipe("recalibrated", (STEM_HALF, Recalibrate())))
    assert pruned.stats["channel_prune_ratios"]["features.0"] == 0.5
    lost = fp32 - _accuracy(digits, pruned.module)
    assert lost > 0.04  # the pruning really hurt
    regained = _accuracy(digits, recalibrated.module) - _accuracy(digits, pruned.module)
    assert regained > 0.6 * lost
    (outcome,) = recalibrated.stats["recalibration"]
    assert outcome.startswith("yes")
    assert weights_digest(pruned.module) != weights_digest(recalibrated.module)


def test_recalibration_keeps_statistics_that_were_set_on_purpose():
    """A batch-norm whose running variance holds a folded eps is not described by batch statistics:
    the measured check keeps its statistics, and says so."""
    from tests.test_compression_steps import _folded_batchnorm_bundle

    bundle = _folded_batchnorm_bundle()
    before = weights_digest(bundle.module)
    result = apply_recipe(bundle, Recipe("r", (Recalibrate(batches=8),)))
    (outcome,) = result.stats["recalibration"]
    assert outcome.startswith("no, kept the previous statistics")
    assert weights_digest(result.module) == before
    unchecked = apply_recipe(bundle, Recipe("u", (Recalibrate(batches=8, check=False),)))
    assert weights_digest(unchecked.module) != before


def test_recalibrating_a_model_without_batch_norm_is_a_recorded_no_op():
    x = torch.ones(1, 4)
    from pocketbench.models.registry import ModelBundle

    bundle = ModelBundle(module=nn.Linear(4, 2).eval(), example_inputs=(x,), calibration=lambda: [(x,)], eval_inputs=[])
    result = apply_recipe(bundle, Recipe("r", (Recalibrate(),)))
    assert result.stats["recalibration"] == ["no batch-norm"]


def test_the_stem_and_the_classifier_keep_their_channels_by_default(digits):
    result = apply_recipe(digits, Recipe("p", (ChannelPrune(ratio=0.5),)))
    module = result.module
    assert module.features[0].out_channels == digits.module.features[0].out_channels
    assert module.classifier[3].out_features == 10
    assert module.features[3].out_channels < digits.module.features[3].out_channels
    assert set(result.stats["channel_prune_ratios"]) == {"features.3", "classifier.1"}


def test_per_group_ratios_by_name_and_unknown_names_are_clear(digits):
    result = apply_recipe(digits, Recipe("p", (ChannelPrune(ratio=0.5, round_to=1, ratios={"classifier.1": 0.25}),)))
    assert result.module.classifier[1].out_features == 200 - 50
    assert result.module.features[3].out_channels == 32
    with pytest.raises(
        CompressionError, match=r"^channel_prune: ratios name features\.9, .* groups are classifier\.1, features\.3"
    ):
        apply_recipe(digits, Recipe("bad", (ChannelPrune(ratios={"features.9": 0.5}),)))


def test_sensitivity_pass_gives_fragile_groups_less_and_keeps_the_budget(digits):
    step = ChannelPrune(ratio=0.5, allocation="sensitivity", max_ratio=0.8)
    result = apply_recipe(digits, Recipe("s", (step,)))
    sensitivity, ratios = result.stats["channel_sensitivity_db"], result.stats["channel_prune_ratios"]
    assert set(sensitivity) == set(ratios) == {"features.3", "classifier.1"}
    fragile, robust = sorted(sensitivity, key=sensitivity.get)
    assert sensitivity[fragile] < sensitivity[robust] and ratios[fragile] < ratios[robust] <= 0.8


def test_budget_allocation_is_proportional_capped_and_keeps_the_weighted_mean():
    sensitivity = {"a": (10.0, 100), "b": (20.0, 100), "c": (40.0, 200)}
    ratios = allocate(sensitivity, budget=0.5, cap=0.7)
    assert ratios["a"] < ratios["b"] < ratios["c"] == pytest.approx(0.7)
    mean = (100 * ratios["a"] + 100 * ratios["b"] + 200 * ratios["c"]) / 400
    assert mean == pytest.approx(0.5, abs=1e-6)
    assert ratios["b"] == pytest.approx(2 * ratios["a"])


def test_learning_rate_warms_up_then_decays_along_a_cosine_to_zero():
    step = Distill(warmup=0.1)
    factors = [lr_factor(step, done, 100) for done in range(100)]
    assert factors[0] < factors[5] < factors[9] <= 1.0
    assert factors[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))
    assert factors[55] == pytest.approx(0.5, abs=0.02) and factors[-1] < 0.01
    assert {lr_factor(Distill(schedule="constant", warmup=0.0), d, 100) for d in range(100)} == {1.0}


def test_pruning_without_recovery_training_carries_a_note_naming_the_recovery_recipe():
    assert "`prune50+distill`" in recovery_note(parse_variant("prune50"))
    assert "`sparse50+distill+int8`" in recovery_note(parse_variant("sparse50+int8"))
    assert recovery_note(parse_variant("prune50+distill+int8")) == ""
    assert recovery_note(parse_variant("int8")) == ""


def _quantization_mse(observer: RangeObserver, x: torch.Tensor) -> float:
    scale, zero = observer.calculate_qparams()
    return float(((fake_quantize(x, scale, zero, observer.quant_min, observer.quant_max) - x) ** 2).mean())


def _mse_for(k, observed: torch.Tensor, held_out: torch.Tensor) -> float:
    observer = RangeObserver(method="meanstd", k=k, quant_min=-128, quant_max=127)
    observer(observed)
    return _quantization_mse(observer, held_out)


def _digits_activation(digits) -> torch.Tensor:
    """The real post-ReLU input of digits_cnn's classifier, over its calibration images."""
    seen = []
    handle = digits.module.classifier[2].register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    try:
        with torch.no_grad():
            for (x,) in digits.calibration():
                digits.module(x)
    finally:
        handle.remove()
    return torch.cat(seen).reshape(-1)


@pytest.mark.parametrize("source", ["gaussian", "laplace", "digits activation"])
def test_auto_k_clips_with_less_error_than_k_2_on_values_it_did_not_see(source, digits):
    generator = torch.Generator().manual_seed(0)
    if source == "gaussian":
        values = torch.randn(200_000, generator=generator) * 1.5 + 0.3
    elif source == "laplace":
        values = torch.distributions.Laplace(0.0, 1.0).sample((200_000,))
    else:
        values = _digits_activation(digits)
        values = values[torch.randperm(len(values), generator=generator)]
    observed, held_out = values[: len(values) // 2], values[len(values) // 2 :]
    auto, two = _mse_for("auto", observed, held_out), _mse_for(2.0, observed, held_out)
    assert auto <= two
    if source != "digits activation":
        assert auto < 0.1 * two  # k = 2 clips 5 % of a Gaussian: far worse than rounding


def test_auto_k_finds_acias_optimum_for_a_gaussian_and_wider_for_a_laplace():
    """ACIQ (Banner et al.): for 8 bits the best clipping is ≈ 3.9 σ for a Gaussian, ≈ 7 σ for a Laplace."""
    generator = torch.Generator().manual_seed(1)
    found = {}
    for name, values in {
        "gaussian": torch.randn(400_000, generator=generator),
        "laplace": torch.distributions.Laplace(0.0, 1.0).sample((400_000,)),
    }.items():
        observer = RangeObserver(method="meanstd", k="auto", quant_min=-128, quant_max=127)
        observer(values)
        observer.calculate_qparams()
        assert observer.chosen_k is not None
        found[name] = float(observer.chosen_k)
    assert 3.0 <= found["gaussian"] <= 4.75
    assert 5.0 <= found["laplace"] <= 10.0


@pytest.mark.slow
def test_recovery_beats_no_recovery_and_training_is_deterministic(digits):
    prune = ChannelPrune(ratio=0.6)
    none = apply_recipe(digits, Recipe("none", (prune,)))
    recipe = Recipe("recovered", (prune, Recalibrate(), Distill(epochs=2, lr=3e-3), Recalibrate()))
    recovered = apply_recipe(digits, recipe)
    assert _accuracy(digits, recovered.module) > _accuracy(digits, none.module) + 0.01
    assert _accuracy(digits, recovered.module) >= _accuracy(digits, digits.module) - 0.02
    pipeline._PREFIXES.clear()  # train again from scratch, not from the pipeline's reuse
    again = apply_recipe(digits, recipe)
    assert weights_digest(again.module) == weights_digest(recovered.module)


@pytest.mark.training  # three distillations of digits_cnn
def test_distillation_takes_the_rate_a_model_states_for_recovery_else_the_default(digits):
    import copy
    import dataclasses

    # Its own module: finished steps are reused per module, and a module belongs to one bundle.
    module = copy.deepcopy(digits.module)
    stated = dataclasses.replace(digits, module=module, extra={**digits.extra, "recovery_lr": 5e-4})
    recipe = Recipe("short", (Distill(epochs=1),))
    assert apply_recipe(stated, recipe).stats["distill_lr"] == 5e-4
    assert apply_recipe(digits, recipe).stats["distill_lr"] == Distill.DEFAULT_LR
    assert apply_recipe(stated, Recipe("given", (Distill(epochs=1, lr=2e-3),))).stats["distill_lr"] == 2e-3
