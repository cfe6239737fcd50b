"""Per-case outputs of bench/bfcl.py, kept between runs so an unchanged system is not rerun.

One JSON Lines file per system. A record is keyed by the case id and a version: a hash of the
model file and of the code that produced it (the system's own source, the settings it ran with,
the library version). Change any of them and the case is generated again; old records stay
for the other versions.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.bfcl_scoring import Outcome

__all__ = ["OutcomeCache", "code_version", "file_sha256"]


def file_sha256(path: Path) -> str:
    """The sha256 of a (large) file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def code_version(
    *, objects: Iterable[Any] = (), files: Iterable[Path] = (), extra: str = ""
) -> str:
    """A short hash of the source of `objects` (functions, classes), the contents of `files`
    and any `extra` text (settings, library versions)."""
    digest = hashlib.sha256(extra.encode())
    for item in objects:
        digest.update(inspect.getsource(item).encode())
    for path in sorted(files):
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class OutcomeCache:
    """The stored outcomes of one system at one version; `directory` None disables storing."""

    def __init__(self, directory: Path | None, system: str, version: str) -> None:
        self.version = version
        self._path = directory / f"{system}.jsonl" if directory else None
        self._outcomes: dict[str, Outcome] = {}
        if self._path is not None and self._path.is_file():
            for line in self._path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by an interrupted run
                if record.get("version") == version:
                    self._outcomes[record["case"]] = _outcome(record["outcome"])

    def get(self, case_id: str) -> Outcome | None:
        """The stored outcome of `case_id` at this version, if any."""
        return self._outcomes.get(case_id)

    def put(self, case_id: str, outcome: Outcome) -> None:
        """Store one outcome at once (an interrupted run keeps what it finished)."""
        self._outcomes[case_id] = outcome
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "case": case_id,
            "version": self.version,
            "outcome": {
                "calls": [[name, arguments] for name, arguments in outcome.calls],
                "parsed": outcome.parsed,
                "schema_valid": outcome.schema_valid,
                "seconds": round(outcome.seconds, 3),
                "text": outcome.text,
            },
        }
        with self._path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def _outcome(data: dict[str, Any]) -> Outcome:
    return Outcome(
        [(name, arguments) for name, arguments in data["calls"]],
        parsed=data["parsed"],
        schema_valid=data["schema_valid"],
        seconds=data["seconds"],
        text=data.get("text", ""),
    )
