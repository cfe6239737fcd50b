"""`verity.Agent`: the one way a model, tools, a verifier and a trace are put together."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import verity
from tests.conftest import PROJECT_ROOT
from verity import (
    Agent,
    AgentConfig,
    RunEnded,
    RunHooks,
    RunLimitExceeded,
    RunSettings,
    TraceStore,
)
from verity.errors import UserError
from verity.testing import ScriptedModel, answer, calls

SUM: tuple[str, dict[str, object]] = ("calculator", {"expression": "1234 * 5678"})


def test_the_public_names_are_sorted_and_include_the_front_door() -> None:
    assert verity.__all__ == sorted(verity.__all__)
    for name in ("Agent", "AgentConfig", "Approvals", "FunctionToolset", "MCPToolset", "tool"):
        assert name in verity.__all__
        assert getattr(verity, name) is not None


def test_an_unknown_option_is_a_user_error_that_names_it() -> None:
    with pytest.raises(UserError) as refused:
        Agent(model=ScriptedModel([]), verfy="self")
    assert str(refused.value) == "Agent has no option 'verfy'."
    assert refused.value.field == "verfy"


def test_an_invalid_setting_names_its_field() -> None:
    with pytest.raises(UserError) as refused:
        Agent(AgentConfig(), model=ScriptedModel([]), settings={"max_steps": 0})
    assert str(refused.value) == (
        "Agent option settings.max_steps: Input should be greater than or equal to 1."
    )


def test_a_bad_verify_spec_fails_when_the_agent_is_built(embedded_path: Path) -> None:
    with pytest.raises(UserError) as refused:
        Agent(model=str(embedded_path), verify="twice", trace=False)
    assert str(refused.value).startswith("Unknown --verify 'twice'. Use one of: none | self")


def test_a_missing_mcp_config_fails_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "mcp.json"
    with pytest.raises(UserError) as refused:
        Agent(model=ScriptedModel([]), mcp_config=missing, trace=False)
    assert str(missing) in str(refused.value)


def test_a_server_url_needs_the_served_model_name() -> None:
    with pytest.raises(UserError) as refused:
        Agent(model="http://127.0.0.1:9/v1", trace=False)
    assert refused.value.field == "api_model"


def test_runs_are_traced_by_default_where_verity_run_traces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "default.db"
    monkeypatch.setenv("VERITY_TRACE_DB", str(database))
    model = ScriptedModel([calls(SUM), answer("7006652")])
    agent = Agent(model=model)
    result = agent.run_sync("What is 1234 * 5678?")
    agent.close()
    model.assert_complete()
    store = TraceStore(database)
    record = store.run(result.run_id)
    store.close()
    assert record is not None
    assert (record["status"], record["answer"]) == ("completed", "7006652")
    assert [(c["tool_name"], c["result"]) for c in record["tool_calls"]] == [
        ("calculator", "7006652")
    ]


def test_tracing_can_be_switched_off() -> None:
    agent = Agent(model=ScriptedModel([answer("4")]), trace=False)
    result = agent.run_sync("What is 2 + 2?")
    agent.close()
    assert (agent.store, agent.recorder, result.answer) == (None, None, "4")


async def test_a_run_may_have_its_own_hooks_and_step_limit(tmp_path: Path) -> None:
    seen: list[str] = []

    class Ends(RunHooks):
        async def on_run_end(self, event: RunEnded) -> None:
            seen.append(event.status)

    model = ScriptedModel([calls(SUM), calls(SUM)])
    settings = RunSettings(max_steps=5)
    async with Agent(model=model, settings=settings, trace_db=tmp_path / "t.db") as agent:
        with pytest.raises(RunLimitExceeded):
            await agent.run("What is 1234 * 5678?", max_steps=1, hooks=[Ends()])
        assert agent.store is not None
        (recorded,) = agent.store.runs()
    assert seen == ["limit_exceeded"]
    assert recorded["status"] == "limit_exceeded"


def test_every_example_builds_its_agent_through_verity_agent() -> None:
    assembly = re.compile(
        r"LlamaCppModel\(|embedded_model_path|TraceRecorder\(|TraceStore\(|SelfCheck\(|build_verifier"
    )
    for example in sorted((PROJECT_ROOT / "examples").glob("*.py")):
        text = example.read_text()
        assert "Agent(" in text, example.name
        assert not assembly.search(text), example.name


@pytest.mark.slow
async def test_one_agent_loads_its_model_once_and_reuses_its_kv_prefix_across_runs(
    tmp_path: Path,
) -> None:
    loads: list[str] = []

    def on_load(label: str, load: Callable[[], Any]) -> Any:
        loads.append(label)
        return load()

    with anyio.fail_after(600):
        async with Agent(on_load=on_load, trace_db=tmp_path / "t.db") as agent:
            first = await agent.run("What is 1234 * 5678?")
            second = await agent.run("What is 4321 * 8765?")
            assert agent.store is not None
            recorded = [agent.store.run(r.run_id) for r in (first, second)]
    assert len(loads) == 1 and loads[0].startswith("Qwen2.5-Coder-0.5B-Instruct (")
    opening = second.steps[0]
    assert isinstance(opening, verity.ModelStep)
    usage = opening.response.usage
    # the system prompt and the tools are the same: only the new task is evaluated
    assert 0 < usage.prompt_tokens_evaluated < usage.prompt_tokens
    assert all(r is not None and r["status"] == "completed" for r in recorded)
    config = json.loads(recorded[1]["config"]) if recorded[1] else {}
    assert config["model"]["settings"]["temperature"] == 0.0  # the bundled model is greedy
