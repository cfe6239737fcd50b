"""The answer checks over realistic tool results: right answers pass, made-up ones are refused."""

from __future__ import annotations

import json

import pytest

from verity.messages import Message, ToolCall
from verity.tools.base import ToolResult, ToolSpec
from verity.verify import AnswerChecks, Candidate

LISTING_TASK = "List the files in /tmp/work."
LISTING = [
    (
        ToolCall(id="c1", name="filesystem__list_directory", arguments={"path": "/tmp/work"}),
        ToolResult(content="[FILE] a.txt\n[FILE] notes-2026.md\n[DIR] sub"),
    )
]

TIME_TASK = "What time is it in Tokyo when it is 12:00 in UTC?"
TIME = [
    (
        ToolCall(
            id="c1",
            name="time__convert_time",
            arguments={"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
        ),
        ToolResult(
            content=json.dumps(
                {
                    "source": {
                        "timezone": "UTC",
                        "datetime": "2026-12-07T12:00:00+00:00",
                        "day_of_week": "Monday",
                        "is_dst": False,
                    },
                    "target": {
                        "timezone": "Asia/Tokyo",
                        "datetime": "2026-12-07T21:00:00+09:00",
                        "day_of_week": "Monday",
                        "is_dst": False,
                    },
                    "time_difference": "+9.0h",
                },
                indent=2,
            )
        ),
    )
]

GIT_TASK = "What is the message of the last commit in the repository /srv/repo?"
GIT_LOG = """Commit history:
Commit: '3f2a9c1d5e7b8a0f4c6d2e1b9a8f7c6d5e4b3a21'
Author: <git.Actor "Ada Lovelace <ada@example.com>">
Date: 2026-12-07 10:15:00+00:00
Message: 'Add parser for config files\\n'

Commit: '9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c'
Author: <git.Actor "Ada Lovelace <ada@example.com>">
Date: 2026-12-06 09:00:00+00:00
Message: 'Initial commit\\n'
"""
GIT = [
    (
        ToolCall(
            id="c1", name="git__git_log", arguments={"repo_path": "/srv/repo", "max_count": 2}
        ),
        ToolResult(content=GIT_LOG),
    )
]

SQL_TASK = "In shop.db, what is the total of Bob's order?"
SQL = [
    (
        ToolCall(
            id="c1",
            name="sqlite__read_query",
            arguments={"query": "SELECT id, name, total FROM orders"},
        ),
        ToolResult(
            content="[{'id': 1, 'name': 'Alice', 'total': 1234.5}, "
            "{'id': 2, 'name': 'Bob', 'total': 99.0}, {'id': 3, 'name': 'Cem', 'total': 12.25}]"
        ),
    )
]

MISSING_TASK = "Read /tmp/work/missing.txt and tell me what it says."
MISSING = [
    (
        ToolCall(
            id="c1", name="filesystem__read_file", arguments={"path": "/tmp/work/missing.txt"}
        ),
        ToolResult(
            content="Error: ENOENT: no such file or directory, open '/tmp/work/missing.txt'",
            is_error=True,
        ),
    )
]

GIT_COMMIT_TASK = "Commit the staged changes in /srv/repo with the message 'Fix typo'."
GIT_COMMIT = [
    (
        ToolCall(
            id="c1", name="git__git_commit", arguments={"repo_path": "/srv/repo", "message": "x"}
        ),
        ToolResult(content="nothing to commit, working tree clean", is_error=True),
    )
]

EMPTY_DIR_TASK = "Which files are in /tmp/empty?"
EMPTY_DIR = [
    (
        ToolCall(id="c1", name="filesystem__list_directory", arguments={"path": "/tmp/empty"}),
        ToolResult(content="[]"),
    )
]

COUNT_TASK = "How many rows are in the table customer?"
COUNT_FAILED = [
    (
        ToolCall(
            id="c1",
            name="sqlite__read_query",
            arguments={"query": "SELECT COUNT(*) FROM customer"},
        ),
        # the reference SQLite server returns its errors as ordinary results
        ToolResult(content="Database error: no such table: customer"),
    )
]
COUNT_RETRIED = [
    *COUNT_FAILED,
    (
        ToolCall(id="c2", name="sqlite__list_tables", arguments={}),
        ToolResult(content="[{'name': 'customers'}, {'name': 'orders'}]"),
    ),
    (
        ToolCall(
            id="c3",
            name="sqlite__read_query",
            arguments={"query": "SELECT COUNT(*) FROM customers"},
        ),
        ToolResult(content="[{'COUNT(*)': 5}]"),
    ),
]

TAG_TASK = "In the git repository at /srv/repo, show the commit tagged v1.2.0: what is its message?"
TAG_FAILED = [
    (
        ToolCall(
            id="c1",
            name="git__git_show",
            arguments={"repo_path": "/srv/repo", "revision": "v1.2.0"},
        ),
        ToolResult(
            content="Error executing tool git_show: Ref 'v1.2.0' did not resolve to an object",
            is_error=True,
        ),
    ),
    (
        ToolCall(
            id="c2", name="git__git_show", arguments={"repo_path": "/srv/repo", "revision": "1.2.0"}
        ),
        ToolResult(
            content="Error executing tool git_show: Ref '1.2.0' did not resolve to an object",
            is_error=True,
        ),
    ),
]

CONTACT_TASK = "What is Bob Tran's email address? Look him up in the memory graph."
CONTACT = [
    (
        ToolCall(
            id="c1",
            name="memory__search_nodes",
            arguments={"query": "Bob Tran bobtran@example.com"},
        ),
        ToolResult(content='{"entities": [], "relations": []}'),
    )
]
"""The model searched for an address it made up and found nothing."""

OUTSIDE_TASK = "List the files in /tmp/work and tell me the first user in /etc/passwd."
OUTSIDE = [
    (
        ToolCall(id="c1", name="filesystem__read_file", arguments={"path": "/etc/passwd"}),
        ToolResult(
            content="Error: Access denied - path outside allowed directories: /etc/passwd not in "
            "/tmp/work (uid 1000)",
            is_error=True,
        ),
    ),
    *LISTING,
]

OFFERED = [
    ToolSpec(name=name, description=description, parameters={"type": "object"})
    for name, description in [
        ("filesystem__list_directory", "List the files and directories in a path."),
        ("filesystem__read_file", "Read a file's contents."),
        ("sqlite__list_tables", "List the tables of the database."),
        ("sqlite__read_query", "Run a SELECT query."),
        ("git__git_log", "Show the commit log."),
        ("git__git_show", "Show a commit."),
        ("time__get_current_time", "The current time in a time zone."),
        ("time__convert_time", "Convert a time between time zones."),
        ("weather__get_forecast", "The forecast at a latitude and longitude."),
    ]
] + [
    ToolSpec(
        name="everything__get-sum",
        description="Returns the sum of two numbers",
        parameters={"type": "object"},
        closed_world=True,  # openWorldHint: false, as the reference server says
    )
]
"""The tools every case's run was offered."""

STATUS = [
    (
        ToolCall(id="c1", name="git__git_status", arguments={"repo_path": "/srv/repo"}),
        ToolResult(content="On branch main\nnothing to commit, working tree clean"),
    )
]
TABLES = [
    (
        ToolCall(id="c1", name="sqlite__list_tables", arguments={}),
        ToolResult(content="[{'name': 'customers'}, {'name': 'orders'}]"),
    )
]

INVENTED_LOG = [
    (
        ToolCall(
            id="c1",
            name="git__git_log",
            arguments={
                "repo_path": "/srv/repo",
                "max_count": 10,
                "start_timestamp": "2024-01-15T14:30:25",
                "contains": "HEAD",
            },
        ),
        ToolResult(content="Commit history:\n"),
    )
]

SUM = [
    (
        ToolCall(id="c1", name="filesystem__read_file", arguments={"path": "config.json"}),
        ToolResult(content='{"host": "127.0.0.1", "port": 8125}'),
    ),
    (
        ToolCall(id="c2", name="everything__get-sum", arguments={"a": 8125, "b": 1000}),
        ToolResult(content="The sum of 8125 and 1000 is 9125."),
    ),
]
# the port read was not the number the sum was fed: its input is made up, and so is its result
SUM_MADE_UP = [
    SUM[0],
    (
        ToolCall(id="c2", name="everything__get-sum", arguments={"a": 123, "b": 1000}),
        ToolResult(content="The sum of 123 and 1000 is 1123."),
    ),
]
# with nothing read at all, a computation's inputs may be what the model knows
WEEK_MINUTES = [
    (
        ToolCall(id="c1", name="everything__get-sum", arguments={"a": 8640, "b": 1440}),
        ToolResult(content="The sum of 8640 and 1440 is 10080."),
    )
]
# coordinates from what the model knows, asked of a service of the open world
FORECAST = [
    (
        ToolCall(
            id="c1",
            name="weather__get_forecast",
            arguments={"latitude": 52.52, "longitude": 13.405},
        ),
        ToolResult(content="Tomorrow: 4 °C, light rain, wind 18 km/h."),
    )
]


def one_call(
    name: str, arguments: dict[str, object], content: str
) -> list[tuple[ToolCall, ToolResult]]:
    """The evidence of a run that made one successful call."""
    return [(ToolCall(id="c1", name=name, arguments=arguments), ToolResult(content=content))]


CALCULATED_PRICE = one_call("calculator", {"expression": "1 * 65123.18"}, "65123.18")
CALCULATED_COST = one_call("calculator", {"expression": "3 * 2"}, "6")
ECHOED = one_call("everything__echo", {"message": "I will be late."}, "Echo: I will be late.")
SENT = one_call("sms__send_message", {"text": "I will be late."}, "queued: id 4411")

CASES = {
    "listing": (LISTING_TASK, LISTING),
    "time": (TIME_TASK, TIME),
    "git": (GIT_TASK, GIT),
    "sql": (SQL_TASK, SQL),
    "missing": (MISSING_TASK, MISSING),
    "commit": (GIT_COMMIT_TASK, GIT_COMMIT),
    "empty": (EMPTY_DIR_TASK, EMPTY_DIR),
    "no tools": ("What is the capital of France, and how many legs has a spider?", []),
    "count failed": (COUNT_TASK, COUNT_FAILED),
    "count retried": (COUNT_TASK, COUNT_RETRIED),
    "tag failed": (TAG_TASK, TAG_FAILED),
    "outside": (OUTSIDE_TASK, OUTSIDE),
    "contact": (CONTACT_TASK, CONTACT),
    # the model answered at once, without calling a tool
    "listing, no call": (LISTING_TASK, []),
    "count, no call": ("How many rows are in the table customers?", []),
    "inbox, no call": ("How many unread emails are in my inbox?", []),
    "command asked": ("What command lists the files in /tmp/work, hidden ones too?", []),
    "how asked": ("How do I undo the last commit in the git repository at /srv/repo?", []),
    "query asked": ("Write a SQL query that counts the rows of the customers table.", []),
    "arithmetic": ("What is 12 times 12?", []),
    "tables, no call": ("Which tables does the database have?", []),
    "time, no call": ("What time is it in Tokyo now?", []),
    "knowledge": ("When did Python 3 come out?", []),
    "price, no call": ("What is the current price of one Bitcoin in US dollars?", []),
    "empty then listing": (LISTING_TASK, [*EMPTY_DIR, *LISTING]),
    "sum": ("Read the port in config.json and add 1000 to it with get-sum. The result?", SUM),
    "sum, made up": (
        "Read the port in config.json and add 1000 to it with get-sum. The result?",
        SUM_MADE_UP,
    ),
    "week": (
        "How many minutes has a week, the sum of six days' and one day's?",
        WEEK_MINUTES,
    ),
    "forecast": ("What will the weather be like in Berlin tomorrow?", FORECAST),
    "invented filters": (GIT_TASK, INVENTED_LOG),
    "weather": ("What will the weather be like in Berlin tomorrow?", STATUS),
    "tables": ("Which tables does the database have?", TABLES),
    "send, no call": ("Send a text message to +1 555 0100 saying that I will be late.", []),
    "book, no call": ("Please book a table for two at Luigi's tonight at 8.", []),
    "send, echoed": ("Send a text message to +1 555 0100 saying that I will be late.", ECHOED),
    "send, sent": ("Send a text message to +1 555 0100 saying that I will be late.", SENT),
    "list edit": ("Delete the duplicates from this list: 3, 1, 3, 2.", []),
    "poem": ("Write a short poem about git.", []),
    "price, calculated": (
        "What is the current price of one Bitcoin in US dollars?",
        CALCULATED_PRICE,
    ),
    "cost, calculated": ("3 apples cost 2 dollars each. How much do they cost?", CALCULATED_COST),
}

RIGHT = [
    ("listing", "### Files in /tmp/work\n\n- a.txt\n- notes-2026.md\n- sub (a directory)"),
    ("contact", "Bob Tran is not in the memory graph, so his email address is not known."),
    ("contact", "None"),  # the search found nothing: a bare None may say just that
    ("listing", "The files in /tmp/work are a.txt and notes-2026.md; sub is a directory."),
    ("listing", "/tmp/work/a.txt\n/tmp/work/notes-2026.md"),
    ("listing", "There are 2 files: `a.txt` and `notes-2026.md`, and 1 directory (`sub/`)."),
    ("listing", "1. a.txt\n2. notes-2026.md\n3. sub (directory)"),
    ("listing", "**Files:** ./a.txt, ./notes-2026.md"),
    ("listing", "Sorry for the wait: the folder holds a.txt, notes-2026.md and the directory sub."),
    ("time", "21:00 in Tokyo."),
    ("time", "It is 9:00 PM in Tokyo (JST), 9 hours ahead of UTC."),
    ("time", "2026-12-07T21:00:00+09:00"),
    ("time", "In Tokyo it is 21:00 on Monday, December 7, 2026."),
    ("time", "When it is 12:00 in UTC, it is 21:00:00 in Asia/Tokyo (time difference +9.0h)."),
    ("git", "The last commit's message is 'Add parser for config files'."),
    ("git", "Add parser for config files"),
    ("git", 'Commit 3f2a9c1 by Ada Lovelace on Dec 7: "Add parser for config files".'),
    ("git", "The last commit (2026-12-07 10:15) says: Add parser for config files."),
    ("sql", "Bob's order total is 99."),
    ("sql", '```json\n{"customer": "Bob", "order_total": 99}\n```'),
    ("sql", "The total is 99.00."),
    ("sql", "There are 3 orders; Bob's (id 2) totals 99.0, Alice's 1,234.50."),
    ("empty", "None"),
    ("empty", "The directory /tmp/empty is empty."),
    ("no tools", "Paris. A spider has 8 legs."),
    ("count retried", "The table is called customers, not customer: it has 5 rows."),
    ("count retried", "5"),
    ("sum", "9125"),
    ("sum", "18250"),  # a sum of two results: the model's own last step
    ("sum", "The port is 8125, so the result is 9125."),
    ("forecast", "Tomorrow in Berlin: 4 °C with light rain and a wind of 18 km/h."),
    ("week", "A week has 10080 minutes."),
    ("count retried", "There are five customers."),
    # instructions are the answer when the task asks for them, or after the task was done
    ("command asked", "Run `ls -a /tmp/work`."),
    ("command asked", "```bash\nls -la /tmp/work\n```"),
    ("how asked", "You can run `git reset --soft HEAD~1` in /srv/repo: it keeps the changes."),
    ("how asked", "1. Open a terminal in /srv/repo.\n2. Run `git reset --soft HEAD~1`."),
    ("query asked", "```sql\nSELECT COUNT(*) FROM customers;\n```"),
    ("listing", "The files are a.txt and notes-2026.md. You can use read_file to open them."),
    ("listing", "To sum up: a.txt and notes-2026.md, and the directory sub."),
    ("listing", "It does not contain any directory but sub; the files: a.txt, notes-2026.md."),
    ("arithmetic", "144"),
    # an action on text the task gives, or a text to write, is done by answering
    ("list edit", "3, 1, 2"),
    ("send, sent", "Sent: 'I will be late.' to +1 555 0100 (id 4411)."),
    ("poem", "Commits in the night,\nbranches merge by morning light."),
    # the calculator fed with the task's numbers is a source
    ("cost, calculated", "6"),
    ("cost, calculated", "They cost 6 dollars."),
    # the call is about the task through its tool alone
    ("tables", "The database has two tables: customers and orders."),
    # without a call, a date may be what the model knows
    ("knowledge", "Python 3.0 was released on December 3, 2008."),
    ("arithmetic", "To be exact, 12 times 12 is 144."),
    ("no tools", "To be precise: Paris is the capital, and a spider has 8 legs."),
    (
        "outside",
        "/etc/passwd is outside the allowed directories, so it was not read. "
        "/tmp/work holds a.txt and notes-2026.md.",
    ),
    (
        "outside",
        "Reading it failed: 'Access denied - path outside allowed directories'. Files: a.txt",
    ),
]

WRONG = [
    ("listing", "None", "the answer is the bare value None"),
    ("listing", "`None`", "the answer is the bare value None"),
    ("listing", "null", "the answer is the bare value null"),
    ("listing", "   ", "the answer is empty"),
    ("listing", "No tool response available.", "the answer says nothing about the task"),
    ("listing", "(Tool result above. Answer the user's question with it now.)", "the answer says"),
    ("listing", "The files are a.txt and report.pdf.", "the path report.pdf"),
    ("listing", "/tmp/work/a.txt, /tmp/work/b.txt", "the path /tmp/work/b.txt"),
    ("listing", "There are 5 files in /tmp/work.", "the number 5"),
    ("listing", "抱歉, I can't assist with that.", "declines the task"),
    ("listing", "I'm sorry, but I cannot access the file system.", "declines the task"),
    ("listing", "I don't have access to your files.", "declines the task"),
    (
        "listing",
        "The tool response provided does not contain the answer to the user's question.",
        "declines the task",
    ),
    ("listing", "The number of files cannot be determined from the output.", "declines the task"),
    ("time", "720", "the number 720"),
    ("time", "It is 20:00 in Tokyo.", "the time 20:00"),
    ("time", "It is 3:45 PM in Tokyo.", "the time 3:45 PM"),
    ("time", "In Tokyo it is 21:00 on 2026-12-08.", "the date 2026-12-08"),
    ("git", "The last commit message is 'Fix typo in README'.", "the quoted text"),
    ("git", "The last commit is abc1234def.", "the id abc1234def"),
    ("sql", "Bob's order total is 150.", "the number 150"),
    ("sql", '```json\n{"customer": "Robert", "order_total": 99}\n```', "the quoted text"),
    (
        "missing",
        "ENOENT: no such file or directory, open '/tmp/work/missing.txt'",
        "repeats the error",
    ),
    ("missing", "Error: the file could not be opened.", "repeats the error"),
    ("commit", "None", "the answer is the bare value None"),
    ("commit", "nothing to commit, working tree clean", "repeats the error"),
    ("commit", "Committed as 4e5f6a7b.", "rests on nothing"),
    ("no tools", "I am unable to answer that.", "declines the task"),
    (
        "listing",
        '({"name": "filesystem__read_file", "arguments": {"path": "/tmp/work/a.txt"}})',
        "is a tool call written as text",
    ),
    (
        "listing",
        '```json\n[{"name": "filesystem__list_directory", "arguments": {}}]\n```',
        "is a tool call written as text",
    ),
    ("time", '<tool_call>\n{"name": "time__get_current_time", "arguments": {}}', "tool call"),
    (
        "listing",
        '### Final Answer\n\n```json\n{\n  "name": "filesystem__read_file",\n'
        '  "arguments": {"path": "/tmp/work/a.txt"}\n}\n```',
        "is a tool call written as text",
    ),
    (
        "listing",
        '**Answer:**\n{"name": "filesystem__list_directory", "arguments": {"path": "/tmp/work"}}',
        "is a tool call written as text",
    ),
    ("contact", "Bob Tran's email address is bobtran@example.com.", "bobtran@example.com"),
    # every call failed: an answer states what nothing supports, or reports the failure
    (
        "count failed",
        "No rows found.",
        "rests on nothing: every tool call failed (sqlite__read_query;",
    ),
    ("count failed", "There are 0 rows in the table customer.", "rests on nothing"),
    ("count failed", "The table customer has 5 rows.", "no such table: customer"),
    (
        "count failed",
        "The query failed: the table customer does not exist.",
        "reports that the task",
    ),
    ("tag failed", "The commit tagged v1.2.0 says 'Bump version to 1.2.0'.", "git__git_show;"),
    ("tag failed", "There is no commit tagged v1.2.0 in /srv/repo.", "reports that the task was"),
    (
        "missing",
        "The file /tmp/work/missing.txt does not exist, so there is nothing to read.",
        "filesystem__read_file",
    ),
    ("missing", "The file says: hello world.", "rests on nothing"),
    (
        "commit",
        "Nothing was committed: git says there is nothing to commit (working tree clean).",
        "reports that the task was not done",
    ),
    ("commit", "Done: the changes are committed with the message 'Fix typo'.", "git__git_commit"),
    # instructions for the user instead of calling the tool the run had
    ("listing, no call", "To list the files in /tmp/work, run `ls /tmp/work`.", "tells the user"),
    (
        "listing, no call",
        "You can use the filesystem__list_directory tool to list the files in /tmp/work.",
        "instead of doing it: call the tool",
    ),
    ("listing, no call", "Use the list_directory tool with the path /tmp/work.", "tells the user"),
    (
        "listing, no call",
        "1. Open a terminal.\n2. Run `ls -la /tmp/work`.\n3. Read the list.",
        "tells",
    ),
    ("listing, no call", "```bash\nls /tmp/work\n```", "tells the user how to do it"),
    ("listing, no call", "$ ls /tmp/work", "tells the user how to do it"),
    ("listing, no call", "You would need to open your file manager and go to /tmp/work.", "tells"),
    ("listing, no call", "Here's how you can see them: ls /tmp/work", "tells the user"),
    (
        "count, no call",
        "To count the rows, you can run the following query: SELECT COUNT(*) FROM customers;",
        "tells the user how to do it",
    ),
    ("count, no call", "You can check this by running SELECT COUNT(*) FROM customers.", "tells"),
    ("count, no call", "Sure! Simply run this query against the database.", "tells the user"),
    ("inbox, no call", "To check your unread emails, open your email client.", "tells the user"),
    ("listing, no call", "To list them, I need to read the folder /tmp/work first.", "tells the"),
    ("listing, no call", "Let me check /tmp/work with the listing tool.", "tells the user"),
    ("listing, no call", "I don't have internet access right now.", "declines the task"),
    # offered the tools that could look, it called none: looked-up facts are made up
    (
        "tables, no call",
        "The database has the following tables:\n\n- `insights`: business insights",
        "the quoted text `insights`",
    ),
    ("time, no call", "It is 14:32 in Tokyo.", "the time 14:32"),
    ("price, no call", "One Bitcoin is at 65123.18 US dollars.", "the number 65123"),
    # a search that found nothing, then a listing that found something: None says nothing
    ("empty then listing", "None", "the answer is the bare value None"),
    # a bare number that no result gives, even one that passes anywhere else
    ("sql", "0", "the number 0"),
    # the answer is the task's own input, while the tool returned something else
    ("time", "12:00", "only repeats a time the task gives"),
    ("sum", "1000", "only repeats a value the task gives"),
    # the empty result came from filters the model made up
    ("invented filters", "No commit history available.", "arguments nothing in the task"),
    # asked how many, it names no number
    ("count retried", "Mark", "gives no number"),
    # every result it rests on is about something else
    ("weather", "nothing to commit, working tree clean", "nothing to do with the task"),
    # a call written as text inside the answer is no answer
    (
        "listing",
        'To read it, use read_file:\n```json\n{"name": "filesystem__read_file", '
        '"arguments": {"path": "/tmp/work/a.txt"}}\n```',
        "holds a tool call written as text",
    ),
    # an action no call did, answered as if done
    ("send, no call", "I will be late. Please contact me at +1 555 0100.", "as if it did"),
    ("send, no call", "Done! Your message has been sent.", "as if it did what the task asks"),
    ("send, echoed", "I will be late. Please contact me at +1 555 0100.", "('send')"),
    ("book, no call", "Your table for two at Luigi's is booked for 8 pm.", "('book')"),
    # a made-up value passed through the calculator is not looked up
    ("price, calculated", "The current price of one Bitcoin in US dollars is 65123.18.", "65123"),
    ("price, calculated", "65123.18", "65123"),
    # so is one passed through a server's closed-world computation (openWorldHint: false)
    ("sum, made up", "The sum of 123 and 1000 is 1123.", "123"),
    ("sum, made up", "1123", "1123"),
    # a fact only a failed call's error holds is no fact
    ("outside", "The first user in /etc/passwd has uid 1000.", "the number 1000"),
]


async def verdict_on(case: str, answer: str) -> tuple[bool, str]:
    task, evidence = CASES[case]
    candidate = Candidate(task, answer, evidence=list(evidence), tools=OFFERED)
    verdict = await AnswerChecks().verify(candidate)
    said = " ".join(f"{f.claim} {f.evidence}" for f in verdict.findings)
    assert verdict.refused == (not verdict.ok)
    assert not verdict.checked  # never a verification: verified stays the verifier's business
    return verdict.ok, said


@pytest.mark.parametrize(("case", "answer"), RIGHT, ids=[f"{c}: {a[:40]}" for c, a in RIGHT])
async def test_a_right_answer_passes_the_answer_checks(case: str, answer: str) -> None:
    ok, said = await verdict_on(case, answer)
    assert ok, said


@pytest.mark.parametrize(
    ("case", "answer", "why"), WRONG, ids=[f"{c}: {a[:40]}" for c, a, _ in WRONG]
)
async def test_a_wrong_or_made_up_answer_is_refused_with_the_reason(
    case: str, answer: str, why: str
) -> None:
    ok, said = await verdict_on(case, answer)
    assert not ok
    assert why in said


async def test_the_feedback_names_each_unsupported_fact_and_what_to_do() -> None:
    task, evidence = CASES["listing"]
    verdict = await AnswerChecks().verify(
        Candidate(task, "The files are report.pdf and 7 others.", evidence=list(evidence))
    )
    assert verdict.feedback == (
        "Your answer was not accepted:\n"
        "- the path report.pdf is in no tool result and not in the task: nothing the run saw "
        "says it.\n"
        "- the number 7 has no source: it is in no tool result, is not a number of the task or "
        "one step of arithmetic on them, and no correct calculation gives it.\n"
        "State only what the task or the tool results say: write names, numbers, times, dates "
        "and paths exactly as a tool returned them, or call a tool to find them out."
    )


async def test_grounding_can_be_left_out_while_non_answers_are_still_refused() -> None:
    task, evidence = CASES["listing"]
    checks = AnswerChecks(grounding=False)
    made_up = await checks.verify(Candidate(task, "report.pdf", evidence=list(evidence)))
    none = await checks.verify(Candidate(task, "None", evidence=list(evidence)))
    assert (made_up.ok, none.ok) == (True, False)


async def test_instructions_pass_when_the_run_was_offered_no_tool() -> None:
    task = "List the files in /tmp/work."
    answer = "To list the files in /tmp/work, run `ls /tmp/work`."
    offered = await AnswerChecks().verify(Candidate(task, answer, tools=OFFERED))
    none_offered = await AnswerChecks().verify(Candidate(task, answer))
    assert (offered.ok, none_offered.ok) == (False, True)
    assert "filesystem__list_directory" in offered.feedback


async def test_unrelated_results_are_judged_only_for_mcp_calls_and_latin_words() -> None:
    sum_call = ToolCall(id="c1", name="calculator", arguments={"expression": "3 * 4"})
    python_tool = [(sum_call, ToolResult(content="12"))]
    weather = "What will the weather be like in Berlin tomorrow?"
    in_chinese = "明天柏林的天气怎么样？"
    for task, evidence in [(weather, python_tool), (in_chinese, STATUS)]:
        candidate = Candidate(task, "12", evidence=list(evidence), tools=OFFERED)
        verdict = await AnswerChecks(grounding=False).verify(candidate)
        assert verdict.ok, verdict.feedback
    judged = Candidate(weather, "On branch main", evidence=list(STATUS), tools=OFFERED)
    refused = await AnswerChecks().verify(judged)
    assert not refused.ok
    assert "git__git_status" in refused.feedback and "'berlin'" in refused.feedback


async def test_an_answer_that_repeats_the_feedback_is_refused() -> None:
    task = "What is the value of the BENCH_COLOR variable of the everything server?"
    first = await AnswerChecks().verify(Candidate(task, 'It is "blue".', tools=OFFERED))
    assert not first.ok
    messages = [
        Message(role="user", content=task),
        Message(role="assistant", content='It is "blue".'),
        Message(role="user", content=first.feedback),
    ]
    echo = first.feedback.splitlines()[-1]
    again = await AnswerChecks().verify(Candidate(task, echo, tools=OFFERED, messages=messages))
    assert not again.ok
    assert "repeats what Verity told the model" in again.feedback
    reworded = first.feedback.replace("Your answer", "The answer")
    third = await AnswerChecks().verify(Candidate(task, reworded, tools=OFFERED, messages=messages))
    assert "repeats what Verity told the model" in third.feedback
    # a sentence of each of two feedback messages, joined on one line
    messages += [
        Message(role="assistant", content=echo),
        Message(role="user", content=again.feedback),
    ]
    joined = f"{echo} {again.feedback.splitlines()[-1]}"
    fourth = await AnswerChecks().verify(Candidate(task, joined, tools=OFFERED, messages=messages))
    assert "repeats what Verity told the model" in fourth.feedback
