"""Tool-call formats, one per model family: how calls are rendered, detected, constrained, parsed."""

from agent.models.formats.base import CallStart, ToolCallFormat
from agent.models.formats.hermes import HermesFormat

__all__ = ["CallStart", "HermesFormat", "ToolCallFormat"]
