"""The hard cap: reserve each call's worst case before making it.

A call is made only when ``spent + worst case <= monthly budget``. Because the worst case
bounds what the provider can bill (counted input at the input price plus ``max_tokens`` at
the output price), the month's spend can never pass the cap, not even by one call.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass

from ..core.config import Config
from ..core.errors import ConfigError, PolicyStop
from ..core.prices import Price, Usage
from ..repo import localise
from .ledger import Ledger

# Anthropic documents its token count as an estimate; reserve this much more to stay sound.
ANTHROPIC_COUNT_MARGIN = 1.05


class BudgetStop(PolicyStop):
    """A policy stop, not a failure: the next call would take the month past its budget."""

    outcome = "budget_stop"

    def __init__(self, needed_micro_usd: int, remaining_micro_usd: int, message: str | None = None) -> None:
        super().__init__(
            message or f"budget stop: the next call may cost up to ${needed_micro_usd / 1e6:.6f} "
            f"but only ${remaining_micro_usd / 1e6:.6f} is left this month"
        )
        self.needed_micro_usd = needed_micro_usd
        self.remaining_micro_usd = remaining_micro_usd


def remaining_micro_usd(ledger: Ledger, budget_micro_usd: int) -> int:
    return max(0, budget_micro_usd - ledger.spent_micro_usd)


def reserve(ledger: Ledger, budget_micro_usd: int, price: Price, input_tokens: int, max_output_tokens: int) -> int:
    """The worst-case cost of the next call, or BudgetStop if it might not fit.

    ``input_tokens`` must be an upper bound of what the provider will bill (see
    ``padded_anthropic_count`` and ``providers.openai_input_token_bound``).
    """
    if price.max_priced_input_tokens is not None and input_tokens > price.max_priced_input_tokens:
        raise ConfigError(
            f"{price.model} is priced only for prompts up to {price.max_priced_input_tokens:,} tokens and this "
            f"one may have {input_tokens:,}; lower context.max_tokens or pick another model"
        )
    worst = price.worst_case_micro_usd(input_tokens, max_output_tokens)
    left = remaining_micro_usd(ledger, budget_micro_usd)
    if worst > left:
        raise BudgetStop(worst, left)
    return worst


def padded_anthropic_count(counted_tokens: int) -> int:
    return math.ceil(counted_tokens * ANTHROPIC_COUNT_MARGIN)


def newly_reached_milestones(ledger: Ledger, milestones_micro_usd: tuple[int, ...]) -> list[int]:
    """Milestones the month's spend has really reached and that were not yet announced.

    Spend stops short of the cap by design, so a milestone equal to the budget may never be
    reached: the budget-exhausted alert says where the month stands instead.
    """
    spent = ledger.spent_micro_usd
    reached = set(ledger.milestones_reached_micro_usd)
    return [milestone for milestone in milestones_micro_usd if milestone not in reached and spent >= milestone]


@dataclass(frozen=True)
class Pace:
    """Where the month is heading at the current rate of spend."""

    projected_micro_usd: int
    runs_out_on: dt.date | None  # None: the budget lasts the month


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    year, number = (int(part) for part in month.split("-"))
    start = dt.datetime(year, number, 1, tzinfo=dt.timezone.utc)
    days = calendar.monthrange(year, number)[1]
    return start, start + dt.timedelta(days=days)


def pace(ledger: Ledger, budget_micro_usd: int, now: dt.datetime) -> Pace:
    start, end = month_bounds(ledger.month)
    elapsed = max((now - start).total_seconds(), 3600.0)  # no wild projection in the first hour
    length = (end - start).total_seconds()
    rate = ledger.spent_micro_usd / elapsed  # micro-dollars per second
    projected = round(rate * length) if rate else 0
    runs_out_on = None
    if rate and projected > budget_micro_usd:
        seconds_to_cap = (budget_micro_usd - ledger.spent_micro_usd) / rate
        runs_out_on = (now + dt.timedelta(seconds=max(0.0, seconds_to_cap))).date()
    return Pace(projected_micro_usd=projected, runs_out_on=runs_out_on)


@dataclass(frozen=True)
class RunCost:
    """The cost of one run: typical usage, and the worst case the budget reserves."""

    analysis_typical: int
    code_typical: int
    analysis_worst: int
    code_worst: int
    localise_typical: int = 0  # the localisation call, on a repository large enough for it

    @property
    def typical(self) -> int:
        return self.analysis_typical + self.code_typical + self.localise_typical

    @property
    def worst(self) -> int:
        return self.analysis_worst + self.code_worst


def run_cost(
    analysis_price: Price, code_price: Price, analysis_max_tokens: int, code_max_tokens: int, *,
    analysis: Usage, code: Usage,
) -> RunCost:
    """Typical cost (of the given usage) and worst case (input as given, every output token)
    of a run; the usage comes from ``estimate.RunModel``, the one model of a run."""
    return RunCost(
        analysis_typical=analysis_price.cost_micro_usd(analysis),
        code_typical=code_price.cost_micro_usd(code),
        analysis_worst=analysis_price.worst_case_micro_usd(padded_anthropic_count(analysis.input_tokens), analysis_max_tokens),
        code_worst=code_price.worst_case_micro_usd(code.input_tokens, code_max_tokens),
    )


# Code calls a run may make: the code call and at most one repair request (coding.write_edits).
CODE_CALLS = 2


@dataclass(frozen=True)
class WorstCase:
    """The most one run may cost, in micro-dollars: each call's input at its bound, every output
    token (thinking and reasoning included) billed. The one worst case: what a run reserves, what
    a run that never settled is booked at, and what `costs`, the dry run and the budget alert state."""

    analysis: int  # the analysis call at a full context (context.max_tokens and the prompt), count padded
    code: int  # one code call at its prompt bound (models.code_max_input_tokens)
    first_call: int  # the analysis call's output alone: a run starts only while this much is left
    check_repairs: int = 0  # code calls for the repository's checks (verify.max_repairs when verify.commands is set)
    localise: int = 0  # the localisation call on the code model (context.localise), at its prompt bound

    @property
    def run(self) -> int:
        """The localisation call, the analysis, ``CODE_CALLS`` code calls and one code call per check repair."""
        return self.localise + self.analysis + (CODE_CALLS + self.check_repairs) * self.code

    def describe(self, config: Config) -> str:
        """What the worst case is made of, in one line."""
        return (
            f"worst case: the analysis at a full context ({config.context_max_tokens:,} + the prompt) and max_tokens "
            f"{config.output_cap(config.analysis_model):,}, the code call and its one repair each at the "
            f"{config.code_max_input_tokens:,}-token prompt bound and max_tokens {config.output_cap(config.code_model):,} "
            "(thinking and reasoning included)"
            + (f", and {self.check_repairs} repair request(s) from the repository's checks" if self.check_repairs else "")
            + (f", and the localisation call at {localise.INPUT_BOUND_TOKENS:,} tokens and max_tokens {localise.MAX_TOKENS:,}"
               if self.localise else "")
            + ": what a run reserves before its first call"
        )


def worst_case(config: Config, prompt_overhead_tokens: int) -> WorstCase:
    """The worst case of a run under ``config``, from the config alone; ``prompt_overhead_tokens``
    is the analysis prompt beyond the context (a follow-up's log and diff are more than a task's)."""
    cost = run_cost(
        config.price(config.analysis_model), config.price(config.code_model), config.output_cap(config.analysis_model),
        config.output_cap(config.code_model), analysis=Usage(input_tokens=config.context_max_tokens + prompt_overhead_tokens),
        code=Usage(input_tokens=config.code_max_input_tokens),  # the code prompt is built within this bound (coding.py)
    )
    first = config.price(config.analysis_model).worst_case_micro_usd(0, config.output_cap(config.analysis_model))
    check_repairs = config.verify_max_repairs if config.verify_commands else 0
    located = (config.price(config.code_model).worst_case_micro_usd(localise.INPUT_BOUND_TOKENS, localise.MAX_TOKENS)
               if config.localises else 0)
    return WorstCase(analysis=cost.analysis_worst, code=cost.code_worst, first_call=first, check_repairs=check_repairs, localise=located)


def run_reservation(config: Config, prompt_overhead_tokens: int) -> tuple[int, int]:
    """(worst case of a whole run, worst case of its first call) in micro-dollars (``worst_case``):
    what a run reserves (reservations.py), and the most a run that never settled is booked at."""
    worst = worst_case(config, prompt_overhead_tokens)
    return worst.run, worst.first_call
