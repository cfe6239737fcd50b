"""The "always" approvals file: concurrent writers keep every approval, readers never see half a
file, and a file that cannot be stored to never costs the call the person approved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.approvals_writer import spec
from tests.fixtures.processes import server_env
from verity.tools._atomic import rewrite
from verity.tools.approval import (
    Answer,
    ApprovalDecision,
    ApprovalGate,
    ApprovalStore,
    definition_hash,
)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.approvals_writer", *args],
        cwd=PROJECT_ROOT,
        env=server_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_approving_always_at_once_keep_all_approvals(tmp_path: Path) -> None:
    path = tmp_path / "config" / "approvals.json"
    writers = [start("write", str(path), prefix, "150") for prefix in ("a", "b")]
    reader = start("read", str(path), "120")
    outputs = [process.communicate(timeout=120) for process in writers]
    (tmp_path / "config" / "approvals.json.stop").touch()
    outputs.append(reader.communicate(timeout=30))
    assert [process.returncode for process in (*writers, reader)] == [0, 0, 0]
    assert all("Traceback" not in err for _, err in outputs)
    acked = {
        line.split()[1]
        for out, _ in outputs[:2]
        for line in out.splitlines()
        if line.startswith("ack ")
    }
    assert len(acked) == 300
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored == {name: definition_hash(spec(name)) for name in acked}
    assert [out.splitlines()[-1] for out, _ in outputs[:2]] == ["loads-failed 0"] * 2
    loads, failed = outputs[2][0].split()[1:4:2]
    assert (int(loads) > 0, failed) == (True, "0")


def test_remember_keeps_what_another_process_stored_since_this_one_loaded(tmp_path: Path) -> None:
    path = tmp_path / "approvals.json"
    mine, theirs = ApprovalStore(path), ApprovalStore(path)
    theirs.remember(spec("time__set"))
    mine.remember(spec("files__write"))
    assert mine.approved(spec("time__set"))
    assert set(json.loads(path.read_text())) == {"time__set", "files__write"}
    assert path.stat().st_mode & 0o777 == 0o600
    assert {p.name for p in tmp_path.iterdir()} - {"approvals.json.lock"} == {"approvals.json"}


async def test_an_always_answer_that_cannot_be_stored_still_allows_the_call(
    tmp_path: Path,
) -> None:
    path = tmp_path / "approvals.json"
    store = ApprovalStore(path)
    path.write_text("{broken", encoding="utf-8")  # edited by hand meanwhile
    reasons: list[str] = []

    async def always(*_: object) -> Answer:
        return "always"

    async def told(decision: ApprovalDecision) -> None:
        reasons.append(decision.reason)

    gate = ApprovalGate(ask=always, store=store, on_decision=told)
    await gate.check(spec("files__write"), {})
    assert reasons == [
        f"approved always, for this session only: not stored ({path} is not valid JSON "
        "(Expecting property name enclosed in double quotes))"
    ]
    assert path.read_text(encoding="utf-8") == "{broken"
    assert store.approved(spec("files__write"))


def test_a_failed_rewrite_leaves_the_file_and_no_temporary_behind(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    rewrite(path, lambda _: b'{"old": 1}')

    def fail(_: bytes | None) -> bytes:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        rewrite(path, fail)
    assert path.read_bytes() == b'{"old": 1}'
    assert {p.name for p in tmp_path.iterdir()} - {"state.json.lock"} == {"state.json"}
