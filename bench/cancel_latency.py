"""How long a cancelled `respond()` takes to return, with and without llama.cpp's abort flag.

A cancellation lands either in the prompt evaluation (one long llama.cpp call) or in the decode
(one short call per token). The baseline checks the stop request only between tokens, as a
generation loop can by itself; Verity also sets the flag llama.cpp's abort callback reads
between graph nodes. Each round cancels at a random moment of the named phase and measures the
time from `cancel()` to `respond()` returning (the worker has then left llama.cpp).

    python bench/cancel_latency.py [--rounds 5] [--model PATH]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import anyio

from verity import LlamaCppModel, Message, ModelSettings, embedded_model_path

LONG_PROMPT = "Summarise this log in one line.\n" + "\n".join(
    f"2026-11-29 12:{i % 60:02d}:{i % 57:02d} worker-{i % 7} processed batch {i} in {i % 13} ms"
    for i in range(100)
)
LONG_ANSWER = "Write a Python module implementing a red-black tree, with docstrings."


async def cancel_after(model: LlamaCppModel, prompt: str, delay: float) -> float:
    """Seconds from cancelling a respond() `delay` seconds in to its return."""
    messages = [Message(role="user", content=prompt)]
    cancelled_at = 0.0
    async with anyio.create_task_group() as group:
        group.start_soon(model.respond, messages, [])
        await anyio.sleep(delay)
        cancelled_at = time.perf_counter()
        group.cancel_scope.cancel()
    return time.perf_counter() - cancelled_at


def build(path: Path, *, abort_flag: bool) -> LlamaCppModel:
    model = LlamaCppModel(path, ModelSettings(temperature=0, n_ctx=4096, max_tokens=2000))
    if not abort_flag:  # the baseline: stop requests seen only between llama.cpp calls
        model._native.guard.abort.attach = lambda context: None  # type: ignore[method-assign]
    return model


async def measure(path: Path, rounds: int) -> list[tuple[str, str, list[float]]]:
    rows = []
    for abort_flag in (False, True):
        model = build(path, abort_flag=abort_flag)
        await model.respond([Message(role="user", content="Hi")], [])  # load before timing
        label = "abort flag + token checks" if abort_flag else "token checks only"
        moments = random.Random(7)
        for phase, prompt, window in (
            ("prompt evaluation", LONG_PROMPT, (0.2, 1.5)),
            ("decode", LONG_ANSWER, (3.0, 6.0)),
        ):
            model.llama.reset()  # no KV prefix: the prompt is evaluated in full every round
            latencies = []
            for _ in range(rounds):
                latencies.append(await cancel_after(model, prompt, moments.uniform(*window)))
                model.llama.reset()
            rows.append((label, phase, latencies))
        await model.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    rows = anyio.run(measure, args.model or embedded_model_path(), args.rounds)
    print("| stop checked by | cancelled during | rounds | median s | max s |")
    print("|---|---|---|---|---|")
    for label, phase, latencies in rows:
        print(
            f"| {label} | {phase} | {len(latencies)} | {statistics.median(latencies):.3f} "
            f"| {max(latencies):.3f} |"
        )
    base = {phase: statistics.median(times) for label, phase, times in rows if "only" in label}
    for label, phase, latencies in rows:
        if "only" not in label:
            ratio = base[phase] / max(statistics.median(latencies), 1e-6)
            print(f"{phase}: the abort flag returns {ratio:.1f}x sooner (median)")


if __name__ == "__main__":
    main()
