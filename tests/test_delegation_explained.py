"""Partial delegation explained (issue 14 item 9) on a user's own model — conv + GRU + LayerNorm,
written here as a user would: why ops stay outside XNNPACK, which layers int8 left in fp32, and
a failed compression step named as such rather than as an export error."""

from __future__ import annotations

import pytest
from pocketbench.devices.local import LocalDevice
from pocketbench.lower.delegation import explain_outside
from pocketbench.measure.sweep import BenchSettings, run_sweep
from pocketbench.report.table import warnings
from pocketbench.results.store import RunStore

GRU_MODEL = '''
"""A small keyword spotter: conv front end, a GRU over the frames, LayerNorm, a linear head."""
import torch
from torch import nn
from pocketbench.models.registry import ModelBundle


class ConvGru(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(8, 16, kernel_size=3, padding=1)
        self.gru = nn.GRU(16, 64, batch_first=True)
        self.norm = nn.LayerNorm(64)
        self.head = nn.Linear(64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = torch.relu(self.conv(x)).transpose(1, 2)
        out, _ = self.gru(frames)
        return self.head(self.norm(out[:, -1]))


def make() -> ModelBundle:
    torch.manual_seed(0)
    batches = [(torch.randn(1, 8, 12),) for _ in range(4)]
    return ModelBundle(module=ConvGru().eval(), example_inputs=batches[0], calibration=lambda: batches,
                       eval_inputs=batches)
'''


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gru")
    path = folder / "kws.py"
    path.write_text(GRU_MODEL)
    store = RunStore(folder / "results")
    store.write_manifest({}, {})
    settings = BenchSettings(iterations=3, warmup=1, repetitions=1)
    run_sweep([f"{path}:make"], ["fp32", "int8", "prune50+distill+int8"], [LocalDevice()], settings, store)
    frame = store.finish()
    return {row["variant"]: row for _, row in frame.iterrows()}, warnings(frame)


def test_the_warning_names_why_ops_stay_outside_xnnpack(gru_run):
    rows, notes = gru_run
    assert rows["fp32"]["status"] == "ok" and "split_with_sizes_copy" in rows["fp32"]["ops_outside_delegate"]
    (fp32,) = [n for n in notes if n.startswith("partial delegation:") and " fp32 " in n]
    assert "recurrent layer gru (GRU) is unrolled one step per frame" in fp32
    assert "normalisation norm (LayerNorm)" in fp32 and "XNNPACK does not take" in fp32


def test_the_layers_int8_left_in_fp32_are_listed(gru_run):
    rows, notes = gru_run
    int8 = rows["int8"]
    assert int8["status"] == "ok"
    assert int8["size_ratio_vs_fp32"] > 0.5  # most weights are the GRU's, and they stay fp32
    (note,) = [n for n in notes if " int8: left in fp32 " in n]
    assert note.endswith("(the XNNPACK int8 quantizer takes conv and linear layers only): gru (GRU, 95% of weights)")


def test_a_failed_compression_step_names_the_step(gru_run):
    rows, _ = gru_run
    failed = rows["prune50+distill+int8"]
    assert failed["status"] == "compress_error"
    assert failed["error"].startswith("channel_prune: "), failed["error"]


def test_explanations_per_op_family():
    ops = {"aten_split_with_sizes_copy_default": 196, "aten_squeeze_copy_dims": 99, "aten_native_layer_norm_default": 1}
    text = explain_outside(ops, {"gru": "GRU", "norm": "LayerNorm"})
    assert text.startswith("split_with_sizes_copy×196, squeeze_copy×99: recurrent layer gru (GRU) is unrolled")
    assert "native_layer_norm×1: normalisation norm (LayerNorm)" in text
    plain = explain_outside({"aten_view_copy_default": 2, "aten_weird_op_default": 1}, {})
    assert "view_copy×2: shape ops" in plain and "weird_op×1: no known reason" in plain
