"""Prompt texts, kept as Markdown files beside this module."""

from importlib.resources import files

__all__ = ["load_prompt"]


def load_prompt(name: str) -> str:
    """The text of `prompts/<name>.md`, without its trailing newline."""
    return files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8").rstrip("\n")
