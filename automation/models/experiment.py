"""``models.experiment``: two code models (or two analysis efforts) taken in turn by new-task
runs, each run recording its arm, so the outcome figures compare them on the team's own tasks.

An arm is named ``code=<model>`` or ``analysis_effort=<level>``. A run takes the arm fewer of
this month's task runs took (the first on a tie): the two alternate run by run, failed runs
included, and a month starts with the first. Follow-up runs take the arm the turn gives too,
but a PR counts under the arm of the run that opened it.
"""

from __future__ import annotations

from dataclasses import replace

from ..core.config import Config
from ..money.ledger import Ledger


def arms(config: Config) -> tuple[str, ...]:
    """The experiment's two arms, or () when none is configured."""
    if config.experiment_code_models:
        return tuple(f"code={model}" for model in config.experiment_code_models)
    return tuple(f"analysis_effort={effort}" for effort in config.experiment_analysis_efforts)


def choose(config: Config, ledger: Ledger) -> tuple[Config, str]:
    """The config for this run's arm and the arm's name; ``(config, "")`` without an experiment."""
    named = arms(config)
    if not named:
        return config, ""
    taken = [sum(1 for run in ledger.runs if run.kind == "task" and run.arm == arm) for arm in named]
    arm = named[taken.index(min(taken))]
    setting, _, value = arm.partition("=")
    if setting == "code":
        fallbacks = tuple(model for model in config.code_fallbacks if model != value)
        return replace(config, code_model=value, code_fallbacks=fallbacks), arm
    return replace(config, analysis_effort=value), arm
