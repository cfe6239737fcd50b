"""Tool-call formats, one per model family: how calls are detected, constrained and parsed."""

from agent.models.formats.base import CallStart, ToolCallFormat
from agent.models.formats.hermes import HermesFormat

__all__ = ["CallStart", "HermesFormat", "ToolCallFormat"]
