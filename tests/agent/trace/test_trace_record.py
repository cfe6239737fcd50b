"""What a trace records: what the model was shown (stored once, as deltas), how it ran (settings,
versions, model sha256), token counts that are unknown as NULL, and calls made for a verifier."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import pytest

from verity import (
    LlamaCppModel,
    Message,
    ModelCallEnded,
    ModelCallStarted,
    OpenAICompatModel,
    RunSettings,
    TraceRecorder,
    TraceStore,
    Verdict,
    run,
)
from verity.models.embedded import EMBEDDED_MODEL
from verity.prompts import load_prompt
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import tool
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset
from verity.verify import Candidate


def shown_to(store: TraceStore, model_call: dict[str, object]) -> list[tuple[str, str | None]]:
    """The (role, content) pairs a model call was shown, rebuilt from the stored deltas."""
    rows = store.read(
        "select role, content, content_hash from messages where run_id = ? and conversation = ? "
        "and position < ? order by position",
        [model_call["run_id"], model_call["conversation"], model_call["messages_count"]],
    )
    return [(r["role"], r["content"] or store.content(r["content_hash"])) for r in rows]


@pytest.mark.slow
async def test_a_real_run_records_what_the_model_was_shown_how_it_ran_and_the_model_hash(
    tmp_path: Path, greedy_model: LlamaCppModel
) -> None:
    store = TraceStore(tmp_path / "t.db")
    with anyio.fail_after(300):
        result = await run(
            "What is 1234 * 5678?",
            model=greedy_model,
            toolsets=[FunctionToolset([calculator])],
            hooks=TraceRecorder(store),
        )
    [record] = store.read("select * from runs where id = ?", [result.run_id])
    assert record["model_sha256"] == EMBEDDED_MODEL.sha256
    assert record["llama_cpp_version"] == "0.3.36"
    assert record["verity_version"] is not None
    config = json.loads(record["config"])
    assert config["model"]["settings"] == greedy_model.settings.model_dump(mode="json")
    assert config["model"]["path"] == str(greedy_model.path)
    assert config["run"] == RunSettings().model_dump(mode="json")
    assert store.content(record["system_prompt_hash"]) == load_prompt("system")
    model_calls = store.read(
        "select * from model_calls where run_id = ? order by id", [result.run_id]
    )
    assert len(model_calls) >= 2
    first, second = model_calls[:2]
    assert shown_to(store, first) == [
        ("system", load_prompt("system")),
        ("user", "What is 1234 * 5678?"),
    ]
    shown = shown_to(store, second)
    assert [role for role, _ in shown] == ["system", "user", "assistant", "tool"]
    assert shown[3][1] is not None and shown[3][1].startswith("7006652")
    offered = json.loads(store.content(first["tools_hash"]) or "[]")
    assert [(t["name"], t["parameters"]["required"]) for t in offered] == [
        ("calculator", ["expression"])
    ]
    assert all(c["purpose"] == "agent" and c["input_tokens"] > 0 for c in model_calls)
    store.close()


@tool
def double(x: int) -> int:
    """Double a number.

    Args:
        x: The number.
    """
    return 2 * x


async def test_prompts_and_tool_lists_are_stored_once_and_messages_once_each(
    tmp_path: Path,
) -> None:
    store = TraceStore(tmp_path / "t.db")
    recorder = TraceRecorder(store)
    toolsets = [FunctionToolset([double])]
    for _ in range(2):
        model = ScriptedModel([calls(("double", {"x": i})) for i in range(5)] + [answer("done")])
        with anyio.fail_after(5):
            await run(
                "double",
                model=model,
                toolsets=toolsets,
                hooks=recorder,
                settings=RunSettings(max_steps=6),
            )
        model.assert_complete()
    kinds = store.read("select kind, count(*) as n from contents group by kind order by kind")
    assert kinds == [{"kind": "system_prompt", "n": 1}, {"kind": "tools", "n": 1}]
    # per run: system + task, then 5 x (assistant call + tool result): 12 messages, each once
    per_run = store.read(
        "select run_id, count(*) as n, count(distinct position) as positions "
        "from messages group by run_id"
    )
    assert [(r["n"], r["positions"]) for r in per_run] == [(12, 12), (12, 12)]
    store.close()


def _sse(*events: object) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


async def test_a_streamed_answer_without_token_counts_stores_null_not_zero(tmp_path: Path) -> None:
    chunk = {
        "model": "served",
        "choices": [{"index": 0, "delta": {"content": "42"}, "finish_reason": "stop"}],
    }
    stream = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=_sse(chunk))
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: stream))
    model = OpenAICompatModel("http://127.0.0.1:9/v1", "served", stream=True, http_client=client)
    store = TraceStore(tmp_path / "t.db")
    with anyio.fail_after(5):
        result = await run("6 * 7?", model=model, hooks=TraceRecorder(store))
    await model.aclose()
    [call] = store.read(
        "select input_tokens, input_tokens_evaluated, output_tokens, "
        "output_tokens_per_s from model_calls"
    )
    assert call == {
        "input_tokens": None,
        "input_tokens_evaluated": None,
        "output_tokens": None,
        "output_tokens_per_s": None,
    }
    assert result.usage.tokens_known is False
    [summary] = store.read("select input_tokens, output_tokens from run_summary")
    assert summary == {"input_tokens": None, "output_tokens": None}
    config = json.loads(store.read("select config from runs")[0]["config"])
    assert config["model"] == {
        "backend": "openai-compatible",
        "name": "served",
        "base_url": "http://127.0.0.1:9/v1",
        "stream": True,
        "sampling": {"temperature": 0.6, "top_p": 0.95, "max_tokens": 1024},
    }
    store.close()


class JudgeWithAModel:
    """A verifier that asks a model, reporting its call through the hooks as the verifier's."""

    def __init__(self, recorder: TraceRecorder, run_id: str) -> None:
        self.recorder, self.run_id = recorder, run_id
        self.judge = ScriptedModel([answer('{"ok": true}')])

    async def verify(self, candidate: Candidate) -> Verdict:
        question = f"{candidate.task} -> {candidate.answer}"
        messages = [
            Message(role="system", content="Judge the answer."),
            Message(role="user", content=question),
        ]
        await self.recorder.on_model_start(
            ModelCallStarted(run_id=self.run_id, step=1, messages=messages, purpose="verifier")
        )
        response = await self.judge.respond(messages, [])
        await self.recorder.on_model_end(
            ModelCallEnded(run_id=self.run_id, step=1, response=response, purpose="verifier")
        )
        return Verdict(ok=True, verifier="judge")


async def test_a_verifiers_model_call_is_recorded_with_its_purpose_and_its_own_messages(
    tmp_path: Path,
) -> None:
    store = TraceStore(tmp_path / "t.db")
    recorder = TraceRecorder(store)
    verifier = JudgeWithAModel(recorder, "r1")
    with anyio.fail_after(5):
        await run(
            "6 * 7?",
            model=ScriptedModel([answer("42")]),
            verifier=verifier,
            hooks=recorder,
            run_id="r1",
        )
    model_calls = store.read(
        "select step, purpose, conversation, messages_count, content from model_calls order by id"
    )
    assert model_calls == [
        {"step": 1, "purpose": "agent", "conversation": 0, "messages_count": 2, "content": "42"},
        {
            "step": 1,
            "purpose": "verifier",
            "conversation": 1,
            "messages_count": 2,
            "content": '{"ok": true}',
        },
    ]
    [judged] = store.read("select * from model_calls where purpose = 'verifier'")
    assert shown_to(store, judged) == [("system", "Judge the answer."), ("user", "6 * 7? -> 42")]
    assert store.read("select step, outcome from steps") == [{"step": 1, "outcome": "accepted"}]
    [summary] = store.read("select helper_model_calls from run_summary")
    assert summary == {"helper_model_calls": 1}
    store.close()


class ScriptedVerdicts:
    def __init__(self, *verdicts: Verdict) -> None:
        self.verdicts = list(verdicts)

    async def verify(self, candidate: Candidate) -> Verdict:
        return self.verdicts.pop(0)


async def test_feedback_grows_the_conversation_the_trace_stores_only_what_is_new(
    tmp_path: Path,
) -> None:
    store = TraceStore(tmp_path / "t.db")
    model = ScriptedModel([answer("41"), answer("42")])
    verifier = ScriptedVerdicts(
        Verdict(ok=False, verifier="v", feedback="Recheck 6 * 7."),
        Verdict(ok=True, verifier="v", conclusive=False, confidence=1.0),
    )
    with anyio.fail_after(5):
        await run(
            "6 * 7?",
            model=model,
            verifier=verifier,
            hooks=TraceRecorder(store),
            settings=RunSettings(max_verify_rounds=2),
            run_id="r1",
        )
    agent_calls = store.read("select * from model_calls where purpose = 'agent' order by id")
    assert [(c["conversation"], c["messages_count"]) for c in agent_calls] == [(0, 2), (0, 4)]
    assert shown_to(store, agent_calls[1])[2:] == [("assistant", "41"), ("user", "Recheck 6 * 7.")]
    assert store.read("select count(*) as n from messages where conversation = 0") == [{"n": 4}]
    store.close()
