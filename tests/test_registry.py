from pathlib import Path

import pytest
from pocketbench.errors import PocketbenchError
from pocketbench.models.registry import ModelBundle, builtin_names, resolve

TINY_MODEL = """
import torch
from pocketbench.models.registry import ModelBundle

def factory():
    module = torch.nn.Sequential(torch.nn.Linear(4, 3))
    x = torch.ones(1, 4)
    return ModelBundle(module=module, example_inputs=(x,), calibration=lambda: [(x,)], eval_inputs=[(x,)])

def broken():
    raise RuntimeError("weights file missing")

def wrong_type():
    return 42
"""


@pytest.fixture
def user_model(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(TINY_MODEL)
    return path


def test_builtins_are_the_five_documented_models():
    assert builtin_names() == ["digits_cnn", "llama_speed", "mobilenet_v2", "tiny_llama", "tiny_transformer"]


def test_user_factory_from_a_file(user_model):
    bundle = resolve(f"{user_model}:factory").load()
    assert isinstance(bundle, ModelBundle) and not bundle.module.training


def test_user_factory_from_a_module():
    spec = resolve("pocketbench_models.digits_cnn:factory")
    assert spec.source_file.name == "digits_cnn.py"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("resnet_9000", "unknown model 'resnet_9000': use one of digits_cnn"),
        ("missing.py:factory", "no file missing.py"),
        ("no_such_package_xyz:factory", "cannot import no_such_package_xyz"),
        ("pocketbench_models.digits_cnn:nothing", "has no callable 'nothing'"),
    ],
)
def test_bad_references_name_the_model_and_the_fix(reference, message):
    with pytest.raises(PocketbenchError, match=message):
        resolve(reference)


def test_a_factory_that_raises_is_one_clear_error(user_model):
    with pytest.raises(PocketbenchError, match="factory raised RuntimeError: weights file missing"):
        resolve(f"{user_model}:broken").load()


def test_a_factory_returning_the_wrong_thing_is_refused(user_model):
    with pytest.raises(PocketbenchError, match=r"returned int, not a pocketbench\.models\.registry\.ModelBundle"):
        resolve(f"{user_model}:wrong_type").load()


def test_the_cache_key_covers_the_helpers_a_model_file_imports(tmp_path):
    """Editing a helper the model file imports (directly or through another helper) changes the
    artifact's cache key; an unrelated file beside it does not."""
    from pocketbench.models.registry import ModelSpec, local_imports

    (tmp_path / "model.py").write_text("import torch\nfrom layers import Block\n")
    (tmp_path / "layers.py").write_text("from pkg._weights import load\nclass Block: ...\n")
    (tmp_path / "_weights.py").write_text("def load(): return 1\n")
    (tmp_path / "unrelated.py").write_text("x = 1\n")
    spec = ModelSpec("m", lambda: None, tmp_path / "model.py")  # type: ignore[arg-type,return-value]
    assert local_imports(tmp_path / "model.py") == {tmp_path / "layers.py", tmp_path / "_weights.py"}
    before = spec.source_digest()
    (tmp_path / "unrelated.py").write_text("x = 2\n")
    assert spec.source_digest() == before
    (tmp_path / "_weights.py").write_text("def load(): return 2\n")
    assert spec.source_digest() != before
    builtin = resolve("tiny_llama")
    assert {p.name for p in local_imports(builtin.source_file)} >= {"_llama.py", "_trained.py", "_stdlib_text.py"}
    # A user's decoder built on the built-in helpers (tests/data/tiny_decoder.py) is keyed on them too.
    decoder = Path(__file__).parent / "data" / "tiny_decoder.py"
    assert {p.name for p in local_imports(decoder)} >= {"_llama.py", "_stdlib_text.py"}
