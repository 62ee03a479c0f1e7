"""The model side of a cell: the model loaded once with its held-out inputs on disk and its fp32
reference outputs, each variant compressed and lowered to a `.pte`, and the accuracy and fidelity
of the outputs a device computed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pocketbench.compress.context import StopCompression
from pocketbench.compress.pipeline import CompressionError
from pocketbench.compress.recipe import Recipe, parse_variant
from pocketbench.errors import PocketbenchError, first_line
from pocketbench.measure import generation
from pocketbench.measure.fidelity import fidelity, input_dependence, untrained_fidelity_note
from pocketbench.measure.rows import artifact_columns, failed_row
from pocketbench.models.registry import GenerativeBundle, ModelBundle, ModelSpec, resolve
from pocketbench.progress import Reporter, reporting_to
from pocketbench.results.cell_status import CellStatus
from pocketbench.runner import tensorfile

if TYPE_CHECKING:
    from pocketbench.lower.export import Artifact


@dataclass
class ModelContext:
    """A loaded model with its held-out inputs on disk and its fp32 eager reference outputs."""

    spec: ModelSpec
    bundle: ModelBundle
    inputs_file: Path  # a generative model's: its token stream
    reference: list[np.ndarray]
    generation: generation.GenerationReference | None = None  # generative models only

    @property
    def input_dependence(self) -> float:
        """How much the fp32 outputs depend on the input (measure.input_dependence)."""
        return input_dependence(self.reference)


def load_model(
    name: str,
    scratch: Path,
    reporter: Reporter,
    generate: tuple[int, int] = (generation.PROMPT_TOKENS, generation.DECODE_TOKENS),
) -> ModelContext:
    """Resolve and load a model once for all its cells: its held-out inputs written to `scratch`
    (what every device runs) and the fp32 eager outputs fidelity is measured against; a
    generative one (GenerativeBundle) with its token stream and fp32 teacher-forced ids and
    perplexity, for `generate` = (P, N)."""
    import torch

    with reporter.status(f"loading {name}"), reporting_to(reporter):  # a built-in may train here, once
        spec = resolve(name)
        bundle = spec.load()
    if isinstance(bundle, GenerativeBundle):
        stream = generation.write_stream(bundle, scratch / f"{len(list(scratch.iterdir()))}-stream.pbtf")
        with reporter.status(f"fp32 reference ids and perplexity of {name}"):
            ref = generation.reference(bundle, *generate)
        return ModelContext(spec, bundle, stream, [], ref)
    if not bundle.eval_inputs:
        raise PocketbenchError(f"model {name!r}: its factory gave no eval_inputs to measure with")
    inputs_file = scratch / f"{len(list(scratch.iterdir()))}-inputs.pbtf"
    tensorfile.write(inputs_file, [[t.numpy() for t in inputs] for inputs in bundle.eval_inputs])
    reference = []
    with torch.no_grad():
        for inputs in reporter.track(bundle.eval_inputs, f"fp32 reference outputs of {name}"):
            reference.append(_first_output(bundle.module(*inputs)).numpy())
    return ModelContext(spec, bundle, inputs_file, reference)


def build_variant(
    context: ModelContext, variant: str | Recipe, row: dict[str, Any], reporter: Reporter
) -> tuple[dict[str, Any], Artifact | None]:
    """Compress and lower one variant (or reuse the cached `.pte`): the row gains the recipe
    and artifact columns, or becomes a failure row and no artifact is returned."""
    from pocketbench.lower.export import build_artifact

    try:
        recipe = variant if isinstance(variant, Recipe) else parse_variant(variant)
    except PocketbenchError as exc:
        return failed_row(row, CellStatus.RECIPE_ERROR, str(exc)), None
    row = {**row, "recipe": recipe.to_json()}
    try:
        artifact = build_artifact(context.spec, context.bundle, recipe, reporter)
    except StopCompression:  # a search abandoned the recipe on purpose: its caller decides
        raise
    except CompressionError as exc:  # names the step: `channel_prune: …`
        return failed_row(row, CellStatus.COMPRESS_ERROR, str(exc)), None
    except PocketbenchError as exc:
        return failed_row(row, CellStatus.EXPORT_ERROR, str(exc)), None
    except Exception as exc:  # a compression step failing in torch: keep the sweep going
        return failed_row(
            row, CellStatus.EXPORT_ERROR, f"{context.spec.name} {recipe.name}: {type(exc).__name__}: {exc}"
        ), None
    row.update(artifact_columns(artifact.manifest, artifact.reused))
    return row, artifact


def quality_columns(context: ModelContext, outputs_file: Path) -> dict[str, Any]:
    """Accuracy and fidelity from the outputs the device itself computed."""
    import torch

    try:
        output_sets = tensorfile.read(outputs_file)
    except (OSError, tensorfile.TensorFileError) as exc:  # the device's file: its timings still stand
        return {
            "status": CellStatus.BAD_OUTPUTS,
            "error": f"the outputs the device wrote are unusable: {first_line(exc)}",
        }
    first_outputs = [outputs[0] for outputs in output_sets]
    columns: dict[str, Any] = dict(fidelity(context.reference, first_outputs))
    columns["output_input_dependence"] = context.input_dependence
    columns["fidelity_note"] = untrained_fidelity_note(context.input_dependence, context.bundle.score is not None)
    if context.bundle.score is not None:
        columns["accuracy"] = context.bundle.score([torch.from_numpy(o) for o in first_outputs])
    return columns


def _first_output(output: Any) -> Any:
    return output[0] if isinstance(output, (tuple, list)) else output
