"""Give the agent your own tool: a typed function whose docstring becomes its description."""

import sys

import anyio

from verity import Agent, FunctionToolset, tool

STOCK = {"apples": 12, "pears": 0, "plums": 7}


@tool(read_only=True)
def stock_level(fruit: str) -> str:
    """Look up how many crates of a fruit are in the warehouse.

    Args:
        fruit: The fruit's name in plural, e.g. "apples".
    """
    return f"{STOCK.get(fruit.lower(), 0)} crates of {fruit}"


async def main() -> None:
    tools = FunctionToolset([stock_level])
    async with Agent(toolsets=[tools], trace_db="custom_tool_traces.db") as agent:
        result = await agent.run("How many crates of plums are in the warehouse?")
        assert agent.store is not None
        record = agent.store.run(result.run_id)
    if result.status != "answered":  # "None", a refusal, facts no tool returned: not an answer
        sys.exit(f"No reliable answer ({result.status}): {result.reason}")
    print(result.answer)
    assert record is not None
    print(f"run {result.run_id}: {len(record['tool_calls'])} tool call(s) in the trace")


anyio.run(main)
