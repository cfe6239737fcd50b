"""What tracing costs a loop step: the same run with tracing off and on, in one process.

    PYTHONPATH=. python bench/trace_overhead.py [--steps 10 200 400] [--repeats 5]

The model is scripted and instant (`verity.testing.ScriptedModel`: this measures the recorder,
not a model) and calls a Python tool at every step but the last, with new arguments each time.
"Off" runs with no hooks; "on" records into a fresh SQLite file per run through `TraceRecorder`
(WAL, `synchronous=NORMAL`: the CLI default). Wall and CPU time per step are the median over the
repeats; the two sides alternate so both see the same machine load. Targets: a traced step costs
at most 1 ms wall and at most twice the untraced CPU, flat in N.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from verity import RunSettings, TraceRecorder, TraceStore, run
from verity.hooks import RunHooks
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import tool
from verity.tools.toolset import FunctionToolset


@tool
def double(x: int) -> int:
    """Double a number.

    Args:
        x: The number.
    """
    return 2 * x


def script(steps: int) -> ScriptedModel:
    turns = [calls(("double", {"x": i})) for i in range(steps - 1)]
    return ScriptedModel([*turns, answer("done")])


async def one_run(steps: int, hooks: RunHooks | None) -> tuple[float, float]:
    """Wall and CPU seconds per step of one run."""
    toolsets = [FunctionToolset([double])]
    settings = RunSettings(max_steps=steps)
    model = script(steps)
    wall, cpu = time.perf_counter(), time.process_time()
    await run("double numbers", model=model, toolsets=toolsets, settings=settings, hooks=hooks)
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


async def measure(steps: int, repeats: int, directory: Path) -> dict[str, tuple[float, float]]:
    off: list[tuple[float, float]] = []
    on: list[tuple[float, float]] = []
    await one_run(steps, None)  # warm-up: imports, statement caches
    for i in range(repeats):
        store = TraceStore(directory / f"t{steps}-{i}.db")
        recorder = TraceRecorder(store)
        order = [(off, None), (on, recorder)] if i % 2 == 0 else [(on, recorder), (off, None)]
        for sink, hooks in order:
            sink.append(await one_run(steps, hooks))
        store.close()
    return {
        name: (statistics.median(w for w, _ in side), statistics.median(c for _, c in side))
        for name, side in (("off", off), ("on", on))
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 200, 400])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'N':>5} {'wall off':>9} {'wall on':>9} {'+wall':>8} {'cpu off':>9} {'cpu on':>9} "
        f"{'cpu x':>6}   (ms per step)"
    )
    with tempfile.TemporaryDirectory() as directory:
        for steps in args.steps:
            result = await measure(steps, args.repeats, Path(directory))
            (w_off, c_off), (w_on, c_on) = result["off"], result["on"]
            print(
                f"{steps:>5} {w_off * 1e3:>9.3f} {w_on * 1e3:>9.3f} {(w_on - w_off) * 1e3:>8.3f} "
                f"{c_off * 1e3:>9.3f} {c_on * 1e3:>9.3f} {c_on / c_off:>6.2f}"
            )


if __name__ == "__main__":
    anyio.run(main)
