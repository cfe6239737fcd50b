"""Tool-call formats, one per model family: how calls are detected, constrained and parsed."""

from verity.models.formats.base import CallStart, ToolCallFormat
from verity.models.formats.deepseek_r1 import CALLS_BEGIN, DeepSeekR1Format
from verity.models.formats.generic import GenericJSONFormat
from verity.models.formats.hermes import HermesFormat

__all__ = [
    "CallStart",
    "DeepSeekR1Format",
    "GenericJSONFormat",
    "HermesFormat",
    "ToolCallFormat",
    "select_format",
]


def select_format(chat_template: str, *, bos_token: str = "") -> ToolCallFormat:
    """The format a GGUF's chat template was written for."""
    if CALLS_BEGIN in chat_template:
        return DeepSeekR1Format(bos_token=bos_token)
    if "<tool_call>" in chat_template or "tools" in chat_template:
        return HermesFormat()
    return GenericJSONFormat()
