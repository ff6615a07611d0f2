"""The follow-up step: before any new task, one of the bot's open PRs gets the work it asks for.

``first`` walks the open bot PRs oldest first. It reads each one's checks and comments
(GitHub), decides with ``followups`` (pure), and for the first PR that needs a fix-up runs the
same analysis, code and edit-check steps a new task uses, in a temporary checkout of the PR's
branch, pushes one new commit on the branch (never a force-push) and replies on the PR with
the step's cost receipt. Then the run ends (``FollowUpDone``): one follow-up per run, and new
tasks wait. A PR someone else pushed to, or labelled as taken over, is never pushed to; a PR
out of attempts is labelled for a human. Both get one reply, and cost nothing.

Requests count only from trusted accounts (``repo/trust.py``). Anyone else's is noted once, for
free, before anything is reserved: a log line, the ledger's ``notified.untrusted`` list, and
(``follow_ups.untrusted_reply``) at most one short note on the PR. A PR made for an issue
(``repo/intake.py``) whose issue was closed or lost its label is left to humans.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import NoReturn

from github.Repository import Repository

from ..core import secret_scan
from ..core.errors import AutomationError, PolicyStop
from ..core.redact import redact
from ..money import budget, spend
from ..money.ledger import Ledger
from ..repo import context, edits, github, gitops, intake, tasks
from ..repo.trust import Trust
from ..reporting import reports
from . import followups, verify
from .session import Posted, Session

Analyse = Callable[[Session, str, context.RepoContext], str]
WriteCode = Callable[[Session, str, str, context.RepoContext, Path], edits.EditPlan]
PLAN_MAX_CHARS = 6_000


class FollowUpDone(PolicyStop):
    """Not an error: this run's one piece of work was a follow-up, so no new task starts."""


def first(
    session: Session, remote: Repository, pulls: list[github.BotPull], *, analyse: Analyse, write_code: WriteCode,
    hand_over: Callable[[str], NoReturn] | None = None,
) -> None:
    """Follow-ups first: fix one open bot PR that needs it and raise ``FollowUpDone``; return
    when none does. Raises BudgetStop before a call the budget cannot afford, like any step.
    ``hand_over`` (``run --decide-only``: no keys, no SDKs) is called instead of a fix-up."""
    config = session.config
    if not config.follow_ups_enabled:
        return
    trust = Trust(remote, config)
    for pull in sorted((p for p in pulls if p.state == "open"), key=lambda p: p.number):
        if config.follow_up_needs_human_label in pull.labels:  # work_for says so too; this saves the API calls
            continue
        gone = intake.issue_gone(remote, config, pull.issue) if pull.issue is not None else None
        if gone:
            session.say(f"Follow-up: #{pull.number} is for issue #{pull.issue}, which {gone}; left to humans")
            continue
        checks = github.checks(remote, pull.head_sha) if pull.head_sha else ()
        comments = github.comments(remote, pull.number)
        trusted = _trusted_authors(session, remote, trust, pull, comments)
        work = followups.work_for(pull, checks, comments, config, session.ledger, trusted)
        if work is None:
            if any(check.state == "pending" for check in checks):
                session.say(f"Follow-up: #{pull.number} has checks still running; looking again next run")
            continue
        foreign = github.foreign_commits(github.pull_commits(remote, pull.number), gitops.BOT_EMAIL)
        decision = followups.decide(work, foreign, config)
        session.say(f"Follow-up: #{pull.number} ({pull.url}): {work.describe()}")
        if decision.action == "fix":
            if hand_over is not None:
                hand_over(f"a follow-up on {pull.url}")
            outcome = _fix(session, remote, decision, analyse, write_code)
            raise FollowUpDone(f"Follow-up on {pull.url} finished ({outcome}); new tasks wait for the next run.", outcome)
        _leave(session, remote, decision)


def _trusted_authors(
    session: Session, remote: Repository, trust: Trust, pull: github.BotPull, comments: tuple[github.Comment, ...]
) -> set[str]:
    """The authors of the PR's open requests who may direct the bot; the others' requests are
    noted once (log, ledger, one short reply at most) and cost nothing."""
    verdicts = {c.author: trust.check(c.author, c.association) for c in followups.candidates(pull, comments, session.config)}
    trusted = {login for login, verdict in verdicts.items() if verdict.trusted}
    noted = session.ledger.notified.get("untrusted", [])
    ignored = followups.untrusted(pull, comments, session.config, trusted, noted)
    if not ignored:
        return trusted
    for comment in ignored:
        session.say(f"Follow-up: #{pull.number}: not acting on the {comment.kind} by @{comment.author} "
                    f"({comment.url}): @{comment.author} {verdicts[comment.author].reason}")
    session.ledger = session.ledger.with_notified("untrusted", sorted({*noted, *(followups.noted_key(pull, c) for c in ignored)}))
    if session.config.untrusted_reply and not followups.noted_untrusted_before(pull, comments):
        session.say(f"Replied: {github.comment(remote, pull.number, followups.untrusted_reply(ignored))[0]}")
    return trusted


def _leave(session: Session, remote: Repository, decision: followups.Decision) -> None:
    """No push: a human owns the branch, or the attempts are used up. Reply once, for free."""
    work, config = decision.work, session.config
    if decision.action == "give_up":
        github.add_labels(remote, work.pull.number, [config.follow_up_needs_human_label])
        result = (f"Not trying again: {decision.reason}. Labelled `{config.follow_up_needs_human_label}`; "
                  "over to a human.")
        session.say(f"Follow-up: #{work.pull.number}: {decision.reason}; labelled {config.follow_up_needs_human_label}")
    elif work.requests:
        result = f"Not pushing to this branch: {decision.reason}. Humans win; the bot leaves the change to you."
        session.say(f"Follow-up: #{work.pull.number}: not pushing, {decision.reason}")
    else:
        session.say(f"Follow-up: #{work.pull.number}: not pushing, {decision.reason}")
        return
    _reply(session, remote, decision, result=result, summary="", attempt=False)


def _fix(session: Session, remote: Repository, decision: followups.Decision, analyse: Analyse, write_code: WriteCode) -> str:
    """Analysis and code on the PR's branch, one new commit, one reply; returns the run's outcome."""
    config, repo, env = session.config, session.repo, session.env
    pull = decision.work.pull
    default = gitops.remote_default_branch(repo, env)
    tip = gitops.fetch(repo, pull.head, env)
    assert tip is not None
    listed = _listed_task(session, pull, default)
    task = listed or pull.title
    session.record = replace(session.record, task=task, kind="follow_up", pull=pull.number, pr_url=pull.url)
    logs = {
        check.name: redact(followups.failure_excerpt(
            github.job_log(remote, check.job_id, max_bytes=config.follow_up_log_max_chars * 8), config.follow_up_log_max_chars,
        ), session.secrets)
        for check in decision.work.failed if check.job_id is not None
    }
    diff = followups.bounded(github.pull_diff(remote, pull.number), config.follow_up_diff_max_chars)
    plan = redact(followups.original_plan(pull.body, PLAN_MAX_CHARS), session.secrets)
    asked = followups.prompt(task, decision, logs, diff, plan, base=default, max_attempts=config.follow_up_max_attempts,
                             task_is_data=listed is None)
    for removed in asked.removed:
        session.say(f"Follow-up: hidden text kept from the models: {removed}")
    text = redact(asked.text, session.secrets)  # comments and reviews included: nothing secret reaches a model
    text, found = secret_scan.redact(text)  # nor a credential of anyone else's that a log, diff or comment shows
    if found:
        session.say(f"Follow-up: withheld what looks like secrets from the prompt ({secret_scan.summary(found)})")
    verify.baseline(session, repo, f"origin/{default}")  # the default branch's checks, before any paid call
    # Reserved and claimed on the ledger branch like a task, so an overlapping run neither
    # overspends nor works on the same pull request; the prompt's characters bound its tokens.
    session.reserver.reserve(session.ledger, f"follow-up on {pull.url}", *budget.run_reservation(config, len(text)))
    private = config.private_paths()
    try:
        with gitops.worktree(repo, tip, env) as tree:
            repo_context = context.build_context(tree, text, config.context_max_tokens, private)
            analysis = analyse(session, text, repo_context)
            plan_edits = write_code(session, text, analysis, repo_context, tree)
        changes = edits.changes(plan_edits)
        if changes:
            message = redact(f"Follow-up: {decision.work.describe()}\n\n{plan_edits.summary}\n\nPushed by ai-orchestration.", session.secrets)
            sha = gitops.commit_changes(repo, tip, changes, message, env=env)
            gitops.push(repo, sha, pull.head, env)  # fast-forward only: a branch that moved refuses it
            session.say(f"Pushed {sha[:7]} to {pull.head}")
            files = "\n".join(f"- `{edit.path}` ({edit.action})" for edit in plan_edits.edits)
            result = f"Pushed {sha[:7]} to `{pull.head}`:\n\n{files}{_checks(session)}"
        else:
            result = "No change: the model proposed no edit for this."
    except AutomationError as failure:
        try:
            _reply(session, remote, decision, summary="", attempt=True,
                   result=f"This attempt failed at the {failure.step} step: {failure.message}{_checks(session)}")
        except AutomationError as unreported:
            session.say(f"Follow-up: could not reply on {pull.url}: {unreported.message}")
        raise
    outcome = "follow_up_pushed" if changes else "follow_up_answered"
    session.save(replace(session.record, outcome=outcome))
    _reply(session, remote, decision, result=result, summary=plan_edits.summary, attempt=True)
    return outcome


def _checks(session: Session) -> str:
    """The checks section for the reply, when the fix was checked."""
    result = session.checks.result
    return "" if result is None else "\n\n" + reports.checks_section(result, "###")


def _listed_task(session: Session, pull: github.BotPull, default: str) -> str | None:
    """The tasks-file item the PR is for (its marker or branch names it), or None: then its title
    stands for the task, as outside text (an issue's title, or edited on GitHub)."""
    listed = gitops.remote_file(session.repo, f"origin/{default}", session.config.tasks_file, session.env)
    items = tasks.read_tasks(listed.decode("utf-8")) if listed is not None else []
    prefix = session.config.branch_prefix
    return next((t.text for t in items if github.belongs_to(pull, t.text, prefix + tasks.slug(t.text))), None)


def _reply(session: Session, remote: Repository, decision: followups.Decision, *, result: str, summary: str, attempt: bool) -> None:
    """Reply on the PR; its figures are corrected after the ledger commit (``Posted``)."""
    config, record, number = session.config, session.record, decision.work.pull.number

    def body(ledger: Ledger) -> str:
        return redact(followups.reply(
            decision, result=github.neutralise_markers(result), summary=github.neutralise_markers(summary),
            receipt=reports.receipt(record, ledger, config.monthly_budget_micro_usd) if attempt else "",
            pull_cost_micro_usd=spend.pull_cost(ledger, decision.work.pull.url),
            max_attempts=config.follow_up_max_attempts, answered=[c.key for c in decision.work.requests], attempt=attempt,
        ), session.secrets)

    text = body(session.ledger)
    url, comment_id = github.comment(remote, number, text)
    session.posted.append(Posted(url, text, body, partial(github.edit_comment, remote, number, comment_id)))
    session.say(f"Replied: {url}")
