"""`run`: one task from the tasks file to one open pull request.

``run`` reads top to bottom; each step below it is a small function. Money is recorded in
the ledger (and saved to disk) after every paid call, and the ledger is committed in a
``finally``, so a failing step never loses what was spent.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, NoReturn, TextIO, cast

from ..core import secret_scan, untrusted
from ..core.config import DEFAULT_CONFIG_PATH, Config, load_config
from ..core.errors import EXIT_OK, AutomationError, PolicyStop, ProviderError
from ..core.prices import ANTHROPIC, format_usd
from ..core.redact import mask_commands, redact, secret_values
from ..core.wording import plural
from ..models import attempts, experiment, health, keys
from ..money import budget, caching, estimate, ledger_source, outcomes, reservations, shared_budget, spend, windows
from ..money import ledger as ledger_module
from ..money.ledger import Ledger, RunRecord
from ..repo import context, edits, github, gitops, intake, ledger_remote, localise, tasks
from ..repo import outcomes as pull_outcomes
from ..repo.trust import Trust
from ..reporting import alerts, discord, reports
from ..reporting.discord import Notifier
from . import batch, coding, followup_run, verify
from .session import Posted, Session

if TYPE_CHECKING:
    import anthropic
    import openai
    from github.Repository import Repository

    from ..models.providers import ModelReply

ANALYSIS_SYSTEM = (
    "You are a senior software engineer planning a change to the repository described below. "
    "Answer in Markdown with three sections: '## Changes' (what to change and why), '## Files' "
    "(every repository path to create, update or delete, each in backticks), and "
    "'## Acceptance criteria' (checks a reviewer can run). Be specific and brief. " + untrusted.SYSTEM_RULE
)
# The outcome of `run --decide-only` when there is work: the next step installs the SDKs and runs.
HANDED_OVER = "handed_over"
# The last line of the bot's task commits: with the task's title as subject, it lets a later
# run recognise a branch whose pull request could not be opened.
OPENED_BY = "Opened by ai-orchestration."


def run(
    *,
    repo: Path,
    config_path: Path | None,
    task_text: str | None,
    env: Mapping[str, str],
    now: dt.datetime,
    out: TextIO,
    clock: Callable[[], float] = time.monotonic,
    decide_only: bool = False,
    nonce: Callable[[], str] = ledger_module.random_nonce,
) -> int:
    """One cron run. Exit 0: PR opened, a follow-up done, or a policy stop; 1: a step failed; 2: invalid input.

    ``decide_only`` runs every policy stop for real (recorded, announced, ledger committed) but
    hands a run with work over before its first model call, writing ``work=true`` to
    ``GITHUB_OUTPUT``: so a cron run with nothing to do never installs the provider SDKs.
    """
    if env.get("GITHUB_ACTIONS") == "true":
        out.write("".join(line + "\n" for line in mask_commands(env)))
    config = load_config(config_path, repo, now.date())  # retired models already swapped for successors
    paused = config.paused_by(env)
    if paused:
        return _paused(env, out, paused, decide_only)
    config.check_retirement()
    if not decide_only:  # the deciding step is given no model keys
        keys.require_keys(env, {config.price(model).provider for model in config.configured_models().values()})
    session = _open_session(repo, config, env, now, out, clock, nonce)
    config = session.config  # with a shared ledger, its budget; with the models.experiment arm this run takes
    notifier = Notifier(env.get("DISCORD_WEBHOOK_URL"), log=session.say, secrets=session.secrets)
    for warning in config.retirement_warnings(now.date()) + [f"note: {n}" for n in session.notes]:
        session.say(warning)
    session.ledger, embeds = alerts.before_run(session.ledger, session.base_ledger, config, now, session.repository)
    notifier.notify(embeds)
    outcome: str = "failed:internal"
    error: AutomationError | None = None
    refused: budget.BudgetStop | None = None  # the budget stop, for its alert
    try:
        windows.check_start(config, session.ledger, now, session.record.id,
                            *budget.run_reservation(config, estimate.PROMPT_OVERHEAD_TOKENS), share=session.reserver.share)
        remote = github.connect(env)
        pulls = github.bot_pull_requests(remote, config.branch_prefix)
        _record_outcomes(session, remote, pulls)
        if task_text is None:  # follow-ups first, unless someone asked for a task by hand
            followup_run.first(session, remote, pulls, analyse=_analyse, write_code=_write_code,
                               hand_over=partial(_hand_over, session) if decide_only else None)
        if decide_only and config.batch and batch.pending(session.ledger):
            _hand_over(session, "collect the pending batch")
        collected = batch.collect(session, partial(_client, session)) if config.batch else None
        usable = collected if collected and collected.usable else None
        task = _pick_task(session, usable.task if usable else task_text, pulls, remote)
        _check_pull_request_limit(config, pulls)
        if decide_only:
            _hand_over(session, f"'{task.text}'")
        session.record = replace(session.record, task=task.text, task_kind=task.kind)
        worst, first = budget.run_reservation(config, estimate.PROMPT_OVERHEAD_TOKENS)
        session.reserver.reserve(session.ledger, task.text, worst, first)
        _say_reserved(session, task, worst)
        if config.notify_run_started:
            notifier.notify([discord.run_started_embed(repository=session.repository, now=now, task=task.text, run_url=reports.run_url(env))])
        pr = _resume_pushed_branch(session, remote, task, pulls) or _new_pull_request(session, remote, task, usable)
        session.save(replace(session.record, outcome="pr_opened", pr_url=pr.url))
        intake.announce(remote, task, pr.url, spend.pull_cost(session.ledger, pr.url), session.say)
        outcome = "pr_opened"
    except PolicyStop as stop:
        session.say(stop.message)
        outcome, refused = stop.outcome, stop if isinstance(stop, budget.BudgetStop) else None
    except AutomationError as failure:
        error = failure
        outcome = f"failed:{failure.step}"
    except KeyboardInterrupt:  # SIGINT, or SIGTERM (the CLI raises it for both): record and commit, then stop
        outcome = "failed:interrupted"
        raise
    finally:
        _close_run(session, notifier, outcome, error, refused)
    if error is not None:
        raise error  # recorded, announced and committed: now the CLI reports it and sets the exit code
    if decide_only:
        _write_output(env, "work", "true" if outcome == HANDED_OVER else "false")
    return EXIT_OK


def _paused(env: Mapping[str, str], out: TextIO, reason: str, decide_only: bool) -> int:
    """A paused bot stops before any work: no ledger read, no network, nothing written but the step's output."""
    out.write(f"Paused: {reason}. Nothing was done (exit 0).\n")
    _write_summary(env, f"## ai-orchestration is paused\n\n{reason}.\n")
    if decide_only:
        _write_output(env, "work", "false")
    return EXIT_OK


def _hand_over(session: Session, work: str) -> NoReturn:
    """Stop before the first model call once it is sure the run has work (breakers included)."""
    config = session.config
    health.chain(session.ledger, config, config.analysis_model, config.analysis_fallbacks, session.now)
    health.chain(session.ledger, config, config.code_model, config.code_fallbacks, session.now)
    raise PolicyStop(f"Work to do: {work}; the full run takes it from here.", HANDED_OVER)


def _write_output(env: Mapping[str, str], name: str, value: str) -> None:
    """A step output for the workflow's later steps (``GITHUB_OUTPUT``), when there is one."""
    path = env.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as output:
            output.write(f"{name}={value}\n")


def _new_pull_request(session: Session, remote: Repository, task: tasks.Task, collected: batch.Outcome | None = None) -> github.BotPull:
    """Context, analysis, code and edit checks, then the branch and the PR. In batch mode the
    analysis and then the code request are submitted as batches instead, each ending the run;
    ``collected`` is what a later run collected (the analysis, then the code reply too)."""
    brief, found = secret_scan.redact(task.brief)  # the tasks file is a file like any other
    if found:
        session.say(f"Withheld what looks like secrets in the task's text from the prompts ({secret_scan.summary(found)})")
    verify.baseline(session, session.repo)  # the untouched tree's checks, before any paid call
    locations = _localise(session, brief)
    repo_context = context.build_context(session.repo, brief, session.config.context_max_tokens, _private_paths(session.config), locations)
    _say_context(session, repo_context)
    if collected is None and session.config.batch:
        _submit_analysis(session, brief, repo_context)
    analysis = collected.analysis if collected and collected.analysis is not None else _analyse(session, brief, repo_context)
    plan = _write_code(session, brief, analysis, repo_context, collected=collected)
    if collected is not None and collected.code is not None:
        note = batch.earlier_note(session.ledger, task.text)
        session.notes.extend([note] if note else [])
    return _open_pull_request(session, remote, task, analysis, plan, collected.analysis_model if collected else None)


def _say_reserved(session: Session, task: tasks.Task, worst: int) -> None:
    """The log names the task and what the run holds before any call is made."""
    held = session.reserver.held
    assert held is not None, "reserve() holds a reservation or raises"
    why = "its worst case" if held.micro_usd >= worst else f"all that is left; its worst case is {format_usd(worst, 4)}"
    session.say(f"Task: {task.text}")
    session.say(f"Reserved {format_usd(held.micro_usd, 4)} for this run ({why}) until {held.expires_at}")


def _say_context(session: Session, repo_context: context.RepoContext) -> None:
    session.say(f"Context: {plural(len(repo_context.files), 'file')}, {repo_context.tokens:,} of "
                f"{session.config.context_max_tokens:,} tokens (`run --dry-run` lists them and why)")


def _check_pull_request_limit(config: Config, pulls: list[github.BotPull]) -> None:
    open_count = sum(pull.state == "open" for pull in pulls)
    if open_count >= config.max_open_prs:
        raise PolicyStop(
            f"Stopping before spending: {open_count} bot pull requests are open (pull_requests.max_open is "
            f"{config.max_open_prs}); review or close some first.",
            "pr_limit",
        )


def _open_session(
    repo: Path, config: Config, env: Mapping[str, str], now: dt.datetime, out: TextIO, clock: Callable[[], float],
    nonce: Callable[[], str],
) -> Session:
    home = ledger_remote.open_home(repo, config, env, writing=True)  # a shared ledger's token, before anything
    config, share, shared_notes = shared_budget.apply(config, home, now.date())
    loaded, notes = ledger_source.read(home.root, config, home.env, now)
    ledger_remote.check_push(home, config.ledger_branch or gitops.remote_default_branch(home.root, home.env))
    rolled = ledger_module.as_of(loaded, now)
    rolled = replace(rolled, budget_micro_usd=config.monthly_budget_micro_usd)
    config, arm = experiment.choose(config, rolled)
    run_id = ledger_module.new_run_id(env.get("GITHUB_RUN_ID", "local"), env.get("GITHUB_RUN_ATTEMPT", "1"), now, nonce())
    named = home.repository if home.shared else ""  # rows of a shared ledger name their repository
    record = RunRecord(id=run_id, started_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"), task="", repository=named, arm=arm)
    started = clock()
    reserver = reservations.Reserver(
        home.root, config, home.env, run_id, loaded, lambda: now + dt.timedelta(seconds=clock() - started),
        deadline_at=now + dt.timedelta(seconds=config.run_deadline_seconds), repository=named, share=share,
    )
    session = Session(
        repo=repo, config=config, env=env, now=now, out=out, base_ledger=loaded, ledger=rolled,
        record=record, clock=clock, secrets=secret_values(env), reserver=reserver,
        deadline=attempts.Deadline.starting_now(clock, config.run_deadline_seconds, config.ledger_commit_seconds),
        repository=home.repository, notes=config.retirement_notes(), ledger_root=home.root,
    )
    reserver.say = session.say
    draws = random.Random(nonce())  # apart from every other run's
    reserver.pause = lambda attempt: session.sleep(reservations.backoff_seconds(attempt, draws.random()))
    for note in [*shared_notes, *notes]:
        reserver.tell(note)  # once: a later look at the branch may find the same
    return session


def _record_outcomes(session: Session, remote: Repository, pulls: list[github.BotPull]) -> None:
    """Fold what became of the bot's PRs into the ledger (``money/outcomes.py``): the list the
    run already read, plus a few requests for PRs that changed."""
    session.ledger, requests = outcomes.update(
        session.ledger, pulls, session.now, max_reads=session.config.outcome_reads_per_run,
        read=partial(pull_outcomes.read, remote, bot_email=gitops.BOT_EMAIL), say=session.say,
    )
    if requests:
        session.say(f"Pull request outcomes: {plural(requests, 'request')} to GitHub for the PRs that changed")


def _private_paths(config: Config) -> tuple[str, ...]:
    return config.private_paths()


def _config_path_in_repo(repo: Path, config: Config) -> str:
    """The bot's config file (``--config`` in any spelling) as the canonical repository path the
    edit checks compare; a config outside the repository cannot be edited anyway."""
    try:
        return Path(config.source).resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return DEFAULT_CONFIG_PATH


def _pick_task(session: Session, task_text: str | None, pulls: list[github.BotPull], remote: Repository) -> tasks.Task:
    """The given task, or the first unticked one (or labelled issue, ``intake``) with no open,
    merged or rejected bot PR.

    A task given by hand (workflow_dispatch) is the user overriding a reviewer's "no" or a
    parking, so only an open PR for it stops the run: that would be a duplicate.
    """
    config = session.config
    issues = intake.issue_tasks(remote, config, Trust(remote, config), session.say)
    listed = intake.ordered(tasks.read_tasks(tasks.load(session.repo, config.tasks_file)), issues, config.intake_order)
    session.ledger = health.unpark_missing(session.ledger, [task.text for task in listed])
    if task_text is not None:
        text = tasks.task_text(task_text)
        task = next((t for t in listed if t.text == text), tasks.Task(text=text, line=0))
        pull = _pull_for(task, pulls, config.branch_prefix)
        if pull is not None and pull.state == "open":
            raise PolicyStop(f"'{task.text}' already has an open pull request: {pull.url}", "duplicate")
        return task
    parked = health.parked_tasks(session.ledger)
    for task in listed:
        pull = _pull_for(task, pulls, config.branch_prefix)
        if pull is not None:
            reason = "has an open pull request" if pull.state == "open" else "was merged" if pull.merged else "was closed without merging"
            session.say(f"Skipping '{task.text}': {reason} ({pull.url})")
        elif health.task_key(task.text) in parked:
            session.say(f"Skipping '{task.text}': parked after repeated failures (edit its text to retry)")
        else:
            for line in intake.describe(task):
                session.say(line)
            return task
    where = config.tasks_file + (f" or open issues labelled {config.intake_label}" if config.intake_enabled else "")
    raise PolicyStop(f"No task left in {where}: add a '- [ ] …' line to give the bot work.", "no_task")


def _pull_for(task: tasks.Task, pulls: list[github.BotPull], prefix: str) -> github.BotPull | None:
    """The bot PR that decides a task's fate: an open one first, then a merged one, then a rejected one.

    A PR whose marker a human removed from the body still belongs to its task by its branch.
    """
    branch = f"{prefix}{tasks.slug(task.text)}"
    matching = [pull for pull in pulls if intake.belongs(pull, task, branch)]
    return min(matching, key=lambda pull: (pull.state != "open", not pull.merged), default=None)


def _paid_call(
    session: Session, step: str, model: str, bound: Callable[[float], int], max_tokens: int,
    send: Callable[[float], ModelReply],
) -> ModelReply:
    """Bound the input, then reserve, make and book each attempt (``attempts.make_call``): each
    attempt is on the ledger branch at its worst case before it starts (``Reserver.cover``), and
    in the ledger and on disk once made, so a crash after a paid call loses nothing."""
    price = session.config.price(model)
    ledgering = attempts.Ledgering(
        ledger=lambda: session.ledger, budget_micro_usd=session.config.monthly_budget_micro_usd,
        book=lambda call: session.save(replace(session.record, calls=session.record.calls + (call,))),
        cover=lambda in_flight: session.reserver.cover(session.ledger, session.record.task, in_flight),
    )
    reply = attempts.make_call(
        attempts.Call(step=step, price=price, max_tokens=max_tokens, bound=bound, send=send), ledgering,
        session.deadline, timeout=session.config.request_timeout_seconds, sleep=session.sleep, say=session.say,
    )
    booked = session.record.calls[-1]
    thought = f" ({booked.usage.reasoning_tokens:,} thinking)" if booked.usage.reasoning_tokens else ""
    session.say(f"{step}: {price.model} {booked.usage.input_tokens:,} in / {booked.usage.output_tokens:,} out{thought}, {format_usd(booked.cost_micro_usd, 4)}")
    return reply


def _unless_cut(session: Session, step: str, model: str, effort: str, call: Callable[[int, str], str]) -> str:
    """``call(max_tokens, effort)``, but a reply cut at max_tokens is never used.

    A cut reply gets one retry with room to finish: twice the cap (within the model's limit)
    and the next lower effort, where the model takes one. If that retry is cut too, or the
    budget cannot afford it, the step fails, and the failure counts toward parking the task.
    """
    from ..models.providers import TruncatedReplyError

    price = session.config.price(model)
    cap = session.config.output_cap(model)
    try:
        return call(cap, effort)
    except TruncatedReplyError as cut:
        bigger = min(cap * 2, price.max_output_tokens or cap * 2)
        lower = _lower_effort(effort, price.efforts)
        if (bigger, lower) == (cap, effort):
            raise
        what = f"max_tokens {bigger:,}" + (f" and effort {lower}" if lower != effort else "")
        session.say(f"{step}: {model} stopped at max_tokens ({cap:,}, {cut.reply.usage.reasoning_tokens:,} of them "
                    f"thinking); the cut-off reply is not used; retrying once with {what}")
        try:
            text = call(bigger, lower)
        except budget.BudgetStop as stop:
            raise TruncatedReplyError(
                f"{cut.message} The budget cannot afford a retry with more room ({stop.message}).",
                provider=price.provider, reply=cut.reply, max_tokens=cap,
            ) from None
    session.notes.append(f"The {step} reply from {model} was cut off at max_tokens ({cap:,}) and not used; "
                         f"the reply used here came from one retry with {what}.")
    return text


def _lower_effort(effort: str, efforts: tuple[str, ...]) -> str:
    """The next lower effort level the model takes (the same one at the bottom or when it takes none)."""
    if effort not in efforts:
        return effort
    return efforts[max(0, efforts.index(effort) - 1)]


def analysis_prompt(task: str, repo_context: context.RepoContext, secrets: list[str]) -> str:
    """The analysis request's user message, exactly as sent (the system prompt is ANALYSIS_SYSTEM):
    the repository first and the task last, so the start is the same for every request on the
    same context (what a prompt cache can reuse, ``_cache_prefix``)."""
    return redact(f"{_repository_part(repo_context)}# Task\n{task}", secrets)


def _repository_part(repo_context: context.RepoContext) -> str:
    return f"# Repository\n{context.render_context(repo_context)}\n\n"


def _cache_prefix(session: Session, model: str, prompt: str, repo_context: context.RepoContext) -> str:
    """The start of ``prompt`` to mark for Anthropic's cache, or "" where marking does not pay
    (``caching.choose`` on this month's reuse of the analysis on ``model``); said in the log."""
    prefix = redact(_repository_part(repo_context), session.secrets)
    if not prompt.startswith(prefix):  # redaction reached across the boundary: nothing stable to mark
        return ""
    tokens = context.estimate_tokens(ANALYSIS_SYSTEM) + context.estimate_tokens(prefix)
    reuses = caching.reuse_rate(session.ledger, "analysis", model)
    choice = caching.choose(session.config.prompt_cache, session.config.price(model), tokens, reuses)
    session.say(f"analysis: prompt cache {'marked' if choice.mark else 'not marked'} ({choice.reason})")
    return prefix if choice.mark else ""


def _analyse(session: Session, task: str, repo_context: context.RepoContext) -> str:
    from ..models import providers  # the SDKs take seconds to import: only runs that call a model load them

    config = session.config
    prompt = analysis_prompt(task, repo_context, session.secrets)

    def attempt(model: str, untyped: object) -> str:
        client = cast("anthropic.Anthropic", untyped)  # _client made it for this model's provider
        cache_prefix = _cache_prefix(session, model, prompt, repo_context)

        def bound(timeout: float) -> int:  # Anthropic's free count: the first request to fail in an outage
            found = providers.anthropic_input_bound(providers.with_timeout(client, timeout), model, ANALYSIS_SYSTEM, prompt)
            if found.note:
                session.say(found.note)
            return budget.padded_anthropic_count(found.tokens) if found.counted else found.tokens

        def call(cap: int, effort: str) -> str:
            options = providers.claude_options(config.price(model), effort, config.analysis_thinking)
            return _paid_call(
                session, "analysis", model, bound, cap,
                lambda timeout: providers.analyse(
                    providers.with_timeout(client, timeout), model, ANALYSIS_SYSTEM, prompt, cap, options=options,
                    clock=session.clock, cache_prefix=cache_prefix,
                ),
            ).text

        return _unless_cut(session, "analysis", model, config.analysis_effort, call)

    return _with_fallbacks(session, "analysis", config.analysis_model, config.analysis_fallbacks, attempt)


def _describe_localise(config: Config, model: estimate.RunModel) -> str:
    """The dry run's line on the localisation call: made or not, and why."""
    if model.localise_tokens:
        return (f"Localisation: a run first asks {config.code_model} ({model.localise_tokens:,} tokens of candidates and map) "
                "which files and functions the task changes, and puts them first; a dry run makes no call, so the files "
                "above are ranked without it")
    if not config.context_localise:
        return "Localisation: off (context.localise)"
    if config.batch:
        return "Localisation: not in batch mode (models.batch), whose context is built twice"
    return f"Localisation: not needed on a repository of fewer than {localise.MIN_FILES} files"


def _localise(session: Session, task: str) -> context.Locations | None:
    """The localisation call (``repo/localise.py``) on the code model's chain, on a repository of
    at least ``localise.MIN_FILES`` files when ``config.localises``; None when not made.

    A reply that is billed but unusable (cut off, refused, no JSON) leaves the ranking as it
    was; any other provider failure fails the run as the code step would.
    """
    from ..models import providers

    config = session.config
    found = localise.brief(session.repo, task, _private_paths(config)) if config.localises else None
    if found is None:
        return None
    messages = _redacted(session, [{"role": "system", "content": localise.SYSTEM}, {"role": "user", "content": found.text}])
    bound = providers.openai_input_token_bound(messages, None)

    def attempt(model: str, untyped: object) -> str:
        client = cast("openai.OpenAI", untyped)  # _client made it for this model's provider
        reasoning = config.code_reasoning_effort if config.code_reasoning_effort in config.price(model).efforts else None
        return _paid_call(
            session, "localise", model, lambda _timeout: bound, localise.MAX_TOKENS,
            lambda timeout: providers.write_code(
                providers.with_timeout(client, timeout), model, messages, localise.MAX_TOKENS, reasoning_effort=reasoning,
                clock=session.clock,
            ),
        ).text

    try:
        reply = _with_fallbacks(session, "localise", config.code_model, config.code_fallbacks, attempt)
    except providers.InvalidReplyError as error:
        session.say(f"localise: the reply was not usable ({error.kind}); the context is ranked without it")
        return None
    locations, note = localise.parse(reply, found.offered)
    files = f" ({', '.join(locations.files)})" if locations.files else ""  # paths the prompt offered, names that are one word
    functions = f" ({', '.join(name for _, name in locations.symbols)})" if locations.symbols else ""
    session.say(f"localise: {plural(len(locations.files), 'file')}{files} and {plural(len(locations.symbols), 'function')}{functions} "
                f"named" + (f"; {note}" if note else ""))
    return locations


def _submit_analysis(session: Session, task: str, repo_context: context.RepoContext) -> NoReturn:
    """The analysis as a one-request Message Batch (``batch.submit``), on the first model of the
    chain: raises PolicyStop ``batch_submitted`` once it is held and submitted."""
    from ..models import providers

    config = session.config
    model = health.chain(session.ledger, config, config.analysis_model, config.analysis_fallbacks, session.now)[0]
    prompt = analysis_prompt(task, repo_context, session.secrets)
    client = cast("anthropic.Anthropic", _client(session, model))
    found = providers.anthropic_input_bound(client, model, ANALYSIS_SYSTEM, prompt)
    bound = budget.padded_anthropic_count(found.tokens) if found.counted else found.tokens
    cap = config.output_cap(model)
    options = providers.claude_options(config.price(model), config.analysis_effort, config.analysis_thinking)
    batch.submit(session, client, model, "analysis", providers.analysis_params(model, ANALYSIS_SYSTEM, prompt, cap, options), bound, cap)


def _submit_code(session: Session, messages: list[dict], collected: batch.Outcome) -> NoReturn:
    """The code request as a one-request OpenAI batch (``batch.submit``) on the first model of
    the chain, with the same parameters as the synchronous call; its metadata names the
    analysis batch the plan came from. Raises PolicyStop ``batch_submitted`` once it is held and submitted."""
    from ..models import providers

    config = session.config
    model = health.chain(session.ledger, config, config.code_model, config.code_fallbacks, session.now)[0]
    messages = _redacted(session, messages)
    cap = config.output_cap(model)
    effort = config.code_reasoning_effort if config.code_reasoning_effort in config.price(model).efforts else None
    metadata = {batch.ANALYSIS_BATCH: collected.analysis_batch, batch.ANALYSIS_MODEL: collected.analysis_model}
    batch.submit(session, _client(session, model), model, "code", providers.code_params(model, messages, cap, effort),
                 providers.openai_input_token_bound(messages, None), cap, metadata)


def _write_code(
    session: Session, task: str, analysis: str, repo_context: context.RepoContext, root: Path | None = None,
    collected: batch.Outcome | None = None,
) -> edits.EditPlan:
    """Ask for SEARCH/REPLACE edits within the prompt bound; one repair request for what could not be used;
    then the repository's checks, and their repairs (``verify.checked``).

    ``root`` is the tree the edits apply to: the checkout, or a follow-up's checkout of the PR branch.
    ``collected``, in batch mode: without its code reply, the code request is submitted as a
    batch (the run ends); with it, that reply is the first answer, and repairs are synchronous.
    """
    config = session.config
    root = root or session.repo
    named = _named_files(root, analysis, repo_context, _private_paths(config))
    bound = coding.prompt_bound(config.code_max_input_tokens, config.price(config.code_model).context_window, config.code_max_tokens)
    prompt = coding.code_prompt(task, analysis, named, bound)
    if prompt.excerpted or prompt.left_out:
        session.say(f"code: prompt bound {bound:,} tokens; sent in part: {', '.join(prompt.excerpted) or 'none'}; "
                    f"left out: {', '.join(prompt.left_out) or 'none'}")
    rules = edits.EditRules(ledger_path=config.ledger_path, tasks_path=config.tasks_file, deny=config.edits_deny,
                            config_path=_config_path_in_repo(session.repo, config), secrets=tuple(session.secrets))
    if collected is not None and collected.code is None:
        _submit_code(session, prompt.messages, collected)
    replies = [collected.code] if collected is not None and collected.code is not None else []

    def ask(messages: list[dict]) -> str:  # the batch's reply first, if there is one
        return replies.pop() if replies else _code_call(session, messages)

    draft = coding.write_edits(ask, prompt.messages, root, rules, session.say, analysis=analysis)
    return verify.checked(session, draft, ask, prompt.messages, root)


def _code_call(session: Session, messages: list[dict]) -> str:
    from ..models import providers

    config = session.config
    messages = _redacted(session, messages)
    bound = providers.openai_input_token_bound(messages, None)

    def attempt(model: str, untyped: object) -> str:
        client = cast("openai.OpenAI", untyped)  # _client made it for this model's provider

        def call(cap: int, effort: str) -> str:
            reasoning = effort if effort in config.price(model).efforts else None  # older models refuse it
            return _paid_call(
                session, "code", model, lambda _timeout: bound, cap,
                lambda timeout: providers.write_code(
                    providers.with_timeout(client, timeout), model, messages, cap, reasoning_effort=reasoning,
                    clock=session.clock,
                ),
            ).text

        return _unless_cut(session, "code", model, config.code_reasoning_effort, call)

    return _with_fallbacks(session, "code", config.code_model, config.code_fallbacks, attempt)


def _redacted(session: Session, messages: list[dict]) -> list[dict]:
    """The code messages as sent: every secret the run knows masked."""
    return [{**message, "content": redact(message["content"], session.secrets)} for message in messages]


def _with_fallbacks(
    session: Session, step: str, primary: str, fallbacks: tuple[str, ...], attempt: Callable[[str, object], str]
) -> str:
    """Try the step's models in order; only retryable failures (after the SDK's own retries) fail over."""
    models = health.chain(session.ledger, session.config, primary, fallbacks, session.now)
    for index, model in enumerate(models):
        try:
            return attempt(model, _client(session, model))
        except ProviderError as error:
            if not error.retryable or index == len(models) - 1:
                raise
            session.say(f"{step}: {model} failed ({error.kind}); falling back to {models[index + 1]}")
    raise AssertionError("health.chain returns at least one model or raises")


def _client(session: Session, model: str) -> object:
    """SDK clients are made on first use, so a run that stops early never builds one. They
    make no retries: ``attempts.make_call`` does, with a reservation and a deadline check each."""
    from ..models import providers

    if session.config.price(model).provider == ANTHROPIC:
        session.anthropic_client = session.anthropic_client or providers.make_anthropic_client(session.env, max_retries=0)
        return session.anthropic_client
    session.openai_client = session.openai_client or providers.make_openai_client(session.env, max_retries=0)
    return session.openai_client


_PATH_IN_BACKTICKS = re.compile(r"`([^`\s]+)`")


def _named_files(repo: Path, analysis: str, repo_context: context.RepoContext, private: tuple[str, ...]) -> dict[str, str]:
    """Repository files the analysis names, read for the code step (never private ones)."""
    named: dict[str, str] = {}
    for candidate in dict.fromkeys(_PATH_IN_BACKTICKS.findall(analysis)):
        if candidate in repo_context.files:
            named[candidate] = repo_context.files[candidate]
        elif context.is_sendable(repo, candidate, private, max_bytes=coding.MAX_READ_BYTES):  # big ones go in part
            named[candidate] = (repo / candidate).read_text(encoding="utf-8")
    return named


def _open_pull_request(
    session: Session, remote: Repository, task: tasks.Task, analysis: str, plan: edits.EditPlan, answered: str | None = None
) -> github.BotPull:
    """Commit, push and open the PR; ``answered`` is the analysis model (default: this run's analysis call's)."""
    config, repo, env = session.config, session.repo, session.env
    default = gitops.remote_default_branch(repo, env)
    gitops.fetch(repo, default, env)
    changes = edits.changes(plan)
    tasks_text = gitops.remote_file(repo, f"origin/{default}", config.tasks_file, env)
    if tasks_text is not None and task.line:
        try:
            changes[config.tasks_file] = tasks.tick(tasks_text.decode("utf-8"), task).encode("utf-8")
        except ValueError:
            session.say(f"note: '{task.text}' is no longer unticked in {config.tasks_file} on {default}; not ticking it")
    branch = gitops.free_branch_name(repo, f"{config.branch_prefix}{tasks.slug(task.text)}", env)
    message = f"{_title(session, task)}\n\n{redact(plan.summary, session.secrets)}\n\n{OPENED_BY}"
    sha = gitops.commit_changes(repo, f"origin/{default}", changes, message, env=env)
    gitops.push(repo, sha, branch, env)
    session.say(f"Pushed {branch}")
    answered = answered or next(c.model for c in reversed(session.record.calls) if c.step == "analysis" and c.outcome == "ok")
    saved = caching.run_saving_note(session.record.calls, config.price)
    if saved:
        session.say(saved)
        session.notes.append(saved)
    body = partial(
        reports.pull_request_body,
        summary=github.neutralise_markers(plan.summary), analysis=github.neutralise_markers(analysis), analysis_model=answered,
        files=[(edit.path, edit.action) for edit in plan.edits], record=session.record,
        refused=tuple(github.neutralise_markers(reason) for reason in plan.refused),
        budget_micro_usd=config.monthly_budget_micro_usd, link=reports.run_url(env),
        marker=intake.footer(task), notes=tuple(session.notes), checks=session.checks.result,
    )
    return _open_with_receipt(session, remote, task, branch, default, lambda ledger: redact(body(ledger=ledger), session.secrets))


def _open_with_receipt(
    session: Session, remote: Repository, task: tasks.Task, head: str, base: str, body: Callable[[Ledger], str]
) -> github.BotPull:
    """Open the PR with ``body(ledger)``, its receipt corrected after the ledger commit (``Posted``)."""
    config = session.config
    text = body(session.ledger)
    failed = session.checks.result is not None and session.checks.result.result == "failed"
    pr = github.open_pull_request(remote, title=_title(session, task), body=text, head=head, base=base, labels=config.pr_labels,
                                  draft=config.pr_draft or (failed and config.verify_on_failure == "draft"))
    session.posted.append(Posted(pr.url, text, body, partial(github.edit_pull_body, remote, pr.number)))
    session.say(f"Opened {pr.url}")
    return pr


def _title(session: Session, task: tasks.Task) -> str:
    """The PR title and commit subject: the task, secrets masked, within GitHub's title limit."""
    return redact(task.text, session.secrets)[:250]


def _resume_pushed_branch(
    session: Session, remote: Repository, task: tasks.Task, pulls: list[github.BotPull]
) -> github.BotPull | None:
    """The PR for a branch an earlier run pushed for ``task`` but could not open a PR for
    (GitHub answered 403, 422 or 5xx): opened now, with no model called again. None when
    there is no such branch: the bot's own commit, subject the task's title, and no PR from it.
    """
    config, repo, env = session.config, session.repo, session.env
    claimed = {pull.head for pull in pulls}
    base = f"{config.branch_prefix}{tasks.slug(task.text)}"
    for branch in gitops.remote_branches(repo, base, env):
        if branch in claimed or not github.is_task_branch(branch, base):
            continue
        tip = gitops.fetch(repo, branch, env)
        assert tip is not None
        author, message = gitops.commit_message(repo, tip, env)
        subject, _, rest = message.partition("\n")
        if author != gitops.BOT_EMAIL or subject != _title(session, task) or not message.endswith(OPENED_BY):
            continue
        default = gitops.remote_default_branch(repo, env)
        gitops.fetch(repo, default, env)
        paid = next((run for run in reversed(session.ledger.runs)
                     if run.task == session.record.task[: ledger_module.TASK_TEXT_KEPT] and run.outcome.startswith("failed:")), None)
        body = partial(
            reports.resumed_pull_request_body,
            summary=github.neutralise_markers(rest.removesuffix(OPENED_BY).strip()),
            files=gitops.changed_files(repo, tip, env), record=paid,
            budget_micro_usd=config.monthly_budget_micro_usd, link=reports.run_url(env), marker=intake.footer(task),
        )
        session.say(f"Found {branch}, pushed by an earlier run whose pull request was not opened; opening it now")
        return _open_with_receipt(session, remote, task, branch, default,
                                  lambda ledger: redact(body(ledger=ledger), session.secrets))
    return None


def _close_run(
    session: Session, notifier: Notifier, outcome: str, error: AutomationError | None, refused: budget.BudgetStop | None
) -> None:
    """Record the outcome and commit the ledger, then report the run from the ledger as committed
    (merged with what overlapping runs committed): the job summary, Discord, and the receipts
    already posted on GitHub. Runs even when a step failed. A ledger that could not reach its
    branch is said in all three, and fails the run once reported."""
    if session.record.calls:
        session.save(replace(session.record, outcome=outcome))
    session.ledger = health.after_run(session.ledger, session.record, session.record.task, outcome, session.config, session.now)
    announce = partial(
        alerts.after_run, config=session.config, record=session.record, outcome=outcome,
        error_kind=getattr(error, "kind", error.step if error else None),
        error_message=redact(error.message, session.secrets) if error else None, now=session.now,
        repository=session.repository, run_url=reports.run_url(session.env), stop=refused, notes=tuple(session.notes),
        checks=session.checks.result,
    )
    ledger, embeds = announce(session.ledger)
    failure: AutomationError | None = None
    rescued = False
    try:
        if ledger != session.base_ledger or session.reserver.held is not None:
            ledger, embeds, failure = _commit_ledger(session, announce)
            rescued = failure is not None
            if not rescued:
                _leave_checkout_pullable(session)
    except AutomationError as unrecorded:
        failure = unrecorded
        raise
    finally:
        session.ledger = ledger
        if failure is not None:
            where = _ledger_elsewhere(session, failure, rescued)
            session.say(where)
            session.notes.append(where)
            embeds.append(discord.run_failed_embed(
                repository=session.repository, now=session.now, step="ledger", error_kind="ledger_refused", message=where,
                run_url=reports.run_url(session.env), task=session.record.task or None, secrets=session.secrets,
            ))
        if outcome != HANDED_OVER:  # the full run writes it
            _write_job_summary(session, outcome, error)
        notifier.notify(embeds)  # Discord last: a slow webhook (a 429 asking for a minute) must not hold the ledger back
    _correct_posted(session)
    if failure is not None:
        raise failure


def _commit_ledger(
    session: Session, announce: Callable[[Ledger], tuple[Ledger, list[alerts.Embed]]]
) -> tuple[Ledger, list[alerts.Embed], AutomationError | None]:
    """Commit the ledger to its branch, merged with what other runs committed meanwhile, the run's
    alerts decided on that merge; refused there, to the rescue branch. Returns the ledger as
    committed, the alerts, and the refusal when it went to the rescue branch. Raises GitError
    when neither branch takes it."""
    path = session.ledger_file
    ledger_module.save(session.ledger, path)
    said: list[list[alerts.Embed]] = []

    def finish(view: Ledger) -> Ledger:
        committed, embeds = announce(view)
        said.append(embeds)
        return committed

    message = f"ai-orchestration: ledger for run {session.record.id} ({format_usd(session.record.cost_micro_usd, 4)})"
    settled = session.reserver.settle(session.ledger, finish, message)
    ledger_module.save(settled.ledger, path)  # the checkout holds what was committed
    if settled.refused is None:
        session.say(f"Ledger committed to {settled.branch}")
    return settled.ledger, said[-1], settled.refused


def _ledger_elsewhere(session: Session, failure: AutomationError, rescued: bool) -> str:
    """Where the run's spend is when its ledger did not reach its branch, in one line for the
    log, the job summary and Discord."""
    if rescued:
        return (f"The ledger could not go to its branch ({failure.message}); it was committed to branch "
                f"{ledger_source.RESCUE_BRANCH} instead, which every run merges back in, so no spend is lost.")
    held = session.reserver.held
    if held is None or not session.record.calls:
        return f"The ledger could not be committed ({failure.message}); this run called no model, so nothing is lost."
    return (f"The ledger could not be committed ({failure.message}). This run's calls up to the last one it started "
            f"(that one at its worst case) are on {session.reserver.branch} with its reservation, which every later run "
            f"books as spent once it expires ({held.expires_at}).")


def _correct_posted(session: Session) -> None:
    """Receipts already on GitHub, rendered again from the ledger as committed; updated where they differ."""
    for posted in session.posted:
        text = posted.render(session.ledger)
        if text == posted.text:
            continue
        try:
            posted.update(text)
        except AutomationError as failed:
            session.say(f"warning: could not update the cost receipt on {posted.where} to the month as committed: {failed.message}")
        else:
            session.say(f"Updated the cost receipt on {posted.where} to the month as committed")


def _leave_checkout_pullable(session: Session) -> None:
    """Outside Actions, once the ledger is committed, put the checkout's copy back as the
    checked-out commit has it: an untracked or changed copy would make the next `git pull`
    abort. In Actions the copy stays for the dashboard step, and the checkout is thrown away."""
    path = session.config.ledger_path
    if session.ledger_root not in (None, session.repo):
        return  # a shared ledger's copy lives in this checkout's .git, not its work tree
    if session.env.get("GITHUB_ACTIONS") != "true" and gitops.restore_to_head(session.repo, path, session.env):
        session.say(f"{path} in this checkout is left as it was: `git pull` brings the committed one")


def _write_job_summary(session: Session, outcome: str, error: AutomationError | None) -> None:
    text = reports.job_summary(
        task=session.record.task, outcome=outcome, pr_url=session.record.pr_url, error=error.message if error else None,
        record=session.record, ledger=session.ledger, budget_micro_usd=session.config.monthly_budget_micro_usd,
        notes=tuple(session.notes), checks=session.checks.result,
    )
    _write_summary(session.env, text)


def _write_summary(env: Mapping[str, str], text: str) -> None:
    """Append to the Actions job summary (``GITHUB_STEP_SUMMARY``), when there is one."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(redact(text, secret_values(env)))


def dry_run(
    *, repo: Path, config_path: Path | None, task_text: str | None, env: Mapping[str, str], now: dt.datetime, out: TextIO,
    show_prompt: bool = False,
) -> int:
    """What a run would do: no keys, no network, no writes (but the job summary, in Actions).
    ``show_prompt`` adds the analysis request exactly as a run would send it."""
    config = load_config(config_path, repo, now.date())
    loaded = ledger_module.load(repo / config.ledger_path, now, config.monthly_budget_micro_usd, root=repo)
    ledger = ledger_module.as_of(loaded, now)
    pending = tasks.read_tasks(tasks.load(repo, config.tasks_file))
    task = tasks.Task(tasks.task_text(task_text), 0) if task_text is not None else (pending[0] if pending else None)
    lines = ["Dry run: no keys, no network, nothing written."]
    if config.ledger_repository is not None:
        lines.append(f"The ledger is shared through {config.ledger_repository} (ledger.repository), whose own config sets the "
                     "budget; the dry run does not fetch it, so the budget lines below are this checkout's: "
                     "`status` shows the organisation's month.")
    prompt: list[str] = []  # with show_prompt, the analysis request, last
    paused = config.paused_by(env)
    if paused:
        lines.append(f"Paused: {paused}. A real run stops before any work (exit 0); once resumed it would do this:")
    if task is None:
        lines.append(f"No task left in {config.tasks_file}: the run would stop here (exit 0).")
    else:
        repo_context = context.build_context(repo, task.brief, config.context_max_tokens, _private_paths(config))
        model = estimate.RunModel.of_context(repo_context.tokens, task.text, estimate.localise_tokens(repo, task.brief, config))
        cost = model.cost(config)
        worst, first = budget.run_reservation(config, estimate.PROMPT_OVERHEAD_TOKENS)
        left = budget.remaining_micro_usd(ledger, config.monthly_budget_micro_usd)
        lines += [
            f"Task: {task.text}",
            *(f"  {step}" for step in task.steps),
            f"  ({plural(len(pending), 'unticked task')} in {config.tasks_file}; open or rejected bot PRs are skipped in a real run)",
            f"Context: {plural(len(repo_context.files), 'file')}, {repo_context.tokens:,} of {config.context_max_tokens:,} tokens",
            *context.describe(repo_context).splitlines(),
            _describe_localise(config, model),
            f"Models: {config.analysis_model} (analysis), {config.code_model} (code)",
            f"Cost of this run: about {format_usd(cost.typical, 4)}, at most {format_usd(worst, 4)} (what it reserves)",
            f"  ({model.assumptions()})",
            f"Budget left in {ledger.month}: {format_usd(left)} of {format_usd(config.monthly_budget_micro_usd)}"
            f" ({reports.progress_bar(ledger.spent_micro_usd, config.monthly_budget_micro_usd)})",
            *(f"Budget left {window.describe()}: {format_usd(window.left_micro_usd)}"
              for window in windows.current(config, ledger, now) if window.name != windows.MONTH),
        ]
        try:
            windows.check_start(config, ledger, now, "", *budget.run_reservation(config, estimate.PROMPT_OVERHEAD_TOKENS))
        except budget.BudgetStop as stop:
            lines.append(f"The budget would stop this run before its first call (exit 0): {stop.message}")
        else:
            if worst > left:
                lines.append("Less than its worst case is left: the run would start, but the budget may stop it before a later call.")
        lines += batch.describe(config, ledger, model)
        lines += verify.describe(repo, config, env)
        lines += config.retirement_warnings(now.date()) + [f"note: {note}" for note in config.retirement_notes()]
        if show_prompt:
            prompt = [
                f"--- the analysis request to {config.analysis_model}: system prompt ---", ANALYSIS_SYSTEM,
                "--- user message ---", analysis_prompt(task.brief, repo_context, secret_values(env)),
                "--- end (the code step's prompt is built from the analysis reply, so no dry run can show it) ---",
            ]
    if config.intake_enabled:
        lines.append(f"Open issues labelled {config.intake_label} by a trusted account are tasks too "
                     f"(intake.order: {config.intake_order}); a dry run reads no issues (no network).")
    lines += prompt
    out.write("".join(f"{line}\n" for line in lines))
    _write_summary(env, reports.dry_run_summary(lines[1:]))
    return EXIT_OK
