"""Settings for the model and for a run; every GPU option is a first-class field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ModelSettings", "RunSettings", "default_trace_path"]

UINT32_MAX = 2**32 - 1
INT32_MAX = 2**31 - 1
"""llama.cpp takes these settings as 32-bit integers: larger values would wrap around."""

KVCacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]


class ModelSettings(BaseModel):
    """How to load and sample the in-process llama.cpp model."""

    model_config = ConfigDict(extra="forbid")

    n_ctx: int = Field(default=8192, ge=256, le=UINT32_MAX)
    """Context window in tokens; at most what the model was trained with (checked on load)."""
    n_threads: int | None = Field(default=None, ge=1, le=INT32_MAX)
    """CPU threads for generation and prompt evaluation; None lets llama.cpp choose."""
    n_batch: int = Field(default=512, ge=1, le=UINT32_MAX)
    """Prompt tokens evaluated per batch."""
    n_gpu_layers: int = Field(default=0, ge=-1, le=INT32_MAX)
    """Layers offloaded to the GPU; -1 offloads all of them."""
    main_gpu: int = Field(default=0, ge=0, le=INT32_MAX)
    tensor_split: list[float] | None = None
    """How to split the model across several GPUs (proportions)."""
    flash_attn: bool = False
    offload_kqv: bool = True
    """Keep the KV cache on the GPU when layers are offloaded."""
    type_k: KVCacheType | None = None
    """KV cache type for keys; quantised caches save memory but degrade tool calling."""
    type_v: KVCacheType | None = None
    temperature: float = Field(default=0.6, ge=0)
    """DeepSeek's R1 guidance: 0.6 (0 means greedy)."""
    top_p: float = Field(default=0.95, gt=0, le=1)
    top_k: int = Field(default=40, ge=1, le=INT32_MAX)
    min_p: float = Field(default=0.05, ge=0, le=1)
    seed: int = 0
    max_tokens: int = Field(default=1024, ge=1)
    """Largest completion of one model call."""
    constrain_tool_calls: bool = True
    """Decode tool calls under a grammar from the tools' schemas. False gives free generation
    with lenient parsing (what most frameworks do): a baseline for benchmarks and tests."""
    relevance_gate: bool = False
    """Before the first token of a call, ask the model (on a small side context sharing the
    weights) whether any offered tool fits the request; if not, it answers in text. Off by
    default: on the embedded 0.5B model it fixes BFCL irrelevance but also refuses some word
    problems and mixed tool lists (docs/tool-calls.md)."""
    relevance_threshold: float = 0.1
    """Minimum logit margin of "Yes" over "No" for the gate to allow a call."""
    max_thinking_tokens: int | None = Field(default=None, ge=1)
    """When a `<think>` block reaches this many tokens it is closed and the model must act."""
    prefix_cache: bool = True
    """Warm starts: keep the evaluated system prompt and tool schemas (their KV state) on disk,
    so that a later run with the same ones, in any process, evaluates only its task."""
    prefix_cache_dir: Path | None = None
    """Where the prefix cache lives; None: `$VERITY_PREFIX_CACHE_DIR`, else `prefix-cache` in
    the user cache directory."""
    prefix_cache_max_bytes: int = Field(default=2 * 1024**3, ge=0)
    """The prefix cache's bound; past it the least recently used entries are removed."""


class RunSettings(BaseModel):
    """Limits and options of one agent run."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(default=8, ge=1)
    """Model calls allowed before the run ends with RunLimitExceeded."""
    tool_timeout: float = Field(default=60.0, gt=0)
    """Seconds one tool call may take before it becomes an error result."""
    max_tool_output_chars: int = Field(default=16_000, ge=100)
    system_prompt: str | None = None
    """Replaces Verity's default system prompt."""
    max_verify_rounds: int = Field(default=3, ge=1)
    """Candidate answers verified before the run ends with its best answer, marked unverified."""
    check_tool_arguments: bool = False
    """Check each step's tool-call arguments (numbers from nowhere) and record the findings."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form labels recorded with the run (the trace's `config` column, under `run`): e.g.
    the batch and task a `verity batch` run belongs to."""
    check_answers: bool = True
    """Refuse candidate answers that are no answer (empty, `None`, a refusal, a tool's error
    repeated) or state facts in neither the task nor any tool result, and end a run whose MCP
    servers did not start (or whose tools were all withheld) `tools_unavailable`. False accepts
    any non-empty answer, as before these checks (docs/answer-checks.md)."""


def default_trace_path() -> Path:
    """The trace database used when none is given: `VERITY_TRACE_DB` or the user data dir."""
    configured = os.environ.get("VERITY_TRACE_DB")
    return (
        Path(configured) if configured else Path(platformdirs.user_data_dir("verity")) / "traces.db"
    )
