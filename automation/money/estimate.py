"""One model of a run, behind every estimate: `costs`, `simulate`, `run --dry-run` and the cron advice.

The typical run (``RunModel``) is sized on this repository, the way a run builds its prompt
(the context for the task given, else the first unticked task, else the repository map alone,
plus the prompt's fixed part); the rest are stated assumptions. Each estimate prints
``RunModel.assumptions()`` so a user can see what it stood on. The worst case is one figure from
the config alone, ``budget.worst_case``: what a run reserves before its first call, and what
`costs`, the dry run and the budget alert state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.config import Config
from ..core.prices import Usage, format_usd
from ..repo import context, localise, tasks
from . import budget, caching

# The analysis prompt beyond the context: system prompt, task, headings and message framing.
PROMPT_OVERHEAD_TOKENS = 2_000
# Typical replies (assumptions, not measured here): a plan, and the code for it.
ANALYSIS_OUTPUT_TOKENS = 2_000
CODE_OUTPUT_TOKENS = 6_000
LOCALISE_OUTPUT_TOKENS = 300  # the localisation call's JSON: 100-350 tokens in the replies benchmarks/data records
# What the analysis typically thinks at effort medium (Claude 5.x), billed as output; counted
# for every analysis model, so the estimate errs high for one that does not think.
ANALYSIS_THINKING_TOKENS = 3_000
# The code prompt carries the plan and the files it names: assumed to be half the context.
NAMED_FILES_SHARE = 0.5
def reachable_spend(config: Config) -> int:
    """The spend every month surely reaches when enough runs are scheduled: runs go on while a
    whole run's worst case still fits, so at most that much can be left unspent."""
    return max(0, config.monthly_budget_micro_usd - budget.worst_case(config, PROMPT_OVERHEAD_TOKENS).run)


@dataclass(frozen=True)
class RunModel:
    """Typical token use of one run's two calls, and where the context size came from."""

    context_tokens: int
    basis: str  # e.g. "the context for 'Add a greeting module' in this repository"
    localise_tokens: int = 0  # the localisation call's prompt (repo/localise.py); 0: no call on this repository

    @classmethod
    def of_context(cls, context_tokens: int, task: str, localise_tokens: int = 0) -> RunModel:
        """The model of a run whose context, built for ``task``, is ``context_tokens`` long."""
        return cls(context_tokens=context_tokens, basis=f"this repository's context for '{task}'", localise_tokens=localise_tokens)

    @property
    def localise(self) -> Usage:
        return Usage(input_tokens=self.localise_tokens, output_tokens=LOCALISE_OUTPUT_TOKENS if self.localise_tokens else 0)

    @property
    def analysis(self) -> Usage:
        return Usage(input_tokens=self.context_tokens + PROMPT_OVERHEAD_TOKENS,
                     output_tokens=ANALYSIS_OUTPUT_TOKENS + ANALYSIS_THINKING_TOKENS, reasoning_tokens=ANALYSIS_THINKING_TOKENS)

    @property
    def code(self) -> Usage:
        named = math.ceil(self.context_tokens * NAMED_FILES_SHARE)
        return Usage(input_tokens=named + ANALYSIS_OUTPUT_TOKENS + PROMPT_OVERHEAD_TOKENS, output_tokens=CODE_OUTPUT_TOKENS)

    def cost(self, config: Config) -> budget.RunCost:
        """Typical cost of such a run under ``config``'s models, per step (its ``*_worst`` figures
        are at this typical input; the run's own worst case is ``budget.worst_case``)."""
        cost = budget.run_cost(
            config.price(config.analysis_model), config.price(config.code_model), config.output_cap(config.analysis_model),
            config.output_cap(config.code_model), analysis=self.analysis, code=self.code,
        )
        return replace(cost, localise_typical=config.price(config.code_model).cost_micro_usd(self.localise))

    def assumptions(self) -> str:
        """One line saying what every figure derived from this model assumed."""
        return (
            f"assumed per run: analysis {self.analysis.input_tokens:,} in / {self.analysis.output_tokens:,} out tokens "
            f"({self.context_tokens:,} of context: {self.basis}, + {PROMPT_OVERHEAD_TOKENS:,} prompt), "
            f"code {self.code.input_tokens:,} in / {self.code.output_tokens:,} out "
            f"(the plan + the files it names, taken as {NAMED_FILES_SHARE:.0%} of the context)"
            + (f", localisation {self.localise.input_tokens:,} in / {self.localise.output_tokens:,} out" if self.localise_tokens else "")
        )


def measure(repo: Path, config: Config) -> RunModel:
    """The run model for this repository: the context a run would build for the first
    unticked task in the tasks file. With no task to size it on, the context is taken as
    ``context.max_tokens``, the most a run sends, so the estimate errs high."""
    try:
        pending = tasks.read_tasks((repo / config.tasks_file).read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError):
        pending = []
    if not pending:
        return RunModel(context_tokens=config.context_max_tokens,
                        basis="context.max_tokens, as no unticked task is there to size it on")
    built = context.build_context(repo, pending[0].brief, config.context_max_tokens, config.private_paths())
    return RunModel.of_context(built.tokens, pending[0].text, localise_tokens(repo, pending[0].brief, config))


def localise_tokens(repo: Path, task: str, config: Config) -> int:
    """The localisation call's estimated prompt tokens for ``task``, 0 when a run would not make it
    (``config.localises`` false, or a repository below ``localise.MIN_FILES`` files)."""
    found = localise.brief(repo, task, config.private_paths()) if config.localises else None
    return found.tokens if found else 0


@dataclass(frozen=True)
class Cadence:
    """How often to run so a month's typical runs fit the budget."""

    runs: int  # typical runs the budget pays for in a month
    interval_hours: float  # the month spread evenly over those runs
    cron: str  # the schedule suggested: never more runs than ``runs``
    cron_runs: int  # how many runs that schedule makes in the month

    def advice(self, typical_micro_usd: int) -> str:
        if not self.runs:
            return f"no schedule to suggest: the budget does not pay for one typical run ({format_usd(typical_micro_usd, 4)})"
        return (
            f"cron suggestion: '{self.cron}' ({self.cron_runs:,} runs in this month, about "
            f"{format_usd(self.cron_runs * typical_micro_usd)} at the typical cost)"
        )


def cadence(runs: int, month_hours: float) -> Cadence:
    """The cron that makes at most ``runs`` runs in the month (what the budget and its windows pay
    for at the typical cost, ``windows.runs_a_month``): as many runs a day as that allows, at
    evenly spread hours (or one run every few days)."""
    interval = month_hours / runs if runs else month_hours
    days = month_hours / 24
    if not runs:
        return Cadence(runs=0, interval_hours=month_hours, cron="", cron_runs=0)
    per_day = min(24, math.floor(24 / interval))
    if per_day >= 1:
        hours = "*" if per_day == 24 else f"*/{24 // per_day}" if 24 % per_day == 0 else ",".join(
            str(math.floor(index * 24 / per_day)) for index in range(per_day)
        )
        return Cadence(runs=runs, interval_hours=interval, cron=f"17 {hours} * * *", cron_runs=round(per_day * days))
    every = math.ceil(interval / 24)
    return Cadence(runs=runs, interval_hours=interval, cron=f"17 3 */{every} * *", cron_runs=math.ceil(days / every))


@dataclass(frozen=True)
class Mode:
    """One way to run the bot and what a typical pull request costs in it (micro-dollars)."""

    name: str
    per_pull_request: int
    assumption: str

    def pull_requests(self, budget_micro_usd: int) -> int:
        return budget_micro_usd // self.per_pull_request if self.per_pull_request else 0


def modes(config: Config, model: RunModel) -> tuple[Mode, ...]:
    """Standard, batch (``models.batch``: the analysis and the code request each as a batch) and
    batch with the analysis prefix cached, for the typical run of ``model``: one pull request a
    task. Batch prices are ``Price.batched()`` (half, both providers); a 5-minute cache write is
    1.25x input, a read 0.1x of the same (batched) price (``money/caching.py``)."""
    cost = model.cost(config)
    batched = config.price(config.analysis_model).batched()
    code = config.price(config.code_model).batched().cost_micro_usd(model.code)
    analysis = model.analysis
    prefix = min(model.context_tokens, analysis.input_tokens)
    rest = replace(analysis, input_tokens=analysis.input_tokens - prefix)
    pair = batched.cost_micro_usd(replace(rest, cache_write_5m_tokens=prefix)) + batched.cost_micro_usd(
        replace(rest, cache_read_tokens=prefix))
    batch = batched.cost_micro_usd(analysis) + code
    minimum = caching.min_cacheable_tokens(batched.model)
    cached = (Mode("batch + cache", -(-pair // 2) + code,
                   f"as batch, with the analysis's {prefix:,}-token context written to the prompt cache by one request and "
                   "read by the next within 5 minutes (a cut reply retried, or runs in a burst with models.prompt_cache: always)")
              if prefix >= minimum else
              Mode("batch + cache", batch, f"as batch: the {prefix:,}-token context is below {batched.model}'s "
                   f"{minimum:,}-token minimum, so nothing is cached"))
    return (
        Mode("standard", cost.typical, "both calls synchronous at the standard price"),
        Mode("batch", batch, "the analysis as a Message Batch and the code request through OpenAI's Batch API, each at "
             "half price and collected by a later cron run (a task takes three runs; repairs stay synchronous)"),
        cached,
    )
