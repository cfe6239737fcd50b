"""Instructions instead of an answer: "To list the files, run `ls`", "You can use the X tool".

A small model offered the tools to do a task often tells the user how to do it themselves. That
is no answer when the run had the tools and the task did not ask how: the model must call them.
"""

from __future__ import annotations

import re

__all__ = ["asks_how", "how_to"]

_VERB = (
    r"(?:use|run|execute|call|type|open|try|invoke|enter|navigate|click|install|check|employ|"
    r"utili[sz]e|follow|issue|launch|access|query|look (?:at|in|up)|go to|refer to|consult)"
)
_HOW_TO = re.compile(
    # "You can use the list_directory tool", "you would need to run", "you'll have to open"
    r"\byou(?:'ll|’ll| will| can| could| may| might| should| would| must| need to| have to)"
    r"(?: need to| have to| want to| be able to)?(?: first| then| also| simply| just| easily)?"
    rf"\s+{_VERB}\b"
    # "To list the files, run `ls`", "To find out, simply use ..."
    rf"|(?:^|[.!?:\n]\s*)to\s+[^,.!?\n]{{3,80}},\s*(?:you\b|(?:please |simply |just |first )?"
    rf"{_VERB}\b)"
    # "Use the read_query tool to ...", "Run the following command"
    rf"|(?:^|[.!?:\n]\s*)(?:\W\s*)?(?:please\s+|first,?\s+|simply\s+)?{_VERB}\s+(?:the|this|these|"
    r"a|an|your|`)"
    r"|\b(?:run|execute|use|type|enter|issue|try) (?:the |this )?"
    r"(?:following|below|command|query)\b"
    r"|\bopen (?:a|your|the) (?:terminal|command prompt|shell|console|file manager|file explorer|"
    r"finder|browser|email client|mail app|app)\b"
    r"|\bhere(?:'s|’s| is| are) (?:how|the steps|the command|a command|an example of how)\b"
    r"|\bfollow (?:these|the) steps\b|\byou can do (?:this|that|so|it) (?:by|with|using)\b",
    re.IGNORECASE | re.MULTILINE,
)
_INTENT = re.compile(
    # "I need to fetch the page", "I'll use the read_file tool", "Let me check the log"
    r"\b(?:i|we)(?:'ll|’ll| will| would| need to| have to| must| should| am going to|"
    r"'m going to|’m going to| want to)\s+(?:first\s+|now\s+|then\s+)?(?:need to\s+)?"
    r"(?:use|call|fetch|read|run|query|search|look (?:at|in|up)|check|access|open|retrieve|get|"
    r"invoke|list|find|execute|download)\b"
    r"|\blet me\s+(?:first\s+|now\s+)?(?:use|call|fetch|read|run|query|search|look|check|open|"
    r"retrieve|get|list|find|execute)\b",
    re.IGNORECASE,
)
"""What the model says it would do: a plan, not the result of doing it."""
_STEP = re.compile(
    rf"^\s*(?:\d+[.)]|[-*•]|step \d+:?)\s*(?:\*\*)?(?:please\s+)?{_VERB}\b", re.IGNORECASE
)
_SHELL = re.compile(
    r"```(?:bash|sh|shell|zsh|console|terminal|powershell|ps1|cmd|bat|sql|sqlite)\b|^\s*\$ \w",
    re.IGNORECASE | re.MULTILINE,
)
"""A command for the user to run: a shell or SQL block, or a `$ ` prompt line."""
_ASKS_HOW = re.compile(
    r"\bhow (?:do|does|did|can|could|should|would|to)\b|\bcommands?\b|\bscript\b|\bsnippet\b"
    r"|\binstructions?\b|\bsteps?\b|\bexplain\b|\btutorial\b|\bshow me how\b|\bsyntax\b"
    r"|\b(?:write|give|show|suggest)\b[^.?!\n]{0,30}\b(?:query|queries|code|example)\b",
    re.IGNORECASE,
)


def asks_how(task: str) -> bool:
    """Whether `task` asks how to do something, or for a command or code: then instructions are
    the answer."""
    return _ASKS_HOW.search(task) is not None


def how_to(answer: str) -> str | None:
    """The words that show `answer` tells the user how to do it, or None when it does not."""
    if found := _HOW_TO.search(answer) or _INTENT.search(answer):
        return found.group().strip(" \n.!?:")
    steps = [line for line in answer.splitlines() if _STEP.match(line)]
    if len(steps) >= 2:
        return steps[0].strip()
    if found := _SHELL.search(answer):
        return found.group().strip()
    return None
