"""Compression steps on the real digits model, without export: exact sparsity, observers,
sensitivity, determinism, and clear errors where a step does not apply."""

import pytest
import torch
from pocketbench.compress.cost import prunable_weights
from pocketbench.compress.observers import RangeObserver, fake_quantize, qparams
from pocketbench.compress.pipeline import CompressionError, apply_recipe
from pocketbench.compress.recipe import Distill, Int4Weights, Prune, Quantize, QuantizeAwareTraining, Recipe
from pocketbench.compress.training import distillation_loss
from pocketbench.lower.export import weights_digest
from pocketbench.models.registry import ModelBundle, resolve
from pocketbench.stats import sqnr_db
from torch import nn
from torchao.quantization.pt2e import MinMaxObserver

pytestmark = [pytest.mark.slow, pytest.mark.training]  # pruning, QAT, distillation: training on digits


@pytest.fixture(scope="module")
def digits():
    return resolve("digits_cnn").load()


def _zeros_and_total(module):
    weights = list(prunable_weights(module).values())
    return sum(int((w == 0).sum()) for w in weights), sum(w.numel() for w in weights)


@pytest.mark.parametrize("criterion", ["magnitude", "gradient"])
@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
def test_unstructured_pruning_reaches_the_requested_sparsity_exactly(digits, criterion, sparsity):
    result = apply_recipe(digits, Recipe("p", (Prune(criterion=criterion, sparsity=sparsity),)))
    zeros, total = _zeros_and_total(result.module)
    assert zeros == round(sparsity * total)
    assert result.stats["sparsity"] == pytest.approx(zeros / total)
    assert _zeros_and_total(digits.module)[0] == 0  # the bundle's own model is untouched


def test_magnitude_threshold_zeroes_exactly_the_weights_below_it(digits):
    theta = 0.02
    result = apply_recipe(digits, Recipe("t", (Prune(criterion="magnitude", threshold=theta),)))
    for name, original in prunable_weights(digits.module).items():
        pruned = prunable_weights(result.module)[name]
        assert torch.equal(pruned == 0, original.abs() < theta)


def test_gradient_and_magnitude_criteria_choose_different_weights(digits):
    by_magnitude = apply_recipe(digits, Recipe("m", (Prune(criterion="magnitude", sparsity=0.5),))).module
    by_gradient = apply_recipe(digits, Recipe("g", (Prune(criterion="gradient", sparsity=0.5),))).module
    assert weights_digest(by_magnitude) != weights_digest(by_gradient)


def test_finetuning_keeps_pruned_weights_at_zero_and_is_deterministic(digits):
    recipe = Recipe("s", (Prune(sparsity=0.5), Distill(alpha=0.0, epochs=1)))
    first, second = apply_recipe(digits, recipe), apply_recipe(digits, recipe)
    zeros, total = _zeros_and_total(first.module)
    assert zeros >= round(0.5 * total)
    assert weights_digest(first.module) == weights_digest(second.module)


def test_quantization_formula_affine_and_symmetric():
    lo, hi = torch.tensor([-1.0]), torch.tensor([3.0])
    scale, zero = qparams(lo, hi, -128, 127, symmetric=False)
    assert scale.item() == pytest.approx(4.0 / 255)
    # lo and hi land on the ends of the int8 range; 0 is exactly representable
    assert torch.round(lo / scale) + zero == -128
    assert torch.round(hi / scale) + zero == pytest.approx(127, abs=1)
    assert fake_quantize(torch.tensor([0.0]), scale, zero, -128, 127).item() == 0.0
    x = torch.linspace(-1, 3, 1001)
    assert (fake_quantize(x, scale, zero, -128, 127) - x).abs().max() <= scale.item() / 2 + 1e-6
    sym_scale, sym_zero = qparams(lo, hi, -127, 127, symmetric=True)
    assert sym_scale.item() == pytest.approx(3.0 / 127) and sym_zero.item() == 0


def test_our_formula_matches_torchaos_minmax_observer():
    observer = MinMaxObserver(dtype=torch.int8, qscheme=torch.per_tensor_affine, quant_min=-128, quant_max=127)
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 3 + 1
    observer(x)
    theirs = observer.calculate_qparams()
    ours = qparams(x.min().reshape(1), x.max().reshape(1), -128, 127, symmetric=False, eps=float(observer.eps))
    assert torch.allclose(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1].to(torch.int64))


def test_meanstd_observer_range_is_mean_plus_minus_k_sigma_clipped_to_what_was_seen():
    x = torch.randn(10_000, generator=torch.Generator().manual_seed(0)) * 2 + 0.5
    observer = RangeObserver(method="meanstd", k=2.0, quant_min=-128, quant_max=127)
    observer(x[:5000])
    observer(x[5000:])
    lo, hi = observer.observed_range()
    mean, std = x.double().mean(), x.double().std(unbiased=False)
    assert lo.item() == pytest.approx(float(mean - 2 * std), rel=1e-4)
    assert hi.item() == pytest.approx(float(mean + 2 * std), rel=1e-4)
    wide = RangeObserver(method="meanstd", k=50.0, quant_min=-128, quant_max=127)
    wide(x)
    assert wide.observed_range()[1].item() == pytest.approx(x.max().item())  # never beyond the data


def test_meanstd_observer_gives_valid_ranges_in_the_real_pt2e_flow(digits):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from pocketbench.compress.quantize import quantization_config
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(quantization_config(Quantize(observer="meanstd")))
    prepared = prepare_pt2e(torch.export.export(digits.module, digits.example_inputs).module(), quantizer)
    for (batch,) in list(digits.calibration())[:16]:
        prepared(batch)
    observers = [m for m in prepared.modules() if isinstance(m, RangeObserver)]
    assert len(observers) >= 6  # activations and weights of the 4 conv/linear layers
    for observer in observers:
        lo, hi = observer.observed_range()
        assert torch.all(observer.seen_min.float() <= lo) and torch.all(lo <= hi)
        assert torch.all(hi <= observer.seen_max.float())
        scale, zero = observer.calculate_qparams()
        assert torch.all(scale > 0) and torch.all(torch.isfinite(scale))
        assert torch.all((zero >= observer.quant_min) & (zero <= observer.quant_max))


def test_sensitivity_pass_keeps_the_worst_layers_in_fp32(digits):
    result = apply_recipe(digits, Recipe("mixed", (Quantize(keep_fp32=1, calibration_batches=8),)))
    sqnr = result.stats["layer_sqnr_db"]
    assert set(sqnr) == {"features.0", "features.3", "classifier.1", "classifier.3"}
    assert all(10 < v < 80 for v in sqnr.values())
    (kept,) = result.stats["fp32_layers"]
    assert sqnr[kept] == min(sqnr.values())
    nodes = list(result.module.graph.nodes)
    assert sum("dequantize_per_channel" in str(n.target) for n in nodes) == 3  # four layers, one in fp32
    layers = [n for n in nodes if n.target in (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)]
    assert [n.args[1].op for n in layers].count("get_attr") == 1  # the kept layer reads its fp32 weight


def _conv_only_bundle() -> ModelBundle:
    x = torch.ones(1, 1, 8, 8)
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval()
    return ModelBundle(module=module, example_inputs=(x,), calibration=lambda: [(x,)], eval_inputs=[(x,)])


def test_w4_on_a_model_without_linear_layers_is_a_clear_error():
    with pytest.raises(CompressionError, match=r"^w4: this model has no nn\.Linear layers"):
        apply_recipe(_conv_only_bundle(), Recipe("w4", (Int4Weights(),)))


def test_distillation_loss_is_soft_only_without_labels_and_mixes_with_ce_with_them():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(8, 10, generator=generator), torch.randn(8, 10, generator=generator)
    labels = torch.randint(0, 10, (8,), generator=generator)
    t = 4.0
    p_teacher = torch.softmax(teacher / t, dim=-1)
    kl = (p_teacher * (p_teacher.log() - torch.log_softmax(student / t, dim=-1))).sum(dim=-1).mean()
    assert distillation_loss(student, teacher, None, t, 0.3) == pytest.approx(float(t * t * kl), rel=1e-5)
    ce = nn.functional.cross_entropy(student, labels)
    mixed = distillation_loss(student, teacher, labels, t, 0.3)
    assert mixed == pytest.approx(float(0.3 * t * t * kl + 0.7 * ce), rel=1e-5)


STUDENT = """
import torch
from pocketbench.models.registry import ModelBundle
from pocketbench_models.digits_cnn import DigitsCNN


def small():
    torch.manual_seed(0)
    x = torch.zeros(1, 1, 8, 8)
    return ModelBundle(module=DigitsCNN(width=16, hidden=64), example_inputs=(x,), calibration=lambda: [(x,)],
                       eval_inputs=[(x,)])
"""


def test_distillation_into_a_smaller_architecture_learns_from_the_teacher(digits, tmp_path):
    path = tmp_path / "student.py"
    path.write_text(STUDENT)
    result = apply_recipe(digits, Recipe("small", (Distill(student=f"{path}:small", epochs=3, lr=3e-3),)))
    assert result.stats["params"] < 0.2 * sum(p.numel() for p in digits.module.parameters())
    with torch.no_grad():
        accuracy = digits.score([result.module(*inputs) for inputs in digits.eval_inputs])
    assert accuracy > 0.85  # from random initialisation, in three epochs, on the teacher's soft targets


def _folded_batchnorm_bundle() -> ModelBundle:
    """A trained-looking conv → batch-norm classifier whose running variance holds a folded eps
    (statistics set by hand, as a user's model may have): batch statistics are not its statistics,
    so train-mode batch-norm computes a different function. Labels are its own predictions."""
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        conv = module[0](x)
        variance = conv.var((0, 2, 3))
        module[1].running_mean.copy_(conv.mean((0, 2, 3)))
        module[1].running_var.copy_(variance + 1.0)  # eps 1 folded in; the weight keeps the output's scale
        module[1].weight.copy_(((variance + 1.0) / variance).sqrt())
        module[-1].bias.zero_()
        labels = module.eval()(x).argmax(1)
    batches = [((x[i : i + 8],), labels[i : i + 8]) for i in range(0, 64, 8)]
    return ModelBundle(
        module=module,
        example_inputs=(x[:1],),
        calibration=lambda: [(x[i : i + 1],) for i in range(8)],
        eval_inputs=[(x,)],
        train_batches=lambda: batches,
    )


def test_qat_fine_tunes_with_the_models_own_batch_norm_statistics():
    """QAT of a trained model must start from the function it computes: batch-norm uses its running
    statistics (frozen, as distill does), not those of 8-sample batches, which for a network with
    hand-set statistics turned 99 % into 6 %. Here train-mode batch-norm would rescale every channel."""
    bundle = _folded_batchnorm_bundle()
    (x,) = bundle.eval_inputs[0]
    with torch.no_grad():
        reference = bundle.module.eval()(x)
        train_mode = bundle.module.train()(x)
    bundle.module.eval()
    assert sqnr_db(reference.numpy(), train_mode.numpy()) < 10  # the trap is real: batch statistics differ
    result = apply_recipe(bundle, Recipe("qat", (QuantizeAwareTraining(steps=20),)))
    with torch.no_grad():
        quantized = result.module(x)
    assert sqnr_db(reference.numpy(), quantized.numpy()) > 20
    assert (quantized.argmax(1) == reference.argmax(1)).float().mean() >= 0.9
    # batch_norm_steps trains with batch statistics for that many steps (v1 did so throughout)
    batch_statistics = apply_recipe(bundle, Recipe("qat-bn", (QuantizeAwareTraining(steps=20, batch_norm_steps=20),)))
    with torch.no_grad():
        assert sqnr_db(reference.numpy(), batch_statistics.module(x).numpy()) < 15
