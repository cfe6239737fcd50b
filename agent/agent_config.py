"""What an `Agent` is built from (`AgentConfig`), and the models and MCP servers it names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from verity.errors import UserError
from verity.mcp_config import MCPConfig, load_mcp_config
from verity.models.base import DeltaKind, Model
from verity.models.build import Loader, is_server_url, judge_model, local_model, server_model
from verity.models.embedded import AssemblyProgress
from verity.models.llama_cpp import LlamaCppModel, check_gguf_file
from verity.models.refs import EMBEDDED_REF
from verity.settings import ModelSettings, RunSettings

__all__ = ["AgentConfig", "agent_models", "build_config", "read_mcp_config"]


class AgentConfig(BaseModel):
    """What an `Agent` is built from. Every field has the default `verity run` has."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str = EMBEDDED_REF
    """`embedded`, `demo-1.5b`, a GGUF path, `ollama:NAME[:TAG]`, `hf:ORG/REPO/FILE`, or the
    base URL of an OpenAI-compatible server such as `http://127.0.0.1:8080/v1`."""
    api_model: str | None = None
    """The name a server serves its model under; needed with a base URL."""
    api_key: str | None = Field(default=None, repr=False)
    """Sent to the server as a bearer token."""
    stream: bool = False
    """Read a server's answers as server-sent events."""
    model_settings: ModelSettings | None = None
    """How to load and sample a local model (the bundled ones decode greedily unless the
    settings set a temperature); for a server, the temperature, seed and max_tokens set here."""
    verifier_model: Path | None = None
    """A GGUF file that verifiers judge with (default: the run's weights on a context of their
    own)."""
    mcp_config: Path | None = None
    """An `mcpServers` JSON file (Claude Desktop's format): its servers' tools join the agent's."""
    mcp_sampling: bool = False
    """Let MCP servers ask the model for completions (legacy MCP sampling)."""
    allow: tuple[str, ...] = ()
    """MCP tools that run without asking, as patterns such as `time__*`."""
    verify: str = "none"
    """How answers are checked: `none`, `self[:N[:K]]`, `recompute[:N[:K]]`,
    `consensus:N[:MAJORITY]`, `all:A,B`, `any:A,B`."""
    settings: RunSettings = RunSettings()
    """Limits and options of each run (max_steps, max_verify_rounds, system_prompt, ...)."""
    trace: bool = True
    """Record every run in the SQLite trace database (`verity logs` and `verity show` read it)."""
    trace_db: Path | None = None
    """The trace database (default: the one `verity run` uses, `$VERITY_TRACE_DB` or the user
    data dir)."""


def build_config(config: AgentConfig | None, options: dict[str, Any]) -> AgentConfig:
    """`config` with `options` over it, checked.

    Raises:
        UserError: an option is unknown or invalid; the message names it.
    """
    given = (config or AgentConfig()).model_dump(exclude_unset=True)
    try:
        return AgentConfig.model_validate({**given, **options})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "config"
        if error["type"] == "extra_forbidden":
            raise UserError(f"Agent has no option {where!r}.", field=where) from None
        raise UserError(f"Agent option {where}: {error['msg']}.", field=where) from None


def agent_models(
    config: AgentConfig,
    given: str | Model | None,
    *,
    on_delta: Callable[[DeltaKind, str], None] | None = None,
    on_load: Loader | None = None,
    on_assembly: AssemblyProgress | None = None,
) -> tuple[Model, LlamaCppModel | None]:
    """The model `config` names (or `given`, a `Model` used as it is) and the one verifiers judge
    with (None: the run's own, for a server).

    Raises:
        UserError: the model or the verifier's model cannot be found or loaded.
    """
    if given is not None and not isinstance(given, str):
        return given, judge_model(given) if isinstance(given, LlamaCppModel) else None
    if is_server_url(config.model):
        remote = server_model(
            config.model,
            config.api_model,
            settings=config.model_settings,
            api_key=config.api_key,
            stream=config.stream,
            on_delta=on_delta,
        )
        return remote, None
    if config.verifier_model is not None:  # before a bundled model is assembled for nothing
        check_gguf_file(config.verifier_model, option="--verifier-model")
    local = local_model(
        config.model,
        config.model_settings,
        on_delta=on_delta,
        on_load=on_load,
        on_assembly=on_assembly,
    )
    return local, judge_model(local, config.verifier_model)


def read_mcp_config(path: Path | None) -> MCPConfig:
    """The servers of the named `mcpServers` file; none without a file.

    Raises:
        UserError: the file is missing, unreadable or not an `mcpServers` file.
    """
    if path is None:
        return MCPConfig()
    config = load_mcp_config(path, required=True)
    if config.errors:  # the command line skips a broken entry with a warning; code gets told
        raise config.errors[0]
    return config
