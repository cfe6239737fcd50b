"""`verity stats` and `verity logs --usage`: recorded tokens summed and priced from the price
table, through the real command on a real trace database."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from tests.agent.cli.test_cli import verity
from verity import TraceRecorder, TraceStore, run
from verity.messages import ModelResponse, Usage
from verity.testing import ScriptedModel

PRICES = """
[local]
input = 0.0
output = 0.0

[api]
input = 2.0
cached_input = 0.5
output = 10.0
"""


def _answer(text: str, prompt: int, evaluated: int, completion: int) -> ModelResponse:
    usage = Usage(
        prompt_tokens=prompt, prompt_tokens_evaluated=evaluated, completion_tokens=completion
    )
    return ModelResponse(content=text, raw=text, usage=usage)


def _record(db: Path, *responses: ModelResponse) -> list[str]:
    store = TraceStore(db)

    async def main() -> list[str]:
        ids = []
        for index, response in enumerate(responses):
            result = await run(
                f"task {index}", model=ScriptedModel([response]), hooks=TraceRecorder(store)
            )
            ids.append(result.run_id)
        return ids

    try:
        return anyio.run(main)
    finally:
        store.close()


def test_stats_sums_tokens_per_day_and_model_and_prices_them(tmp_path: Path) -> None:
    db, prices = tmp_path / "t.db", tmp_path / "prices.toml"
    prices.write_text(PRICES)
    _record(db, _answer("4", 1000, 400, 100), _answer("5", 3000, 3000, 300))
    done = verity("stats", "--json", trace_db=db, env={"VERITY_PRICES": str(prices)})
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    [day] = stats["days"]
    assert (day["model"], day["runs"], day["model_calls"]) == ("scripted", 2, 2)
    assert (day["input_tokens"], day["cached_input_tokens"], day["output_tokens"]) == (
        4000,
        600,
        400,
    )
    # 3400 new input tokens at $2, 600 cached at $0.50 and 400 output at $10 per million
    assert day["cost_usd"]["api"] == pytest.approx((3400 * 2 + 600 * 0.5 + 400 * 10) / 1e6)
    assert day["cost_usd"]["local"] == 0
    assert "deepseek-reasoner" in day["cost_usd"]  # the shipped defaults stay beside the user's
    assert stats["total"]["cost_usd"] == day["cost_usd"]
    table = verity("stats", trace_db=db, env={"VERITY_PRICES": str(prices)})
    assert table.returncode == 0 and "$ api" in table.stdout.splitlines()[0]
    assert "0.0111" in table.stdout  # 0.0111 dollars, as computed above


def test_logs_usage_prices_each_run(tmp_path: Path) -> None:
    db, prices = tmp_path / "t.db", tmp_path / "prices.toml"
    prices.write_text(PRICES)
    first, second = _record(db, _answer("4", 1000, 1000, 10), _answer("5", 2000, 500, 20))
    done = verity("logs", "--usage", "--json", trace_db=db, env={"VERITY_PRICES": str(prices)})
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert rows[first]["input_tokens"] == 1000 and rows[first]["output_tokens"] == 10
    assert rows[second]["cached_input_tokens"] == 1500
    assert rows[second]["cost_usd"]["api"] == pytest.approx((500 * 2 + 1500 * 0.5 + 200) / 1e6)


def test_stats_since_leaves_out_older_runs(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    _record(db, _answer("4", 10, 10, 1))
    done = verity("stats", "--since", "2999-01-01", "--json", trace_db=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["days"] == []


def test_a_bad_price_file_is_one_line_naming_the_table_and_key(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[api]\ninput = "cheap"\noutput = 1.0\n')
    done = verity(
        "stats", "--prices", trace_db=tmp_path / "t.db", env={"VERITY_PRICES": str(prices)}
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"verity: error: {prices}: [api] input must be a number of dollars per million tokens "
        "(>= 0), not 'cheap'."
    )


def test_prices_lists_the_defaults_and_the_file_to_edit(tmp_path: Path) -> None:
    prices = tmp_path / "none.toml"
    done = verity(
        "stats", "--prices", trace_db=tmp_path / "t.db", env={"VERITY_PRICES": str(prices)}
    )
    assert done.returncode == 0, done.stderr
    assert {"local", "deepseek-reasoner"} <= {line.split()[0] for line in done.stdout.splitlines()}
    assert str(prices) in done.stdout


@pytest.mark.slow
def test_a_real_run_s_tokens_are_what_logs_usage_reports(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    done = verity("run", "What is 21 * 2?", "--json", "--quiet", trace_db=db)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    usage = verity("logs", "--usage", "--json", trace_db=db)
    [row] = json.loads(usage.stdout)
    assert row["id"] == result["run_id"]
    assert row["input_tokens"] == result["usage"]["prompt_tokens"] > 0
    assert row["output_tokens"] == result["usage"]["completion_tokens"] > 0
    assert row["cost_usd"]["local"] == 0 and row["cost_usd"]["deepseek-reasoner"] > 0
    assert result["cost_usd"] == row["cost_usd"]


def test_run_json_prices_the_run_s_tokens_from_the_price_table(
    tmp_path: Path, fake_server: str
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    done = verity(
        "run",
        "Say hello.",
        "--json",
        "--base-url",
        fake_server,
        "--api-model",
        "fake",
        trace_db=tmp_path / "t.db",
        env={"VERITY_PRICES": str(prices)},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert result["usage"]["prompt_tokens"] == 10
    assert result["usage"]["completion_tokens"] == 5
    # 10 input tokens at $2 and 5 output tokens at $10 per million; the defaults priced too
    assert result["cost_usd"]["api"] == (10 * 2.0 + 5 * 10.0) / 1_000_000
    assert result["cost_usd"]["local"] == 0
    assert "deepseek-reasoner" in result["cost_usd"]


def test_run_json_refuses_a_broken_price_table_before_the_run(
    tmp_path: Path, fake_server: str
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[api\n")
    done = verity(
        "run",
        "Say hello.",
        "--json",
        "--base-url",
        fake_server,
        "--api-model",
        "fake",
        trace_db=tmp_path / "t.db",
        env={"VERITY_PRICES": str(prices)},
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(f"verity: error: {prices}: not a valid TOML price table")
    assert not (tmp_path / "t.db").exists()
