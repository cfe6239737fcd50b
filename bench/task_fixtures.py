"""The known world the task benchmark asks about, built fresh per task in a directory: a file
tree, a git repository, a SQLite database, a memory graph and two web pages served on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["Fixture", "build_fixture", "serve_pages"]

FILES = {
    "notes.txt": "buy milk\ncall Alice\nrenew passport\n",
    "todo.md": "# Todo\n- [ ] write report\n- [x] send invoice\n- [ ] book flights\n",
    "config.json": json.dumps(
        {"name": "orchard", "version": "2.4.1", "port": 8125, "debug": False}, indent=2
    ),
    "pointer.txt": "The hint you are looking for is in data/hint.txt\n",
    "data/sales.csv": "region,amount\nnorth,120\nsouth,340\neast,95\nwest,210\n",
    "data/readme.txt": "The sales figures are in sales.csv.\nOwner: Alice Moreau\n",
    "data/hint.txt": "The hint is: blue heron\n",
    "archive/2023-report.txt": "Annual report 2023\nRevenue: 48200\n",
    "archive/old-notes.txt": "nothing to see here\n",
    "src/main.py": "from util import greet\n\nprint(greet('world'))\n",
    "src/util.py": "def greet(name):\n    return f'hello {name}'\n",
}
"""The file tree, path (under files/) to contents."""

COMMITS = (
    ("Initial commit", "Dana Whitfield", {"README.md": "# orchard\n"}),
    (
        "Add parser module",
        "Dana Whitfield",
        {"parser.py": "def parse_line(line):\n    return line.split()\n"},
    ),
    (
        "Fix off-by-one in tokenizer",
        "Omar Haddad",
        {"parser.py": "def parse_line(line):\n    return line.split()[0:]\n"},
    ),
    ("Bump version to 1.3.0", "Dana Whitfield", {"VERSION": "1.3.0\n"}),
)
"""The repository's history, oldest first: message, author, files written."""

CUSTOMERS = (
    (1, "Ana Silva", "Lisbon"),
    (2, "Ben Ott", "Berlin"),
    (3, "Chen Wei", "Shanghai"),
    (4, "Dara Okafor", "Lagos"),
    (5, "Eli Katz", "Berlin"),
)
ORDERS = (
    (1, 1, "lamp", 2, 40.0),
    (2, 2, "desk", 1, 250.0),
    (3, 4, "chair", 4, 85.0),
    (4, 4, "lamp", 1, 40.0),
    (5, 3, "monitor", 2, 199.0),
    (6, 5, "desk", 1, 250.0),
    (7, 1, "chair", 2, 85.0),
)

MEMORY = (
    {
        "type": "entity",
        "name": "Alice Moreau",
        "entityType": "person",
        "observations": ["works at Lumen Labs", "speaks French and Spanish"],
    },
    {
        "type": "entity",
        "name": "Lumen Labs",
        "entityType": "organization",
        "observations": ["based in Lyon", "founded in 2019"],
    },
    {
        "type": "entity",
        "name": "Bob Tran",
        "entityType": "person",
        "observations": ["likes climbing", "drinks tea"],
    },
    {"type": "relation", "from": "Alice Moreau", "to": "Lumen Labs", "relationType": "works_at"},
    {"type": "relation", "from": "Bob Tran", "to": "Alice Moreau", "relationType": "manages"},
)

PAGES = {
    "index.html": (
        "<html><head><title>Harbor Lights Festival 2026</title></head><body>"
        "<h1>Harbor Lights Festival 2026</h1><p>The festival takes place on June 14 at the old "
        "harbour.</p><p>Tickets cost 18 euros at the gate.</p>"
        "<p>Contact: info@harborlights.example</p>"
        '<p>See the <a href="schedule.html">schedule</a> for the programme.</p></body></html>'
    ),
    "schedule.html": (
        "<html><head><title>Schedule</title></head><body><h1>Schedule</h1><table>"
        "<tr><th>Event</th><th>Time</th></tr><tr><td>Opening parade</td><td>17:00</td></tr>"
        "<tr><td>Lantern walk</td><td>20:30</td></tr><tr><td>Fireworks</td><td>22:15</td></tr>"
        "</table></body></html>"
    ),
}


@dataclass(frozen=True)
class Fixture:
    """Where one task's world lives."""

    root: Path
    files: Path
    repo: Path
    db: Path
    memory: Path
    site: Path

    def placeholders(self, url: str) -> dict[str, str]:
        """What a task's text may name: {files}, {repo}, {db}, {url}, {missing}."""
        return {
            "files": str(self.files),
            "repo": str(self.repo),
            "db": str(self.db),
            "url": url,
            "missing": str(self.root / "no-such-folder"),
        }


def build_fixture(root: Path) -> Fixture:
    """Write the whole known world under `root` (an empty directory)."""
    fixture = Fixture(
        root=root,
        files=root / "files",
        repo=root / "repo",
        db=root / "shop.db",
        memory=root / "memory.jsonl",
        site=root / "site",
    )
    for name, text in FILES.items():
        _write(fixture.files / name, text)
    for name, text in PAGES.items():
        _write(fixture.site / name, text)
    fixture.memory.write_text("".join(json.dumps(item) + "\n" for item in MEMORY))
    _build_repo(fixture.repo)
    _build_db(fixture.db)
    return fixture


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _build_repo(repo: Path) -> None:
    """Four commits on main, a feature/login branch, and README.md changed but not committed."""
    repo.mkdir()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*args: str, **extra: str) -> None:
        subprocess.run(
            ["git", *args],
            cwd=repo,
            env={**env, **extra},
            check=True,
            capture_output=True,
            timeout=30,
        )

    git("init", "-q", "-b", "main")
    for day, (message, author, files) in enumerate(COMMITS, start=2):
        for name, text in files.items():
            _write(repo / name, text)
        git("add", *files)
        email = author.split()[0].lower() + "@example.com"
        date = f"2026-03-{day:02d}T10:00:00+00:00"
        git(
            "commit",
            "-q",
            "-m",
            message,
            GIT_AUTHOR_NAME=author,
            GIT_AUTHOR_EMAIL=email,
            GIT_COMMITTER_NAME=author,
            GIT_COMMITTER_EMAIL=email,
            GIT_AUTHOR_DATE=date,
            GIT_COMMITTER_DATE=date,
        )
    git("branch", "feature/login", "HEAD~1")
    _write(repo / "README.md", "# orchard\n\nA fruit tracker.\n")


def _build_db(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
        db.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, "
            "product TEXT, quantity INTEGER, price REAL)"
        )
        db.executemany("INSERT INTO customers VALUES (?, ?, ?)", CUSTOMERS)
        db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ORDERS)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serve_pages(site: Path) -> Iterator[str]:
    """Serve `site` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
