"""Batch mode (``models.batch: true``): a task over two or more cron runs, at half the price of
its analysis.

Tick 1 reserves the run as usual, then submits the analysis as an Anthropic Message Batch of
one request and ends (outcome ``batch_submitted``). Before submitting, the request is held on
the ledger branch at its worst case at the batch price (``Reserver.hold_batch``), first under a
key of its own, then under the provider's batch id: every run counts it as spent until it is
collected, and one never collected is booked at that worst case when its hold (25 hours: the
providers end a batch within 24) expires. Each later tick asks first where the batch stands:
still processing, it stops (outcome ``batch_waiting``, nothing spent); ended, it books the
request as the provider billed it (a succeeded one at the batch price from its usage; an
errored, canceled or expired one at $0: not billed) in the same commit that takes the hold off
the branch and claims the task, then carries on: the code step and the pull request (a
succeeded analysis) or a new submission (the task back in the queue).

The code step is made synchronously: at the defaults it is about 5% of a run's cost ($0.0072
of $0.1411 in ``costs`` on this repository), so batching it too would save about 2.5% of a run
for a third cron run of waiting per task (and one more for each repair request).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, NoReturn, cast

from ..core.config import Config
from ..core.errors import PolicyStop
from ..core.prices import Usage, format_usd
from ..money.ledger import BATCH_PENDING, BATCH_PREFIX, CallRecord, Ledger, Reservation
from ..money import estimate
from .session import Session

if TYPE_CHECKING:
    import anthropic

    from ..models.batches import Collected

SUBMITTED = "batch_submitted"
# The one request of each batch (the batch id tells the runs apart).
CUSTOM_ID = "analysis"
WAITING = "batch_waiting"


def pending(ledger: Ledger) -> Reservation | None:
    """The batch request this repository is waiting for (the oldest), if any."""
    held = sorted((r for r in ledger.reservations if r.batch), key=lambda r: r.expires_at)
    return held[0] if held else None


@dataclass(frozen=True)
class Outcome:
    """A collected batch request: its task, and the analysis to carry on with (None: the task is
    back in the queue; ``why`` says what became of the request)."""

    task: str
    analysis: str | None
    why: str


def collect(session: Session, client: Callable[[str], object]) -> Outcome | None:
    """Where the pending batch stands (``client(model)`` makes the SDK client): None when there is
    none; raises PolicyStop ``batch_waiting`` while it is processing, or while a submission whose
    batch id was never recorded (its run killed) is held. Once it ended, the request is booked
    on the run's record as billed and ``Reserver.collects`` names the hold the claim removes."""
    from ..models import batches

    held = pending(session.ledger)
    if held is None:
        return None
    assert held.in_flight is not None
    call = held.in_flight
    batch_id = held.run_id[len(BATCH_PREFIX):]
    if not batch_id.startswith("msgbatch_"):
        raise PolicyStop(
            f"A batch submission for '{held.task}' was interrupted before its batch id was recorded: its worst case, "
            f"{format_usd(held.micro_usd, 4)}, stays booked until {held.expires_at} (when the provider has ended it), "
            f"then counts as spent; nothing else runs until then.", WAITING)
    found = batches.collect(cast("anthropic.Anthropic", client(call.model)), batch_id, CUSTOM_ID, call.model, call.usage.output_tokens)
    if found.status != "ended":
        raise PolicyStop(f"Waiting for batch {batch_id} ('{held.task}'): {found.status}; a later run collects it "
                         f"(held at {format_usd(held.micro_usd, 4)} until {held.expires_at}).", WAITING)
    session.reserver.collects = held.run_id
    row = _billed(session, call, found)
    session.save(replace(session.record, task=held.task, calls=session.record.calls + (row,)))
    usable = found.error is None and found.reply is not None
    why = (f"batch {batch_id} ended: {found.result}, billed {format_usd(row.cost_micro_usd, 6)} "
           f"(held {format_usd(held.micro_usd, 6)})" + ("" if usable else f"; '{held.task}' goes back in the queue"))
    session.say(why)
    return Outcome(held.task, found.reply.text if usable and found.reply else None, why)


def _billed(session: Session, call: CallRecord, found: Collected) -> CallRecord:
    """The request as the provider bills it: a succeeded one from its usage at the batch price
    (its held worst case when the result carried no usage), the others at $0."""
    price = session.config.price(call.model).batched()
    reply = found.reply
    outcome = "ok" if found.error is None else found.error.kind
    if reply is None:
        return replace(call, usage=Usage(), cost_micro_usd=0, latency_ms=0, outcome=outcome)
    cost = price.cost_micro_usd(reply.usage) if reply.usage_reported else call.cost_micro_usd
    return replace(call, usage=reply.usage, cost_micro_usd=cost, latency_ms=reply.latency_ms, outcome=outcome)


def submit(session: Session, client: object, model: str, params: Mapping[str, Any], input_bound: int, max_tokens: int) -> NoReturn:
    """Hold the request's worst case at the batch price on the branch, submit it, record the
    batch id in the hold, and stop the run (PolicyStop ``batch_submitted``). Raises BudgetStop
    when the hold does not fit, ProviderError when the provider refuses the batch (the hold
    stays until it expires: booked at its worst case, since the provider may have taken it)."""
    from ..models import batches

    price = session.config.price(model).batched()
    worst = price.worst_case_micro_usd(input_bound, max_tokens)
    in_flight = CallRecord("analysis", model, price.provider, Usage(input_tokens=input_bound, output_tokens=max_tokens), worst, 0, BATCH_PENDING)
    unsent = f"{BATCH_PREFIX}unsent-{session.record.id}"
    task = session.record.task
    session.reserver.hold_batch(session.ledger, unsent, task, in_flight)
    batch_id = batches.submit(client, CUSTOM_ID, params)  # type: ignore[arg-type]
    session.reserver.hold_batch(session.ledger, f"{BATCH_PREFIX}{batch_id}", task, replace(in_flight, latency_ms=0), replacing=unsent)
    raise PolicyStop(f"Submitted the analysis of '{task}' to {model} as batch {batch_id}, held at "
                     f"{format_usd(worst, 4)} (its worst case at the batch price); a later run collects it and carries on.",
                     SUBMITTED)



def describe(config: Config, ledger: Ledger, model: estimate.RunModel) -> list[str]:
    """The dry run's lines on batch mode: what the run would submit, and what is in flight."""
    lines = []
    if config.batch:
        mode = next(mode for mode in estimate.modes(config, model) if mode.name == "batch")
        lines.append(f"Batch mode (models.batch): the analysis goes as a Message Batch at half price (about "
                     f"{format_usd(mode.per_pull_request, 4)} a pull request); this run would submit it and end, a later run collects it")
    lines += [f"In flight: batch {held.run_id.removeprefix(BATCH_PREFIX)} for '{held.task}', held at "
              f"{format_usd(held.micro_usd, 4)} until {held.expires_at}; a real run collects it first"
              for held in ledger.reservations if held.batch]
    return lines
