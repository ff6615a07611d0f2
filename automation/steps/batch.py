"""Batch mode (``models.batch: true``): a task over three or more cron runs, at half the price of
both its calls.

Tick 1 reserves the run as usual, then submits the analysis as an Anthropic Message Batch of
one request and ends (outcome ``batch_submitted``). Tick 2 collects it and submits the code
request as an OpenAI batch of one request (the same parameters as the synchronous call,
``providers.code_params``), and ends. Tick 3 collects the code reply, applies and checks the
edits and opens the pull request. Before each submission the request is held on the ledger
branch at its worst case at the batch price (``Reserver.hold_batch``), first under a key of its
own, then under the provider's batch id (``ledger.batch_key``: ``batch-<provider>-<step>-<id>``):
every run counts it as spent until it is collected, and one never collected is booked at that
worst case when its hold (25 hours: the providers end a batch within 24) expires. Each later
tick asks first where the batch stands: still processing, it stops (outcome ``batch_waiting``,
nothing spent); the provider not answering (429, 5xx, a lost connection), it stops the same way
and a later run asks again; ended, it books the request as the provider billed it (a succeeded
one at the batch price from its usage; an errored, canceled or expired one at $0: not billed)
in the same commit that takes the hold off the branch and claims the task, then carries on.

The code reply needs its plan: the OpenAI batch carries the analysis batch's id in its
``metadata``, and tick 3 reads the analysis again from Anthropic's results (kept 29 days).
A request that ended errored, expired or canceled sends its task back to the queue (a code
request's task starts again from its analysis) and counts against it: the third in a row
(``health.park_after_failures``) parks it, so the queue moves on.

Repairs (edits that did not apply, checks that failed) stay synchronous: each is a small
request whose prompt depends on the reply before it, and a batch would add a cron run per
repair for half of a few tenths of a cent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, NoReturn, cast

from ..core.config import Config
from ..core.errors import PolicyStop, ProviderError
from ..core.prices import ANTHROPIC, Usage, format_usd
from ..models import health
from ..models.attempts import RETRY_KINDS
from ..money.ledger import BATCH_PENDING, TASK_TEXT_KEPT, CallRecord, Ledger, Reservation, batch_key
from ..money import estimate
from .session import Session

if TYPE_CHECKING:
    import anthropic
    import openai

    from ..models.batches import Collected

SUBMITTED = "batch_submitted"
WAITING = "batch_waiting"
# What each step's request is called in the log, and its one request's custom_id.
WHAT = {"analysis": "the analysis", "code": "the code request"}
UNSENT = "unsent-"
# The metadata of a code batch: where its plan is.
ANALYSIS_BATCH = "analysis_batch"
ANALYSIS_MODEL = "analysis_model"


def pending(ledger: Ledger) -> Reservation | None:
    """The batch request this repository is waiting for (the oldest), if any."""
    held = sorted((r for r in ledger.reservations if r.batch), key=lambda r: r.expires_at)
    return held[0] if held else None


@dataclass(frozen=True)
class Outcome:
    """A collected batch request: its task and ``why`` (what became of it). ``analysis`` is the
    plan to carry on with (None: the task is back in the queue), from ``analysis_batch`` on
    ``analysis_model``; ``code`` the code reply, once the code request was collected."""

    task: str
    analysis: str | None
    why: str
    analysis_batch: str = ""
    analysis_model: str = ""
    code: str | None = None
    step: str = "analysis"

    @property
    def usable(self) -> bool:
        return self.analysis is not None and (self.step != "code" or self.code is not None)


def collect(session: Session, client: Callable[[str], object]) -> Outcome | None:
    """Where the pending batch stands (``client(model)`` makes the SDK client): None when there is
    none; raises PolicyStop ``batch_waiting`` while it is processing, while the provider cannot be
    asked (a transient error: the hold stays), or while a submission whose batch id was never
    recorded (its run killed) is held. Once it ended, the request is booked on the run's record
    as billed and ``Reserver.collects`` names the hold the claim removes. Raises ProviderError
    for a failure no wait mends (a rejected key names its variable)."""
    held = pending(session.ledger)
    if held is None:
        return None
    assert held.in_flight is not None
    call, batch_id = held.in_flight, held.batch_id
    if batch_id.startswith(UNSENT):
        raise PolicyStop(
            f"A batch submission for '{held.task}' was interrupted before its batch id was recorded: its worst case, "
            f"{format_usd(held.micro_usd, 4)}, stays booked until {held.expires_at} (when the provider has ended it), "
            f"then counts as spent; nothing else runs until then.", WAITING)
    found, analysis = _unless_transient(held, lambda: _ask(session, client, call, batch_id))
    if found.status != "ended":
        raise PolicyStop(f"Waiting for batch {batch_id} ('{held.task}'): {found.status}; a later run collects it "
                         f"(held at {format_usd(held.micro_usd, 4)} until {held.expires_at}).", WAITING)
    session.reserver.collects = held.run_id
    row = _billed(session, call, found)
    session.save(replace(session.record, task=held.task, calls=session.record.calls + (row,)))
    usable = found.error is None and found.reply is not None and analysis is not None
    why = (f"batch {batch_id} ended: {found.result}, billed {format_usd(row.cost_micro_usd, 6)} "
           f"(held {format_usd(held.micro_usd, 6)})" + ("" if usable else f"; '{held.task}' goes back in the queue"))
    session.say(why)
    if found.result in ("errored", "expired", "canceled"):
        _count_against(session, held.task)
    reply = found.reply.text if usable and found.reply else None
    if call.step == "code":
        return Outcome(held.task, analysis, why, found.metadata.get(ANALYSIS_BATCH, ""),
                       found.metadata.get(ANALYSIS_MODEL, ""), reply, "code")
    return Outcome(held.task, reply, why, batch_id, call.model)


def _unless_transient(held: Reservation, ask: Callable[[], tuple[Collected, str | None]]) -> tuple[Collected, str | None]:
    """``ask()``, but a provider that cannot answer now (rate limited, overloaded, a 5xx, a lost
    connection or a timeout) stops the run as waiting: the hold stays, a later run asks again."""
    try:
        return ask()
    except ProviderError as error:
        if error.kind not in RETRY_KINDS:
            raise
        raise PolicyStop(f"Could not collect batch {held.batch_id} ('{held.task}'): {error.message} The hold stays "
                         f"({format_usd(held.micro_usd, 4)} until {held.expires_at}); a later run asks again.", WAITING) from None


def _ask(session: Session, client: Callable[[str], object], call: CallRecord, batch_id: str) -> tuple[Collected, str | None]:
    """The batch as the provider has it, and the plan a succeeded request carries on with: an
    analysis's own text; a code request's analysis, read again from the Anthropic batch its
    metadata names (None when that cannot be read: the task goes back in the queue)."""
    from ..models import batches

    if call.step != "code":
        found = batches.collect(cast("anthropic.Anthropic", client(call.model)), batch_id, call.step, call.model,
                                call.usage.output_tokens)
        return found, found.reply.text if found.reply and found.error is None else None
    found = batches.collect_openai(cast("openai.OpenAI", client(call.model)), batch_id, call.step, call.model,
                                   call.usage.output_tokens)
    if found.status != "ended" or found.error is not None:
        return found, None
    model, source = found.metadata.get(ANALYSIS_MODEL, ""), found.metadata.get(ANALYSIS_BATCH, "")
    if not model or not source:
        session.say(f"batch {batch_id} does not say which analysis it carries out (metadata {ANALYSIS_BATCH})")
        return found, None
    plan = batches.collect(cast("anthropic.Anthropic", client(model)), source, "analysis", model,
                           session.config.output_cap(model))
    if plan.reply is None or plan.error is not None:
        session.say(f"the analysis batch {source} could not be read again ({plan.result or plan.status})")
        return found, None
    return found, plan.reply.text


def _count_against(session: Session, task: str) -> None:
    """A request the provider did not run counts against its task now, so the third in a row parks
    it before this run submits it again."""
    session.ledger = health.count_failure(session.ledger, task, session.config)
    if health.task_key(task) in health.parked_tasks(session.ledger):
        session.say(f"'{task}' is parked after {session.config.park_after_failures} failures without a pull request "
                    f"(batch requests the provider did not run, or replies that could not be used; "
                    f"health.park_after_failures); edit its text to retry")


def earlier_note(ledger: Ledger, task: str) -> str | None:
    """For the receipt of a pull request whose code came from a batch: the run that booked its analysis."""
    booked = next((run for run in reversed(ledger.runs) if run.task == task[:TASK_TEXT_KEPT] and run.outcome == SUBMITTED
                   and any(call.step == "analysis" and call.outcome == "ok" for call in run.calls)), None)
    if booked is None:
        return None
    return (f"Batch mode: the analysis was collected and booked by run {booked.id} "
            f"({format_usd(booked.cost_micro_usd, 6)}); the rows above are this run's.")


def _billed(session: Session, call: CallRecord, found: Collected) -> CallRecord:
    """The request as the provider bills it: a succeeded one from its usage at the batch price
    (its held worst case when the result carried no usage or no readable reply), the others at $0."""
    price = session.config.price(call.model).batched()
    reply = found.reply
    outcome = "ok" if found.error is None else found.error.kind
    if reply is None:
        billed = found.result == "succeeded"
        return replace(call, usage=call.usage if billed else Usage(), cost_micro_usd=call.cost_micro_usd if billed else 0,
                       latency_ms=0, outcome=outcome)
    cost = price.cost_micro_usd(reply.usage) if reply.usage_reported else call.cost_micro_usd
    return replace(call, usage=reply.usage, cost_micro_usd=cost, latency_ms=reply.latency_ms, outcome=outcome)


def submit(session: Session, client: object, model: str, step: str, params: Mapping[str, Any], input_bound: int,
           max_tokens: int, metadata: Mapping[str, str] | None = None) -> NoReturn:
    """Hold ``step``'s request at its worst case at the batch price on the branch, submit it (an
    Anthropic model's as a Message Batch, an OpenAI model's through the Batch API, with
    ``metadata``), record the batch id in the hold, and stop the run (PolicyStop
    ``batch_submitted``). Raises BudgetStop when the hold does not fit, ProviderError when the
    provider refuses the batch (the hold stays until it expires: booked at its worst case, since
    the provider may have taken it)."""
    from ..models import batches

    price = session.config.price(model).batched()
    worst = price.worst_case_micro_usd(input_bound, max_tokens)
    in_flight = CallRecord(step, model, price.provider, Usage(input_tokens=input_bound, output_tokens=max_tokens), worst, 0, BATCH_PENDING)
    unsent = batch_key(price.provider, step, f"{UNSENT}{session.record.id}")
    task = session.record.task
    session.reserver.hold_batch(session.ledger, unsent, task, in_flight)
    if price.provider == ANTHROPIC:
        batch_id = batches.submit(cast("anthropic.Anthropic", client), step, params)
    else:
        batch_id = batches.submit_openai(cast("openai.OpenAI", client), step, params, metadata or {})
    session.reserver.hold_batch(session.ledger, batch_key(price.provider, step, batch_id), task, in_flight, replacing=unsent)
    raise PolicyStop(f"Submitted {WHAT[step]} of '{task}' to {model} as batch {batch_id}, held at "
                     f"{format_usd(worst, 4)} (its worst case at the batch price); a later run collects it and carries on.",
                     SUBMITTED)


def describe(config: Config, ledger: Ledger, model: estimate.RunModel) -> list[str]:
    """The dry run's lines on batch mode: what the run would submit, and what is in flight."""
    lines = []
    if config.batch:
        mode = next(mode for mode in estimate.modes(config, model) if mode.name == "batch")
        lines.append(f"Batch mode (models.batch): the analysis and then the code request go as batches at half price (about "
                     f"{format_usd(mode.per_pull_request, 4)} a pull request); this run would submit the analysis and end, "
                     f"later runs collect it, submit the code request, collect that and open the pull request")
    lines += [f"In flight: {held.in_flight.step if held.in_flight else ''} batch {held.batch_id} for '{held.task}', held at "
              f"{format_usd(held.micro_usd, 4)} until {held.expires_at}; a real run collects it first"
              for held in ledger.reservations if held.batch]
    return lines
