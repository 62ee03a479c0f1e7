"""Every step type round-trips; invalid recipes and sweep files fail with one clear line."""

import dataclasses

import pytest
from pocketbench.compress.recipe import (
    STEP_TYPES,
    ChannelPrune,
    Distill,
    Prune,
    Quantize,
    QuantizeAwareTraining,
    Recalibrate,
    Recipe,
    RecipeError,
    Step,
    parse_variant,
)
from pocketbench.compress.sweepfile import STEP_KINDS, build_step, load_sweep

# A non-default instance of every step type: the test below fails when a new type is missing.
EXAMPLES = {
    "Quantize": {"scheme": "int8", "per_channel": False, "observer": "meanstd", "k": 3.0, "keep_fp32": 2},
    "QuantizeAwareTraining": {"steps": 10, "lr": 5e-4, "seed": 3, "batch_norm_steps": 4},
    "Int4Weights": {"group_size": 64},
    "Prune": {"criterion": "gradient", "sparsity": None, "threshold": 0.01, "batches": 2},
    "ChannelPrune": {
        "ratio": 0.25,
        "round_to": 4,
        "allocation": "sensitivity",
        "ratios": {"features.3": 0.5},
        "protect_ends": False,
        "max_ratio": 0.6,
        "sensitivity_batches": 3,
    },
    "Distill": {
        "temperature": 2.0,
        "alpha": 0.5,
        "epochs": 1,
        "lr": 1e-4,
        "seed": 7,
        "student": "digits_cnn",
        "schedule": "constant",
        "warmup": 0.2,
        "weight_decay": 1e-4,
        "batch_norm": "frozen",
        "input_scale": 0.5,
    },
    "Recalibrate": {"batches": 4, "check": False},
}


@pytest.mark.parametrize("type_name", sorted(STEP_TYPES))
def test_every_step_type_round_trips_through_dict_json_and_sweep_file_fields(type_name):
    cls = STEP_TYPES[type_name]
    for step in (cls(), cls(**EXAMPLES[type_name])):
        assert Step.from_dict(step.to_dict()) == step
        recipe = Recipe("v", (step,))
        assert Recipe.from_json(recipe.to_json()) == recipe
        fields = {k: v for k, v in dataclasses.asdict(step).items() if v is not None}
        assert build_step({"type": cls.KIND, **fields}, "test") == step
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.seed = 1  # type: ignore[misc]


def test_a_stored_v1_qat_step_reads_as_what_it_ran_batch_statistics_every_step():
    stored = {
        "_type": "QuantizeAwareTraining",
        "_version": 1,
        "_data": {"per_channel": True, "steps": 30, "lr": 1e-4, "seed": 0},
    }
    assert Step.from_dict(stored) == QuantizeAwareTraining(steps=30, batch_norm_steps=30)
    with pytest.raises(RecipeError, match="v3 cannot be read by v2"):
        Step.from_dict({**stored, "_version": 3})


def test_stored_v1_pruning_and_distillation_read_as_what_they_ran():
    """v1 pruned every group uniformly, the stem included, and distilled with Adam at a constant rate
    with batch-norm frozen: stored results keep saying so."""
    prune = Step.from_dict({"_type": "ChannelPrune", "_version": 1, "_data": {"ratio": 0.5, "round_to": 8}})
    assert prune == ChannelPrune(ratio=0.5, allocation="uniform", protect_ends=False)
    old = {"temperature": 4.0, "alpha": 0.7, "epochs": 3, "lr": 1e-3, "seed": 0, "student": ""}
    distill = Step.from_dict({"_type": "Distill", "_version": 1, "_data": old})
    assert distill == Distill(**old, schedule="constant", warmup=0.0, batch_norm="frozen")
    assert Recipe.from_json(Recipe("prune50", (prune, distill)).to_json()).steps == (prune, distill)


def test_every_step_type_has_a_sweep_file_name():
    assert set(STEP_KINDS.values()) == set(STEP_TYPES.values())


def test_named_variants_build_the_documented_recipes():
    sensitive = ChannelPrune(ratio=0.5, allocation="sensitivity")
    assert parse_variant("prune50+distill+int8").steps == (
        sensitive,
        Recalibrate(),
        Distill(),
        Recalibrate(),
        Quantize(),
    )
    assert parse_variant("prune50-uniform").steps == (ChannelPrune(ratio=0.5), Recalibrate())
    assert parse_variant("prune50+recalibrate").steps == (sensitive, Recalibrate())  # not twice in a row
    assert parse_variant("sparse75-grad").steps == (Prune(criterion="gradient", sparsity=0.75), Recalibrate())
    assert parse_variant("int8-meanstd").steps == (Quantize(observer="meanstd", k=2.0),)
    assert parse_variant("int8-meanstd-auto").steps == (Quantize(observer="meanstd", k="auto"),)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ChannelPrune(ratio=1.5), r"channel_prune: ratio must be in \(0, 1\), got 1.5"),
        (lambda: Prune(sparsity=1.5), r"prune: sparsity must be in \(0, 1\), got 1.5"),
        (lambda: Prune(sparsity=0.5, threshold=0.1), "exactly one of sparsity"),
        (lambda: Quantize(observer="vibes"), r"observer 'vibes' is not one of minmax, moving-average"),
        (lambda: Quantize(observer="meanstd", k=0), "k must be positive"),
        (lambda: Quantize(observer="meanstd", k="wide"), r"k must be positive .* or \"auto\", got 'wide'"),
        (lambda: ChannelPrune(allocation="vibes"), "allocation 'vibes' is not one of uniform, sensitivity"),
        (lambda: ChannelPrune(ratios={"a": 1.0}), r"ratios must map layer names to ratios in \[0, 1\)"),
        (lambda: ChannelPrune(ratio=0.5, max_ratio=0.4), r"max_ratio must be in \[ratio, 1\)"),
        (lambda: Distill(schedule="linear"), "schedule 'linear' is not one of cosine, constant"),
        (lambda: Distill(batch_norm="maybe"), "batch_norm 'maybe' is not one of auto, train, frozen"),
        (lambda: Distill(warmup=1.0), r"warmup must be a share of the steps in \[0, 1\)"),
        (lambda: Recalibrate(batches=0), "recalibrate: batches must be at least 1"),
        (lambda: Quantize(scheme="int8-dynamic", observer="histogram"), "observer applies only to scheme int8"),
        (lambda: Distill(alpha=1.2), r"alpha must be in \[0, 1\]"),
        (lambda: QuantizeAwareTraining(steps=10, batch_norm_steps=11), r"batch_norm_steps must be in \[0, steps=10\]"),
        (lambda: parse_variant("int8+prune50"), "ChannelPrune must come before quantization"),
        (lambda: parse_variant("int8+w4"), "quantize appears more than once"),
        (lambda: parse_variant("prune150"), "unknown variant 'prune150'"),
    ],
)
def test_invalid_recipes_are_clear_errors(build, message):
    with pytest.raises(RecipeError, match=message):
        build()


def _sweep(tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return load_sweep(path)


def test_sweep_file_defines_named_variants_by_tokens_or_steps(tmp_path):
    loaded = _sweep(
        tmp_path,
        """
models = ["digits_cnn"]
[variants]
small = "prune50+distill+int8"
[variants.int8-k3]
steps = [{ type = "quantize", observer = "meanstd", k = 3 }]
[variants.sparse-theta]
steps = [{ type = "prune", criterion = "magnitude", threshold = 0.02 }, { type = "distill", alpha = 0.0, epochs = 1 }]
""",
    )
    assert loaded.models == ["digits_cnn"]
    small, k3, theta = loaded.variants
    assert small == Recipe("small", parse_variant("prune50+distill+int8").steps)
    assert k3.steps == (Quantize(observer="meanstd", k=3.0),)
    assert theta.steps == (Prune(threshold=0.02), Distill(alpha=0.0, epochs=1))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[variants.a]\nsteps = [{ type = "channel_prune", ratio = 1.5 }]',
            r"variant 'a' step 1: channel_prune: ratio",
        ),
        ('[variants.a]\nsteps = [{ type = "quantize", obsrver = "minmax" }]', "unknown field 'obsrver'; fields are"),
        ('[variants.a]\nsteps = [{ type = "quantize", k = true }]', "field 'k' = True is not a float or str"),
        ('[variants.a]\nsteps = [{ type = "quantize", k = "two" }]', r"k must be positive .* got 'two'"),
        (
            '[variants.a]\nsteps = [{ type = "channel_prune", ratios = { "x" = "half" } }]',
            "field 'ratios' = {'x': 'half'} is not a table of str → float",
        ),
        ('[variants.a]\nsteps = [{ type = "quantize", per_channel = 1 }]', "field 'per_channel' = 1 is not a bool"),
        ('[variants.a]\nsteps = [{ type = "teleport" }]', "type 'teleport' is not one of channel_prune, distill"),
        ('[variants.a]\nsteps = [{ type = "quantize", observer = "vibes" }]', "observer 'vibes'"),
        ('[variants]\na = "int9"', "variant 'a': unknown variant 'int9'"),
        ("[variants]\n", r"needs a \[variants\] table"),
        ('model = ["x"]\n[variants]\na = "int8"', "unknown top-level key"),
        ("[variants\n", "not valid TOML"),
    ],
)
def test_invalid_sweep_files_name_the_variant_step_and_field(tmp_path, body, message):
    with pytest.raises(RecipeError, match=message):
        _sweep(tmp_path, body)


def test_recipes_round_trip_through_sweep_files(tmp_path):
    """Every token recipe, and one with every new field set, written as a sweep file and read back."""
    from pocketbench.compress.sweepfile import sweep_text

    recipes = [parse_variant(name) for name in ("prune50+distill+int8", "sparse50+finetune", "int8-meanstd-auto")]
    recipes.append(
        Recipe(
            "custom", tuple(STEP_TYPES[name](**EXAMPLES[name]) for name in ("ChannelPrune", "Recalibrate", "Distill"))
        )
    )
    path = tmp_path / "sweep.toml"
    path.write_text(sweep_text(recipes, ["digits_cnn"]))
    loaded = load_sweep(path)
    assert loaded.models == ["digits_cnn"] and loaded.variants == recipes


def test_sweep_files_take_per_group_ratios_and_auto_k(tmp_path):
    loaded = _sweep(
        tmp_path,
        """
[variants.careful]
steps = [
  { type = "channel_prune", ratio = 0.4, allocation = "sensitivity", ratios = { "features.3" = 0 } },
  { type = "recalibrate", batches = 8 },
  { type = "distill", epochs = 8, batch_norm = "frozen" },
  { type = "quantize", observer = "meanstd", k = "auto" },
]
""",
    )
    (careful,) = loaded.variants
    prune = careful.steps[0]
    assert isinstance(prune, ChannelPrune) and prune.ratios == {"features.3": 0.0}
    assert careful.steps[1:] == (
        Recalibrate(batches=8),
        Distill(epochs=8, batch_norm="frozen"),
        Quantize(observer="meanstd", k="auto"),
    )
