"""Generation mode of the Python-runtime fallback: the native runner's `--generate P,N` protocol
(prefill of P tokens, N one-token decode steps, each execute timed alone on the monotonic clock)
and its JSON `generation` object, for a method `forward(tokens [1, T], positions [T]) -> logits
[1, T, vocab]` whose KV cache lives in the method's mutable buffers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONTRACT = "generation needs a method forward(tokens int64 [1, T], positions int64 [T])"


class GenerationError(ValueError):
    """A generation the method or the stream cannot do; the message is one line."""


@dataclass(frozen=True)
class GenerationPlan:
    prompt_tokens: int
    decode_tokens: int
    teacher_forced: bool
    context: int


def parse_generate(text: str) -> tuple[int, int]:
    """`P,N` → (P ≥ 1, N ≥ 0), as the native runner reads `--generate`."""
    first, comma, second = text.partition(",")
    try:
        prompt, decode = int(first), int(second)
    except ValueError:
        raise GenerationError(f"--generate needs P,N (prompt tokens, decode tokens), got {text!r}") from None
    if not comma or not 1 <= prompt <= 1_000_000 or not 0 <= decode <= 1_000_000:
        raise GenerationError(f"--generate needs P in [1, 1000000] and N in [0, 1000000], got {text!r}")
    return prompt, decode


def method_context(method: Any) -> int:
    """The cache length: the upper bound of T in the method's int64 tokens input [1, T]."""
    meta = method.metadata
    if meta.num_inputs() != 2:
        raise GenerationError(f"{CONTRACT}; this one has {meta.num_inputs()} inputs")
    tokens, positions = meta.input_tensor_meta(0), meta.input_tensor_meta(1)
    if len(tokens.sizes()) != 2 or len(positions.sizes()) != 1:
        raise GenerationError(f"{CONTRACT}; this one's inputs have other ranks")
    return int(tokens.sizes()[1])


def check_plan(plan: GenerationPlan, stream: Sequence[int], dtype: str) -> None:
    """The native runner's checks, with its messages."""
    if plan.prompt_tokens + plan.decode_tokens > plan.context:
        raise GenerationError(
            f"prompt {plan.prompt_tokens} + decode {plan.decode_tokens} tokens exceed the model's context of "
            f"{plan.context} (its KV cache): ask for fewer tokens"
        )
    if dtype != "int64":
        raise GenerationError(f"the token stream (input 0 of set 0) is {dtype}, not int64")
    need = plan.prompt_tokens + (plan.decode_tokens if plan.teacher_forced else 0)
    if len(stream) < need:
        what = "the prompt and every teacher-forced decode token" if plan.teacher_forced else "the prompt"
        raise GenerationError(f"the token stream holds {len(stream)} tokens; {need} are needed ({what})")


def generate_once(method: Any, stream: Sequence[int], plan: GenerationPlan) -> tuple[int, list[int], list[int]]:
    """(prefill ns, decode ns per step, predicted ids): the argmax after the prefill and after each
    decode step. Only `execute` is inside the clock."""
    import torch

    ids: list[int] = []
    decode_ns: list[int] = []
    p, prefill_ns = plan.prompt_tokens, 0
    for step in range(plan.decode_tokens + 1):
        if step == 0:
            tokens, start = list(stream[:p]), 0
        else:
            tokens, start = [stream[p + step - 1] if plan.teacher_forced else ids[-1]], p + step - 1
        inputs = [
            torch.tensor([tokens], dtype=torch.int64),
            torch.arange(start, start + len(tokens), dtype=torch.int64),
        ]
        begin = time.perf_counter_ns()
        outputs = method.execute(inputs)
        ns = time.perf_counter_ns() - begin
        if step == 0:
            prefill_ns = ns
        else:
            decode_ns.append(ns)
        ids.append(int(outputs[0][0, -1].argmax()))
    return prefill_ns, decode_ns, ids


def measure_generation(
    method: Any,
    plan: GenerationPlan,
    stream: Sequence[int],
    warmup: int,
    iterations: int,
    min_seconds: float,
    report: dict[str, Any],
) -> None:
    """First generation (its prefill is the first inference), warm-ups, then timed generations;
    fills `report` as the native runner does (every decode step is one timed sample)."""
    prefill_ns, _, ids = generate_once(method, stream, plan)
    report["first_inference_ms"] = prefill_ns / 1e6
    for _ in range(warmup):
        generate_once(method, stream, plan)
    generation: dict[str, Any] = {
        "prompt_tokens": plan.prompt_tokens,
        "decode_tokens": plan.decode_tokens,
        "teacher_forced": plan.teacher_forced,
        "context": plan.context,
        "prefill_ns": [],
        "decode_ns": [],
        "generated_ids": ids,
    }
    samples: list[int] = report["iterations_ns"]
    total, min_ns = 0, int(min_seconds * 1e9)
    while len(generation["prefill_ns"]) < iterations or total < min_ns:
        prefill_ns, decode_ns, ids = generate_once(method, stream, plan)
        generation["prefill_ns"].append(prefill_ns)
        generation["decode_ns"].append(decode_ns)
        generation["generated_ids"] = ids
        samples.extend(decode_ns or [prefill_ns])
        total += prefill_ns + sum(decode_ns)
    report["generation"] = generation
