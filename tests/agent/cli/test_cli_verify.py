"""`verity run --verify` and verdicts in `verity show`, run as a user would (subprocess)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import pytest

from tests.agent.cli.test_cli import verity
from verity import (
    ModelCallEnded,
    ModelCallStarted,
    ModelResponse,
    RunEnded,
    RunSettings,
    RunStarted,
    TraceRecorder,
    TraceStore,
    Verdict,
    VerdictReached,
    embedded_model_path,
    run,
)
from verity.messages import Finding, Sample
from verity.testing import ScriptedModel, answer
from verity.verify import Candidate


def test_an_unknown_verify_spec_exits_2_with_the_choices_and_no_traceback(tmp_path: Path) -> None:
    done = verity("run", "What is 2 + 2?", "--verify", "maybe", trace_db=tmp_path / "t.db")
    assert done.returncode == 2
    assert done.stderr == (
        "verity: error: Unknown --verify 'maybe'. Use one of: none | self[:N[:K]] | "
        "recompute[:N[:K]] | consensus:N[:MAJORITY] | all:SPEC,SPEC | any:SPEC,SPEC "
        "(e.g. 'all:self,consensus:3').\n"
    )


def test_a_missing_verifier_model_exits_2_naming_the_flag_and_no_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "judge.gguf"
    done = verity(
        "run",
        "What is 2 + 2?",
        "--verify",
        "self",
        "--verifier-model",
        str(missing),
        trace_db=tmp_path / "t.db",
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"verity: error: The --verifier-model file {str(missing)!r} does not exist. Pass the "
        "path of a GGUF file with --verifier-model, or leave it out to verify with the run's own "
        "model.\n"
    )


def test_a_verifier_model_that_is_not_gguf_exits_2_without_a_traceback(tmp_path: Path) -> None:
    page = tmp_path / "judge.gguf"
    page.write_text("<html>a download error page</html>")
    done = verity(
        "run",
        "What is 2 + 2?",
        "--verify",
        "self",
        "--verifier-model",
        str(page),
        trace_db=tmp_path / "t.db",
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"verity: error: The --verifier-model file {str(page)!r} is not a GGUF file"
    )
    assert "Traceback" not in done.stderr


def test_show_prints_each_verdict_with_its_findings_and_marks_the_answer_unverified(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    store = TraceStore(db)
    recorder = TraceRecorder(store)
    rejected = Verdict(
        ok=False,
        verifier="self-check",
        findings=[Finding(claim="16 - 3 - 4 = 10", ok=False, evidence="calculator: 9")],
        feedback="Recompute.",
        confidence=0.25,
    )

    async def record() -> None:
        await recorder.on_run_start(RunStarted(run_id="r1", task="ducks", model="tiny"))
        await recorder.on_model_start(ModelCallStarted(run_id="r1", step=1, messages=[]))
        await recorder.on_model_end(
            ModelCallEnded(run_id="r1", step=1, response=ModelResponse(content="$20", model="tiny"))
        )
        await recorder.on_verdict(VerdictReached(run_id="r1", step=1, verdict=rejected))
        await recorder.on_run_end(
            RunEnded(run_id="r1", status="completed", answer="$20", verified=False, verify_rounds=1)
        )

    anyio.run(record)
    store.close()
    done = verity("show", "r1", trace_db=db)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("run r1  completed  model tiny  20")
    assert lines[1:] == [
        "task: ducks",
        "└─ step 1  rejected",
        "   ├─ model  0 in, 0 out  0.000 s",
        "   │  says: $20",
        "   └─ verdict (self-check, answer): rejected, confidence 0.25",
        "      FAIL 16 - 3 - 4 = 10: calculator: 9",
        "      feedback: Recompute.",
        "answer: $20 (not verified)",
        "verification: not verified (1 round)",
        "tokens: 0 in, 0 out over 1 model call",
    ]
    logs = verity("logs", trace_db=db)
    [header, row] = logs.stdout.splitlines()
    assert header.split() == [
        "RUN",
        "STARTED",
        "(UTC)",
        "STATUS",
        "VERIFICATION",
        "STEPS",
        "TOKENS",
        "IN/OUT",
        "TASK",
        "->",
        "ANSWER",
    ]
    assert row.split()[:1] + row.split()[3:] == [
        "r1",
        "completed",
        "not",
        "verified",
        "1",
        "0/0",
        "ducks",
        "->",
        "$20",
    ]


def test_show_lists_the_consensus_samples_and_logs_lists_only_the_verified_run(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    store = TraceStore(db)
    recorder = TraceRecorder(store)
    verdict = Verdict(
        ok=True,
        verifier="consensus",
        findings=[Finding(claim="final answer 18", ok=True, evidence="2 of 3 answers agree.")],
        confidence=2 / 3,
        samples=[
            Sample(
                seed=1,
                answer="It is 18.",
                normalised="18",
                agrees=True,
                input_tokens=75,
                output_tokens=18,
                run_id="s1",
            ),
            Sample(
                seed=2,
                answer="",
                normalised="",
                agrees=False,
                input_tokens=30,
                output_tokens=3,
                run_id="s2",
            ),
        ],
    )

    async def record() -> None:
        await recorder.on_run_start(RunStarted(run_id="r1", task="ducks", model="tiny"))
        await recorder.on_model_start(ModelCallStarted(run_id="r1", step=1, messages=[]))
        await recorder.on_model_end(
            ModelCallEnded(run_id="r1", step=1, response=ModelResponse(content="18", model="tiny"))
        )
        await recorder.on_run_start(RunStarted(run_id="s1", task="ducks", model="tiny"))
        await recorder.on_run_end(RunEnded(run_id="s1", status="completed", answer="It is 18."))
        await recorder.on_run_start(RunStarted(run_id="s2", task="ducks", model="tiny"))
        await recorder.on_run_end(
            RunEnded(run_id="s2", status="limit_exceeded", error="No final answer.")
        )
        await recorder.on_verdict(VerdictReached(run_id="r1", step=1, verdict=verdict))
        await recorder.on_run_end(
            RunEnded(run_id="r1", status="completed", answer="18", verified=True, verify_rounds=1)
        )

    anyio.run(record)
    store.close()
    shown = verity("show", "r1", trace_db=db)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1:] == [
        "task: ducks",
        "└─ step 1  accepted",
        "   ├─ model  0 in, 0 out  0.000 s",
        "   │  says: 18",
        "   └─ verdict (consensus, answer): verified, confidence 0.67",
        "      ok   final answer 18: 2 of 3 answers agree.",
        "      sample seed 1: 18 agrees, 75 in / 18 out, run s1",
        "      sample seed 2: (no answer) differs, 30 in / 3 out, run s2",
        "answer: 18 (verified)",
        "verification: verified (1 round)",
        "tokens: 0 in, 0 out over 1 model call",
    ]
    sample = verity("show", "s2", trace_db=db)
    first, second = sample.stdout.splitlines()[:2]
    assert first.startswith("run s2  limit_exceeded  model tiny  20")
    assert second == "consensus sample for run r1"
    logs = verity("logs", trace_db=db)
    assert [line.split()[0] for line in logs.stdout.splitlines()] == ["RUN", "r1"]


@pytest.mark.slow
def test_run_with_self_check_reports_the_verdict_in_json_and_in_the_trace(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    done = verity(
        "run", "What is 1234 * 5678?", "--verify", "self", "--json", "--quiet", trace_db=db
    )
    payload = json.loads(done.stdout)
    assert done.returncode == (0 if payload["verified"] else 5), done.stderr
    assert "7006652" in payload["answer"].replace(",", "")
    shown = verity("show", payload["run_id"], trace_db=db)
    assert "─ verdict (self-check, answer): " in shown.stdout
    lines = shown.stdout.splitlines()
    answer_line = next(line for line in lines if line.startswith("answer: "))
    verified_line = next(line for line in lines if line.startswith("verification: "))
    assert answer_line.endswith("(verified)" if payload["verified"] else "(not verified)")
    assert verified_line.startswith(
        "verification: verified (" if payload["verified"] else "verification: not verified ("
    )


@pytest.mark.slow
def test_run_with_a_separate_verifier_model_judges_with_it_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    done = verity(
        "run",
        "What is 1234 * 5678?",
        "--verify",
        "self",
        "--verifier-model",
        str(embedded_model_path()),
        "--verify-rounds",
        "1",
        "--json",
        "--quiet",
        trace_db=db,
    )
    assert "Traceback" not in done.stderr
    payload = json.loads(done.stdout)
    assert done.returncode == (0 if payload["verified"] else 5), done.stderr
    with sqlite3.connect(db) as conn:
        run_row = conn.execute(
            "select status, verified, verify_rounds from runs where id = ?", [payload["run_id"]]
        ).fetchone()
        verdicts = conn.execute(
            "select verifier, checked from verdicts where run_id = ? and scope = 'answer'",
            [payload["run_id"]],
        ).fetchall()
    assert run_row == ("completed", int(payload["verified"]), 1)
    assert verdicts == [("self-check", 1)]


def test_require_verified_without_a_verifier_exits_2_and_prints_nothing(tmp_path: Path) -> None:
    done = verity("run", "What is 2 + 2?", "--require-verified", trace_db=tmp_path / "t.db")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "verity: error: --require-verified needs a verifier: add --verify self (or another spec: "
        "none | self[:N[:K]] | recompute[:N[:K]] | consensus:N[:MAJORITY] | all:SPEC,SPEC | "
        "any:SPEC,SPEC).\n"
    )


# An answer with no number: nothing can recompute it, so self-check finds no problem and
# confirms nothing. The verdict is the same whatever words the model chooses.
NO_NUMBER_TASK = "Name one primary colour in a single word, without digits."


@pytest.mark.slow
def test_an_unverified_answer_is_printed_with_a_one_line_warning_and_exit_5(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    done = verity("run", NO_NUMBER_TASK, "--verify", "self", "--quiet", trace_db=db)
    assert done.returncode == 5, done.stderr
    assert done.stdout.strip()  # the answer is still printed
    with sqlite3.connect(db) as conn:
        [(run_id, verified)] = conn.execute("select id, verified from runs").fetchall()
    assert verified == 0
    # --quiet: stderr carries only this one line
    assert done.stderr == (
        "verity: answer not verified: self-check found no problem but no independent derivation "
        f"confirmed it (verity show {run_id})\n"
    )


@pytest.mark.slow
def test_require_verified_prints_nothing_on_stdout_for_an_unverified_answer(tmp_path: Path) -> None:
    done = verity(
        "run",
        NO_NUMBER_TASK,
        "--verify",
        "self",
        "--require-verified",
        "--json",
        "--quiet",
        trace_db=tmp_path / "t.db",
    )
    assert (done.returncode, done.stdout) == (5, "")
    assert done.stderr.startswith("verity: answer not verified: ")
    assert len(done.stderr.splitlines()) == 1


def test_show_lists_the_verifiers_model_calls_under_the_step_they_judged(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    store = TraceStore(db)
    recorder = TraceRecorder(store)
    program = ModelResponse(content="answer = 9 * 2", model="tiny")
    accepted = Verdict(
        ok=True,
        verifier="recompute",
        findings=[
            Finding(
                claim="a program written from the task alone (seed 0)", ok=True, evidence="agrees"
            )
        ],
    )

    async def record() -> None:
        await recorder.on_run_start(RunStarted(run_id="r1", task="ducks", model="tiny"))
        await recorder.on_model_start(ModelCallStarted(run_id="r1", step=1, messages=[]))
        await recorder.on_model_end(
            ModelCallEnded(run_id="r1", step=1, response=ModelResponse(content="18", model="tiny"))
        )
        for _ in range(2):  # the verifier's calls, as VerifierCalls sends them
            await recorder.on_model_start(
                ModelCallStarted(run_id="r1", step=1, messages=[], purpose="verifier")
            )
            await recorder.on_model_end(
                ModelCallEnded(run_id="r1", step=1, response=program, purpose="verifier")
            )
        await recorder.on_verdict(VerdictReached(run_id="r1", step=1, verdict=accepted))
        await recorder.on_run_end(
            RunEnded(run_id="r1", status="completed", answer="18", verified=True, verify_rounds=1)
        )

    anyio.run(record)
    store.close()
    shown = verity("show", "r1", trace_db=db)
    assert shown.stdout.splitlines()[1:] == [
        "task: ducks",
        "└─ step 1  accepted",
        "   ├─ model  0 in, 0 out  0.000 s",
        "   │  says: 18",
        "   ├─ model (verifier)  0 in, 0 out  0.000 s",
        "   │  says: answer = 9 * 2",
        "   ├─ model (verifier)  0 in, 0 out  0.000 s",
        "   │  says: answer = 9 * 2",
        "   └─ verdict (recompute, answer): verified",
        "      ok   a program written from the task alone (seed 0): agrees",
        "answer: 18 (verified)",
        "verification: verified (1 round)",
        "tokens: 0 in, 0 out over 3 model calls",
    ]


async def test_why_an_answer_is_unverified_is_read_from_the_verdict_on_the_answer_kept() -> None:
    def rejected(evidence: str, confidence: float) -> Verdict:
        finding = Finding(claim="a program (seed 0)", ok=False, evidence=evidence)
        return Verdict(
            ok=False,
            verifier="self-check",
            findings=[finding],
            feedback="Recheck.",
            confidence=confidence,
        )

    class Rejects:
        def __init__(self) -> None:
            self.verdicts = [
                rejected("computes 6, not 12", 0.5),
                rejected("computes 6, not 3", 0.0),
            ]

        async def verify(self, candidate: Candidate) -> Verdict:
            return self.verdicts.pop(0)

    model = ScriptedModel([answer("The answer is 12."), answer("The answer is 3.")])
    with anyio.fail_after(5):
        result = await run(
            "How fast?", model=model, verifier=Rejects(), settings=RunSettings(max_verify_rounds=2)
        )
    # rounds ran out: the better-supported first answer is kept, and the reason is its verdict's
    assert result.answer == "The answer is 12."
    assert result.status == "unverified"
    assert result.reason == "self-check: a program (seed 0): computes 6, not 12"
