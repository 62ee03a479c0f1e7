"""Generative models through `pocketbench bench`: a user's decoder factory, fp32 / int8-dynamic /
8da4w, on this computer and on the emulated phone (tiny random-weight decoder: tests stay fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pocketbench.cli import app
from typer.testing import CliRunner

from tests.data.tiny_decoder import CONFIG

runner = CliRunner()
DECODER = str(Path(__file__).parent / "data" / "tiny_decoder.py")
GENERATIVE = ("ttft_ms", "prefill_tok_s", "decode_tok_s", "decode_tok_s_ci_low",
              "decode_ms_p50", "decode_ms_p90", "perplexity", "perplexity_delta_pct", "greedy_agreement",
              "size_bytes", "peak_rss_kb")  # fmt: skip


def bench(tmp_path: Path, *extra: str, factory: str = "factory", variants: str = "fp32,int8-dynamic,8da4w"):
    args = ["bench", "--model", f"{DECODER}:{factory}", "--variants", variants, "--prompt-tokens", "16"]
    args += ["--decode-tokens", "8", "--iterations", "2", "--warmup", "1", "--repetitions", "2", *extra]
    result = runner.invoke(app, [*args, "--results", str(tmp_path / "results"), "--json"])
    return result, json.loads(result.stdout) if result.stdout.strip() else None


def check_rows(rows: list[dict]) -> None:
    fp32 = rows[0]
    assert [r["variant"] for r in rows] == ["fp32", "int8-dynamic", "8da4w"]
    for row in rows:
        assert row["status"] == "ok", row["error"]
        assert row["kind"] == "generative" and all(row[c] is not None for c in GENERATIVE), row
        high = row["decode_tok_s_ci_high"]  # None: unbounded (two processes that disagree a lot)
        assert row["decode_tok_s_ci_low"] <= row["decode_tok_s"] and (high is None or row["decode_tok_s"] <= high)
        if row["ttft_ci_low_ms"] is not None:  # None: too few prefills for a 95% CI (fewer than 6)
            assert 0 < row["ttft_ci_low_ms"] <= row["ttft_ms"] <= row["ttft_ci_high_ms"]
        assert row["prefill_tok_s"] == pytest.approx(16 * 1000 / row["ttft_ms"])
        # ≥ processes × generations × decode steps (a phone's energy window can ask for more generations)
        assert row["iterations"] >= 2 * 2 * 8 and row["iterations"] % 8 == 0
    # The fp32 .pte computes the eager model's perplexity and ids; compressed variants differ a little.
    assert abs(fp32["perplexity_delta_pct"]) < 1e-3 and fp32["greedy_agreement"] == 1.0
    assert rows[2]["size_bytes"] < rows[1]["size_bytes"] < fp32["size_bytes"]
    # k and v caches of every layer, fp32, [1, kv_heads, context, head_dim]: within the planned memory
    cache = 2 * CONFIG.layers * CONFIG.kv_heads * CONFIG.context * CONFIG.head_dim * 4
    assert all(r["kv_cache_bytes"] == cache <= r["planned_memory_bytes"] for r in rows)


@pytest.mark.slow  # exports three variants of a decoder and measures them end to end
def test_bench_a_user_decoder_on_this_computer(tmp_path: Path) -> None:
    result, run = bench(tmp_path, "--device", "local")
    assert result.exit_code == 0, result.stderr
    check_rows(run["rows"])
    assert "TTFT ms" in result.stderr and "decode tok/s" in result.stderr and "perplexity" in result.stderr


def test_a_decoder_with_the_wrong_signature_gets_one_line_naming_the_contract(tmp_path: Path) -> None:
    result, run = bench(tmp_path, "--device", "local", factory="wrong_signature", variants="fp32")
    (row,) = run["rows"]
    assert result.exit_code == 4 and row["status"] == "model_error"
    assert "forward(tokens int64 [1, T], positions int64 [T]) -> logits [1, T, vocab]" in row["error"]
    assert "does not take (tokens, positions)" in row["error"] and "\n" not in row["error"]


@pytest.mark.slow  # exports the decoder, then starts the runner, which refuses the plan
def test_a_prompt_and_decode_longer_than_the_cache_is_an_error_row(tmp_path: Path) -> None:
    result, run = bench(tmp_path, "--device", "local", "--prompt-tokens", "60", variants="fp32")
    (row,) = run["rows"]
    assert result.exit_code == 4 and row["status"] == "bad_arguments"
    message = "prompt 60 + decode 8 tokens exceed the model's context of 64 (its KV cache): ask for fewer tokens"
    assert row["error"] == message


def test_bench_a_user_decoder_on_the_emulated_phone(phone, tmp_path: Path) -> None:
    from tests.runner_support import android_bundle

    android_bundle("x86_64")  # what the emulated x86_64 phone runs
    result, run = bench(tmp_path, "--device", f"tcp:{phone.host}:{phone.port}", "--energy-window", "0.1")
    assert result.exit_code == 0, result.stderr
    check_rows(run["rows"])
    assert all(r["device_emulated"] and r["backend"] == "native-runner" for r in run["rows"])


@pytest.mark.slow  # exports two variants with ETRecords and traces them
def test_profile_of_a_decoder_names_every_op_and_finds_no_cache_copies(tmp_path: Path) -> None:
    """`--profile` on generative cells: each op outside XNNPACK is named (not a character of the
    Inspector's shortened op list), and grouped attention never copies the KV cache (the
    `expand_copy` that was 46 % of tiny_llama's decode)."""
    import re

    import pandas as pd

    result, run = bench(tmp_path, "--device", "local", "--profile", variants="fp32,8da4w")
    assert result.exit_code == 0, result.stderr
    assert all(r["status"] == "ok" and r["profile_execute_ms"] > 0 for r in run["rows"]), run["rows"]
    (folder,) = (tmp_path / "results").iterdir()
    events = pd.concat(pd.read_parquet(path) for path in sorted((folder / "profiles").glob("*.parquet")))
    outside = set(events.loc[events["kind"] == "outside_op", "op"])
    assert outside and all(re.fullmatch(r"[a-z_][\w.]*|prim op \(view/shape\)", op) for op in outside), outside
    assert "expand_copy" not in outside and "per-op profile" in result.stderr
