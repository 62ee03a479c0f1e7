"""The built-in models' trained weights: seeded, cached, better than chance on held-out data, and
the input-independence check that labels fidelity of untrained networks.

tiny_transformer is trained once per test session (the session cache of conftest.py);
determinism is checked on small budgets of the same training code. The tests of the trained
mobilenet_v2 are marked `full_training`: its shipped recipe takes 6–8 minutes on one core, more
than CI's budget allows, so `just test` leaves them out and `just test-training` runs them (its
held-out accuracy is also what `just benchmark mobilenet_training` records).
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from pocketbench.measure.fidelity import INPUT_INDEPENDENT_BELOW, input_dependence, untrained_fidelity_note
from pocketbench.models.registry import resolve
from pocketbench.progress import Reporter, reporting_to
from pocketbench_models import digits_cnn, mobilenet_v2, tiny_transformer
from pocketbench_models._stdlib_text import load_corpus
from torch import nn

from tests.conftest import DATA

pytestmark = [pytest.mark.slow, pytest.mark.training]  # trains and measures the built-in models


class RecordingReporter(Reporter):
    """Keeps the description of every progress bar it was asked to show."""

    def __init__(self) -> None:
        self.bars: list[str] = []

    def track(self, items, description, total=None):
        self.bars.append(description)
        yield from items


def load_recording(name: str):
    """Load a built-in (training it once in this session) and the progress bars it showed."""
    reporter = RecordingReporter()
    with reporting_to(reporter):
        bundle = resolve(name).load()
    return bundle, reporter.bars


@pytest.fixture(scope="session")
def mobilenet():
    return load_recording("mobilenet_v2")


@pytest.fixture(scope="session")
def transformer():
    return load_recording("tiny_transformer")


def outputs(bundle, count: int) -> list:
    """The fp32 model's outputs for the first `count` eval inputs (run in batches of 25)."""
    batch = torch.cat([inputs[0] for inputs in bundle.eval_inputs[:count]])
    with torch.no_grad():
        return [row.unsqueeze(0) for i in range(0, len(batch), 25) for row in bundle.module(batch[i : i + 25])]


def small_split():
    x_train, y_train, x_test, y_test = digits_cnn.load_split()
    return x_train[:32], y_train[:32], x_test[:16], y_test[:16]


def test_mobilenet_training_is_deterministic_for_a_seed():
    """The same training code twice on a small budget (two cycles of growing resolution, then the
    batch-norm re-estimation at 224×224): identical weights and accuracy."""
    reporter = RecordingReporter()
    with reporting_to(reporter):
        cycles = ((3e-3, ((32, 3), (48, 3))), (1e-3, ((64, 5),)))
        runs = [mobilenet_v2.train(small_split(), cycles, recalibration_images=32) for _ in range(2)]
    (first, first_facts), (second, second_facts) = runs
    assert first_facts["held_out_accuracy"] == pytest.approx(second_facts["held_out_accuracy"], abs=1e-6)
    for name, tensor in first.state_dict().items():
        torch.testing.assert_close(tensor, second.state_dict()[name], msg=name)
    assert any("training mobilenet_v2" in bar for bar in reporter.bars)
    assert any("batch-norm statistics at 224×224" in bar for bar in reporter.bars)


@pytest.mark.full_training
def test_trained_mobilenet_scores_at_least_98_percent_on_held_out_digits(mobilenet):
    bundle, _ = mobilenet
    accuracy = bundle.score(outputs(bundle, len(bundle.eval_inputs)))
    assert accuracy >= 0.98  # 10 classes: chance is 0.1
    assert bundle.eval_inputs[0][0].shape == (1, 3, 224, 224)
    assert sum(p.numel() for p in bundle.module.parameters()) == pytest.approx(3.5e6, rel=0.02)


@pytest.mark.full_training
def test_a_second_load_uses_the_cached_weights(mobilenet, monkeypatch):
    bundle, _ = mobilenet
    monkeypatch.setattr(mobilenet_v2, "train", lambda *a, **k: pytest.fail("retrained a cached model"))
    again = resolve("mobilenet_v2").load()
    for name, tensor in bundle.module.state_dict().items():
        assert torch.equal(tensor, again.module.state_dict()[name]), name
    meta = json.loads(mobilenet_v2.trained_model(digits_cnn.load_split())[1].path.with_suffix(".json").read_text())
    assert meta["held_out_images"] == 360 and meta["held_out_accuracy"] >= 0.98


@pytest.mark.full_training
def test_mobilenet_batch_norm_statistics_are_its_own(mobilenet):
    """Re-estimating every batch-norm's statistics on training digits (the model's own 8-image
    training batches, train mode, no gradient: what pruning recovery does) moves fp32 accuracy on
    all 360 held-out digits by at most 1 point: the statistics are the trained network's."""
    bundle, _ = mobilenet
    _, _, x_test, y_test = digits_cnn.load_split()
    before = mobilenet_v2.held_out_accuracy(bundle.module, x_test, y_test)
    module = copy.deepcopy(bundle.module)
    batches = (inputs[0] for inputs, _ in bundle.train_batches())
    mobilenet_v2.recalibrate_batch_norm(module, batches, "re-estimating batch-norm statistics")
    norms = [
        (m, n) for m, n in zip(bundle.module.modules(), module.modules(), strict=True) if isinstance(m, nn.BatchNorm2d)
    ]
    assert not any(torch.equal(m.running_var, n.running_var) for m, n in norms)  # every one re-estimated
    after = mobilenet_v2.held_out_accuracy(module, x_test, y_test)
    assert abs(after - before) <= 0.01, (before, after)


def test_transformer_training_is_deterministic_and_shows_progress():
    task = tiny_transformer.load_task()
    reporter = RecordingReporter()
    with reporting_to(reporter):
        runs = [tiny_transformer.train(task, steps=2) for _ in range(2)]
    (first, first_facts), (second, second_facts) = runs
    assert first_facts["held_out_accuracy"] == pytest.approx(second_facts["held_out_accuracy"], abs=1e-6)
    for name, tensor in first.state_dict().items():
        torch.testing.assert_close(tensor, second.state_dict()[name], msg=name)
    assert reporter.bars == [reporter.bars[0]] * 2 and "tiny_transformer" in reporter.bars[0]


def test_trained_transformer_scores_above_chance_on_held_out_files(transformer, monkeypatch):
    bundle, _ = transformer
    accuracy = bundle.score(outputs(bundle, len(bundle.eval_inputs)))
    assert accuracy > 0.2  # 10 balanced packages: chance is 0.1
    monkeypatch.setattr(tiny_transformer, "train", lambda *a, **k: pytest.fail("retrained a cached model"))
    assert resolve("tiny_transformer").load().score is not None


def test_stdlib_corpus_is_split_by_file_and_fingerprinted():
    corpus = load_corpus()
    packages = corpus.packages(10)
    train, held_out = corpus.split(packages)
    assert not {f.path for f in train} & {f.path for f in held_out}
    assert {f.package for f in train} == {f.package for f in held_out} == set(packages)
    assert not any("/test/" in f"/{f.path}" for f in corpus.files)
    manifest = corpus.manifest()
    assert manifest["fingerprint"] == load_corpus().fingerprint and len(manifest["files"]) == len(corpus.files)


def random_mobilenet() -> nn.Module:
    """A seeded random-weight MobileNetV2 with batch-norm statistics from random images: the
    architecture of mobilenet_v2, untrained."""
    torch.manual_seed(0)
    model = mobilenet_v2.MobileNetV2()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.BatchNorm2d):
            module.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 224, 224, generator=torch.Generator().manual_seed(7)))
    return model.eval()


def test_input_independence_flags_random_weights():
    """Untrained networks on the inputs their trained versions are scored on: held-out digits at
    224×224 and held-out source files."""
    mobile = random_mobilenet()
    _, _, x_test, _ = digits_cnn.load_split()
    images = [mobilenet_v2.digits_images(x_test[i : i + 1]) for i in range(8)]
    torch.manual_seed(0)
    text = tiny_transformer.TinyTransformer().eval()
    files = tiny_transformer.load_task().x_test
    with torch.no_grad():
        untrained_outputs = ([mobile(image) for image in images], [text(files[i : i + 1]) for i in range(32)])
    for untrained in untrained_outputs:
        dependence = input_dependence([o.numpy() for o in untrained])
        assert dependence < INPUT_INDEPENDENT_BELOW
        assert "untrained network" in untrained_fidelity_note(dependence, has_score=False)


def check_passes_input_independence(bundle) -> None:
    dependence = input_dependence([o.numpy() for o in outputs(bundle, 32)])
    assert dependence >= INPUT_INDEPENDENT_BELOW
    assert untrained_fidelity_note(dependence, has_score=False) is None


def test_input_independence_passes_the_trained_transformer(transformer):
    check_passes_input_independence(transformer[0])


@pytest.mark.full_training
def test_input_independence_passes_the_trained_mobilenet(mobilenet):
    check_passes_input_independence(mobilenet[0])


def test_rows_of_an_untrained_model_without_score_are_labelled(tmp_path):
    """Through the real sweep: the row says its fidelity is to an untrained network, and the
    report warns once for the model."""
    from pocketbench.devices.local import LocalDevice
    from pocketbench.measure.settings import ProtocolSettings
    from pocketbench.measure.sweep import run_sweep
    from pocketbench.report.cautions import warnings
    from pocketbench.results.store import RunStore

    store = RunStore(tmp_path / "results")
    store.write_manifest({"test": "untrained"}, {})
    model = str(DATA / "untrained_mlp.py") + ":factory"
    assert run_sweep([model], ["fp32"], [LocalDevice()], ProtocolSettings(iterations=3, repetitions=1), store) == 0
    frame = store.finish()
    assert (frame["output_input_dependence"] < INPUT_INDEPENDENT_BELOW).all()
    assert frame["fidelity_note"].str.startswith("fidelity to an untrained network").all()
    assert [n for n in warnings(frame) if "untrained network" in n] == [f"{model}: {frame['fidelity_note'].iloc[0]}"]


def test_rows_of_a_trained_model_carry_the_check_but_no_label(digits_sweep):
    _, frame, _ = digits_sweep
    ok = frame[frame["status"] == "ok"]
    assert len(ok) and (ok["output_input_dependence"] >= INPUT_INDEPENDENT_BELOW).all()
    assert ok["fidelity_note"].isna().all()
