"""Secrets kept out of the trace: API keys, tokens and passwords in URLs, headers and settings.

The trace database is meant to be shared (Datasette, `verity export`), so what a run was
configured with is stored without the credentials it may hold: `?api_key=...` in a base URL,
`user:password@` in a URL, `Authorization: Bearer ...`, or a setting named like a secret.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REDACTED", "redact", "redact_text"]

REDACTED = "REDACTED"

_SECRET_NAME = (
    r"(?:x-)?(?:api[-_]?key|apikey|key|token|access[-_]?token|refresh[-_]?token|id[-_]?token|"
    r"auth|auth[-_]?token|authorization|password|passwd|pwd|secret|client[-_]?secret|"
    r"session[-_]?token|cookie|signature|sig)"
)
_SECRET_KEY = re.compile(f"^{_SECRET_NAME}$", re.IGNORECASE)
_QUERY_SECRET = re.compile(f"([?&;]{_SECRET_NAME}=)[^&#\\s\"'<>]+", re.IGNORECASE)
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s\"'<>]+@", re.IGNORECASE)
_SCHEME_CREDENTIAL = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


def redact_text(text: str) -> str:
    """`text` with the credentials in the URLs and authorization values it holds replaced."""
    text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    return _SCHEME_CREDENTIAL.sub(rf"\1 {REDACTED}", text)


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with secrets replaced: the text values of keys named like a
    secret (`api_key`, `Authorization`, `token`, ...), and credentials inside any text."""
    if isinstance(value, dict):
        return {key: _redacted_entry(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _redacted_entry(key: str, value: Any) -> Any:
    if isinstance(value, str) and value and _SECRET_KEY.match(key):
        return REDACTED
    return redact(value)
