"""Recipes: named, serializable pipelines of compression steps.

Every step is a frozen dataclass validated on construction (RecipeError, a ValueError; never
assert) and serialized as `{"_type", "_version", "_data"}` so results store the full recipe
rather than a name to be parsed later. Variant names on the command line are `+`-joined step
tokens (`fp32`, `int8`, `prune50+distill+int8`, ...); each token maps to a step in `TOKENS`
(plus `pruneNN` / `sparseNN` / `sparseNN-grad` for any percentage NN).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from pocketbench.errors import PocketbenchError, shown

STEP_TYPES: dict[str, type[Step]] = {}


class RecipeError(PocketbenchError, ValueError):
    """A recipe or step that cannot be built as written."""


@dataclass(frozen=True)
class Step:
    """Base of every compression step. Subclasses are frozen dataclasses (a dataclass base, so
    `dataclasses` functions accept any step and a non-frozen subclass fails at import)."""

    VERSION: ClassVar[int] = 1
    # Steps that rewrite the exported graph (quantization) must come after module-level ones.
    graph_level: ClassVar[bool] = False
    # The name a sweep file uses for this step (`type = "quantize"`).
    KIND: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        STEP_TYPES[cls.__name__] = cls

    def to_dict(self) -> dict[str, Any]:
        return {"_type": type(self).__name__, "_version": self.VERSION, "_data": dataclasses.asdict(self)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Step:
        cls = STEP_TYPES.get(data.get("_type", ""))
        if cls is None:
            raise RecipeError(f"unknown compression step {data.get('_type')!r} in a stored recipe")
        version = data.get("_version")
        if not isinstance(version, int) or not 1 <= version <= cls.VERSION:
            raise RecipeError(f"{cls.__name__} v{version} cannot be read by v{cls.VERSION}")
        return cls(**cls.upgrade(dict(data["_data"]), version))

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """An older version's fields as this version reads them, describing what that version ran."""
        return data


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise RecipeError(message)


def _one_of(step: str, field: str, value: str, allowed: tuple[str, ...]) -> None:
    _check(value in allowed, f"{step}: {field} {shown(value)} is not one of {', '.join(allowed)}")


# Counts beyond these are not a plan a run can carry out (2^63 calibration batches): they are
# refused where they are given, naming the field and the limit.
MAX_BATCHES = 10_000
MAX_STEPS = 100_000
MAX_SEED = 2**32 - 1  # numpy's seeds end here


def _at_most(step: str, field: str, value: float, limit: float) -> None:
    _check(value <= limit, f"{step}: {field} must be at most {limit:g}, got {shown(value)}")


QUANT_SCHEMES = ("int8", "int8-dynamic")
# Range estimators for static int8: the first three are torchao's, the last two ours (observers.py).
OBSERVERS = ("minmax", "moving-average", "histogram", "percentile", "meanstd")


@dataclass(frozen=True)
class Quantize(Step):
    """PT2E int8 quantization with the XNNPACK quantizer (symmetric weights, affine activations).

    `observer` picks how ranges are estimated (activations, and weights for minmax/meanstd);
    `k` is the meanstd clipping width (mean ± k·σ; the seed's rule is k = 2), or "auto": per
    tensor (per channel for weights) the k whose int8 rounding-plus-clipping error on the observed
    values is smallest, found by a search over k. `percentile` is the percentile observer's cut.
    `keep_fp32` > 0 runs the per-layer sensitivity pass and leaves that many of the worst
    layers (lowest output SQNR) in fp32.
    """

    KIND: ClassVar[str] = "quantize"
    graph_level: ClassVar[bool] = True

    scheme: str = "int8"  # int8 (static, calibrated) | int8-dynamic (activations at run time)
    per_channel: bool = True
    observer: str = "minmax"
    k: float | str = 2.0
    percentile: float = 99.99
    calibration_batches: int = 64
    keep_fp32: int = 0

    def __post_init__(self) -> None:
        _one_of("quantize", "scheme", self.scheme, QUANT_SCHEMES)
        _one_of("quantize", "observer", self.observer, OBSERVERS)
        _check(
            self.k == "auto" or (not isinstance(self.k, str) and self.k > 0),
            f'quantize: k must be positive (mean ± k·σ) or "auto", got {shown(self.k)}',
        )
        _check(50 < self.percentile <= 100, f"quantize: percentile must be in (50, 100], got {self.percentile}")
        _check(self.calibration_batches >= 1, "quantize: calibration_batches must be at least 1")
        _check(self.keep_fp32 >= 0, f"quantize: keep_fp32 must be 0 or more, got {self.keep_fp32}")
        _at_most("quantize", "calibration_batches", self.calibration_batches, MAX_BATCHES)
        _at_most("quantize", "keep_fp32", self.keep_fp32, MAX_STEPS)
        if not isinstance(self.k, str):
            _at_most("quantize", "k", self.k, 100)
        _check(
            self.scheme == "int8" or self.observer == "minmax",
            "quantize: int8-dynamic measures activations at run time; observer applies only to scheme int8",
        )


@dataclass(frozen=True)
class QuantizeAwareTraining(Step):
    """QAT: fake-quantize, train briefly on the model's labelled batches, convert to int8.

    `batch_norm_steps`: how many of the first steps normalise with each batch's statistics (and
    update the running ones) before batch-norm is frozen, as Krishnamoorthi (2018) §3.2 does. The
    default 0 keeps the trained model's statistics throughout: a short fine-tune on small batches
    must start from the function the model computes (v1 used batch statistics for every step).
    """

    KIND: ClassVar[str] = "qat"
    VERSION: ClassVar[int] = 2
    graph_level: ClassVar[bool] = True

    per_channel: bool = True
    steps: int = 50
    lr: float = 1e-4
    seed: int = 0
    batch_norm_steps: int = 0

    def __post_init__(self) -> None:
        _check(self.steps >= 1, f"qat: steps must be at least 1, got {self.steps}")
        _at_most("qat", "steps", self.steps, MAX_STEPS)
        _check(0 <= self.seed <= MAX_SEED, f"qat: seed must be in [0, {MAX_SEED}], got {shown(self.seed)}")
        _check(0 < self.lr < 1, f"qat: lr must be in (0, 1), got {self.lr}")
        _check(
            0 <= self.batch_norm_steps <= self.steps,
            f"qat: batch_norm_steps must be in [0, steps={self.steps}], got {self.batch_norm_steps}",
        )

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 1:  # v1 trained every step with batch statistics
            data.setdefault("batch_norm_steps", data.get("steps", 50))
        return data


@dataclass(frozen=True)
class Int4Weights(Step):
    """`w4`: torchao 8-bit dynamic activations + 4-bit weights for linear layers (XNNPACK lowers it).

    `group_size` 0 means one scale per output channel; otherwise groups of that many inputs.
    """

    KIND: ClassVar[str] = "w4"
    graph_level: ClassVar[bool] = True

    group_size: int = 32

    def __post_init__(self) -> None:
        _check(
            self.group_size == 0 or (self.group_size >= 16 and self.group_size & (self.group_size - 1) == 0),
            f"w4: group_size must be 0 (per channel) or a power of two ≥ 16, got {shown(self.group_size)}",
        )
        _at_most("w4", "group_size", self.group_size, 65_536)


PRUNE_CRITERIA = ("magnitude", "gradient")


@dataclass(frozen=True)
class Prune(Step):
    """Unstructured pruning of conv/linear weights: zero those of least importance.

    Importance is `|w|` (magnitude) or `|∂L/∂w · w|` over `batches` batches (gradient). Give either a
    target `sparsity` (reached exactly, one global ranking) or a `threshold` θ (zero every weight
    whose importance is below it); with neither, sparsity 0.5.
    """

    KIND: ClassVar[str] = "prune"

    criterion: str = "magnitude"
    sparsity: float | None = None
    threshold: float | None = None
    batches: int = 8

    def __post_init__(self) -> None:
        _one_of("prune", "criterion", self.criterion, PRUNE_CRITERIA)
        if self.sparsity is None and self.threshold is None:
            object.__setattr__(self, "sparsity", 0.5)
        _check(
            (self.sparsity is None) != (self.threshold is None),
            "prune: give exactly one of sparsity (a fraction) or threshold (θ)",
        )
        if self.sparsity is not None:
            _check(0 < self.sparsity < 1, f"prune: sparsity must be in (0, 1), got {self.sparsity}")
        if self.threshold is not None:
            _check(0 <= self.threshold < float("inf"), f"prune: threshold must be ≥ 0, got {self.threshold}")
        _check(self.batches >= 1, "prune: batches must be at least 1")
        _at_most("prune", "batches", self.batches, MAX_BATCHES)


ALLOCATIONS = ("uniform", "sensitivity")


@dataclass(frozen=True)
class ChannelPrune(Step):
    """Structured pruning with torch-pruning: remove whole channels, a genuinely smaller dense model.

    A channel group is named by the conv/linear layer whose output channels it removes (torch-pruning
    follows what depends on them: batch-norm, depthwise convs, residual adds). `ratio` is the share
    of each group's channels removed: the same in every group (`allocation = "uniform"`), or, with
    `allocation = "sensitivity"`, a budget spread by a measured sensitivity pass — every group is
    pruned alone at `ratio`, batch-norm recalibrated, and the output's SQNR against the unpruned
    model measured; robust groups give more channels and fragile ones fewer, so the groups' mean
    ratio (weighted by the parameters each removes) is still `ratio`. `ratios` sets groups by name
    (e.g. {"features.3.conv.0" = 0.25}) and wins over both. With `protect_ends` the first layer
    (the stem) and the output layer keep all their channels; the output layer always does.
    """

    KIND: ClassVar[str] = "channel_prune"
    VERSION: ClassVar[int] = 2

    ratio: float = 0.5
    round_to: int = 8
    allocation: str = "uniform"  # uniform | sensitivity
    ratios: dict[str, float] = dataclasses.field(default_factory=dict)
    protect_ends: bool = True
    max_ratio: float = 0.8  # no group loses more than this under allocation = "sensitivity"
    sensitivity_batches: int = 2

    def __post_init__(self) -> None:
        _check(0 < self.ratio < 1, f"channel_prune: ratio must be in (0, 1), got {self.ratio}")
        _check(self.round_to >= 1, f"channel_prune: round_to must be at least 1, got {self.round_to}")
        _one_of("channel_prune", "allocation", self.allocation, ALLOCATIONS)
        _check(
            isinstance(self.ratios, dict) and all(0 <= r < 1 for r in self.ratios.values()),
            f"channel_prune: ratios must map layer names to ratios in [0, 1), got {self.ratios!r}",
        )
        _check(
            self.ratio <= self.max_ratio < 1,
            f"channel_prune: max_ratio must be in [ratio, 1), got {self.max_ratio}",
        )
        _check(self.sensitivity_batches >= 1, "channel_prune: sensitivity_batches must be at least 1")
        _at_most("channel_prune", "round_to", self.round_to, 4096)

    def __hash__(self) -> int:  # `ratios` is a dict: hash the stored form
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 1:  # v1 removed the same ratio everywhere, the stem included
            data.setdefault("allocation", "uniform")
            data.setdefault("protect_ends", False)
        return data


@dataclass(frozen=True)
class Recalibrate(Step):
    """Re-estimate every batch-norm's running mean and variance on `batches` training batches.

    Batch-norm statistics belong to the network that produced them: after pruning or training they
    describe another network. The network runs in eval mode with only batch-norm in train mode,
    without gradients, and each batch-norm's statistics become the plain average over the batches
    (AdaBN / "batch-norm recalibration"). With `check`, the recalibrated statistics are kept only if
    the output moves closer to the original model's on the same batches (measured, so statistics
    that were set on purpose survive); the stats record the decision. No batch-norm: nothing to do.
    """

    KIND: ClassVar[str] = "recalibrate"

    batches: int = 16
    check: bool = True

    def __post_init__(self) -> None:
        _check(self.batches >= 1, f"recalibrate: batches must be at least 1, got {self.batches}")


BATCH_NORM_MODES = ("auto", "train", "frozen")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class Distill(Step):
    """Train the current model (student) on the original (teacher).

    Loss α·T²·KL(p_teacher ‖ p_student) at temperature T + (1 − α)·CE on real labels; without
    labels only the soft term is used. α = 0 is plain fine-tuning. `student` optionally names
    another model (a built-in or file.py:factory) whose architecture replaces the current one.

    AdamW at `lr` (None: the rate the model's factory states for recovery, `extra["recovery_lr"]`,
    else `DEFAULT_LR` — a small transformer trained at 1e-3 lost its accuracy at 3e-3, which the
    convolutional built-ins need), warmed up linearly over the first `warmup` share of the steps, then decayed
    along a cosine to zero (`schedule = "cosine"`) or held (`"constant"`). `batch_norm`: "train"
    normalises with each batch's statistics (and updates the running ones), "frozen" keeps the
    running statistics the student starts with (recalibrate first), "auto" trains batch-norm when
    the training batches hold at least `MIN_BATCH_NORM_BATCH` samples and freezes it otherwise.
    `input_scale` < 1 trains on image batches resized by that factor (fully convolutional models:
    cheaper steps; recalibrate at full size afterwards).
    """

    KIND: ClassVar[str] = "distill"
    VERSION: ClassVar[int] = 2
    MIN_BATCH_NORM_BATCH: ClassVar[int] = 16
    DEFAULT_LR: ClassVar[float] = 3e-3

    temperature: float = 4.0
    alpha: float = 0.7
    epochs: int = 3
    lr: float | None = None
    seed: int = 0
    student: str = ""
    schedule: str = "cosine"
    warmup: float = 0.1
    weight_decay: float = 0.0
    batch_norm: str = "auto"
    input_scale: float = 1.0

    def __post_init__(self) -> None:
        _check(self.temperature > 0, f"distill: temperature must be positive, got {self.temperature}")
        _check(0 <= self.alpha <= 1, f"distill: alpha must be in [0, 1], got {self.alpha}")
        _check(self.epochs >= 1, f"distill: epochs must be at least 1, got {self.epochs}")
        _check(self.lr is None or 0 < self.lr < 1, f"distill: lr must be in (0, 1), got {self.lr}")
        _one_of("distill", "schedule", self.schedule, SCHEDULES)
        _check(0 <= self.warmup < 1, f"distill: warmup must be a share of the steps in [0, 1), got {self.warmup}")
        _check(self.weight_decay >= 0, f"distill: weight_decay must be ≥ 0, got {self.weight_decay}")
        _one_of("distill", "batch_norm", self.batch_norm, BATCH_NORM_MODES)
        _check(0.1 <= self.input_scale <= 1, f"distill: input_scale must be in [0.1, 1], got {self.input_scale}")
        _at_most("distill", "epochs", self.epochs, 1_000)
        _at_most("distill", "temperature", self.temperature, 1_000)
        _check(0 <= self.seed <= MAX_SEED, f"distill: seed must be in [0, {MAX_SEED}], got {shown(self.seed)}")
        _check(len(self.student) <= 1_024, f"distill: student {shown(self.student)} is over 1024 characters")

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 1:  # v1: Adam at a constant rate, batch-norm frozen at the statistics it had
            data.setdefault("schedule", "constant")
            data.setdefault("warmup", 0.0)
            data.setdefault("batch_norm", "frozen")
        return data


QUANTIZATION_STEPS = (Quantize, QuantizeAwareTraining, Int4Weights)


@dataclass(frozen=True)
class Recipe:
    """A named variant: the ordered steps that turn the fp32 model into it."""

    name: str
    steps: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        _check(bool(self.name.strip()), "a variant needs a name")
        seen_graph = False
        for step in self.steps:
            if seen_graph and not step.graph_level:
                raise RecipeError(f"variant {self.name!r}: {type(step).__name__} must come before quantization")
            seen_graph = seen_graph or step.graph_level
        if sum(isinstance(s, QUANTIZATION_STEPS) for s in self.steps) > 1:
            raise RecipeError(f"variant {self.name!r}: quantize appears more than once")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "steps": [s.to_dict() for s in self.steps]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Recipe:
        return Recipe(name=data["name"], steps=tuple(Step.from_dict(s) for s in data["steps"]))

    @staticmethod
    def from_json(text: str) -> Recipe:
        return Recipe.from_dict(json.loads(text))


# Variant-name tokens → the steps each stands for. `fp32` stands for no step at all. Steps that
# change the network are followed by batch-norm recalibration, written into the recipe so a stored
# result says it ran.
TOKENS: dict[str, Callable[[], tuple[Step, ...]]] = {
    "fp32": lambda: (),
    "int8": lambda: (Quantize(scheme="int8"),),
    "int8-dynamic": lambda: (Quantize(scheme="int8-dynamic"),),
    "int8-per-tensor": lambda: (Quantize(scheme="int8", per_channel=False),),
    "int8-ma": lambda: (Quantize(observer="moving-average"),),
    "int8-hist": lambda: (Quantize(observer="histogram"),),
    "int8-pct": lambda: (Quantize(observer="percentile"),),
    "int8-meanstd": lambda: (Quantize(observer="meanstd"),),
    "int8-meanstd-auto": lambda: (Quantize(observer="meanstd", k="auto"),),
    "int8-mixed": lambda: (Quantize(keep_fp32=2),),
    "int8-qat": lambda: (QuantizeAwareTraining(),),
    "w4": lambda: (Int4Weights(),),
    "8da4w": lambda: (Int4Weights(),),  # torchao's name (ExecuTorch's LLM default): the same step
    "recalibrate": lambda: (Recalibrate(),),
    "distill": lambda: (Distill(), Recalibrate()),
    "finetune": lambda: (Distill(alpha=0.0), Recalibrate()),
}

# Tokens with a percentage in them: prune30, sparse90, sparse75-grad, ... `pruneNN` spreads its
# budget over the channel groups by measured sensitivity; `pruneNN-uniform` removes NN % everywhere.
_PERCENT_TOKENS: list[tuple[re.Pattern[str], Callable[[float], tuple[Step, ...]]]] = [
    (re.compile(r"prune(\d{1,2})"), lambda f: (ChannelPrune(ratio=f, allocation="sensitivity"), Recalibrate())),
    (re.compile(r"prune(\d{1,2})-uniform"), lambda f: (ChannelPrune(ratio=f), Recalibrate())),
    (re.compile(r"sparse(\d{1,2})"), lambda f: (Prune(criterion="magnitude", sparsity=f), Recalibrate())),
    (re.compile(r"sparse(\d{1,2})-grad"), lambda f: (Prune(criterion="gradient", sparsity=f), Recalibrate())),
]

# Steps that leave the network needing recovery training, and the tokens that recover it.
RECOVERY_TOKENS = ("distill", "finetune")


def _token_steps(token: str) -> tuple[Step, ...]:
    make = TOKENS.get(token)
    if make is not None:
        return make()
    for pattern, build in _PERCENT_TOKENS:
        match = pattern.fullmatch(token)
        if match and int(match.group(1)) > 0:
            return build(int(match.group(1)) / 100)
    raise KeyError(token)


def parse_variant(name: str) -> Recipe:
    """`int8` or `a+b+c` → Recipe; unknown tokens name the known ones."""
    steps: list[Step] = []
    for token in name.strip().split("+"):
        try:
            made = _token_steps(token.strip())
        except KeyError:
            known = ", ".join(sorted(TOKENS))
            raise RecipeError(
                f"unknown variant {shown(name)}: token {shown(token)} is not one of {known}, "
                "pruneNN[-uniform], sparseNN[-grad] (join with +)"
            ) from None
        for step in made:
            if isinstance(step, Recalibrate) and steps and isinstance(steps[-1], Recalibrate):
                continue  # `recalibrate` right after a step that already recalibrates
            steps.append(step)
    return Recipe(name=name.strip(), steps=tuple(steps))


def variant_list(
    given: str | Iterable[str | Recipe], what: str = "variants", hint: str = "name at least one, e.g. fp32,int8"
) -> list[str | Recipe]:
    """The one reading of a list of variants, for the CLI, the API and the farm matrix: one name, a
    comma-separated string or a list (items may be Recipes) → the variants in order, stripped and
    blanks dropped. None or a name twice is refused here; each name is parsed per cell later, so
    every bad one is listed at once (measure.plan.check_names) and a run never stops half-way."""
    items = given.split(",") if isinstance(given, str) else list(given)
    variants = [i.strip() if isinstance(i, str) else i for i in items]
    variants = [v for v in variants if not isinstance(v, str) or v]
    if not variants:
        raise RecipeError(f"no {what} given: {hint}")
    names = [v if isinstance(v, str) else v.name for v in variants]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RecipeError(f"{what}: {', '.join(map(shown, twice))} named twice; rename or drop one")
    return variants
