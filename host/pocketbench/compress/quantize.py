"""Quantization paths that lower on ExecuTorch 1.5.1 + XNNPACK (see shared notes):

- static / dynamic int8 through PT2E with the XNNPACK quantizer and a chosen range observer,
  optionally leaving the most sensitive layers in fp32 (a filter on nn_module_stack);
- QAT: prepare_qat_pt2e on a batch-dynamic export, a short seeded training run, eval, convert;
- `w4`: torchao's 8-bit dynamic activations + 4-bit weights on linear layers.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from pocketbench.compress.context import Context
from pocketbench.compress.recipe import Int4Weights, Quantize, QuantizeAwareTraining, RecipeError
from pocketbench.compress.training import labelled_batches

EPS = 2**-12  # the smallest scale XNNPACK's quantizer allows (as in its own configs)


def quantization_config(step: Quantize):  # type: ignore[no-untyped-def]
    """The XNNPACK QuantizationConfig for `step`: affine int8 activations, symmetric int8 weights.

    torchao's observers (minmax, moving-average, histogram) estimate activation ranges and
    weights use min/max; our meanstd and percentile observers estimate both.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_symmetric_quantization_config
    from torchao.quantization.pt2e import (
        HistogramObserver,
        MinMaxObserver,
        MovingAverageMinMaxObserver,
        PerChannelMinMaxObserver,
    )
    from torchao.quantization.pt2e.quantizer import QuantizationConfig, QuantizationSpec

    from pocketbench.compress.observers import RangeObserver

    if step.scheme == "int8-dynamic":
        return get_symmetric_quantization_config(is_per_channel=step.per_channel, is_dynamic=True)
    ours: dict[str, dict[str, str | float]] = {
        "meanstd": {"method": "meanstd", "k": step.k},
        "percentile": {"method": "percentile"},
    }
    if step.observer in ours:
        args = {**ours[step.observer], "percentile": step.percentile, "eps": EPS}
        activation_ctr = weight_ctr = RangeObserver.with_args(**args)
    else:
        activation_ctr = {
            "minmax": MinMaxObserver,
            "moving-average": MovingAverageMinMaxObserver,
            "histogram": HistogramObserver,
        }[step.observer].with_args(eps=EPS)
        weight_ctr = (PerChannelMinMaxObserver if step.per_channel else MinMaxObserver).with_args(eps=EPS)
    activation = QuantizationSpec(
        dtype=torch.int8,
        quant_min=-128,
        quant_max=127,
        qscheme=torch.per_tensor_affine,
        is_dynamic=False,
        observer_or_fake_quant_ctr=activation_ctr,
    )
    weight = QuantizationSpec(
        dtype=torch.int8,
        quant_min=-127,
        quant_max=127,
        qscheme=torch.per_channel_symmetric if step.per_channel else torch.per_tensor_symmetric,
        ch_axis=0,
        is_dynamic=False,
        observer_or_fake_quant_ctr=weight_ctr,
    )
    return QuantizationConfig(activation, activation, weight, None, False)


def quantize_pt2e(module: nn.Module, step: Quantize, ctx: Context) -> nn.Module:
    """Export, insert observers, calibrate on the model's own calibration data, convert.

    Records each layer's SQNR (its int8 output vs fp32, see sensitivity.py); with keep_fp32 the
    worst layers are left unquantized. Returns the converted graph module.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import get_module_name_filter

    from pocketbench.compress.sensitivity import layer_sqnr, worst

    bundle = ctx.bundle
    with ctx.reporter.status("per-layer quantization error"):
        sqnr = layer_sqnr(module, list(itertools.islice(bundle.calibration(), 4)), step.per_channel)
    ctx.stats["layer_sqnr_db"] = sqnr
    if step.keep_fp32 > len(sqnr):
        raise RecipeError(f"quantize: keep_fp32={step.keep_fp32} but the model has only {len(sqnr)} conv/linear layers")
    keep = worst(sqnr, step.keep_fp32)
    ctx.stats["fp32_layers"] = keep
    quantizer = XNNPACKQuantizer().set_global(quantization_config(step))
    if keep:
        kept = [get_module_name_filter(name) for name in keep]
        quantizer.set_filter_function(lambda node: not any(f(node) for f in kept))
    from pocketbench.models.registry import export_program

    exported = export_program(bundle, module.eval())
    prepared = prepare_pt2e(exported.module(), quantizer)
    batches = itertools.islice(bundle.calibration(), step.calibration_batches)
    with torch.no_grad():
        for batch in ctx.reporter.track(batches, "calibrating", total=step.calibration_batches):
            prepared(*batch)
    return convert_pt2e(prepared)


def quantize_aware_training(module: nn.Module, step: QuantizeAwareTraining, ctx: Context) -> nn.Module:
    """prepare_qat_pt2e → seeded training on labelled batches → eval mode → convert_pt2e.

    Exported with a dynamic batch dimension (a batch-1 example would be specialized and fail on
    training batches); moved to eval before converting (batch-norm in train mode breaks export).
    After `batch_norm_steps` steps (default 0) the graph trains in eval mode: batch-norm uses the
    running statistics it will be folded with, fake-quantization still learns its ranges, dropout
    is off. Batch statistics of 8 samples need not be the trained model's: on a MobileNetV2 whose
    batch-norm statistics were set by hand (an eps folded into the running variance) train-mode
    batch-norm alone took fp32 from 97 % to 52 %, and QAT collapsed to 6 % after one step.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    source = labelled_batches(ctx.bundle)
    if source is None:
        raise RecipeError("qat: this model has no labelled train_batches; QAT needs real labels (use int8 or distill)")
    torch.manual_seed(step.seed)
    first_inputs, _ = next(iter(source()))
    if first_inputs[0].shape[0] < 2:
        raise RecipeError("qat: train_batches must hold at least 2 samples per batch")
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = tuple({0: batch} for _ in first_inputs)
    exported = torch.export.export(module.train(), first_inputs, dynamic_shapes=dynamic)
    config = get_symmetric_quantization_config(is_per_channel=step.per_channel, is_qat=True)
    prepared = prepare_qat_pt2e(exported.module(), XNNPACKQuantizer().set_global(config))
    optimizer = torch.optim.Adam(prepared.parameters(), lr=step.lr)
    batches = itertools.islice(itertools.chain.from_iterable(source() for _ in itertools.count()), step.steps)
    for done, (inputs, labels) in enumerate(
        ctx.reporter.track(batches, "quantization-aware training", total=step.steps)
    ):
        (move_exported_model_to_train if done < step.batch_norm_steps else move_exported_model_to_eval)(prepared)
        optimizer.zero_grad()
        nn.functional.cross_entropy(prepared(*inputs), _real_labels(labels)).backward()
        optimizer.step()
    move_exported_model_to_eval(prepared)
    return convert_pt2e(prepared)


def int4_weights(module: nn.Module, step: Int4Weights, ctx: Context) -> nn.Module:
    """torchao Int8DynamicActivationIntxWeightConfig(int4) on every linear layer whose input
    width the group size divides; the others stay fp32 and are listed in the stats."""
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.quantization.granularity import PerAxis, PerGroup
    from torchao.utils import unwrap_tensor_subclass

    linears = {name: m for name, m in module.named_modules() if isinstance(m, nn.Linear)}
    if not linears:
        raise RecipeError("w4: this model has no nn.Linear layers; w4 quantizes only linear weights (use int8)")
    group = step.group_size
    eligible = {name for name, m in linears.items() if group == 0 or m.in_features % group == 0}
    if not eligible:
        raise RecipeError(f"w4: no linear layer's input width is a multiple of group_size={group} (try group_size=0)")
    ctx.stats["fp32_layers"] = sorted(set(linears) - eligible)
    config = Int8DynamicActivationIntxWeightConfig(
        weight_dtype=torch.int4,  # type: ignore[attr-defined]  # in torch 2.13, missing from its stubs
        weight_granularity=PerAxis(0) if group == 0 else PerGroup(group),
    )
    with ctx.reporter.status("4-bit weights"):
        quantize_(module, config, filter_fn=lambda m, fqn: fqn in eligible)
        unwrap_tensor_subclass(module)
    return module


def _real_labels(labels: torch.Tensor | None) -> torch.Tensor:
    """QAT's loss needs the labels of every batch, not only of the first one checked up front."""
    if labels is None:
        raise RecipeError("qat: a train batch has no labels; QAT needs real labels on every batch")
    return labels
