"""Generation mode: a tiny Llama-style decoder with its KV cache in mutable buffers, lowered with
a dynamic token count, run by pocket_runner (--generate P,N) and by the Python-runtime fallback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pocketbench.runner import tensorfile
from pocketbench_models._llama import LlamaConfig, TinyLlama, perplexity

from tests.runner_support import host_runner, run_runner

TINY = LlamaConfig(dim=32, layers=2, heads=4, kv_heads=2, ffn=64, context=48)


def lower(model: TinyLlama, path: Path) -> Path:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    tokens = torch.export.Dim("tokens", min=1, max=model.config.context)
    with torch.no_grad():
        exported = torch.export.export(
            model, (torch.zeros(1, 4, dtype=torch.long), torch.arange(4)), dynamic_shapes=({1: tokens}, {0: tokens})
        )
        program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    path.write_bytes(program.buffer)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[TinyLlama, Path, Path]:
    """A seeded random-weight tiny decoder, its .pte and a 40-token stream."""
    torch.manual_seed(0)
    model = TinyLlama(TINY).eval()
    folder = tmp_path_factory.mktemp("tiny_llama")
    stream = folder / "stream.pbtf"
    tensorfile.write(stream, [[np.random.default_rng(1).integers(0, 256, 40).astype(np.int64)]])
    return model, lower(model, folder / "model.pte"), stream


def python_runner(*args: str | Path) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "pocketbench.runner.python_runtime", *map(str, args)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return proc.returncode, json.loads(proc.stdout)


def eager_ids(model: TinyLlama, stream: list[int], prompt: int, steps: int, teacher_forced: bool) -> list[int]:
    """Greedy (or teacher-forced) ids from the eager model without its cache: the reference."""
    tokens, ids = list(stream[:prompt]), []
    with torch.no_grad():
        for step in range(steps + 1):
            ids.append(int(model.forward_uncached(torch.tensor([tokens]))[0, -1].argmax()))
            tokens.append(stream[prompt + step] if teacher_forced else ids[-1])
    return ids


@pytest.mark.slow  # exports the tiny decoder to a .pte (the `tiny` fixture)
def test_cached_decode_matches_the_uncached_model_in_eager_and_in_the_pte(tiny) -> None:
    from executorch.runtime import Runtime

    model, pte, _ = tiny
    tokens = torch.randint(0, 256, (1, 20), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = model.forward_uncached(tokens)
        eager = [model(tokens[:, :12], torch.arange(12))] + [
            model(tokens[:, i : i + 1], torch.tensor([i])) for i in range(12, 20)
        ]
    method = Runtime.get().load_program(pte).load_method("forward")
    lowered = [method.execute([tokens[:, :12], torch.arange(12)])[0]]
    lowered += [method.execute([tokens[:, i : i + 1], torch.tensor([i])])[0] for i in range(12, 20)]
    scale = float(reference.abs().max())
    assert float((torch.cat(eager, 1) - reference).abs().max()) <= 1e-4 * scale
    assert float((torch.cat(lowered, 1) - reference).abs().max()) <= 1e-4 * scale


@pytest.mark.parametrize("teacher_forced", [False, True])
def test_runner_and_python_runtime_generate_the_reference_ids(tiny, tmp_path: Path, teacher_forced: bool) -> None:
    model, pte, stream_file = tiny
    forced = ["--teacher-forced"] if teacher_forced else []
    args = (
        "--model",
        pte,
        "--inputs",
        stream_file,
        "--generate",
        "16,12",
        "--warmup",
        "1",
        "--iterations",
        "2",
        *forced,
    )
    native = run_runner(host_runner(), *args, json_path=tmp_path / "n.json")
    code, python = python_runner(*args)
    assert native.returncode == 0 and code == 0, (native.stderr, python)
    stream = tensorfile.read(stream_file)[0][0].tolist()
    expected = eager_ids(model, stream, 16, 12, teacher_forced)
    for report in (native.report, python):
        generation = report["generation"]
        assert generation["generated_ids"] == expected
        assert generation["context"] == TINY.context and generation["teacher_forced"] == teacher_forced
        assert len(generation["prefill_ns"]) == 2 and [len(r) for r in generation["decode_ns"]] == [12, 12]
        assert report["iterations_ns"] == [ns for row in generation["decode_ns"] for ns in row]
        assert report["first_inference_ms"] > 0 and report["peak_rss_kb"] > 0


def test_the_host_parses_generation_reports_and_refuses_inconsistent_ones(tiny, tmp_path: Path) -> None:
    from pocketbench.runner.report import parse_runner_report
    from pocketbench.runner.schema import RunnerReportError

    _, pte, stream_file = tiny
    run = run_runner(host_runner(), "--model", pte, "--inputs", stream_file, "--generate", "8,4",
                     "--iterations", "1", json_path=tmp_path / "r.json")  # fmt: skip
    report = parse_runner_report(json.dumps(run.report))
    assert report.ok and report.raw["schema_minor"] == 4 and len(report.iterations_ns) == 4
    broken = json.loads(json.dumps(run.report))
    broken["generation"]["decode_ns"][0].pop()
    with pytest.raises(RunnerReportError, match="decode_ns"):
        parse_runner_report(json.dumps(broken))


def test_a_cache_overflow_is_one_clear_error_in_both_runtimes(tiny, tmp_path: Path) -> None:
    _, pte, stream_file = tiny
    args = ("--model", pte, "--inputs", stream_file, "--generate", "40,9")
    native = run_runner(host_runner(), *args, json_path=tmp_path / "n.json")
    code, python = python_runner(*args)
    message = "prompt 40 + decode 9 tokens exceed the model's context of 48 (its KV cache): ask for fewer tokens"
    assert native.returncode == code == 2
    assert native.report["error"] == python["error"] == message
    assert native.stderr.strip() == f"pocket_runner: {message}"
    short = run_runner(host_runner(), *args[:-1], "30,12", "--teacher-forced", json_path=tmp_path / "s.json")
    assert short.returncode == 2 and "the token stream holds 40 tokens; 42 are needed" in short.report["error"]


def test_perplexity_is_exp_of_the_mean_next_token_negative_log_likelihood() -> None:
    logits = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(3))
    targets = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(4))
    probabilities = torch.softmax(logits.double(), -1)
    nll = [-np.log(float(probabilities[b, t, targets[b, t]])) for b in range(2) for t in range(5)]
    assert perplexity(logits, targets) == pytest.approx(float(np.exp(np.mean(nll))), rel=1e-5)


def test_the_arm64_runner_under_qemu_generates_the_same_ids(tiny, tmp_path: Path) -> None:
    from tests.runner_support import QEMU_CPUS, arm64_runner

    _, pte, stream_file = tiny
    args = ("--model", pte, "--inputs", stream_file, "--generate", "8,6", "--teacher-forced", "--warmup", "0")
    args = (*args, "--iterations", "1")
    native = run_runner(host_runner(), *args, json_path=tmp_path / "x86.json")
    arm = run_runner(arm64_runner(), *args, json_path=tmp_path / "arm.json", qemu_cpu=QEMU_CPUS["neon-i8mm-sve"])
    assert native.returncode == arm.returncode == 0, arm.stderr
    assert arm.report["generation"]["generated_ids"] == native.report["generation"]["generated_ids"]
