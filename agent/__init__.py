"""Verity: a runtime that turns a locally hosted reasoning model into a dependable agent."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import verity._startup_signals  # noqa: F401 - first: a signal while the command imports

if TYPE_CHECKING:
    from verity.agent import Agent, Approvals
    from verity.agent_config import AgentConfig
    from verity.answers import extract_boxed
    from verity.errors import (
        GPUOffloadWarning,
        KVCacheWarning,
        MCPServerError,
        ModelError,
        RunError,
        RunLimitExceeded,
        UserError,
        VerityError,
    )
    from verity.hooks import (
        ApprovalDecided,
        CompositeHooks,
        ModelCallEnded,
        ModelCallStarted,
        RunEnded,
        RunHooks,
        RunStarted,
        ToolCallEnded,
        ToolCallStarted,
        VerdictReached,
    )
    from verity.loop import iter_run, run, run_sync
    from verity.mcp_config import (
        MCPConfig,
        default_mcp_config_path,
        load_mcp_config,
        model_sampling_handler,
        parse_mcp_config,
    )
    from verity.messages import (
        FinalStep,
        Message,
        ModelResponse,
        ModelStep,
        RunResult,
        Step,
        ToolCall,
        ToolStep,
        Usage,
        Verdict,
        VerifyStep,
    )
    from verity.models.base import Model
    from verity.models.embedded import embedded_model_path
    from verity.models.llama_cpp import LlamaCppModel
    from verity.models.openai_compat import OpenAICompatModel
    from verity.settings import ModelSettings, RunSettings
    from verity.solver import seeded_solver
    from verity.tools.base import tool
    from verity.tools.mcp import MCPToolset
    from verity.tools.toolset import FunctionToolset
    from verity.trace.recorder import TraceRecorder
    from verity.trace.store import TraceStore
    from verity.verify import (
        AcceptAll,
        AllOf,
        AnyOf,
        Candidate,
        Consensus,
        Programmatic,
        SelfCheck,
        Verifier,
    )

__all__ = [
    "AcceptAll",
    "Agent",
    "AgentConfig",
    "AllOf",
    "AnyOf",
    "ApprovalDecided",
    "Approvals",
    "Candidate",
    "CompositeHooks",
    "Consensus",
    "FinalStep",
    "FunctionToolset",
    "GPUOffloadWarning",
    "KVCacheWarning",
    "LlamaCppModel",
    "MCPConfig",
    "MCPServerError",
    "MCPToolset",
    "Message",
    "Model",
    "ModelCallEnded",
    "ModelCallStarted",
    "ModelError",
    "ModelResponse",
    "ModelSettings",
    "ModelStep",
    "OpenAICompatModel",
    "Programmatic",
    "RunEnded",
    "RunError",
    "RunHooks",
    "RunLimitExceeded",
    "RunResult",
    "RunSettings",
    "RunStarted",
    "SelfCheck",
    "Step",
    "ToolCall",
    "ToolCallEnded",
    "ToolCallStarted",
    "ToolStep",
    "TraceRecorder",
    "TraceStore",
    "Usage",
    "UserError",
    "Verdict",
    "VerdictReached",
    "Verifier",
    "VerifyStep",
    "VerityError",
    "default_mcp_config_path",
    "embedded_model_path",
    "extract_boxed",
    "iter_run",
    "load_mcp_config",
    "model_sampling_handler",
    "parse_mcp_config",
    "run",
    "run_sync",
    "seeded_solver",
    "tool",
]

_SOURCES = {
    "AcceptAll": "verity.verify",
    "Agent": "verity.agent",
    "AgentConfig": "verity.agent_config",
    "AllOf": "verity.verify",
    "AnyOf": "verity.verify",
    "ApprovalDecided": "verity.hooks",
    "Approvals": "verity.agent",
    "Candidate": "verity.verify",
    "CompositeHooks": "verity.hooks",
    "Consensus": "verity.verify",
    "FinalStep": "verity.messages",
    "FunctionToolset": "verity.tools.toolset",
    "GPUOffloadWarning": "verity.errors",
    "KVCacheWarning": "verity.errors",
    "LlamaCppModel": "verity.models.llama_cpp",
    "MCPConfig": "verity.mcp_config",
    "MCPServerError": "verity.errors",
    "MCPToolset": "verity.tools.mcp",
    "Message": "verity.messages",
    "Model": "verity.models.base",
    "ModelCallEnded": "verity.hooks",
    "ModelCallStarted": "verity.hooks",
    "ModelError": "verity.errors",
    "ModelResponse": "verity.messages",
    "ModelSettings": "verity.settings",
    "ModelStep": "verity.messages",
    "OpenAICompatModel": "verity.models.openai_compat",
    "Programmatic": "verity.verify",
    "RunEnded": "verity.hooks",
    "RunError": "verity.errors",
    "RunHooks": "verity.hooks",
    "RunLimitExceeded": "verity.errors",
    "RunResult": "verity.messages",
    "RunSettings": "verity.settings",
    "RunStarted": "verity.hooks",
    "SelfCheck": "verity.verify",
    "Step": "verity.messages",
    "ToolCall": "verity.messages",
    "ToolCallEnded": "verity.hooks",
    "ToolCallStarted": "verity.hooks",
    "ToolStep": "verity.messages",
    "TraceRecorder": "verity.trace.recorder",
    "TraceStore": "verity.trace.store",
    "Usage": "verity.messages",
    "UserError": "verity.errors",
    "Verdict": "verity.messages",
    "VerdictReached": "verity.hooks",
    "Verifier": "verity.verify",
    "VerifyStep": "verity.messages",
    "VerityError": "verity.errors",
    "default_mcp_config_path": "verity.mcp_config",
    "embedded_model_path": "verity.models.embedded",
    "extract_boxed": "verity.answers",
    "iter_run": "verity.loop",
    "load_mcp_config": "verity.mcp_config",
    "model_sampling_handler": "verity.mcp_config",
    "parse_mcp_config": "verity.mcp_config",
    "run": "verity.loop",
    "run_sync": "verity.loop",
    "seeded_solver": "verity.solver",
    "tool": "verity.tools.base",
}
"""Where each public name lives: imported on first use, so that `verity --help` and the
trace commands start without loading llama.cpp or the MCP SDK."""


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used (PEP 562)."""
    if name not in _SOURCES:
        raise AttributeError(f"module 'verity' has no attribute {name!r}")
    value = getattr(importlib.import_module(_SOURCES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
