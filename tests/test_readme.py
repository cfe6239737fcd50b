"""Every README code block marked as a snippet is exactly the example file it names."""

from __future__ import annotations

import re

from tests.conftest import PROJECT_ROOT

SNIPPET = re.compile(
    r"<!-- snippet-source (?P<path>\S+) -->\n```python\n(?P<code>.*?)```\n<!-- /snippet-source -->",
    re.S,
)


def test_readme_snippets_match_their_example_files() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    snippets = list(SNIPPET.finditer(readme))
    assert snippets, "the README has no snippet-source blocks"
    for snippet in snippets:
        source = (PROJECT_ROOT / snippet["path"]).read_text()
        assert snippet["code"] == source, f"README block differs from {snippet['path']}"


def test_readme_states_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert any("verity run" in c for c in commands)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (PROJECT_ROOT / ".ci" / "run").read_text()
