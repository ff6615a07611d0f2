"""build_context on synthetic git repositories of 1k, 2k and 10k files, and with a 100 KB task.

Run: python benchmarks/bench_context.py [--quick]
Prints the median of 5 runs (wall clock, and the CPU time of this process, which the targets
use: on a shared machine the wall clock measures the neighbours), the peak memory one call traces (tracemalloc), and the tokens
used against the cap; fails if the cap is exceeded, if the 2k-file repository takes 1 s or
more or the 10k-file one 2 s or more, or if a 100 KB task costs more than ten times a 10 KB
one on the 2k-file repository (time linear in the task's length: at most 10x, less with the
fixed cost of the repository). ``--quick`` (the suite's smoke run) builds the 1k- and 2k-file
repositories once each.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automation.repo.context import build_context, estimate_tokens, render_context  # noqa: E402

CAP = 40_000
RUNS = 5
TARGET_SECONDS = {2_000: 1.0, 10_000: 2.0}
TASK_RATIO_LIMIT = 10.0
TASK = "Add retry with backoff to fetch_orders in service_17/orders/client_3.py and cover it in tests"
WORDS = ["order", "invoice", "customer", "payment", "cart", "stock", "shipping", "refund", "ledger", "report", "session", "cache", "token", "user"]


def _python_module(rng: random.Random, index: int) -> str:
    """A plausible 1-4 KB module: imports, a class, functions with bodies."""
    names = [f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{n}" for n in range(rng.randint(4, 12))]
    parts = [f'"""Module {index}: {" ".join(rng.sample(WORDS, 5))}."""\n\nimport json\n\n']
    parts.append(f"class {rng.choice(WORDS).title()}Handler{index}:\n    retries = {rng.randint(1, 5)}\n\n")
    for name in names:
        body = "\n".join(f"    value_{k} = {rng.randint(0, 999)}  # {rng.choice(WORDS)}" for k in range(rng.randint(3, 12)))
        parts.append(f"def {name}(payload):\n{body}\n    return json.dumps(payload)\n\n\n")
    return "".join(parts)


def make_repository(folder: Path, count: int) -> None:
    """``count`` files spread over services, with docs, JS, data, a binary, secrets and ignored output."""
    rng = random.Random(count)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    (folder / ".gitignore").write_text("build/\n*.log\n")
    (folder / "README.md").write_text("# Synthetic shop\n\nServices for orders and invoices.\n")
    (folder / ".env").write_text("API_KEY=not-for-the-prompt\n")
    for index in range(count - 3):
        service = f"service_{index % 40}"
        kind = index % 10
        if kind < 6:
            path = folder / service / rng.choice(WORDS + ["orders"]) / f"client_{index // 40}.py"
            content = _python_module(rng, index)
        elif kind < 8:
            path = folder / service / "web" / f"view_{index}.js"
            content = "".join(f"export function {rng.choice(WORDS)}View{n}(props) {{ return props; }}\n" for n in range(30))
        elif kind == 8:
            path = folder / service / "docs" / f"note_{index}.md"
            content = " ".join(rng.choice(WORDS) for _ in range(300)) + "\n"
        else:
            path = folder / service / "data" / f"blob_{index}.bin"
            content = ""
        path.parent.mkdir(parents=True, exist_ok=True)
        if content:
            path.write_text(content)
        else:
            path.write_bytes(bytes(rng.randrange(256) for _ in range(512)))
    target = folder / "service_17" / "orders" / "client_3.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("def fetch_orders(session):\n    return session.get('/orders')\n")
    (folder / "build").mkdir(exist_ok=True)
    (folder / "build" / "out.log").write_text("ignored\n")
    subprocess.run(["git", "add", "-A"], cwd=folder, check=True)


def _median_seconds(folder: Path, task: str, runs: int) -> tuple[float, float]:
    """(wall, CPU) medians of ``runs`` calls, in seconds."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        build_context(folder, task, CAP)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def long_task(length: int) -> str:
    """Text with long runs and no separators, the shape that made the old path regex quadratic."""
    unit = "a" * 4_000 + " " + "x.y/" * 500 + " " + "fooBar_baz" * 200 + " " + "AAAAa" * 400 + " "
    return (unit * (length // len(unit) + 1))[: length - len(TASK) - 1] + " " + TASK


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    runs = 1 if quick else RUNS
    ok = True
    for count in (1_000, 2_000) if quick else (1_000, 2_000, 10_000):
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            make_repository(folder, count)
            median, cpu = _median_seconds(folder, TASK, runs)
            ctx = build_context(folder, TASK, CAP)
            rendered = render_context(ctx)
            assert ctx.tokens <= CAP and estimate_tokens(rendered) == ctx.tokens, "context exceeds the cap"
            assert "not-for-the-prompt" not in rendered and "build/out.log" not in rendered
            tracemalloc.start()
            build_context(folder, TASK, CAP)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            files = sum(1 for path in folder.rglob("*") if path.is_file() and ".git" not in path.parts)
            print(
                f"{files:>6} files: median {median * 1000:.0f} ms ({cpu * 1000:.0f} ms CPU) over {runs} runs, peak {peak / 1e6:.1f} MB; "
                f"{ctx.tokens:,} of {CAP:,} tokens (map {estimate_tokens(ctx.map_text):,}); "
                f"{len(ctx.files)} files sent, first {next(iter(ctx.files), '-')}; {len(ctx.skipped)} skipped"
            )
            ok = ok and cpu < TARGET_SECONDS.get(count, float("inf"))
            if count == 2_000:
                short, long = _median_seconds(folder, long_task(10_000), runs)[1], _median_seconds(folder, long_task(100_000), runs)[1]
                print(f"  task of 10 KB: median {short * 1000:.0f} ms CPU; 100 KB: {long * 1000:.0f} ms CPU ({long / short:.1f}x)")
                ok = ok and long / short <= TASK_RATIO_LIMIT
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
