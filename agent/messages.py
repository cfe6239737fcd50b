"""The data that flows through a run: messages, tool calls, usage, verdicts and the steps."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verity.tools.base import ToolResult

__all__ = [
    "AnswerStatus",
    "FinalStep",
    "Finding",
    "Message",
    "ModelResponse",
    "ToolGrammar",
    "ModelStep",
    "RunResult",
    "Sample",
    "Step",
    "ToolCall",
    "ToolStep",
    "Usage",
    "Verdict",
    "VerifyStep",
    "verdict_label",
    "verification_label",
]

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "tool_calls", "length", "repetition"]
"""`repetition`: the repetition guard stopped a generation that looped on the same text."""
AnswerStatus = Literal["answered", "unverified", "rejected", "tools_unavailable"]
"""How far a run's final answer can be relied on (docs/answer-checks.md):

- `answered`: it passed the answer checks (or they are off) and no verifier turned it down;
  `verified` says whether one confirmed it.
- `unverified`: it passed the answer checks, but the verifier did not confirm it.
- `rejected`: the answer checks refused it in every verify round: it is no answer (empty, `None`,
  a refusal, a tool's error repeated) or states facts in neither the task nor any tool result.
- `tools_unavailable`: a configured MCP server did not start, or every one of a server's tools
  was withheld for want of approval: the answer may rest on facts the model made up.
"""


class ToolCall(BaseModel):
    """One call the model asked for."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Call id, unique within the run; results refer to it."""
    name: str
    """The tool's name as offered to the model."""
    arguments: dict[str, Any]
    """Arguments, already valid against the tool's JSON Schema."""


class Message(BaseModel):
    """One chat message."""

    role: Role
    content: str = ""
    reasoning: str | None = None
    """The model's `<think>` text, kept for the trace (and re-sent only within a run)."""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    """For role "tool": the call this result answers."""
    name: str | None = None
    """For role "tool": the tool's name."""
    raw: str | None = None
    """For role "assistant": the model's output exactly as generated, so that re-rendering the
    conversation reproduces the same tokens and the KV cache prefix stays valid."""


class Usage(BaseModel):
    """Token counts and time of one model call (or the sum of several)."""

    prompt_tokens: int = 0
    """Tokens in the prompt."""
    prompt_tokens_evaluated: int = 0
    """Prompt tokens actually evaluated: the rest came from the KV cache."""
    completion_tokens: int = 0
    duration_s: float = 0.0
    prefill_s: float = 0.0
    """Time spent evaluating the prompt."""
    decode_s: float = 0.0
    """Time spent generating the completion."""
    tokens_known: bool = True
    """False when the backend reported no token counts (some servers' streams): the counts
    above are then 0, and the trace stores them as unknown (NULL)."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            tokens_known=self.tokens_known and other.tokens_known,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            prompt_tokens_evaluated=self.prompt_tokens_evaluated + other.prompt_tokens_evaluated,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            duration_s=self.duration_s + other.duration_s,
            prefill_s=self.prefill_s + other.prefill_s,
            decode_s=self.decode_s + other.decode_s,
        )


class ToolGrammar(BaseModel):
    """How closely the constrained-decoding grammar of one offered tool follows its schema."""

    tool: str
    level: Literal["exact", "relaxed", "any"]
    """"relaxed": some keywords are not enforced while decoding; "any": any JSON object."""
    dropped: list[str] = Field(default_factory=list)
    """The keywords not enforced (["*"] for "any"); the call is still validated against them."""


class ModelResponse(BaseModel):
    """What one model call produced."""

    content: str = ""
    """Visible text (without reasoning and without tool-call syntax)."""
    reasoning: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    invalid_calls: list[str] = Field(default_factory=list)
    """Calls that did not parse or validate, described for a retry message to the model."""
    raw: str = ""
    """The generated text exactly as the model wrote it."""
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    tool_grammars: list[ToolGrammar] = Field(default_factory=list)
    """The offered tools whose call grammar is not exact, and why (embedded backend)."""


class Finding(BaseModel):
    """One checked claim in a verdict."""

    claim: str
    ok: bool
    evidence: str = ""


class Sample(BaseModel):
    """One independent attempt at the task that a consensus verdict compared with the candidate."""

    seed: int
    """The sampling seed of the attempt."""
    answer: str
    """Its final answer; "" when the attempt reached none."""
    normalised: str = ""
    """The answer in the form consensus compares (set by the verifier)."""
    agrees: bool = False
    """Whether `normalised` equals the candidate's (set by the verifier)."""
    input_tokens: int = 0
    input_tokens_evaluated: int = 0
    """Input tokens really evaluated (the rest came from the KV cache)."""
    output_tokens: int = 0
    run_id: str | None = None
    """The attempt's own run, when it was traced."""


def verdict_label(*, ok: bool, checked: bool = True, conclusive: bool | None = True) -> str:
    """The one wording of a verdict, in progress lines, `verity show` and the trace's readers:
    `verified`, `no problem found, not confirmed`, `rejected`, or `not checked`. A `conclusive`
    of None (recorded before m012) counts an acceptance as confirming, as it did then."""
    if not checked:
        return "not checked"
    if not ok:
        return "rejected"
    return "no problem found, not confirmed" if conclusive is False else "verified"


def verification_label(verified: bool | int | None) -> str:
    """The one wording of whether a run's answer was verified: `verified`, `not verified` (a
    verifier ran and did not confirm it) or `not checked` (no verifier ran)."""
    if verified is None:
        return "not checked"
    return "verified" if verified else "not verified"


class Verdict(BaseModel):
    """A verifier's judgement of a candidate answer."""

    ok: bool
    verifier: str = ""
    findings: list[Finding] = Field(default_factory=list)
    feedback: str = ""
    """What the model should fix, sent back into the loop when `ok` is false."""
    confidence: float | None = None
    checked: bool = True
    """False when nothing was checked (verification off): such an answer is never "verified"."""
    conclusive: bool = True
    """Whether acceptance rests on evidence that makes the answer right with high probability:
    independent derivations that agree, or a user's own check. An accepted verdict that is not
    conclusive (no problem found, but nothing confirmed) ends the run with an unverified answer."""
    usage: Usage = Field(default_factory=Usage)
    """Tokens the verifier's own model calls cost (consensus samples included)."""
    scope: Literal["answer", "tool_calls"] = "answer"
    """What was judged: a candidate answer, or one step's tool-call arguments."""
    samples: list[Sample] = Field(default_factory=list)
    """The independent attempts a consensus verifier compared the answer with."""
    refused: bool = False
    """True when the answer checks (not a verifier) turned the answer down: it is no answer, or
    states facts nothing supports. Such a verdict is not a verification (`checked` is False)."""
    resume_from: str | None = None
    """For a rejected answer whose arithmetic went wrong: its text up to the first wrong result,
    with the calculator's value in its place. A model that can continue a message goes on from
    there instead of answering the feedback (small models repeat a slip they are told about)."""


class ModelStep(BaseModel):
    """The model answered (with text, tool calls, or both)."""

    kind: Literal["model"] = "model"
    step: int
    response: ModelResponse


class ToolStep(BaseModel):
    """Tool calls ran; results are in call order."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kind: Literal["tool"] = "tool"
    step: int
    calls: list[ToolCall]
    results: list[ToolResult]


class VerifyStep(BaseModel):
    """A candidate answer was verified."""

    kind: Literal["verify"] = "verify"
    step: int
    verdict: Verdict


class FinalStep(BaseModel):
    """The run ended with its answer: accepted, or the best one left when the rounds ran out."""

    kind: Literal["final"] = "final"
    step: int
    answer: str
    verified: bool | None
    """True when a conclusive verdict accepted the answer, False when a verifier ran but did not,
    None when no verifier ran."""
    messages: list[Message] = Field(default_factory=list)
    """The conversation as the model saw it, its last turn included: the `history` that
    continues it."""
    status: AnswerStatus = "answered"
    """How far the answer can be relied on (see `AnswerStatus`)."""
    reason: str | None = None
    """Why the status is not `answered`, in one line; None when it is."""


Step = ModelStep | ToolStep | VerifyStep | FinalStep


class RunResult(BaseModel):
    """The outcome of a finished run."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    run_id: str
    answer: str
    """The final answer's full text."""
    verified: bool | None
    """True when a conclusive verdict accepted the answer, False when a verifier ran but did not,
    None when no verifier ran."""
    steps: list[Step]
    usage: Usage
    """Every model call of the run, the verifier's included."""
    status: AnswerStatus = "answered"
    """How far `answer` can be relied on: `answered` (accepted), `unverified` (the verifier did
    not confirm it), `rejected` (the answer checks refused it: no answer, or facts nothing
    supports) or `tools_unavailable` (an MCP server did not start, or all its tools were
    withheld). Only `answered` is a success; the answer is kept whatever the status."""
    reason: str | None = None
    """Why the status is not `answered`, in one line; None when it is."""
    boxed_answer: str | None = None
    """The content of the answer's last `\\boxed{}`, when the task asked for one and it has one."""
    messages: list[Message] = Field(default_factory=list)
    """The conversation as the model saw it, ending with its last turn: pass it as `history` to
    the next run to continue the conversation (only the new tokens are evaluated)."""
