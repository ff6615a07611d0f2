"""The command line: parse arguments, call the library, turn errors into exit codes.

This is the only place that reads ``os.environ``, the clock, or calls ``sys.exit`` (through
``__main__``). Provider SDKs are imported only by ``run``, so `status` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Mapping, Sequence, TextIO

from . import __version__
from .core.config import Config, load_config
from .core.errors import EXIT_FAILED, EXIT_INVALID, EXIT_OK, AutomationError, UsageError
from .core.redact import redact, secret_values
from .money import ledger as ledger_module
from .money.ledger_source import book_expired, booked_note, committed_locally, prefer_committed
from .money.windows import Share
from .repo import tasks


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so errors keep one shape."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


# `simulate --runs` at most: ten years of runs every three hours, well under a minute.
MAX_SIMULATED_RUNS = 30_000
CONSOLE_SCRIPT = "ai-orchestration"


def program_name(argv0: str) -> str:
    """``ai-orchestration`` when started as the installed command, else ``python -m automation``."""
    return CONSOLE_SCRIPT if Path(argv0).name == CONSOLE_SCRIPT else "python -m automation"


def build_parser(prog: str = "python -m automation") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Turn a task list into pull requests within a monthly budget.")
    parser.add_argument("--version", action="version", version=f"ai-orchestration {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="command")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=description)
        sub.add_argument("--repo", type=Path, default=None,
                         help="the top of the repository's git checkout (default: the checkout the current folder is in)")
        sub.add_argument(
            "--config", type=Path, default=None,
            help="config file; a relative path is relative to --repo (default: REPO/.github/ai-orchestration.yml)",
        )
        return sub

    run = command(
        "run", "take the next task and open a pull request",
        "Take the first unticked '- [ ]' item of the tasks file (or --task), have the analysis model plan it and "
        "the code model write it, and open a pull request with a cost receipt. Exit 0: pull request opened or a "
        "policy stop (no task, budget, PR limit, circuit breaker); 1: a step failed; 2: invalid config, ledger or usage.",
    )
    run.add_argument("--dry-run", action="store_true", help="no keys, no network, no writes: show what would happen")
    run.add_argument("--task", default=None, help="work on this task text instead of the next one in the tasks file")
    run.add_argument("--show-prompt", action="store_true",
                     help="with --dry-run: also print the analysis request exactly as a run would send it")
    run.add_argument(
        "--decide-only", action="store_true",
        help="stop for real on any policy stop, but hand a run with work over before its first model call "
        "(work=true in $GITHUB_OUTPUT); needs neither the model SDKs nor the keys",
    )

    status = command(
        "status", "where the month's budget stands",
        "The month so far from the ledger: spend against the budget, runs, pull requests, milestones, pace, "
        "provider health and parked tasks. Needs no keys and no network.",
    )
    output = status.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_const", const="json", dest="format", default="text",
                        help="machine-readable output")
    output.add_argument("--format", choices=("text", "json", "openmetrics", "prometheus"), default="text",
                        help="text (default), json (same as --json), openmetrics for a Prometheus scrape, or "
                             "prometheus (the classic text format) for the textfile collector or a Pushgateway")

    dashboard = command(
        "dashboard", "write the cost and health dashboard as a static site",
        "Write the month's spend, runs and provider health as a static HTML page (index.html in --out), "
        "for GitHub Pages or any static host. Needs no keys and no network.",
    )
    dashboard.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write index.html into")

    command(
        "costs", "cost of a run and what the budget buys",
        "The cost of one run (typical and worst case) with the configured models, how many runs and pull requests "
        "the monthly budget buys, and a cron cadence that spreads it over the month.",
    )

    simulate = command(
        "simulate", "drive the budget with synthetic runs on a scratch ledger",
        "Synthetic runs, one every three hours, through the real ledger, budget and alert code on a scratch copy "
        "of the ledger (never saved): where milestones fire, which Discord alerts you would get, where the budget "
        "stops runs. No keys, no network.",
    )
    limit = simulate.add_mutually_exclusive_group(required=True)
    limit.add_argument("--runs", type=int, help=f"how many runs to simulate (1 to {MAX_SIMULATED_RUNS:,})")
    limit.add_argument("--until", type=_dollars, metavar="USD", help="simulate until the month's spend reaches USD (or the budget stops runs)")
    simulate.add_argument("--seed", type=int, default=1, help="seed for the synthetic usage (default 1)")

    reconcile = command(
        "reconcile", "compare the ledger with what the providers billed",
        "Read the providers' own usage and cost reports for a month with admin keys (ANTHROPIC_ADMIN_KEY, "
        "OPENAI_ADMIN_KEY; either or both), compare them per day and model with the ledger, and print the "
        "differences. With --apply, record what the providers billed that the ledger lacks as adjustment rows, "
        "committed where the bot reads its ledger. Exit 2 without an admin key.",
    )
    reconcile.add_argument("--month", type=_month, default=None, metavar="YYYY-MM", help="the month (default: this month)")
    reconcile.add_argument("--apply", action="store_true",
                           help="record what the providers billed beyond the ledger as adjustment rows")
    reconcile.add_argument("--anthropic-workspace", metavar="ID", default=None,
                           help="compare only this Anthropic workspace's usage and costs (the bot's own workspace)")
    reconcile.add_argument("--openai-project", metavar="ID", default=None,
                           help="compare only this OpenAI project's usage and costs (the bot's own project)")
    return parser


def _month(text: str) -> str:
    try:
        if len(text) != 7:
            raise ValueError(text)
        dt.datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a month like 2026-11: {text!r}") from None
    return text


def _dollars(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount in dollars: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError("must be a positive amount in dollars")
    return value


def checkout(path: Path | None, cwd: Path | None = None) -> Path:
    """``--repo`` resolved, or UsageError (exit 2) unless it is the top of a git checkout.
    Without ``--repo``, the checkout ``cwd`` (the current folder) is in, found the way git finds it.

    A wrong ``--repo`` must not look like an empty repository ("no task left", a fresh month).
    """
    if path is None:
        here = (cwd or Path.cwd()).resolve()
        top = next((folder for folder in (here, *here.parents) if (folder / ".git").exists()), None)
        if top is None:
            raise UsageError(f"{here} is not inside a git checkout: run this in your repository's checkout, or give --repo")
        return top
    repo = path.expanduser().resolve()
    if not repo.exists():
        raise UsageError(f"--repo {path}: no such directory")
    if not repo.is_dir():
        raise UsageError(f"--repo {path}: not a directory; give the repository's checkout")
    if not (repo / ".git").exists():
        top = next((parent for parent in repo.parents if (parent / ".git").exists()), None)
        where = f"it is inside the checkout {top}: use --repo {top}" if top else "run `git clone` first, or give the checkout's path"
        raise UsageError(f"--repo {path}: not the top of a git checkout (no .git); {where}")
    return repo


def config_path(args: argparse.Namespace, repo: Path) -> Path | None:
    """``--config``; a relative path is taken relative to the repository, like the action's input."""
    if args.config is None:
        return None
    path = args.config.expanduser()
    return path if path.is_absolute() else repo / path


def _load(args: argparse.Namespace, env: Mapping[str, str], now: dt.datetime) -> tuple[Config, ledger_module.Ledger, Share | None]:
    """The config and the checkout's ledger as a run would count it: merged with what the checkout
    last saw of the committed one (no network, so a local run's spend shows before a `git pull`),
    expired reservations of runs that never settled booked as spent, what that and reading found
    kept as ``warnings``. A shared ledger (``ledger.repository``) is fetched, with its budget and
    this repository's share in it."""
    repo = checkout(args.repo)
    config = load_config(config_path(args, repo), repo, now.date())
    if config.ledger_repository is not None:
        from .money import ledger_source, shared_budget
        from .repo import ledger_remote

        home = ledger_remote.open_home(repo, config, env, writing=False)
        config, share, notes = shared_budget.apply(config, home, now.date())
        shared, read_notes = ledger_source.read(home.root, config, home.env, now)
        said = tuple(note.removeprefix("note: ") for note in [*notes, *read_notes])
        return config, replace(ledger_module.as_of(shared, now), warnings=shared.warnings + said), share
    ledger_path = repo / config.ledger_path
    loaded = ledger_module.load(ledger_path, now, config.monthly_budget_micro_usd, root=repo)
    committed = committed_locally(repo, config, env)
    if committed is not None and committed != loaded:
        loaded = replace(prefer_committed(committed, loaded), warnings=loaded.warnings)
    booked, runs = book_expired(loaded, config, now)
    ledger = ledger_module.as_of(booked, now)
    return config, replace(ledger, warnings=loaded.warnings + tuple(booked_note(run) for run in runs)), None


def _status(args: argparse.Namespace, env: Mapping[str, str], now: dt.datetime, out: TextIO) -> int:
    from .reporting.reports import render_status, status_data

    config, ledger, share = _load(args, env, now)
    data = status_data(config, ledger, now, config.paused_by(env), share)
    if args.format == "json":
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    elif args.format in ("openmetrics", "prometheus"):
        from .reporting.metrics import render

        out.write(render(data, args.format))
    else:
        out.write(render_status(data, ledger, config.monthly_budget_micro_usd) + "\n")
    return EXIT_OK


def _dashboard(args: argparse.Namespace, env: Mapping[str, str], now: dt.datetime, out: TextIO) -> int:
    from .reporting.dashboard import build

    config, ledger, share = _load(args, env, now)
    page = build(config, ledger, now, args.out.resolve(), repository=env.get("GITHUB_REPOSITORY") or None, share=share)
    out.write(f"Dashboard written to {page}\n")
    return EXIT_OK


def _costs(args: argparse.Namespace, env: Mapping[str, str], now: dt.datetime, out: TextIO) -> int:
    from .money.estimate import measure
    from .reporting.reports import render_costs

    repo = checkout(args.repo)
    config = load_config(config_path(args, repo), repo, now.date())  # costs needs no ledger
    out.write(render_costs(config, now, measure(repo, config)) + "\n")
    return EXIT_OK


def _simulate(args: argparse.Namespace, env: Mapping[str, str], now: dt.datetime, out: TextIO) -> int:
    import random

    from .money.estimate import measure
    from .steps.simulate import simulate

    if args.runs is not None and not 0 < args.runs <= MAX_SIMULATED_RUNS:
        raise UsageError(f"simulate: --runs must be a whole number from 1 to {MAX_SIMULATED_RUNS:,} (got {args.runs:,})")
    config, ledger, _ = _load(args, env, now)
    until = None if args.until is None else int(args.until * 1_000_000)
    model = measure(checkout(args.repo), config)
    for line in simulate(config, ledger, now, model, runs=args.runs, until_micro_usd=until, rng=random.Random(args.seed)):
        out.write(line + "\n")
    return EXIT_OK


def _reconcile(args: argparse.Namespace, env: Mapping[str, str], now: dt.datetime, out: TextIO) -> int:
    import requests

    from .core.prices import ANTHROPIC, OPENAI
    from .models import usage_reports
    from .money import ledger_source, reconcile

    keys = usage_reports.admin_keys(env)  # exit 2 before anything else when there is none
    month = args.month or ledger_module.month_of(now)
    if month > ledger_module.month_of(now):
        raise UsageError(f"reconcile: --month {month} has not begun yet")
    from .repo import ledger_remote

    repo = checkout(args.repo)
    config = load_config(config_path(args, repo), repo, now.date())
    home = ledger_remote.open_home(repo, config, env, writing=args.apply)  # a shared ledger: reconciled there
    loaded, notes = ledger_source.read(home.root, config, home.env, now)
    for note in notes:
        out.write(f"note: {note}\n")
    for provider, variable in usage_reports.ADMIN_KEY_VARIABLES.items():
        if provider not in keys:
            out.write(f"note: {variable} is not set: {provider} is not compared\n")
    scopes = {ANTHROPIC: args.anthropic_workspace, OPENAI: args.openai_project}
    start, end = usage_reports.month_bounds(month, now)
    with requests.Session() as session:
        billed = [row for provider, key in sorted(keys.items())
                  for row in usage_reports.Reader(provider, key, env, session, config.prices, scopes[provider]).billed(start, end)]
    compared = reconcile.compare(ledger_module.as_of(loaded, now), month, billed, keys)
    rows = reconcile.adjustments(compared) if args.apply else ()
    branch = reconcile.record(home.root, config, home.env, loaded, compared, rows, now) if args.apply else None
    out.write(reconcile.render(compared, applied=bool(rows)) + "\n")
    if branch is not None:
        out.write(f"Ledger committed to {branch}\n")
    return EXIT_OK


def _run(args: argparse.Namespace, env: Mapping[str, str], now: dt.datetime, out: TextIO) -> int:
    from .steps.pipeline import dry_run, run

    quiet_library_logging()  # after the import: importing PyGithub attaches its stderr handler
    task_text = None if args.task is None else tasks.task_text(args.task)  # before anything is paid or pushed
    if args.show_prompt and not args.dry_run:
        raise UsageError("run: --show-prompt shows what a dry run would send; add --dry-run")
    repo = checkout(args.repo)
    if args.dry_run:
        return dry_run(repo=repo, config_path=config_path(args, repo), task_text=task_text, env=env, now=now, out=out,
                       show_prompt=args.show_prompt)
    return run(
        repo=repo, config_path=config_path(args, repo), task_text=task_text, env=env, now=now, out=out,
        decide_only=args.decide_only,
    )


COMMANDS: dict[str, Callable[[argparse.Namespace, Mapping[str, str], dt.datetime, TextIO], int]] = {
    "run": _run,
    "status": _status,
    "dashboard": _dashboard,
    "costs": _costs,
    "simulate": _simulate,
    "reconcile": _reconcile,
}


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one command; returns the exit code (0 ok or policy stop, 1 failed, 2 invalid input)."""
    env = dict(os.environ) if env is None else env
    now = now or dt.datetime.now(dt.timezone.utc)
    out = out or sys.stdout
    err = err or sys.stderr
    secrets = secret_values(env)
    try:
        args = build_parser(program_name(sys.argv[0])).parse_args(argv)
        with stop_signals_raise():
            return COMMANDS[args.command](args, env, now, out)
    except AutomationError as error:
        report_error(redact(error.message, secrets), env, err)
        return error.exit_code
    except KeyboardInterrupt as stop:
        report_error(f"interrupted by {stop.args[0] if stop.args else 'SIGINT'}", env, err)
        return EXIT_FAILED
    except SystemExit as exit_request:  # --help and --version
        return int(exit_request.code or 0)
    except BrokenPipeError:  # `simulate … | head`: the reader stopped reading, which is not an error
        _stop_writing(out)
        return EXIT_OK
    except Exception as error:  # a bug: still one line, no traceback, no secrets
        report_error(
            redact(f"internal error ({type(error).__name__}: {error}); please report it with the command you ran", secrets),
            env,
            err,
        )
        return EXIT_FAILED


def _stop_writing(out: TextIO) -> None:
    """Point standard output at /dev/null once its reader has gone, so the interpreter's last
    flush at exit does not fail a second time (what the Python docs advise for SIGPIPE)."""
    if out is sys.stdout:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def quiet_library_logging() -> None:
    """Keep PyGithub's own log lines off stderr: our error already says it, in one line.

    Importing PyGithub attaches a stderr handler at INFO to its "github" logger, so a refused
    request prints "Request POST … failed with 403" before our message. Its records go nowhere
    instead (nor to Python's last-resort handler, which a logger with no handler would reach).
    """
    library = logging.getLogger("github")
    for handler in list(library.handlers):
        library.removeHandler(handler)
    library.addHandler(logging.NullHandler())
    library.propagate = False


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised as KeyboardInterrupt so every ``finally`` runs (the ledger commit)."""


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Make SIGTERM stop the command the way SIGINT does, once.

    A cancelled Actions job gets SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after
    that. Python's default for SIGTERM is to die at once, skipping the ``finally`` that commits
    the ledger, so both signals raise ``Stopped`` instead; a second signal while the run is
    recording and committing is ignored so that work can finish. Only the main thread can
    set handlers; elsewhere (a test calling ``main`` in a thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        if not received:
            received.append(signum)
            raise Stopped(signal.Signals(signum).name)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def report_error(message: str, env: Mapping[str, str], err: TextIO) -> None:
    """One line on stderr; in GitHub Actions also an ``::error::`` annotation."""
    message = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    err.write(f"error: {message}\n")
    if env.get("GITHUB_ACTIONS") == "true":
        escaped = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        err.write(f"::error title=ai-orchestration::{escaped}\n")


__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_INVALID"]
