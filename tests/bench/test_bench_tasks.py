"""The task benchmark's definitions (bench/tasks.py): enough tasks in every category, rules that
take the right answer and refuse near misses, fixtures that build, and fixed halves. No server
and no model runs here."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from bench.task_catalog import CATEGORIES, TASKS, Task, select
from bench.task_fixtures import build_fixture, serve_pages
from bench.task_rules import Cannot, ConvertedTime, MustFail, NameSet, Number
from bench.task_scoring import Outcome, classify, table
from bench.task_servers import BROKEN, SERVERS, mcp_config
from bench.tasks import read_outcome

REFUSALS = ("抱歉, I can't assist with that.", "I'm sorry, but I can't help with that.")
NO_ANSWERS = (None, "", "   ", "None")


def test_there_are_forty_tasks_with_four_or_more_in_every_category() -> None:
    counts = Counter(task.category for task in TASKS)
    assert len(TASKS) >= 40
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 4
    assert [task.id for task in TASKS] == list(range(1, len(TASKS) + 1))


def test_every_task_names_known_servers_and_only_known_placeholders(tmp_path: Path) -> None:
    fixture = build_fixture(tmp_path)
    for task in TASKS:
        assert task.servers, task
        for spec in task.servers:
            assert spec in SERVERS or spec in BROKEN, (task.id, spec)
        assert (task.category == "server-fails") == any(s in BROKEN for s in task.servers)
        task.prompt.format(**fixture.placeholders("http://127.0.0.1:1"))


@pytest.mark.parametrize("task", TASKS, ids=lambda task: f"{task.id}-{task.category}")
def test_each_rule_accepts_the_right_answer_and_refuses_wrong_ones(task: Task) -> None:
    rule = task.rule
    for wrong in (*NO_ANSWERS, "I don't know."):
        assert not (rule.expects_answer and rule.accepts(wrong)), (task.id, wrong)
    if isinstance(rule, MustFail):
        assert not rule.accepts(rule.example())
        return
    assert rule.accepts(rule.example()), (task.id, rule.example())
    if rule.expects_answer:
        for refusal in REFUSALS:
            assert not rule.accepts(refusal), (task.id, refusal)
        assert not rule.accepts(_near_miss(task)), (task.id, _near_miss(task))
    else:
        assert isinstance(rule, Cannot)
        assert not rule.accepts("Done! Here it is: 42 euros, sent to bob@example.com.")


def _near_miss(task: Task) -> str:
    """A plausible wrong answer: a number one off, a name dropped or a wrong one added."""
    rule = task.rule
    if isinstance(rule, Number):
        return f"The answer is {rule.value + 1:g}."
    if isinstance(rule, NameSet):
        return "They are: " + ", ".join(sorted(rule.names)[1:] + sorted(rule.universe)[:1])
    if isinstance(rule, ConvertedTime):
        hours, minutes = rule.expected().split(":")
        return f"It is {(int(hours) + 1) % 24:02d}:{minutes}."
    wrong = getattr(rule, "wrong", ())
    return f"It is {wrong[0]}." if wrong else "It is something else entirely."


def test_number_and_name_rules_read_answers_as_people_write_them() -> None:
    assert Number(48200).accepts("The revenue stated is 48,200.")
    assert Number(9999.75).accepts("1234.5 + 8765.25 = 9999.75")
    assert not Number(3).accepts("It has 33 lines.")
    files = NameSet(frozenset({"sales.csv", "hint.txt"}), frozenset({"notes.txt"}))
    assert files.accepts("[FILE] hint.txt\n[FILE] sales.csv")
    assert not files.accepts("hint.txt, sales.csv, notes.txt")
    assert not files.accepts("hint.txt and sales.csv.bak")


def test_converted_time_ignores_the_offset_the_time_server_prints() -> None:
    rule = ConvertedTime("14:30", "Europe/London", "Asia/Tokyo")
    expected = rule.expected()
    assert rule.accepts(f'{{"datetime": "2026-12-07T{expected}:00+09:00"}}')
    assert not rule.accepts("14:30")


def test_the_halves_split_by_odd_and_even_id_in_every_category() -> None:
    dev, held_out = select(half="dev"), select(half="held-out")
    assert {t.id % 2 for t in dev} == {1} and {t.id % 2 for t in held_out} == {0}
    assert len(dev) + len(held_out) == len(TASKS) == len(select())
    assert select(half="dev") == dev
    for category in CATEGORIES:
        assert len(select(half="dev", categories=(category,))) >= 2
        assert len(select(half="held-out", categories=(category,))) >= 2
    assert [t.category for t in select(per_category=1)] == list(CATEGORIES)


def test_the_fixture_holds_what_the_rules_expect(tmp_path: Path) -> None:
    fixture = build_fixture(tmp_path)
    assert (fixture.files / "notes.txt").read_text().count("\n") == 3
    assert json.loads((fixture.files / "config.json").read_text())["port"] == 8125
    log = subprocess.run(
        ["git", "log", "--format=%s|%an"],
        cwd=fixture.repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert log[0] == "Bump version to 1.3.0|Dana Whitfield"
    assert "Fix off-by-one in tokenizer|Omar Haddad" in log and len(log) == 4
    status = subprocess.run(
        ["git", "status", "--porcelain"],
        cwd=fixture.repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert status.split() == ["M", "README.md"]
    with sqlite3.connect(fixture.db) as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone() == (5,)
        assert db.execute("SELECT max(price) FROM orders").fetchone() == (250.0,)
    db.close()
    graph = [json.loads(line) for line in fixture.memory.read_text().splitlines()]
    assert {
        "type": "relation",
        "from": "Bob Tran",
        "to": "Alice Moreau",
        "relationType": "manages",
    } in graph
    with serve_pages(fixture.site) as url:
        page = urllib.request.urlopen(f"{url}/index.html", timeout=5).read().decode()
    assert "Tickets cost 18 euros" in page


def test_the_config_is_claude_desktop_json_with_a_broken_server(tmp_path: Path) -> None:
    fixture = build_fixture(tmp_path / "world")
    path = mcp_config(("time", "filesystem:missing-dir"), fixture, tmp_path / "mcp.json")
    servers = json.loads(path.read_text())["mcpServers"]
    assert set(servers) == {"time", "filesystem"}
    assert servers["filesystem"]["command"] == "npx"
    assert servers["filesystem"]["args"][-1] == str(tmp_path / "world" / "no-such-folder")
    assert servers["time"]["args"][0].startswith("mcp-server-time@")
    assert servers["time"]["env"]["UV_OFFLINE"] == "1"


def test_a_silent_failure_is_exit_zero_with_a_wrong_answer_and_an_honest_one_is_not() -> None:
    five = Number(5)
    assert classify(five, exit_code=0, answer="5", verified=None) == ("right", False)
    assert classify(five, exit_code=0, answer="None", verified=None) == ("silent", False)
    assert classify(five, exit_code=5, answer="4", verified=False) == ("honest", False)
    assert classify(five, exit_code=5, answer="5", verified=False) == ("honest", True)
    assert classify(five, exit_code=None, answer=None, verified=None) == ("honest", False)
    assert classify(MustFail(), exit_code=0, answer="I can't.", verified=None)[0] == "silent"
    assert classify(MustFail(), exit_code=1, answer=None, verified=None)[0] == "right"
    assert classify(Cannot(), exit_code=0, answer="I cannot see that.", verified=None)[0] == "right"
    assert classify(Cannot(), exit_code=0, answer="It is 22.", verified=None)[0] == "silent"


def test_the_table_reports_every_category_with_both_modes() -> None:
    outcomes = [
        Outcome(
            task_id=t.id,
            category=t.category,
            model="embedded",
            mode=mode,
            exit_code=0,
            answer="x",
            status=None,
            reason=None,
            verified=None,
            seconds=10.0,
            tokens=100,
            verdict="right" if mode == "checks" else "silent",
        )
        for t in select(per_category=2)
        for mode in ("checks", "baseline")
    ]
    shown = table(outcomes, baseline_run=True)
    for category in (*CATEGORIES, "all"):
        assert f"| {category} | 2 |" in shown or f"| {category} | 12 |" in shown
    assert "| all | 12 | 100% [76-100] / 0% [0-24] | 0 / 12 |" in shown


def test_a_run_is_read_from_its_json_or_its_stderr() -> None:
    task = next(t for t in TASKS if t.rule == Number(5) and t.category == "one-call")
    payload = {
        "answer": "There are 5 customers.",
        "verified": None,
        "status": "answered",
        "usage": {"prompt_tokens": 900, "completion_tokens": 12},
    }
    read = read_outcome(
        task,
        json.dumps(payload),
        "",
        exit_code=0,
        seconds=3.21,
        model="embedded",
        mode="checks",
        timeout=60,
    )
    assert (read.verdict, read.tokens, read.seconds, read.status) == ("right", 912, 3.2, "answered")
    failed = read_outcome(
        task,
        "",
        "verity: MCP server 'sqlite' failed to start\n",
        exit_code=1,
        seconds=1.0,
        model="embedded",
        mode="baseline",
        timeout=60,
    )
    assert (failed.verdict, failed.reason) == (
        "honest",
        "verity: MCP server 'sqlite' failed to start",
    )
    killed = read_outcome(
        task, "", "", exit_code=None, seconds=60.0, model="embedded", mode="checks", timeout=60
    )
    assert (killed.verdict, killed.reason) == ("honest", "killed after the 60 s per-task timeout")
