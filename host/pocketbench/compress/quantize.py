"""Quantization through PT2E with the XNNPACK quantizer, the path that lowers on ExecuTorch 1.5.1."""

from __future__ import annotations

import itertools

import torch

from pocketbench.compress.recipe import Quantize
from pocketbench.progress import Reporter
from pocketbench.registry import ModelBundle


def quantize_pt2e(module: torch.nn.Module, bundle: ModelBundle, step: Quantize, reporter: Reporter) -> torch.nn.Module:
    """Export, insert observers, calibrate on the model's own calibration data, convert.

    Returns the converted graph module; it re-exports with torch.export like any module.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    dynamic = step.scheme == "int8-dynamic"
    config = get_symmetric_quantization_config(is_per_channel=step.per_channel, is_dynamic=dynamic)
    quantizer = XNNPACKQuantizer().set_global(config)
    exported = torch.export.export(module.eval(), bundle.example_inputs)
    prepared = prepare_pt2e(exported.module(), quantizer)
    batches = itertools.islice(bundle.calibration(), step.calibration_batches)
    with torch.no_grad():
        for batch in reporter.track(batches, "calibrating", total=step.calibration_batches):
            prepared(*batch)
    return convert_pt2e(prepared)
