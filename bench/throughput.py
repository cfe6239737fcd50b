"""Throughput of Verity's llama.cpp path against raw llama-cpp-python, in one process.

    python bench/throughput.py [--model GGUF] [--tokens N] [--repeats N] [--json]
                               [--n-gpu-layers N] [--flash-attn]

Prints three ratios, each with the baseline measured in the same run:
1. decode and prefill tok/s through Verity / raw llama-cpp-python (`Llama.generate`, `Llama.eval`)
2. constrained / unconstrained decode of a tool call (Verity's fast path: llguidance checks the
   sampled token, masks only on rejection), and, for reference, llama-cpp-python's own GBNF
   grammar sampler (the whole vocabulary every step)
3. prompt tokens evaluated / new prompt tokens over a 10-step tool loop (KV prefix reuse),
   counted by llama.cpp's own counters (llama_perf_context)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp
from llama_cpp import LlamaGrammar

from verity import LlamaCppModel, Message, ModelSettings, embedded_model_path
from verity.models.formats.base import call_schema
from verity.tools.builtin.calculator import calculator

# A few hundred prompt tokens, so prefill time is not dominated by per-call overhead and noise.
SETTING = " ".join(
    f"Night {n}: the keeper logged the wind, the swell, the lamp's oil and the ships that passed."
    for n in range(1, 21)
)
STORY = [
    Message(
        role="user",
        content=f"{SETTING}\nWrite a long story about this lighthouse keeper and a storm.",
    )
]
CALL = [
    Message(role="system", content="You are a careful assistant that uses tools."),
    Message(role="user", content="What is 1234 * 5678 + 17 - 99 * 3 + 4444 / 11?"),
]


def in_worker_thread(function: Any, *args: Any) -> Any:
    """Call `function` in a fresh thread, as Verity calls llama.cpp (anyio.to_thread).

    Measured here on the CPU backend: the same `Llama.eval` costs about twice the CPU time on
    Python's main thread as on another thread, so a baseline run on the main thread would
    flatter every ratio.
    """
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(function(*args)))
    worker.start()
    worker.join()
    return results[0]


def counters(llm: Any) -> tuple[int, int]:
    """Prompt-batch and single-token evaluations counted by llama.cpp."""
    data = llama_cpp.llama_perf_context(llm.ctx)
    return int(data.n_p_eval), int(data.n_eval)


def raw_decode(llm: Any, prompt: list[int], n: int) -> tuple[float, float]:
    """(prefill tok/s, decode tok/s) of plain llama-cpp-python, greedy.

    Decode is timed from the first generated token on, so the prompt evaluation that
    `Llama.generate` does first is not counted as decoding.
    """
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt)
    prefill = len(prompt) / (time.perf_counter() - started)
    llm.reset()
    generated = 0
    first = time.perf_counter()
    for _ in llm.generate(prompt, temp=0.0, reset=False):
        generated += 1
        if generated == 1:
            first = time.perf_counter()
        if generated >= n:
            break
    return prefill, (generated - 1) / (time.perf_counter() - first)


def verity_decode(model: LlamaCppModel, n: int) -> tuple[float, float]:
    model.llama.reset()
    response = anyio.run(lambda: model.respond(STORY, []))
    usage = response.usage
    return usage.prompt_tokens / usage.prefill_s, usage.completion_tokens / usage.decode_s


def verity_call(model: LlamaCppModel) -> float:
    """Decode tok/s of a tool call; a constrained call that ended must be a call."""
    model.llama.reset()
    response = anyio.run(lambda: model.respond(CALL, [calculator.spec], tool_choice="required"))
    if model.settings.constrain_tool_calls and response.finish_reason != "length":
        assert response.tool_calls, response.raw
    return response.usage.completion_tokens / response.usage.decode_s


def naive_grammar_decode(llm: Any, model: LlamaCppModel) -> float:
    """llama-cpp-python's own GBNF sampler (from the call's schema) over the same call."""
    template = model.chat_template
    assert template is not None
    prompt = template.render(CALL, [calculator.spec])
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    schema = json.dumps(call_schema([calculator.spec]))
    grammar = LlamaGrammar.from_json_schema(schema, verbose=False)
    llm.reset()
    llm.eval(tokens)
    started = time.perf_counter()
    generated = 0
    for token in llm.generate(tokens, temp=0.0, grammar=grammar, reset=False):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        generated += 1
        if generated >= model.settings.max_tokens:
            break
    return generated / (time.perf_counter() - started)


def kv_reuse(model: LlamaCppModel, steps: int) -> tuple[int, int]:
    """(tokens evaluated, new tokens) over a tool loop of `steps` model calls."""
    messages = list(CALL)
    evaluated = new = 0
    previous_end = 0
    model.llama.reset()
    for step in range(steps):
        before = sum(counters(model.llama))
        respond = partial(model.respond, messages, [calculator.spec], tool_choice="required")
        response = anyio.run(respond)
        usage = response.usage
        evaluated += sum(counters(model.llama)) - before - usage.completion_tokens
        new += usage.prompt_tokens - previous_end if step else usage.prompt_tokens
        previous_end = usage.prompt_tokens + len(
            model.llama.tokenize(response.raw.encode(), add_bos=False, special=True)
        )
        if not response.tool_calls:  # random weights (bench/gguf_synth.py) may not finish one
            break
        call = response.tool_calls[0]
        messages += [
            Message(role="assistant", raw=response.raw, tool_calls=response.tool_calls),
            Message(role="tool", tool_call_id=call.id, name=call.name, content=f"result {step}"),
        ]
    return evaluated, new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="GGUF file (default: the embedded model)")
    parser.add_argument("--tokens", type=int, default=128, help="decode length (128)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--n-gpu-layers", type=int, default=0, help="-1 offloads all (0)")
    parser.add_argument("--flash-attn", action="store_true")
    args = parser.parse_args()
    path = args.model or embedded_model_path()
    settings = ModelSettings(
        temperature=0,
        n_ctx=4096,
        max_tokens=args.tokens,
        n_gpu_layers=args.n_gpu_layers,
        flash_attn=args.flash_attn,
    )
    model = LlamaCppModel(path, settings)
    llm = model.llama
    assert model.chat_template is not None
    story_prompt = llm.tokenize(
        model.chat_template.render(STORY, []).encode(), add_bos=False, special=True
    )
    raw, ours, constrained, naive = [], [], [], []
    free_model = LlamaCppModel(path, settings.model_copy(update={"constrain_tool_calls": False}))
    free = []
    for _ in range(args.repeats):
        raw.append(in_worker_thread(raw_decode, llm, story_prompt, args.tokens))
        ours.append(verity_decode(model, args.tokens))
        constrained.append(verity_call(model))
        free.append(verity_call(free_model))
        naive.append(in_worker_thread(naive_grammar_decode, llm, model))
    evaluated, new = kv_reuse(model, 10)
    med = statistics.median
    rows = {
        "prefill tok/s": (med(o[0] for o in ours), med(r[0] for r in raw)),
        "decode tok/s": (med(o[1] for o in ours), med(r[1] for r in raw)),
        "constrained call decode tok/s": (med(constrained), med(free)),
        "llama-cpp-python grammar decode tok/s": (med(naive), med(free)),
        "prompt tokens evaluated / new (10 steps)": (evaluated, new),
    }
    if args.json:
        print(
            json.dumps(
                {
                    k: {"verity": v[0], "baseline": v[1], "ratio": v[0] / v[1] if v[1] else None}
                    for k, v in rows.items()
                }
            )
        )
        return
    print(f"{'measure':<42} {'verity':>9} {'baseline':>9} {'ratio':>6}   baseline is")
    baselines = [
        "raw Llama.eval",
        "raw Llama.generate",
        "same call, no grammar",
        "same call, no grammar",
        "new tokens",
    ]
    for (name, (ours_value, base)), what in zip(rows.items(), baselines, strict=True):
        ratio = ours_value / base if base else float("nan")
        print(f"{name:<42} {ours_value:>9.1f} {base:>9.1f} {ratio:>6.2f}   {what}")


if __name__ == "__main__":
    main()
