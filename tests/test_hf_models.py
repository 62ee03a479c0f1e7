"""`--model hf:CHECKPOINT`: tiny random-initialised checkpoints made here (no hub), exported with
transformers' static-cache module and measured end to end; names that are not checkpoints get one
line; llama-bench's yardstick (per-generation mean ± sd, `report --format llama-bench`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pocketbench.cli import app
from pocketbench.farm.matrix import MatrixError, parse_matrix
from pocketbench.measure.generation import per_generation_rates
from pocketbench.measure.settings import LLAMA_BENCH, ProtocolSettings
from pocketbench.report.llama_bench import llama_bench_markdown
from typer.testing import CliRunner

from tests.data import tiny_hf

runner = CliRunner()


def bench(tmp_path: Path, model: str, variants: str, *extra: str):
    args = ["bench", "-m", model, "-v", variants, "-d", "local", "--iterations", "2", "--warmup", "1"]
    args += ["--repetitions", "2", "--results", str(tmp_path / "results"), "--json", *extra]
    result = runner.invoke(app, args)
    return result, json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture(scope="module")
def llama_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_hf.llama(tmp_path_factory.mktemp("hf") / "tiny-llama")


def test_names_that_are_not_supported_checkpoints_get_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
    (tmp_path / "weights.safetensors").write_bytes(b"x")
    cases = {
        "empty": "is not a checkpoint folder (no config.json)",
        "bert": "architecture BertForMaskedLM is not supported; supported: causal language models LlamaForCausalLM",
        "weights.safetensors": "is a file; give the checkpoint's folder",
        "missing/../../x": "no folder",
    }
    for name, expected in cases.items():
        result, _ = bench(tmp_path, f"hf:{tmp_path / name}", "fp32")
        message = str(result.exception)  # the command prints it as its one error line
        assert result.exit_code == 1 and "\n" not in message, message
        assert expected in message and "nothing was run" in message, message


def test_llama_bench_presets_refuse_a_different_prompt_length(tmp_path: Path) -> None:
    result, _ = bench(tmp_path, "tiny_llama", "fp32", "--llama-bench", "--prompt-tokens", "64")
    assert result.exit_code == 1
    rule = "fixes the prompt at 512 tokens and the decode at 128: give no other prompt or decode length"
    assert str(result.exception) == f"--llama-bench {rule}"


def test_llama_bench_is_one_setting_for_the_api_and_the_farm(tmp_path: Path) -> None:
    """The preset is a ProtocolSettings field: P and N in the manifest, a farm [run] key named its way."""
    settings = ProtocolSettings(llama_bench=True)
    assert (settings.prompt_tokens, settings.decode_tokens) == LLAMA_BENCH == (512, 128)
    assert ProtocolSettings(**asdict(settings)) == settings  # as a manifest reads back
    data = {"variants": ["fp32"], "models": ["tiny_llama"], "devices": [{"serial": "local"}]}
    matrix = parse_matrix({**data, "run": {"llama_bench": True}}, tmp_path / "m.toml")
    assert matrix.run.protocol.prompt_tokens == 512 and matrix.run.protocol.threads == 1
    with pytest.raises(MatrixError) as caught:
        parse_matrix({**data, "run": {"llama_bench": True, "decode_tokens": 16}}, tmp_path / "m.toml")
    assert str(caught.value).startswith("m.toml: run.llama_bench: fixes the prompt at 512 tokens")


def test_per_generation_rates_are_llama_bench_mean_and_sd() -> None:
    # two processes: generations of P = 4 prompt tokens, N = 2 decode steps each
    generations = [
        {"prefill_ns": [1_000_000, 2_000_000], "decode_ns": [[500_000, 500_000], [1_000_000, 1_000_000]]},
        {"prefill_ns": [4_000_000], "decode_ns": [[250_000, 250_000]]},
    ]
    columns = per_generation_rates(generations, prompt=4)
    prefill, decode = [4000.0, 2000.0, 1000.0], [2000.0, 1000.0, 4000.0]
    assert columns["generations"] == 3
    assert columns["prefill_tok_s_mean"] == pytest.approx(np.mean(prefill))
    assert columns["prefill_tok_s_sd"] == pytest.approx(np.std(prefill, ddof=1))
    assert columns["decode_tok_s_mean"] == pytest.approx(np.mean(decode))
    assert columns["decode_tok_s_sd"] == pytest.approx(np.std(decode, ddof=1))


def test_llama_bench_table_has_a_pp_and_a_tg_row_per_variant() -> None:
    row = {"kind": "generative", "status": "ok", "model": "hf:m", "variant": "8da4w", "size_bytes": 3 * 2**20,
           "model_params": 134_520_000, "delegated_fraction": 0.9, "backend": "native-runner", "threads": 4,
           "prompt_tokens": 512, "decode_tokens": 128, "prefill_tok_s_mean": 260.5, "prefill_tok_s_sd": 1.25,
           "decode_tok_s_mean": 50.2, "decode_tok_s_sd": 0.5, "speed_only": False}  # fmt: skip
    failed = {**row, "variant": "fp32", "status": "export_error"}
    text = llama_bench_markdown(pd.DataFrame([row, failed]))
    lines = text.splitlines()
    assert lines[0] == "| model | size | params | backend | threads | test | t/s |"
    assert lines[2] == "| hf:m 8da4w | 3.00 MiB | 134.52 M | XNNPACK | 4 | pp512 | 260.50 ± 1.25 |"
    assert lines[3] == "| hf:m 8da4w | 3.00 MiB | 134.52 M | XNNPACK | 4 | tg128 | 50.20 ± 0.50 |"
    assert "1 generative row(s) not ok are left out" in text
    assert "No generative rows" in llama_bench_markdown(pd.DataFrame([{**row, "kind": "classifier"}]))


@pytest.mark.slow  # exports a tiny Llama checkpoint twice (fp32, 8da4w) and measures pp512 / tg128
def test_bench_a_llama_checkpoint_with_the_llama_bench_presets(llama_checkpoint: Path, tmp_path: Path) -> None:
    result, run = bench(tmp_path, f"hf:{llama_checkpoint}", "fp32,8da4w", "--llama-bench")
    assert result.exit_code == 0, result.stderr
    fp32, w4 = run["rows"]
    for row in (fp32, w4):
        assert row["status"] == "ok" and row["kind"] == "generative", row["error"]
        assert (row["prompt_tokens"], row["decode_tokens"], row["context_tokens"]) == (512, 128, 640)
        assert row["perplexity"] > 1 and row["decode_tok_s"] > 0 and row["generations"] >= 4
        assert row["decode_tok_s_mean"] > 0 and row["prefill_tok_s_sd"] is not None
        assert row["model_params"] == sum(np.prod(s) for s in _shapes(llama_checkpoint))
    # The fp32 program computes the eager model's perplexity and greedy ids; 4-bit weights are smaller.
    assert abs(fp32["perplexity_delta_pct"]) < 1e-3 and fp32["greedy_agreement"] == 1.0
    assert w4["size_bytes"] < fp32["size_bytes"]
    assert "| model | size | params | backend | threads | test | t/s |" in result.stderr  # --json: tables on stderr
    report = runner.invoke(app, ["report", "latest", "--results", str(tmp_path / "results"), "-f", "llama-bench"])
    assert report.exit_code == 0, report.stderr
    rows = [line for line in report.stdout.splitlines() if line.startswith(f"| hf:{llama_checkpoint}")]
    assert [r.split(" | ")[5] for r in rows] == ["pp512", "tg128", "pp512", "tg128"]
    assert all(" ± " in r for r in rows)


@pytest.mark.slow  # exports the tiny Llama checkpoint and runs it through an emulated phone's runner bundle
def test_a_llama_checkpoint_runs_on_the_emulated_phone(llama_checkpoint: Path, phone, tmp_path: Path) -> None:
    from tests.runner_support import android_bundle

    android_bundle("x86_64")  # what the emulated x86_64 phone runs (it trusts the harness's POCKETBENCH_ADB_KEY)
    device = f"tcp:{phone.host}:{phone.port}"
    args = ["bench", "-m", f"hf:{llama_checkpoint}", "-v", "fp32", "-d", device, "--prompt-tokens", "16"]
    args += ["--decode-tokens", "8", "--repetitions", "2", "--results", str(tmp_path / "results"), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["rows"]
    assert row["status"] == "ok" and row["kind"] == "generative", row["error"]
    assert (row["backend"], row["device_serial"]) == ("native-runner", phone.serial)
    assert (row["prompt_tokens"], row["decode_tokens"]) == (16, 8) and row["decode_tok_s"] > 0
    # The phone's program scores the held-out text as the eager checkpoint does and decodes the same ids.
    assert row["perplexity"] > 1 and abs(row["perplexity_delta_pct"]) < 1e-3 and row["greedy_agreement"] == 1.0


def _shapes(folder: Path) -> list[tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        return [tuple(weights.get_slice(k).get_shape()) for k in weights.keys()]  # noqa: SIM118


@pytest.mark.slow  # exports a tiny ResNet checkpoint twice and scores it on labelled images
def test_bench_an_image_classifier_checkpoint_on_labelled_images(tmp_path: Path) -> None:
    checkpoint = tiny_hf.resnet(tmp_path / "tiny-resnet")
    images = tiny_hf.images(tmp_path / "images")
    result, run = bench(tmp_path, f"hf:{checkpoint}", "fp32,8da4w", "--images", str(images))
    assert result.exit_code == 0, result.stderr
    for row in run["rows"]:
        assert row["status"] == "ok", row["error"]
        assert 0 <= row["accuracy"] <= 1 and row["latency_p50_ms"] > 0
    fp32, w4 = run["rows"]
    assert fp32["sqnr_db"] > 60  # the fp32 program computes the eager model's logits
    assert w4["sqnr_db"] < fp32["sqnr_db"]  # its 4-bit head changes them (a 32 × 3 head: no smaller file)


def test_images_named_after_no_label_are_one_line(tmp_path: Path) -> None:
    checkpoint = tiny_hf.resnet(tmp_path / "tiny-resnet")
    images = tiny_hf.images(tmp_path / "images")
    (images / "cat").rename(images / "lion")
    result, run = bench(tmp_path, f"hf:{checkpoint}", "fp32", "--images", str(images))
    (row,) = run["rows"]
    assert result.exit_code == 4 and row["status"] == "model_error"
    assert "folder(s) lion name no label of the model; name each folder after a label (cat, dog, fish)" in row["error"]
