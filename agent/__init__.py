"""Verity: a runtime that turns a locally hosted reasoning model into a dependable agent."""

import verity._startup_signals  # noqa: F401 - first: a signal while the command imports
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
from verity.hooks import CompositeHooks, RunHooks
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
    "AllOf",
    "AnyOf",
    "Candidate",
    "CompositeHooks",
    "Consensus",
    "FinalStep",
    "GPUOffloadWarning",
    "KVCacheWarning",
    "LlamaCppModel",
    "MCPConfig",
    "MCPServerError",
    "Message",
    "Model",
    "ModelError",
    "ModelResponse",
    "ModelSettings",
    "ModelStep",
    "OpenAICompatModel",
    "Programmatic",
    "RunError",
    "RunHooks",
    "RunLimitExceeded",
    "RunResult",
    "RunSettings",
    "SelfCheck",
    "Step",
    "ToolCall",
    "ToolStep",
    "TraceRecorder",
    "TraceStore",
    "Usage",
    "UserError",
    "Verdict",
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
]
