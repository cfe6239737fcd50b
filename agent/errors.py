"""Exceptions Verity raises to its callers, and the warnings it gives them.

The model never sees these: tool failures, invalid calls and rejected verdicts reach the model
as data. These are for the code (or the person) that started the run.

```
VerityError
├── UserError           bad argument, setting, model path or config: names the field and the fix
├── ModelError          the model backend failed: file unreadable, load failed, context overflow
├── MCPServerError      an MCP server failed to start or to handshake
└── RunError            a run ended without an accepted answer (carries .trace_id)
    └── RunLimitExceeded    max_steps reached before a final answer

UserWarning
├── KVCacheWarning      a quantised KV cache: it saves memory but degrades tool calling
└── GPUOffloadWarning   GPU layers asked of a llama.cpp build that cannot offload
```
"""

from __future__ import annotations

__all__ = [
    "GPUOffloadWarning",
    "KVCacheWarning",
    "MCPServerError",
    "ModelError",
    "RunError",
    "RunLimitExceeded",
    "UserError",
    "VerityError",
]


class VerityError(Exception):
    """Base class of every error Verity raises to its caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UserError(VerityError):
    """A bad argument, setting or file given by the user; the message says what to fix."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ModelError(VerityError):
    """The model backend could not load or generate."""


class MCPServerError(VerityError):
    """An MCP server failed to start or to complete its handshake."""

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.server = server


class RunError(VerityError):
    """A run ended without an accepted final answer."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id

    @property
    def trace_id(self) -> str | None:
        """The id of the run in the trace store, so nothing recorded is lost."""
        return self.run_id


class RunLimitExceeded(RunError):
    """The run used all of `max_steps` without reaching a final answer."""

    def __init__(
        self,
        message: str,
        *,
        max_steps: int,
        run_id: str | None = None,
        partial_answer: str | None = None,
    ) -> None:
        super().__init__(message, run_id=run_id)
        self.max_steps = max_steps
        self.partial_answer = partial_answer
        """The last step's text (or reasoning) when the token limit cut it off, else None."""


class KVCacheWarning(UserWarning):
    """`ModelSettings.type_k` or `type_v` quantises the KV cache (anything but f32, f16, bf16)."""


class GPUOffloadWarning(UserWarning):
    """`ModelSettings.n_gpu_layers` asks for offload of a llama.cpp built without GPU support."""
