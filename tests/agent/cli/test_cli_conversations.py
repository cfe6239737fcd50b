"""`verity chat` and `verity run -c` on the real embedded model: one conversation in the trace,
each later turn evaluating only its new tokens."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.cli.test_cli import verity
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _environment(db: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key != "VERITY_MODEL"}
    environment["VERITY_TRACE_DB"] = str(db)
    return environment


def _turns(db: Path) -> list[tuple[str, dict[str, str], int, int]]:
    """Each run (oldest first): its id, labels, and its first agent call's prompt tokens and
    how many of them were evaluated."""
    with sqlite3.connect(db) as conn:
        runs = conn.execute("select id, config from runs order by started_at, rowid").fetchall()
        turns = []
        for run_id, config in runs:
            labels = json.loads(config)["run"].get("labels", {})
            prompt, evaluated = conn.execute(
                "select input_tokens, input_tokens_evaluated from model_calls where run_id = ? "
                "and purpose = 'agent' order by id limit 1",
                [run_id],
            ).fetchone()
            turns.append((run_id, labels, prompt, evaluated))
    return turns


def _last_prompt(db: Path, run_id: str) -> int:
    with sqlite3.connect(db) as conn:
        (tokens,) = conn.execute(
            "select input_tokens from model_calls where run_id = ? and purpose = 'agent' "
            "order by id desc limit 1",
            [run_id],
        ).fetchone()
    return int(tokens)


def test_chat_holds_a_three_turn_conversation_evaluating_only_new_tokens(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    turns = "What is 17 * 24?\nAdd 5 to that number.\nNow double it.\n/exit\n"
    done = subprocess.run(
        [sys.executable, "-m", "verity", "chat", "--quiet", "--max-steps", "4"],
        input=turns,
        cwd=PROJECT_ROOT,
        env=_environment(db),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    first, second, third = _turns(db)
    assert "conversation" not in first[1]
    assert second[1] == {"conversation": first[0], "continues": first[0]}
    assert third[1] == {"conversation": first[0], "continues": second[0]}
    for before, now in ((first, second), (second, third)):
        # all the previous turn's last prompt came from the KV cache: only what followed is new
        assert now[3] <= now[2] - _last_prompt(db, before[0]), (before, now)


def test_run_continue_goes_on_from_the_last_run(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    first = verity("run", "What is 17 * 24?", "--quiet", "--json", trace_db=db)
    assert first.returncode == 0, first.stderr
    second = verity("run", "-c", "Add 5 to that number.", "--quiet", "--json", trace_db=db)
    assert second.returncode in (0, 7), second.stderr
    first_id, second_id = json.loads(first.stdout)["run_id"], json.loads(second.stdout)["run_id"]
    with sqlite3.connect(db) as conn:
        shown = [
            row[0]
            for row in conn.execute(
                "select content from messages where run_id = ? and role = 'user' order by position",
                [second_id],
            )
        ]
    assert shown == ["What is 17 * 24?", "Add 5 to that number."]
    (_, labels, _, _) = next(t for t in _turns(db) if t[0] == second_id)
    assert labels == {"conversation": first_id, "continues": first_id}
    missing = verity("run", "--continue-run", "nosuchrun", "hi", trace_db=db)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_a_chat_turn_whose_server_did_not_start_prints_no_answer_and_exits_non_zero(
    tmp_path: Path,
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "time": {
                        "command": sys.executable,
                        "args": ["-c", "raise SystemExit(3)"],
                        "startupTimeout": 5,
                    }
                }
            }
        )
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "verity",
            "chat",
            "--quiet",
            "--max-steps",
            "2",
            "--mcp-config",
            str(config),
        ],
        input="What time is it in Tokyo?\n",
        cwd=PROJECT_ROOT,
        env=_environment(tmp_path / "t.db"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (4, 7), done.stderr  # no answer in the steps, or one refused
    assert done.stdout == ""  # a made-up time never reaches stdout
    assert "MCP server 'time' did not start" in done.stderr
    assert "Traceback" not in done.stderr
