"""Give the agent your own tool: a typed function whose docstring becomes its description."""

import sys

import anyio

from verity import LlamaCppModel, ModelSettings, TraceRecorder, TraceStore, embedded_model_path, run
from verity.tools.base import tool
from verity.tools.toolset import FunctionToolset

STOCK = {"apples": 12, "pears": 0, "plums": 7}


@tool(read_only=True)
def stock_level(fruit: str) -> str:
    """Look up how many crates of a fruit are in the warehouse.

    Args:
        fruit: The fruit's name in plural, e.g. "apples".
    """
    return f"{STOCK.get(fruit.lower(), 0)} crates of {fruit}"


async def main() -> None:
    model = LlamaCppModel(embedded_model_path(), ModelSettings(temperature=0))
    store = TraceStore("custom_tool_traces.db")
    result = await run(
        "How many crates of plums are in the warehouse?",
        model=model,
        toolsets=[FunctionToolset([stock_level])],
        hooks=TraceRecorder(store),
    )
    if result.status != "answered":  # "None", a refusal, facts no tool returned: not an answer
        sys.exit(f"No reliable answer ({result.status}): {result.reason}")
    print(result.answer)
    record = store.run(result.run_id)
    assert record is not None
    print(f"run {result.run_id}: {len(record['tool_calls'])} tool call(s) in the trace")


anyio.run(main)
