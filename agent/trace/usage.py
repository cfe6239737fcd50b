"""Tokens recorded in the trace, summed per run or per day and model, and priced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from verity.messages import Usage
from verity.pricing import Price
from verity.trace.store import TraceStore

__all__ = ["priced", "priced_usage", "usage_by_day", "usage_of_runs"]

_SUMS = (
    "count(*) as model_calls, coalesce(sum(m.input_tokens), 0) as input_tokens, "
    "coalesce(sum(m.input_tokens - m.input_tokens_evaluated), 0) as cached_input_tokens, "
    "coalesce(sum(m.output_tokens), 0) as output_tokens, "
    "sum(m.input_tokens is null) as calls_without_counts"
)


def usage_by_day(store: TraceStore, *, since: str | None = None) -> list[dict[str, Any]]:
    """Per UTC day and model: runs, model calls and tokens (every call: the agent's, its
    verifier's and consensus attempts'), oldest day first."""
    condition = "where r.started_at >= ?" if since else ""
    return store.read(
        "select substr(r.started_at, 1, 10) as day, "
        "coalesce(nullif(m.model, ''), r.model) as model, "
        f"count(distinct m.run_id) as runs, {_SUMS} "
        f"from model_calls m join runs r on r.id = m.run_id {condition} "
        "group by day, 2 order by day, 2",
        [since] if since else [],
    )


def usage_of_runs(store: TraceStore, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Model calls and tokens of each run, by run id (runs without model calls are left out)."""
    if not run_ids:
        return {}
    marks = ", ".join("?" for _ in run_ids)
    rows = store.read(
        f"select m.run_id as run_id, {_SUMS} from model_calls m "
        f"where m.run_id in ({marks}) group by m.run_id",
        list(run_ids),
    )
    return {row.pop("run_id"): row for row in rows}


def priced(usage: Mapping[str, Any], prices: Mapping[str, Price]) -> dict[str, float]:
    """What `usage` (input, cached input and output tokens) costs on each priced API, in USD."""
    return {
        name: round(
            price.cost(
                int(usage.get("input_tokens") or 0),
                int(usage.get("output_tokens") or 0),
                cached_tokens=int(usage.get("cached_input_tokens") or 0),
            ),
            6,
        )
        for name, price in prices.items()
    }


def priced_usage(usage: Usage, prices: Mapping[str, Price]) -> dict[str, float] | None:
    """What one run's `usage` costs on each priced API, in USD, as `verity stats` prices it
    (prompt tokens the backend did not evaluate count as cached); None when the backend
    reported no token counts."""
    if not usage.tokens_known:
        return None
    tokens = {
        "input_tokens": usage.prompt_tokens,
        "cached_input_tokens": usage.prompt_tokens - usage.prompt_tokens_evaluated,
        "output_tokens": usage.completion_tokens,
    }
    return priced(tokens, prices)
