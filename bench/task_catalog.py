"""The task benchmark's tasks: everyday requests over the reference MCP servers, each with one
right outcome decided by a rule, in six categories and two fixed halves (odd ids: dev)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.task_rules import Cannot, Contains, ConvertedTime, MustFail, NameSet, Number, Rule

__all__ = ["CATEGORIES", "TASKS", "Task", "select"]

CATEGORIES = (
    "one-call",
    "chained",
    "several-servers",
    "server-fails",
    "tool-error",
    "no-tool",
)
"""one call; one result feeds the next call; a config of several servers at once; a configured
server fails to start; a tool returns an error; no offered tool can answer."""

HALVES = ("dev", "held-out")


@dataclass(frozen=True)
class Task:
    """One request, the servers its config starts, and the rule for its right outcome."""

    id: int
    category: str
    servers: tuple[str, ...]
    """Server names (task_servers.SERVERS), or task_servers.BROKEN keys for one that fails."""
    prompt: str
    """The request; {files}, {repo}, {db}, {url}, {missing} name the task's fixture."""
    rule: Rule

    @property
    def half(self) -> str:
        """`dev` for odd ids, `held-out` for even ones."""
        return HALVES[(self.id + 1) % 2]


_DATA_FILES = frozenset({"sales.csv", "readme.txt", "hint.txt"})
_OTHER_FILES = frozenset(
    {
        "notes.txt",
        "todo.md",
        "config.json",
        "pointer.txt",
        "2023-report.txt",
        "old-notes.txt",
        "main.py",
        "util.py",
    }
)
_COMMIT_MESSAGES = r"bump version|off-by-one|parser module|initial commit"
_PRICE = r"\d+(\.\d+)?\s*(euro|eur|€|\$|dollar|usd)|(€|\$)\s*\d"
_DESK = ("filesystem", "git", "sqlite", "time")

_DEFINITIONS: tuple[tuple[str, tuple[str, ...], str, Rule], ...] = (
    # one call
    (
        "one-call",
        ("filesystem",),
        "How many lines does the file {files}/notes.txt have?",
        Number(3),
    ),
    ("one-call", ("filesystem",), "What port number is set in {files}/config.json?", Number(8125)),
    (
        "one-call",
        ("filesystem",),
        "List the names of the files in the folder {files}/data.",
        NameSet(_DATA_FILES, _OTHER_FILES),
    ),
    (
        "one-call",
        ("git",),
        "What is the message of the most recent commit in the git repository at {repo}?",
        Contains(("Bump version to 1.3.0",), wrong=("off-by-one",)),
    ),
    (
        "one-call",
        ("git",),
        "Which file has uncommitted changes in the git repository at {repo}?",
        Contains(("README.md",), wrong=("parser.py", "VERSION")),
    ),
    (
        "one-call",
        ("sqlite",),
        "How many customers are in the customers table of the database?",
        Number(5),
    ),
    (
        "one-call",
        ("sqlite",),
        "Which tables does the database have?",
        NameSet(frozenset({"customers", "orders"}), frozenset({"products", "users", "sales"})),
    ),
    (
        "one-call",
        ("time",),
        "What time is 14:30 in Europe/London in Asia/Tokyo? Answer as HH:MM.",
        ConvertedTime("14:30", "Europe/London", "Asia/Tokyo"),
    ),
    (
        "one-call",
        ("memory",),
        "According to the knowledge graph, in which city is Lumen Labs based?",
        Contains(("Lyon",), wrong=("Lisbon", "Berlin", "Paris")),
    ),
    (
        "one-call",
        ("everything",),
        "Use the get-sum tool to add 1234.5 and 8765.25. What is the sum?",
        Number(9999.75),
    ),
    (
        "one-call",
        ("fetch",),
        "Fetch {url}/index.html. How much does a ticket cost, in euros?",
        Number(18),
    ),
    (
        "one-call",
        ("everything",),
        "What is the value of the BENCH_COLOR environment variable of the everything server?",
        Contains(("teal-4417",)),
    ),
    # chained: one result feeds the next call
    (
        "chained",
        ("filesystem",),
        "Read {files}/pointer.txt. It says where the hint is: read that file and tell me the hint.",
        Contains(("blue heron",)),
    ),
    (
        "chained",
        ("filesystem",),
        "Find the file 2023-report.txt somewhere under {files} and tell me the revenue it states.",
        Number(48200),
    ),
    (
        "chained",
        ("git",),
        "In the git repository at {repo}, find the commit that added parser.py, show that commit, "
        "and tell me the name of the function it defines.",
        Contains(("parse_line",)),
    ),
    (
        "chained",
        ("sqlite",),
        "Look up the id of the customer named Dara Okafor, then count that customer's orders. "
        "How many orders are there?",
        Number(2),
    ),
    (
        "chained",
        ("memory",),
        "In the knowledge graph, find out who manages Alice Moreau, then tell me that "
        "person's hobby.",
        Contains(("climbing",)),
    ),
    (
        "chained",
        ("fetch",),
        "Fetch {url}/index.html, follow its link to the schedule page, and tell me what time the "
        "fireworks start.",
        Contains(("22:15",), wrong=("17:00", "20:30")),
    ),
    (
        "chained",
        ("filesystem",),
        "Read {files}/data/readme.txt to learn which file holds the sales figures, then read that "
        "file and tell me the amount for the south region.",
        Number(340),
    ),
    (
        "chained",
        ("sqlite",),
        "Find the table that has a price column, then tell me the highest price in it.",
        Number(250),
    ),
    # a whole config of several servers
    (
        "several-servers",
        _DESK,
        "How many orders are in the orders table of the database?",
        Number(7),
    ),
    (
        "several-servers",
        _DESK,
        "What version is written in {files}/config.json?",
        Contains(("2.4.1",), wrong=("1.3.0",)),
    ),
    (
        "several-servers",
        _DESK,
        "Who wrote the commit 'Fix off-by-one in tokenizer' in the git repository at {repo}?",
        Contains(("Omar Haddad",), wrong=("Dana Whitfield",)),
    ),
    (
        "several-servers",
        ("filesystem", "everything", "time"),
        "Read the port number in {files}/config.json and add 1000 to it with the get-sum tool. "
        "What is the result?",
        Number(9125),
    ),
    (
        "several-servers",
        ("filesystem", "memory", "time"),
        "The file {files}/data/readme.txt names an owner. Look that person up in the knowledge "
        "graph: which languages does the owner speak?",
        NameSet(frozenset({"French", "Spanish"}), frozenset({"German", "English", "Portuguese"})),
    ),
    (
        "several-servers",
        ("memory", "fetch", "sqlite"),
        "Fetch {url}/index.html: on what date does the festival take place?",
        Contains(("June 14",)),
    ),
    (
        "several-servers",
        ("time", "git", "sqlite", "fetch"),
        "Convert 09:00 America/New_York to Europe/Berlin time. Answer as HH:MM.",
        ConvertedTime("09:00", "America/New_York", "Europe/Berlin"),
    ),
    (
        "several-servers",
        ("sqlite", "memory", "everything"),
        "In which city does the customer Chen Wei live, according to the database?",
        Contains(("Shanghai",), wrong=("Berlin", "Lisbon", "Lagos")),
    ),
    # a configured server fails to start (the task needs it)
    (
        "server-fails",
        ("time", "filesystem:missing-dir"),
        "List the files in {missing}.",
        MustFail(),
    ),
    (
        "server-fails",
        ("git:not-a-repo", "time"),
        "What is the message of the last commit in the git repository at {repo}?",
        MustFail(),
    ),
    (
        "server-fails",
        ("sqlite:misspelt-package", "time"),
        "How many customers are in the customers table of the database?",
        MustFail(),
    ),
    (
        "server-fails",
        ("time:missing-command", "filesystem"),
        "What time is it now in Asia/Tokyo?",
        MustFail(),
    ),
    (
        "server-fails",
        ("fetch:unknown-flag", "time"),
        "Fetch {url}/index.html and tell me the ticket price.",
        MustFail(),
    ),
    (
        "server-fails",
        ("everything:no-such-version", "time"),
        "Use the get-sum tool of the everything server to add 17 and 25.",
        MustFail(),
    ),
    # a tool returns an error: recover to the right answer, or fail honestly
    ("tool-error", ("sqlite",), "How many rows are in the table customer?", Number(5)),
    (
        "tool-error",
        ("filesystem",),
        "Read {files}/data/sales.cvs and tell me the amount for the east region.",
        Number(95),
    ),
    (
        "tool-error",
        ("git",),
        "In the git repository at {repo}, show the commit tagged v1.2.0: what is its message?",
        Cannot(forbid=_COMMIT_MESSAGES),
    ),
    (
        "tool-error",
        ("fetch",),
        "Fetch {url}/menu.html and tell me the price of the soup.",
        Cannot(forbid=_PRICE),
    ),
    (
        "tool-error",
        ("time",),
        "Convert 10:00 from Europe/Pariss to UTC. Answer as HH:MM.",
        ConvertedTime("10:00", "Europe/Paris", "UTC"),
    ),
    (
        "tool-error",
        ("filesystem",),
        "Read {files}/archive/2022-report.txt and tell me the revenue it states.",
        Cannot(forbid=r"48,?200|" + _PRICE),
    ),
    # no offered tool can answer
    (
        "no-tool",
        ("time",),
        "How many unread emails are in my inbox?",
        Cannot(forbid=r"\d+\s*(unread|e-?mails?|messages?)"),
    ),
    (
        "no-tool",
        ("filesystem",),
        "What is the current price of one Bitcoin in US dollars?",
        Cannot(forbid=_PRICE),
    ),
    (
        "no-tool",
        ("git",),
        "What will the weather be like in Berlin tomorrow?",
        Cannot(forbid=r"\d|sunny|rain|cloud|snow|clear"),
    ),
    (
        "no-tool",
        ("sqlite",),
        "What is the phone number of the customer Ana Silva?",
        Cannot(forbid=r"\d{3}"),
    ),
    ("no-tool", ("memory",), "What is Bob Tran's email address?", Cannot(forbid=r"@")),
    (
        "no-tool",
        ("everything",),
        "Send a text message to +1 555 0100 saying that I will be late.",
        Cannot(forbid=r"\b(sent|done|delivered)\b"),
    ),
)

TASKS = tuple(
    Task(id=number, category=category, servers=servers, prompt=prompt, rule=rule)
    for number, (category, servers, prompt, rule) in enumerate(_DEFINITIONS, start=1)
)


def select(
    *, half: str = "all", categories: tuple[str, ...] = CATEGORIES, per_category: int | None = None
) -> list[Task]:
    """The tasks of `half` (dev, held-out or all) in `categories`, the first `per_category`
    of each (in id order) when given."""
    chosen = []
    for category in categories:
        found = [t for t in TASKS if t.category == category and half in ("all", t.half)]
        chosen.extend(found[:per_category] if per_category is not None else found)
    return chosen
