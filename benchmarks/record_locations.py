"""Record a real code model's localisation replies for the recall cases, for ``bench_recall.py --locations``.

Run: OPENAI_API_KEY=... python benchmarks/record_locations.py --out FILE [--cases FOLDER] [--cache DIR]
     [--project NAME] [--limit N] [--model MODEL] [--max-usd 1.00]

The localisation call (``repo/localise.py``) can only be judged on what the model it runs on
answers; no model answers offline, so the replies shipped in ``data/localisation-replies.jsonl``
came from a stand-in. This makes the one pass a key allows: for each case whose tree has at
least ``localise.MIN_FILES`` files, the bot's own prompt (``localise.brief``, with every secret
of the environment masked, as a run sends it), one Chat Completions call on the bot's own
request (``providers.write_code``: the code model in service today, ``localise.MAX_TOKENS``, the configured
reasoning effort on a reasoning model), one JSON line appended to ``--out``:

    {"project", "ref", "task", "reply", "model", "input_tokens", "output_tokens", "cost_micro_usd"}

``reply`` is "" when the call was billed but its reply unusable (cut off, refused): a run then
ranks without it, and the replay does the same. Each line is written as soon as its reply is in,
and a case ``--out`` already holds is not asked again, so a stopped pass resumes where it was.
Before each call its worst case (the prompt's token bound and the reply's limit, at the model's
price in ``automation/core/prices.py``) must fit what is left of ``--max-usd``; else the pass
stops there. ``OPENAI_BASE_URL`` is honoured, as by the bot.

Exit codes, as the bot's (``automation/core/errors.py``): 0 done, or stopped at ``--max-usd``; 1 no
``OPENAI_API_KEY``, or a provider failed (what was recorded is kept: run again to resume); 2 bad
input (a ``--model`` without a price or not OpenAI's, an unreadable ``--out`` or cases file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_recall  # noqa: E402

from automation.core.config import Config  # noqa: E402
from automation.core.errors import EXIT_FAILED, EXIT_INVALID, EXIT_OK, AutomationError, ProviderError  # noqa: E402
from automation.core.prices import MICRO, OPENAI, Price, Usage, format_usd  # noqa: E402
from automation.core.redact import redact, secret_values  # noqa: E402
from automation.models import providers  # noqa: E402
from automation.repo import localise  # noqa: E402


def worst_case_micro_usd(price: Price, messages: list[dict[str, str]]) -> int:
    """What the call can cost at most: the prompt's token bound (as a run reserves it) and the reply's limit."""
    bound = providers.openai_input_token_bound(messages, None)
    return price.cost_micro_usd(Usage(input_tokens=bound, output_tokens=localise.MAX_TOKENS))


def record(
    cases: Sequence[bench_recall.Case], cache: Path, out: TextIO, done: set[tuple[str, str, str]],
    client: openai.OpenAI, secrets: Sequence[str], model: str, price: Price, reasoning: str | None, max_micro_usd: int, say: TextIO,
) -> None:
    """Ask ``model`` (at ``price``, with ``reasoning`` effort if any) for each case not in ``done`` and
    append its line to ``out``, with ``secrets`` masked in every prompt.

    Raises ProviderError when a call fails other than with a billed, unusable reply.
    """
    spent = calls = small = 0
    for case in cases:
        if (case.project, case.ref, case.task) in done:
            continue
        found = localise.brief(bench_recall.checkout(case, cache), case.task)
        if found is None:
            small += 1
            continue
        messages = [{"role": "system", "content": localise.SYSTEM}, {"role": "user", "content": redact(found.text, secrets)}]
        worst = worst_case_micro_usd(price, messages)
        if spent + worst > max_micro_usd:
            say.write(f"stopped before {case.project} {case.ref}: its call could pass --max-usd {format_usd(max_micro_usd)}; "
                      "run again with a larger one to go on\n")
            break
        try:
            reply = providers.write_code(client, model, messages, localise.MAX_TOKENS, reasoning_effort=reasoning)
            text = reply.text
        except providers.InvalidReplyError as error:  # billed, unusable: a run ranks without it
            reply, text = error.reply, ""
            say.write(f"{case.project} {case.ref}: the reply was not usable ({error.kind}); recorded as no locations\n")
        cost = price.cost_micro_usd(reply.usage) if reply.usage_reported else worst  # no usage: the worst case, as a run books it
        spent, calls = spent + cost, calls + 1
        out.write(json.dumps({
            "project": case.project, "ref": case.ref, "task": case.task, "reply": text, "model": reply.model,
            "input_tokens": reply.usage.input_tokens, "output_tokens": reply.usage.output_tokens, "cost_micro_usd": cost,
        }) + "\n")
        out.flush()
    say.write(f"recorded {calls} replies from {model} for {format_usd(spent, 4)}"
              f" ({small} cases on repositories under {localise.MIN_FILES} files make no call)\n")


def main(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None, say: TextIO = sys.stdout, today: dt.date | None = None,
) -> int:
    """The command line; ``env`` (default ``os.environ``) holds the key, ``today`` (default: the system's) picks the model in service."""
    config = Config().in_service(today or dt.date.today())  # a retired code model's successor, as a run would ask
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON lines file the replies are appended to")
    parser.add_argument("--cases", type=Path, default=bench_recall.DEFAULT_CASES, help="folder holding cases.jsonl and bundles/")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ai-orchestration-bench-recall")
    parser.add_argument("--limit", type=int, help="at most this many cases per project")
    parser.add_argument("--project", action="append", default=[], help="only this project (repeatable)")
    parser.add_argument("--model", default=config.code_model, help="the code model to ask (default: the bot's, models.code)")
    parser.add_argument("--max-usd", type=float, default=1.0, help="stop before a call that could take the pass's spend past this")
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    price = config.prices.find(args.model)
    if price is None or price.provider != OPENAI:
        why = "no price is known for it (automation/core/prices.py), so its spend cannot be bounded" if price is None else (
            "not an OpenAI model; the localisation call runs on an OpenAI code model")
        say.write(f"--model {args.model}: {why}\n")
        return EXIT_INVALID
    try:
        client = providers.make_openai_client(env)
        done = set(bench_recall.load_replies(args.out)) if args.out.exists() else set()
        cases = bench_recall.load_cases(args.cases, args.limit, args.project)
        reasoning = config.code_reasoning_effort if config.code_reasoning_effort in price.efforts else None
        with args.out.open("a", encoding="utf-8") as out:
            record(cases, args.cache, out, done, client, secret_values(env), args.model, price, reasoning, int(args.max_usd * MICRO), say)
        return EXIT_OK
    except (ValueError, OSError) as error:
        say.write(f"{error}\n")
        return EXIT_INVALID
    except ProviderError as error:
        say.write(f"{str(error).rstrip('.')}. The replies recorded so far are kept in {args.out}: run again to go on\n")
        return EXIT_FAILED
    except AutomationError as error:  # no key
        say.write(f"{error}\n")
        return error.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
