"""The answer checks: cheap, model-free reasons a candidate answer is no success.

They run on every candidate answer before the run's verifier (`RunSettings.check_answers`). An
answer is refused when it is no answer at all (empty, a bare `None`, a refusal or a statement
that the task cannot be done, a tool's error repeated, "No tool response available."), when it
tells the user how to do the task instead of doing it with the tools it had (`_how_to`), when
every tool call of the run failed (`_tool_failures`: it rests on nothing, or reports the
failure), or, when the run used tools, when it states facts that neither the task nor any
successful tool result holds (`_grounding`). A refusal goes back to the model as feedback, as
an arithmetic slip does; an answer still refused when the verify rounds run out ends the run
`rejected`.
"""

from __future__ import annotations

import re

from verity.messages import Finding, Message, ToolCall, Verdict
from verity.tools.base import ToolResult
from verity.verify._base import Candidate, Verifier
from verity.verify._grounding import found_nothing, ungrounded_facts
from verity.verify._how_to import asks_how, how_to
from verity.verify._invented import invented_arguments
from verity.verify._tool_failures import failed, failures, only_failures
from verity.verify._undone import undone_action
from verity.verify._unrelated import from_server, unrelated_results
from verity.verify._word_problems import without_made_up_inputs

__all__ = ["ANSWER_CHECKS", "AnswerChecks", "Screened", "non_answer"]

ANSWER_CHECKS = "answer-checks"
"""The verifier name of the answer checks' verdicts, in the trace."""

_LITERALS = frozenset({"None", "null", "NULL", "Null", "nil", "undefined", "NaN", "[]", "{}"})
"""A program's empty value printed as the answer: what a model writes when it has none."""
_NON_ANSWERS = re.compile(
    r"no (?:tool )?(?:response|output|answer)s?(?: (?:is |was )?(?:available|received|returned|"
    r"given|provided))?|no tool (?:results?|calls?|data)(?: .*)?|(?:tool|function) "
    r"(?:call|result|response|output)s?|i (?:do not|don't|don’t) know|unknown|n/?a",
    re.IGNORECASE,
)
_ECHOED_PROMPT = re.compile(
    r"\(tool result above\.|\(the tool call failed\. fix the arguments", re.IGNORECASE
)
"""What Verity tells the model after a tool result: an answer that repeats it says nothing."""
_I = r"\b(?:i|we)(?:\s+am|\s+are|'m|’m|'re|’re)?\b"
_REFUSALS = re.compile(
    rf"{_I}[^.!?\n]{{0,40}}?\b(?:can(?:no|'|’)?t|cannot|could(?:n'|n’| no)t|(?:am |are )?"
    r"(?:unable|not able) to|won(?:'|’)t|will not)\s+(?:\w+\s+)?(?:assist|help|comply|fulfil+|"
    r"provide|answer|complete|perform|do|access|browse|retrieve|determine|tell|give|get|check|"
    r"fetch|know|see|read|list|find out)\b"
    rf"|{_I}\s*(?:do not|don't|don’t) have (?:\w+ ){{0,2}}?(?:access|the ability|any way|"
    r"real-time|a tool)"
    r"|\bas an ai\b|\bno (?:available |offered )?tools? (?:can|could|is able|are able)\b"
    r"|\bnone of the (?:available |offered )?tools\b"
    r"|\b(?:does|do|did)(?: not|n't|n’t) (?:contain|include|provide|give|have|show)\s+(?:the |an |"
    r"any |enough |this |that |such )?(?:answer|information|requested|details? (?:needed|asked))"
    r"|\b(?:cannot|can(?:'|’)t|could not|couldn(?:'|’)t) be (?:determined|answered|known)\b"
    r"|^\W*(?:抱歉|对不起|很抱歉)|我(?:无法|不能|没办法)|无法(?:提供|回答|协助|帮助|完成)",
    re.IGNORECASE,
)
_CALL_AS_TEXT = re.compile(
    r"""^[\s(`]*(?:json\s*)?(?:<tool_call>\s*)?\[?\s*\{\s*"(?:name|function)"\s*:\s*"[^"]+"\s*,"""
    r"""\s*"(?:arguments|parameters)"\s*:""",
    re.IGNORECASE,
)
"""A tool call the model wrote as text instead of making it: `{"name": ..., "arguments": ...}`,
bare, fenced, in parentheses or in `<tool_call>` tags."""
_CALL_INSIDE = re.compile(
    r"""\{\s*"(?:name|function)"\s*:\s*"[^"]+"\s*,\s*"(?:arguments|parameters)"\s*:"""
)
_ASKS_NUMBER = re.compile(r"\bhow (?:many|much)\b|\bwhat (?:is the )?number of\b", re.IGNORECASE)
_ANY_NUMBER = re.compile(
    r"\d|\b(?:no|none|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"dozen|hundred|thousand|million|billion|single|nothing|free|half|once|twice)\b"
    r"|[〇零一二三四五六七八九十百千万]",
    re.IGNORECASE,
)
"""Any way an answer may state a quantity: digits, number words, "no", "none", "free"."""
_OWN = ("your answer was not accepted", "your tool call was invalid", "your answer was")
"""How Verity's own messages to the model begin (feedback, retry requests)."""
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n")
_MIN_ECHO = 20
"""Shorter lines may well be in feedback by chance (a name, a number)."""
_ECHOED_SHARE = 0.6
"""An answer most of whose text is Verity's own (a line reworded, the rest copied) echoes it."""
_LEADING_LABELS = re.compile(
    r"^(?:\s*(?:#{1,6}[^\n]*|\*\*[^*\n]{1,40}\*\*:?|[^\W\d][\w ]{0,30}:)[ \t]*(?:\n|$))+"
)
"""Heading and label lines before an answer's text ("### Final Answer", "**Answer:**",
"Answer:"), left out when looking for a tool call written as text."""
_FIRST_SENTENCE = re.compile(r"^.*?(?:[.!?。！？](?=\s|$)|\n|$)", re.DOTALL)
_SHORT = 200
"""Answers up to this long are searched whole for a refusal; longer ones in the first
sentence only (an answer that gives its result and then a caveat is an answer)."""

_NON_ANSWER_FIX = (
    "Answer the user's question in plain text from the tool results above. If a tool call "
    "failed, fix its arguments and call it again; if no tool can do it, say that it cannot "
    "be done and why."
)
_HOW_TO_FIX = (
    "Do not tell the user how to do it: do it yourself. Call the tool that does it ({tools}) "
    "and answer with what it returns; if none of your tools can do it, say so."
)
_FAILED_FIX = (
    "No tool call of yours succeeded, so nothing supports an answer. Read the error, fix the "
    "arguments (names of files, tables or time zones exactly as a listing tool shows them) and "
    "call the tool again; if it cannot be done, say which tool failed and why."
)
_INVENTED_FIX = (
    "Your last call found nothing, but you gave it values the question does not give. Call it "
    "again with only what the question gives (leave optional arguments out), then answer."
)
_UNDONE_FIX = (
    "No tool call of yours did what the task asks: writing it out does not do it. Call the "
    "tool that does it; if none of your tools can, say that it cannot be done and why."
)
_UNRELATED_FIX = (
    "The tool results you used have nothing to do with the question. Call a tool that does "
    "what was asked, with arguments from the question; if none of your tools can, say that it "
    "cannot be done and why."
)
_GROUNDING_FIX = (
    "State only what the task or the tool results say: write names, numbers, times, dates and "
    "paths exactly as a tool returned them, or call a tool to find them out."
)


class AnswerChecks:
    """Refuses a candidate answer that is no answer, or states facts nothing the run saw holds.

    Plain code, no model call. A passing verdict is not a verification (`checked` is False), so
    that it never makes an answer "verified" or "unverified"; a refusal is marked `refused`.

    Args:
        grounding: Also trace the answer's facts to the task and the tool results (when the
            run used tools).
    """

    def __init__(self, *, grounding: bool = True) -> None:
        self.grounding = grounding
        self.name = ANSWER_CHECKS

    async def verify(self, candidate: Candidate) -> Verdict:
        """Check the candidate's answer; refuse it with the reasons when it fails."""
        problem = non_answer(candidate.answer, candidate.evidence)
        if problem is None:
            problem = _echoed_feedback(candidate.answer, candidate.messages)
        if problem is None and not asks_how(candidate.task):
            problem = _call_inside(candidate.answer)
        if problem is not None:
            return _refused([problem], _NON_ANSWER_FIX)
        if (instructions := _instead_of_doing(candidate)) is not None:
            names = ", ".join(spec.name for spec in candidate.tools[:8])
            return _refused([instructions], _HOW_TO_FIX.format(tools=names))
        if only_failures(candidate.evidence):
            return _refused([_on_failures(candidate.answer, candidate.evidence)], _FAILED_FIX)
        task, evidence = candidate.task, candidate.evidence
        action = undone_action(task, candidate.answer, evidence, candidate.tools)
        if candidate.tools and action is not None:
            finding = _no(f"answers as if it did what the task asks ({action!r}), but no call did")
            return _refused([finding], _UNDONE_FIX)
        if (unrelated := unrelated_results(task, evidence, candidate.tools)) is not None:
            return _refused([_no(unrelated)], _UNRELATED_FIX)
        if (made_up := invented_arguments(task, evidence)) is not None:
            shown = ", ".join(f"{name}={value!r}" for name, value in made_up[:4])
            finding = _no(
                f"rests on a call that found nothing with arguments nothing in the task or the "
                f"results gives ({shown})"
            )
            return _refused([finding], _INVENTED_FIX)
        if not asks_how(task) and (missing := _no_number(task, candidate.answer)) is not None:
            return _refused([missing], _NON_ANSWER_FIX)
        if self.grounding:
            if _could_look(candidate):  # a value passed through the calculator is no look-up
                closed = [spec.name for spec in candidate.tools if spec.closed_world]
                evidence = without_made_up_inputs(task, evidence, closed)
            could_look = not evidence and _could_look(candidate)
            facts = ungrounded_facts(
                candidate.answer, task=task, evidence=evidence, could_look=could_look
            )
            if facts:
                return _refused(facts, _GROUNDING_FIX)
        return Verdict(ok=True, verifier=ANSWER_CHECKS, checked=False, conclusive=False)


class Screened:
    """The answer checks first, then `verifier`: a refused answer costs no verification, and
    an answer that passes gets the verifier's own verdict.

    Args:
        verifier: The run's verifier (`AcceptAll` when verification is off).
        checks: The answer checks (default: all of them).
    """

    def __init__(self, verifier: Verifier, checks: AnswerChecks | None = None) -> None:
        self.verifier = verifier
        self.checks = checks or AnswerChecks()
        self.name = str(getattr(verifier, "name", type(verifier).__name__))

    async def verify(self, candidate: Candidate) -> Verdict:
        """Refuse the candidate, or hand it to the verifier."""
        screened = await self.checks.verify(candidate)
        return screened if not screened.ok else await self.verifier.verify(candidate)


def non_answer(answer: str, evidence: list[tuple[ToolCall, ToolResult]]) -> Finding | None:
    """Why `answer` is no answer at all, or None when it is one."""
    text = answer.strip()
    bare = text.strip(" \t\n`'\"*.")
    if not text:
        return _no("is empty")
    if bare in _LITERALS and not _empty_result(evidence):
        return _no(f"is the bare value {bare}, which answers nothing")
    if _CALL_AS_TEXT.match(_LEADING_LABELS.sub("", text)):
        return _no("is a tool call written as text, not an answer (call the tool, or answer)")
    if _NON_ANSWERS.fullmatch(bare) or _ECHOED_PROMPT.search(text):
        return _no(f"says nothing about the task ({_quoted(text)})")
    searched = text if len(text) <= _SHORT else _first_sentence(text)
    if refusal := _REFUSALS.search(searched):
        return _no(
            f"declines the task or says it cannot be done ({_quoted(refusal.group().strip())})"
        )
    if (failed := _repeated_error(text, evidence)) is not None:
        return _no(f"repeats the error of the tool {failed.name} instead of answering")
    return None


def _no_number(task: str, answer: str) -> Finding | None:
    """A task that asks how many or how much, answered without any number ("Mark")."""
    asked = _ASKS_NUMBER.search(task)
    if asked is None or _ANY_NUMBER.search(answer) is not None:
        return None
    return _no(f"gives no number, and the task asks {asked.group()!r}")


def _echoed_feedback(answer: str, messages: list[Message]) -> Finding | None:
    """The answer repeats what Verity told the model (a refusal's reasons, the retry message),
    whole or most of its lines: it says nothing about the task."""
    said = [" ".join((m.content or "").split()).casefold() for m in messages if m.role == "user"]
    own = " ".join(text for text in said if text.startswith(_OWN))
    # sentence by sentence: the model joins sentences of two feedback messages into one line
    lines = [" ".join(part.split()).casefold() for part in _SENTENCE_BREAK.split(answer)]
    lines = [line for line in lines if len(line) >= _MIN_ECHO]
    if not own or not lines:
        return None
    echoed = sum(len(line) for line in lines if line in own)
    if echoed < _ECHOED_SHARE * sum(len(line) for line in lines):
        return None
    return _no(f"repeats what Verity told the model ({_quoted(answer, 60)})")


def _call_inside(answer: str) -> Finding | None:
    """A tool call written as text inside the answer ("Here's the call: {"name": ...}"):
    the model meant to call the tool and did not, so the answer lacks what it would return."""
    if (call := _CALL_INSIDE.search(answer)) is None:
        return None
    return _no(f"holds a tool call written as text ({_quoted(call.group(), 60)}): call the tool")


def _could_look(candidate: Candidate) -> bool:
    """Whether the run offered tools that look at the user's world: an MCP server's tools
    (named `server__tool`), and the task did not ask how to do something."""
    return any(from_server(spec.name) for spec in candidate.tools) and not asks_how(candidate.task)


def _instead_of_doing(candidate: Candidate) -> Finding | None:
    """Instructions for the user instead of an answer, when the run had tools, no call of
    them succeeded, and the task did not ask how to do it."""
    if not candidate.tools or asks_how(candidate.task):
        return None
    if _any_succeeded(candidate.evidence):
        return None  # it did the task: a tip after the result is no harm
    if (words := how_to(candidate.answer)) is None:
        return None
    return _no(
        f"tells the user how to do it ({_quoted(words, 60)}) instead of doing it: call the tool"
    )


_SAYS_FAILED = re.compile(
    r"\b(?:fail(?:s|ed|ure)?|errors?|error(?:ed)?|invalid|not (?:exist|found|valid|available)|"
    r"(?:does|did)(?: not|n't|n’t) exist|no such|could ?not|couldn't|couldn’t|can ?not|can't|"
    r"can’t|unable|not possible|impossible|nothing to|there (?:is|are|was|were) no)\b",
    re.IGNORECASE,
)
"""An answer that reports that something failed or could not be done."""


def _on_failures(answer: str, evidence: list[tuple[ToolCall, ToolResult]]) -> Finding:
    """Why an answer of a run whose every tool call failed is no success: it reports the
    failure (an honest failure: the task was not done), or it states what nothing supports."""
    calls = failures(evidence)
    names = ", ".join(dict.fromkeys(call.name for call, _ in calls))
    last = calls[-1][1].content.strip()
    error = _quoted(last.splitlines()[0] if last else "no error text", 100)
    what = f"every tool call failed ({names}; the last said {error})"
    if _SAYS_FAILED.search(answer):
        return _no(f"reports that the task was not done: {what}")
    return _no(f"rests on nothing: {what}, so no tool result supports it")


def _refused(findings: list[Finding], fix: str) -> Verdict:
    lines = ["Your answer was not accepted:"]
    lines += [f"- {f.claim} {f.evidence}" for f in findings[:5]]
    lines.append(fix)
    return Verdict(
        ok=False,
        verifier=ANSWER_CHECKS,
        findings=findings,
        feedback="\n".join(lines),
        checked=False,
        refused=True,
    )


def _no(why: str) -> Finding:
    return Finding(claim="the answer", ok=False, evidence=why)


def _quoted(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def _first_sentence(text: str) -> str:
    match = _FIRST_SENTENCE.match(text)
    return match.group() if match else text


def _any_succeeded(evidence: list[tuple[ToolCall, ToolResult]]) -> bool:
    return any(not failed(result) for _, result in evidence)


def _empty_result(evidence: list[tuple[ToolCall, ToolResult]]) -> bool:
    """Whether the last call that did not fail returned nothing: then a bare `None` or `[]` may
    say just that (not when a later call found what an earlier one did not)."""
    succeeded = [result for _, result in evidence if not failed(result)]
    return bool(succeeded) and found_nothing(succeeded[-1].content)


def _repeated_error(text: str, evidence: list[tuple[ToolCall, ToolResult]]) -> ToolCall | None:
    """The call whose error `text` repeats: the answer is (most of) the error, or starts with
    `Error` while a call failed."""
    said = _squash(re.sub(r"^\W*error\s*:\s*", "", text, flags=re.IGNORECASE))
    starts_with_error = re.match(r"^\W*(?:error|exception|traceback)\b", text, re.IGNORECASE)
    for call, result in evidence:
        if not failed(result):
            continue
        error = _squash(result.content)
        first = _squash(result.content.strip().splitlines()[0]) if result.content.strip() else ""
        if starts_with_error or (len(said) >= 8 and said in error):
            return call
        if len(first) >= 12 and first in said and len(first) * 2 >= len(said):
            return call
    return None


def _squash(text: str) -> str:
    return " ".join(text.casefold().split())
