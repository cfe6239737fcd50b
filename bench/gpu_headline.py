"""The headline on a GPU: a DeepSeek-R1-Distill-Qwen-32B-shaped model at Q4_K_M, fully offloaded.

    python bench/gpu_headline.py --tokenizer R1.gguf|R1.hdr [--model PATH] [--contexts 4096 16384]
                                 [--decode 128] [--bandwidth-gbs X] [--json-out FILE]

No 32B weights can reach the GPU machine, and llama.cpp's speed does not depend on the weight
values, so the model is generated (bench/gguf_synth.py): Qwen2 architecture with R1-Distill-32B's
shapes (64 layers, hidden 5120, FFN 27648, 40 heads / 8 KV heads), Q4_K_M's tensor types, random
blocks with finite scales, and the real R1 tokenizer and chat template taken from a GGUF header.
For each context depth it measures, on one loaded model with flash attention:
- raw llama-cpp-python: `Llama.eval` of the prompt (prefill) and greedy `Llama.generate` (decode);
- Verity: `LlamaCppModel.respond` with no tools (free decode) and with the calculator tool and
  tool_choice="required" (a grammar-constrained call), prefill and decode from its own usage;
- VRAM in use (nvidia-smi) and the share of the bandwidth roofline decode reaches: the bytes a
  decoded token must read (every weight but the embedding table, plus the KV cache at that depth)
  over the device's measured copy bandwidth, divided by the measured time per token.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gguf_synth import Header, qwen2_header, read_header, write_random

from verity import LlamaCppModel, Message, ModelSettings
from verity.tools.builtin.calculator import calculator

R1_32B = {"layers": 64, "hidden": 5120, "ffn": 27648, "heads": 40, "kv_heads": 8}
FILLER = (
    "Ledger entry {n}: the warehouse received {a} crates of bolts and shipped {b}; the foreman "
    "noted the weather, the truck's arrival time and the count of damaged crates."
)
BANDWIDTH_PROBE = """
import torch
x = torch.empty(2 * 1024**3, dtype=torch.uint8, device="cuda")
y = torch.empty_like(x)
for _ in range(3):
    y.copy_(x)
torch.cuda.synchronize()
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
for _ in range(20):
    y.copy_(x)
end.record()
torch.cuda.synchronize()
print(2 * x.numel() * 20 / (start.elapsed_time(end) / 1000) / 1e9)
"""


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


def vram_used_mib() -> float | None:
    """GPU memory in use on device 0, from nvidia-smi (None where there is none)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return float(out.stdout.strip().splitlines()[0])


def copy_bandwidth_gbs() -> float | None:
    """Device-to-device copy bandwidth (bytes read + written), through PyTorch if it is there."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", BANDWIDTH_PROBE],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return float(out.stdout.strip().splitlines()[-1])


def task_of(model: LlamaCppModel, tokens: int) -> list[Message]:
    """A user turn whose rendered prompt (with the calculator offered) is about `tokens` long."""
    template = model.chat_template
    assert template is not None
    lines: list[str] = []
    n = 0
    while True:
        n += 1
        lines.append(FILLER.format(n=n, a=17 * n % 97, b=13 * n % 89))
        if n % 5:
            continue
        messages = [Message(role="user", content="\n".join(lines) + "\nHow many crates in all?")]
        prompt = template.render(messages, [calculator.spec])
        if len(model.llama.tokenize(prompt.encode(), add_bos=False, special=True)) >= tokens:
            return messages


def raw_rates(llm: Any, prompt: list[int], decode: int) -> tuple[float, float]:
    """(prefill, decode) tok/s of plain llama-cpp-python on `prompt`."""
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt[:-1])
    prefill = (len(prompt) - 1) / (time.perf_counter() - started)
    generated, first = 0, time.perf_counter()
    for _ in llm.generate(prompt[-1:], temp=0.0, reset=False):
        generated += 1
        if generated == 1:
            first = time.perf_counter()
        if generated >= decode:
            break
    return prefill, (generated - 1) / (time.perf_counter() - first)


def verity_rates(model: LlamaCppModel, messages: list[Message], *, call: bool) -> dict[str, float]:
    """Prefill and decode tok/s of one `respond`, free text or a constrained calculator call."""
    model.llama.reset()
    tools = [calculator.spec] if call else []
    choice = "required" if call else "auto"
    response = anyio.run(lambda: model.respond(messages, tools, tool_choice=choice))
    usage = response.usage  # random weights may still be inside the call at max_tokens
    return {
        "prompt_tokens": usage.prompt_tokens_evaluated,
        "prefill": usage.prompt_tokens_evaluated / usage.prefill_s,
        "decode": usage.completion_tokens / usage.decode_s,
        "completion_tokens": usage.completion_tokens,
        "calls": len(response.tool_calls),
    }


def decode_bytes(header: Header, shape: dict[str, int], depth: int) -> tuple[int, int]:
    """(weight bytes, KV-cache bytes at `depth`, f16) that one decoded token reads."""
    weights = sum(t.nbytes for t in header.tensors if t.name != "token_embd.weight")
    kv_dim = shape["hidden"] // shape["heads"] * shape["kv_heads"]
    return weights, 2 * shape["layers"] * depth * kv_dim * 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tokenizer",
        type=Path,
        required=True,
        help="a GGUF (or a header kept by gguf_synth.py) with R1's tokenizer",
    )
    parser.add_argument("--model", type=Path, default=Path("/tmp/r1-distill-qwen-32b-shapes.gguf"))
    parser.add_argument("--contexts", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--decode", type=int, default=128, help="tokens decoded per measure")
    parser.add_argument("--repeats", type=int, default=3, help="each measure, median (3)")
    parser.add_argument("--bandwidth-gbs", type=float, help="skip the PyTorch copy probe")
    parser.add_argument("--json-out", type=Path)
    for name, value in R1_32B.items():  # other shapes only for a quick look on a small machine
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=value, help=argparse.SUPPRESS
        )
    parser.add_argument("--n-gpu-layers", type=int, default=-1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = {name: getattr(args, name) for name in R1_32B}

    header = qwen2_header(
        read_header(args.tokenizer),
        **shape,
        name="DeepSeek-R1-Distill-Qwen-32B shapes, random Q4_K_M",
    )
    if not args.model.exists():
        started = time.perf_counter()
        size = write_random(header, args.model)
        print(
            f"generated {args.model} ({size / 1e9:.2f} GB) in "
            f"{time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
    bandwidth = args.bandwidth_gbs or copy_bandwidth_gbs()
    idle_mib = vram_used_mib()
    started = time.perf_counter()
    settings = ModelSettings(
        n_ctx=max(args.contexts) + args.decode + 256,
        n_batch=2048,
        n_gpu_layers=args.n_gpu_layers,
        flash_attn=True,
        temperature=0,
        max_tokens=args.decode,
    )
    model = LlamaCppModel(args.model, settings)
    model.llama  # noqa: B018 - load now, so the load time is its own
    load_s = time.perf_counter() - started
    loaded_mib = vram_used_mib()
    warm_up = model.llama.tokenize(FILLER.format(n=0, a=1, b=2).encode() * 20)
    in_worker_thread(
        raw_rates, model.llama, warm_up, 4
    )  # compute buffers and kernels ready before any timing
    median = statistics.median
    rows = []
    for context in args.contexts:
        messages = task_of(model, context - args.decode - 64)
        template = model.chat_template
        assert template is not None
        prompt = model.llama.tokenize(
            template.render(messages, [calculator.spec]).encode(), add_bos=False, special=True
        )
        raws, frees, calls = [], [], []
        for _ in range(args.repeats):  # interleaved, so drift hits both sides alike
            raws.append(in_worker_thread(raw_rates, model.llama, prompt, args.decode))
            frees.append(verity_rates(model, messages, call=False))
            calls.append(verity_rates(model, messages, call=True))
        raw_prefill, raw_decode = median(r[0] for r in raws), median(r[1] for r in raws)
        free = {key: median(f[key] for f in frees) for key in frees[0]}
        constrained = {key: median(c[key] for c in calls) for key in calls[0]}
        weights, kv = decode_bytes(header, shape, len(prompt))
        row = {
            "context": context,
            "prompt_tokens": len(prompt),
            "raw_prefill": raw_prefill,
            "verity_prefill": constrained["prefill"],
            "raw_decode": raw_decode,
            "verity_decode": free["decode"],
            "constrained_decode": constrained["decode"],
            "constrained_tokens": constrained["completion_tokens"],
            "constrained_calls": constrained["calls"],
            "weight_bytes": weights,
            "kv_bytes": kv,
            "vram_mib": vram_used_mib(),
        }
        if bandwidth:
            seconds_per_token = 1 / raw_decode
            row["roofline_weights"] = weights / (bandwidth * 1e9) / seconds_per_token
            row["roofline_weights_kv"] = (weights + kv) / (bandwidth * 1e9) / seconds_per_token
        rows.append(row)
    model.close()
    result = {
        "model": str(args.model),
        "load_s": load_s,
        "bandwidth_gbs": bandwidth,
        "vram_idle_mib": idle_mib,
        "vram_loaded_mib": loaded_mib,
        "rows": rows,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    print(
        f"model loaded in {load_s:.1f} s; VRAM in use {idle_mib} -> {loaded_mib} MiB after load; "
        f"copy bandwidth {bandwidth or float('nan'):.0f} GB/s"
    )
    head = (
        "context",
        "prompt",
        "prefill raw",
        "prefill verity",
        "ratio",
        "decode raw",
        "decode verity",
        "ratio",
        "constrained",
        "c/free",
        "roofline w",
        "w+kv",
        "VRAM MiB",
    )
    print(" | ".join(head))
    for r in rows:
        cells = [
            r["context"],
            r["prompt_tokens"],
            f"{r['raw_prefill']:.0f}",
            f"{r['verity_prefill']:.0f}",
            f"{r['verity_prefill'] / r['raw_prefill']:.3f}",
            f"{r['raw_decode']:.1f}",
            f"{r['verity_decode']:.1f}",
            f"{r['verity_decode'] / r['raw_decode']:.3f}",
            f"{r['constrained_decode']:.1f}",
            f"{r['constrained_decode'] / r['verity_decode']:.3f}",
            f"{r.get('roofline_weights', float('nan')):.2f}",
            f"{r.get('roofline_weights_kv', float('nan')):.2f}",
            r["vram_mib"],
        ]
        print(" | ".join(str(c) for c in cells))


if __name__ == "__main__":
    main()
