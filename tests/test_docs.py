"""The README and every page under docs/: snippets are the example files they name, and every
code block is parsed (Python, JSON, TOML, shell) or checked against the real `verity` parser."""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from verity.cli import _parser

DOCUMENTS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
SNIPPET = re.compile(
    r"<!-- snippet-source (?P<path>\S+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)```\n"
    r"<!-- /snippet-source -->",
    re.S,
)
BLOCK = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)\n(?P<code>.*?)^(?P=indent)```$", re.S | re.M
)
LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(#[^)]*)?\)")


def blocks() -> list[tuple[Path, str, str]]:
    found = []
    for document in DOCUMENTS:
        for block in BLOCK.finditer(document.read_text()):
            code = "\n".join(
                line.removeprefix(block["indent"]) for line in block["code"].splitlines()
            )
            found.append((document, block["lang"], code))
    return found


def _label(block: tuple[Path, str, str]) -> str:
    return f"{block[0].name}:{block[1]}:{block[2][:30]!r}"


def test_readme_snippets_match_their_example_files() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert any(s["lang"] == "python" for s in SNIPPET.finditer(readme))
    for document in DOCUMENTS:
        for snippet in SNIPPET.finditer(document.read_text()):
            source = (PROJECT_ROOT / snippet["path"]).read_text()
            assert snippet["code"] == source, (
                f"{document.name}: block differs from {snippet['path']}"
            )


def test_readme_states_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert any("verity run" in c for c in commands)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (PROJECT_ROOT / ".ci" / "run").read_text()


def test_readme_is_short() -> None:
    assert len((PROJECT_ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_code_block_names_its_language() -> None:
    untagged = [_label(b) for b in blocks() if not b[1]]
    assert untagged == []


@pytest.mark.parametrize("block", blocks(), ids=_label)
def test_code_block_parses(block: tuple[Path, str, str]) -> None:
    document, lang, code = block
    if lang == "python":
        ast.parse(code, filename=str(document))
    elif lang == "json":
        json.loads(code)
    elif lang == "toml":
        tomllib.loads(code)
    elif lang in ("bash", "sh"):
        subprocess.run(["bash", "-n"], input=code, text=True, check=True)
        for line in code.splitlines():
            _check_verity_command(line)
    elif lang == "text":
        for line in code.splitlines():
            words = line.split()
            if words[:1] == ["verity"] and len(words) > 1 and not words[1].startswith("-"):
                assert words[1] in _subcommands(), (
                    f"{document.name}: no command `verity {words[1]}`"
                )
    else:
        pytest.fail(f"{document.name}: a ```{lang} block that no test reads")


def test_links_between_documents_resolve() -> None:
    for document in DOCUMENTS:
        for link in LINK.finditer(document.read_text()):
            target = link["target"]
            if "://" in target:
                continue
            assert (document.parent / target).exists(), f"{document.name} links to {target}"


def _subcommands() -> set[str]:
    parser = _parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return set(action.choices)  # type: ignore[arg-type]


def _check_verity_command(line: str) -> None:
    """A shell line that runs `verity` parses with the real command-line parser."""
    words = shlex.split(line, comments=True)
    for index, word in enumerate(words):
        if word == "verity" or word.endswith("/verity"):
            _parser().parse_args(words[index + 1 :])
            return
