"""Partial delegation explained (issue 14 item 9) on a user's own model — conv + GRU + LayerNorm,
written here as a user would: why ops stay outside XNNPACK, which layers int8 left in fp32, and
a failed compression step named as such rather than as an export error."""

from __future__ import annotations

import pytest
from pocketbench.devices.local import LocalDevice
from pocketbench.lower.delegation import explain_outside
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.measure.sweep import run_sweep
from pocketbench.report.cautions import warnings
from pocketbench.results.store import RunStore

pytestmark = pytest.mark.slow  # real sweeps of models with layers outside XNNPACK

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
    settings = ProtocolSettings(iterations=3, warmup=1, repetitions=1)
    run_sweep([f"{path}:make"], ["fp32", "int8"], [LocalDevice()], settings, store)
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


def test_explanations_per_op_family():
    ops = {"aten_split_with_sizes_copy_default": 196, "aten_squeeze_copy_dims": 99, "aten_native_layer_norm_default": 1}
    text = explain_outside(ops, {"gru": "GRU", "norm": "LayerNorm"})
    assert text.startswith("split_with_sizes_copy×196, squeeze_copy×99: recurrent layer gru (GRU) is unrolled")
    assert "native_layer_norm×1: normalisation norm (LayerNorm)" in text
    plain = explain_outside({"aten_view_copy_default": 2, "aten_weird_op_default": 1}, {})
    assert "view_copy×2: shape ops" in plain and "weird_op×1: no known reason" in plain


USER_MODELS = '''
"""Two user models: a bag of embeddings with a masked mean, and a GRU with BatchNorm1d and LayerNorm."""
import torch
from torch import nn
from pocketbench.models.registry import ModelBundle


class BagOfWords(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        vectors = self.embed(ids) * mask.unsqueeze(-1)
        pooled = vectors.sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1)
        return self.head(pooled)


class GruNorms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(8, 32, batch_first=True)
        self.bn = nn.BatchNorm1d(32)
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(self.norm(self.bn(out[:, -1])))


def bag() -> ModelBundle:
    torch.manual_seed(0)
    batches = [(torch.randint(0, 100, (1, 10)), (torch.rand(1, 10) > 0.3).float()) for _ in range(3)]
    return ModelBundle(module=BagOfWords().eval(), example_inputs=batches[0], calibration=lambda: batches,
                       eval_inputs=batches)


def gru() -> ModelBundle:
    torch.manual_seed(0)
    batches = [(torch.randn(1, 6, 8),) for _ in range(3)]
    return ModelBundle(module=GruNorms().eval(), example_inputs=batches[0], calibration=lambda: batches,
                       eval_inputs=batches)
'''


@pytest.fixture(scope="module")
def user_models(tmp_path_factory):
    path = tmp_path_factory.mktemp("user-models") / "user_models.py"
    path.write_text(USER_MODELS)
    return path


def _outside_note(path, factory: str) -> str:
    from pocketbench.compress.recipe import parse_variant
    from pocketbench.lower.export import build_artifact
    from pocketbench.models.registry import resolve

    spec = resolve(f"{path}:{factory}")
    return build_artifact(spec, spec.load(), parse_variant("fp32")).manifest["delegation"]["outside_explained"]


def test_embeddings_and_reductions_have_a_reason(user_models):
    """Was `sum_dim_int_list×2, embedding×1: no known reason`."""
    note = _outside_note(user_models, "bag")
    assert "no known reason" not in note, note
    assert "sum_dim_int_list×2: reductions XNNPACK does not take" in note
    assert "embedding×1: embedding lookup embed (Embedding): XNNPACK has no gather kernel" in note


def test_a_layer_is_named_only_under_its_own_op_family(user_models):
    """The GRU model's BatchNorm1d was listed under native_layer_norm."""
    note = _outside_note(user_models, "gru")
    (layer_norm,) = [part for part in note.split("; ") if part.startswith("native_layer_norm")]
    assert "norm (LayerNorm)" in layer_norm and "BatchNorm1d" not in layer_norm, note
    assert "recurrent layer gru (GRU)" in note


def test_each_norm_op_names_its_own_kind():
    ops = {"aten__native_batch_norm_legit_no_training_default": 1, "aten_native_layer_norm_default": 1}
    text = explain_outside(ops, {"bn": "BatchNorm1d", "ln": "LayerNorm", "gn": "GroupNorm"})
    (batch,) = [p for p in text.split("; ") if p.startswith("_native_batch_norm_legit_no_training")]
    (layer,) = [p for p in text.split("; ") if p.startswith("native_layer_norm")]
    assert "bn (BatchNorm1d)" in batch and "LayerNorm" not in batch and "GroupNorm" not in batch
    assert "ln (LayerNorm)" in layer and "BatchNorm1d" not in layer and "GroupNorm" not in layer
