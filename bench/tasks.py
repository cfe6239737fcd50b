"""Everyday tool tasks over reference MCP servers we did not write, run as a script runs
`verity run`: a right answer, or an honest failure (issue 24).

    python bench/tasks.py --setup                      # once: uv, npx and uvx caches (network)
    python bench/tasks.py [--model embedded|demo-1.5b] [--half dev|held-out|all]
                          [--category NAME ...] [--tasks N] [--id N ...] [-j N] [--timeout S]
                          [--json-out FILE] [--verity-arg ARG ...]

Each task gets a fresh fixture (files, a git repository, a SQLite database, a memory graph,
web pages served on 127.0.0.1), a Claude Desktop config of the servers it names, and runs as
`verity run --json --quiet --mcp-config CFG --allow 'SERVER__*' TASK` with stdin from
/dev/null, twice: with the answer checks and without them (`NO_CHECKS_FLAG`, the baseline).
`--tasks N` keeps the first N tasks of each category. See docs/benchmarks-tasks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.task_baseline import derived_baseline  # noqa: E402
from bench.task_catalog import CATEGORIES, TASKS, Task, select  # noqa: E402
from bench.task_fixtures import build_fixture, serve_pages  # noqa: E402
from bench.task_scoring import Outcome, classify, table  # noqa: E402
from bench.task_servers import mcp_config, missing_setup, setup  # noqa: E402

NO_CHECKS_FLAG = "--no-answer-checks"
"""The `verity run` switch that turns the answer checks off: the baseline."""
KILL_GRACE_S = 10


def _verity(*args: str) -> list[str]:
    return [sys.executable, "-m", "verity", *args]


def _env() -> dict[str, str]:
    """This checkout's verity first on the path; no user config or default MCP servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERITY_MCP")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def has_no_checks_flag() -> bool:
    """Whether this verity's `run` has the baseline switch yet.

    Raises:
        RuntimeError: `verity run --help` fails: no task could run.
    """
    shown = subprocess.run(
        _verity("run", "--help"),
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    if shown.returncode != 0:
        last = (shown.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"verity run --help failed (exit {shown.returncode}): {last}")
    return NO_CHECKS_FLAG in shown.stdout


def command(
    task: Task,
    config: Path,
    prompt: str,
    *,
    model: str,
    trace_db: Path,
    baseline: bool,
    extra: list[str],
) -> list[str]:
    """The `verity run` a script would write for `task`."""
    allow = [arg for spec in task.servers for arg in ("--allow", f"{spec.partition(':')[0]}__*")]
    return _verity(
        "run",
        "--json",
        "--quiet",
        "--mcp-config",
        str(config),
        *allow,
        "--trace-db",
        str(trace_db),
        "--model",
        model,
        *extra,
        *([NO_CHECKS_FLAG] if baseline else []),
        prompt,
    )


def _kill_tree(process: subprocess.Popen[str]) -> None:
    """End the run and every server it started: ask first, then kill."""
    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
    except psutil.Error:
        family = []
    for member in family:
        try:
            member.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(family, timeout=KILL_GRACE_S)
    for member in alive:
        try:
            member.kill()
        except psutil.Error:
            continue


def run_once(
    task: Task,
    *,
    model: str,
    baseline: bool,
    timeout: float,
    extra: list[str],
    keep_traces: Path | None = None,
) -> tuple[Outcome, Outcome | None]:
    """Run `task` once on a fresh fixture; the outcome, judged, and (for a run with the checks)
    the no-checks baseline its trace gives, or None. With `keep_traces`, the run's trace
    database is copied there (`task-ID-MODE-MODEL.db`) for `verity show`."""
    with tempfile.TemporaryDirectory(prefix=f"verity-task-{task.id}-") as tmp:
        fixture = build_fixture(Path(tmp))
        with serve_pages(fixture.site) as url:
            config = mcp_config(task.servers, fixture, Path(tmp) / "mcp.json")
            prompt = task.prompt.format(**fixture.placeholders(url))
            argv = command(
                task,
                config,
                prompt,
                model=model,
                trace_db=Path(tmp) / "trace.db",
                baseline=baseline,
                extra=extra,
            )
            started = time.monotonic()
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(),
                cwd=tmp,
                start_new_session=True,
            )
            exit_code: int | None
            try:
                stdout, stderr = process.communicate(timeout=timeout)
                exit_code = process.returncode
            except subprocess.TimeoutExpired:
                _kill_tree(process)
                stdout, stderr = process.communicate(timeout=KILL_GRACE_S)
                exit_code = None
            seconds = time.monotonic() - started
            outcome = read_outcome(
                task,
                stdout,
                stderr,
                exit_code=exit_code,
                seconds=seconds,
                model=model,
                mode="baseline" if baseline else "checks",
                timeout=timeout,
            )
            derived = None if baseline else derived_baseline(task, outcome, Path(tmp) / "trace.db")
            if keep_traces is not None and (Path(tmp) / "trace.db").exists():
                mode = "baseline" if baseline else "checks"
                label = Path(model).stem if model.endswith(".gguf") else model
                name = f"task-{task.id}-{mode}-{label}.db"
                keep_traces.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(tmp) / "trace.db", keep_traces / name)
    return outcome, derived


def read_outcome(
    task: Task,
    stdout: str,
    stderr: str,
    *,
    exit_code: int | None,
    seconds: float,
    model: str,
    mode: str,
    timeout: float,
) -> Outcome:
    """Read the run's --json (or plain stdout) and stderr into a judged outcome."""
    try:
        payload: dict[str, Any] = json.loads(stdout)
    except ValueError:
        payload = {"answer": stdout.strip() or None}
    usage = payload.get("usage") or {}
    lines = [line for line in stderr.splitlines() if line.strip()]
    reason = payload.get("reason") or (lines[-1][:300] if lines else None)
    if exit_code is None:
        reason = f"killed after the {timeout:.0f} s per-task timeout"
    outcome = Outcome(
        task_id=task.id,
        category=task.category,
        model=model,
        mode=mode,
        exit_code=exit_code,
        answer=payload.get("answer"),
        status=payload.get("status"),
        reason=reason,
        verified=payload.get("verified"),
        seconds=round(seconds, 1),
        tokens=int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0)),
    )
    outcome.verdict, outcome.right_refused = classify(
        task.rule, exit_code=exit_code, answer=outcome.answer, verified=outcome.verified
    )
    return outcome


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help="prepare the servers and exit")
    parser.add_argument("--model", action="append", help="embedded (default), demo-1.5b, a GGUF")
    parser.add_argument("--half", choices=("dev", "held-out", "all"), default="all")
    parser.add_argument("--category", action="append", choices=CATEGORIES)
    parser.add_argument("--tasks", type=int, metavar="N", help="the first N of each category")
    parser.add_argument("--id", type=int, action="append", help="only this task (repeatable)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="runs at a time (1)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run (600)")
    parser.add_argument("--json-out", type=Path, help="write every outcome to this JSON file")
    parser.add_argument(
        "--verity-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="pass ARG on to every verity run (e.g. --verity-arg=--n-ctx=16384)",
    )
    parser.add_argument(
        "--baseline",
        choices=("derived", "run", "none"),
        default="derived",
        help="the no-checks baseline: read from the checked run's trace where it judged an "
        "answer, else run (derived, the default); always run; or none",
    )
    parser.add_argument("--no-baseline", action="store_true", help="same as --baseline none")
    parser.add_argument(
        "--keep-traces", type=Path, metavar="DIR", help="copy each run's trace database to DIR"
    )
    parser.add_argument(
        "--report",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="print the table of saved --json-out files (runs nothing)",
    )
    return parser.parse_args(argv)


def _setup() -> int:
    """Fetch the servers, then start each one offline through `verity mcp list`."""
    with tempfile.TemporaryDirectory(prefix="verity-task-setup-") as tmp:
        fixture = build_fixture(Path(tmp))
        setup(fixture)
        config = mcp_config(
            tuple(sorted({"filesystem", "memory", "everything", "time", "git", "sqlite", "fetch"})),
            fixture,
            Path(tmp) / "mcp.json",
        )
        listed = subprocess.run(
            _verity("mcp", "list", "--mcp-config", str(config)),
            capture_output=True,
            text=True,
            timeout=600,
            env=_env(),
            stdin=subprocess.DEVNULL,
            cwd=tmp,
        )
    print(listed.stdout + listed.stderr)
    return listed.returncode


def main(argv: list[str] | None = None) -> int:
    """Run the selected tasks and print the table; 2 when the servers are not set up."""
    args = _arguments(argv)
    if args.setup:
        return _setup()
    if args.report:
        saved = [Outcome(**o) for path in args.report for o in json.loads(path.read_text())]
        print(table(saved, baseline_run=any(o.mode == "baseline" for o in saved)))
        return 0
    if problem := missing_setup():
        print(f"tasks: {problem}: run python bench/tasks.py --setup first", file=sys.stderr)
        return 2
    tasks = select(
        half=args.half, categories=tuple(args.category or CATEGORIES), per_category=args.tasks
    )
    tasks = [task for task in tasks if args.id is None or task.id in args.id]
    baseline = "none" if args.no_baseline else args.baseline
    try:
        baseline_run = baseline != "none" and has_no_checks_flag()
    except RuntimeError as exc:
        print(f"tasks: {exc}", file=sys.stderr)
        return 2
    modes = (False, True) if baseline_run and baseline == "run" else (False,)
    jobs = [
        (model, task, base)
        for model in args.model or ["embedded"]
        for task in tasks
        for base in modes
    ]
    print(
        f"tasks: {len(tasks)} tasks x {len(args.model or ['embedded'])} models; baseline "
        f"{baseline if baseline_run else '= same'} ({NO_CHECKS_FLAG}); {len(TASKS)} defined",
        file=sys.stderr,
    )
    finished: list[Outcome] = []
    finished_lock = threading.Lock()

    def record(outcome: Outcome) -> None:
        print(
            f"tasks: #{outcome.task_id} {outcome.category} {outcome.mode} {outcome.model}: "
            f"{outcome.verdict} (exit {outcome.exit_code}, {outcome.seconds:.0f} s) "
            f"{str(outcome.answer)[:80]!r} {outcome.reason or ''}"[:300],
            file=sys.stderr,
        )
        with finished_lock:
            finished.append(outcome)
            if args.json_out:  # after every run: an interrupted bench keeps what it measured
                args.json_out.write_text(json.dumps([asdict(o) for o in finished], indent=1))

    def one(job: tuple[str, Task, bool]) -> None:
        model, task, base = job
        options = {"model": model, "timeout": args.timeout, "extra": args.verity_arg}
        outcome, derived = run_once(task, baseline=base, keep_traces=args.keep_traces, **options)
        if baseline == "run" and derived is not None:
            outcome.derived_answer = derived.answer
        record(outcome)
        if base or not baseline_run or baseline == "run":
            return
        if derived is None:  # no answer was judged: nothing to read, so run it
            derived, _ = run_once(task, baseline=True, keep_traces=args.keep_traces, **options)
        record(derived)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one, jobs))
    print(table(finished, baseline_run=baseline_run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
