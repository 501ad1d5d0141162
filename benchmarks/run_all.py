"""Run every benchmark (benchmarks/bench_*.py), then print their figures as one markdown table
with the machine they ran on (the README quotes it).

Each benchmark runs in its own process and writes benchmarks/results/<name>.json; the table
shows the results this run wrote (all kept results with --report-only). A failing benchmark
is reported with the end of its output and makes the command exit 1 after the others ran.

    python -m benchmarks.run_all [--small] [--only NAME ...] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from benchmarks.common import RESULTS_DIR

BENCHMARKS_DIR = Path(__file__).parent
NOT_FIGURES = ("benchmark", "machine", "at")
console = Console(stderr=True)


def benchmark_names() -> list[str]:
    return sorted(path.stem.removeprefix("bench_") for path in BENCHMARKS_DIR.glob("bench_*.py"))


def run_benchmark(name: str, small: bool) -> bool:
    command = [sys.executable, "-m", f"benchmarks.bench_{name}", *(["--small"] if small else [])]
    started = time.monotonic()
    with console.status(f"bench_{name} running ({' '.join(command[2:])})"):
        result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode == 0:
        console.print(f"[green]ok[/] bench_{name} in {seconds:.0f} s")
        return True
    console.print(f"[red]failed[/] bench_{name} (exit {result.returncode}) after {seconds:.0f} s:")
    console.print((result.stdout + result.stderr)[-3000:], markup=False, highlight=False)
    return False


def load_results(since: float | None) -> list[dict]:
    paths = sorted(RESULTS_DIR.glob("*.json"))
    return [json.loads(path.read_text()) for path in paths if since is None or path.stat().st_mtime >= since]


def flatten(value: object, prefix: str = "") -> list[tuple[str, object]]:
    """('clients_16.orders_per_s', 15.3) rows for nested figures; lists stay whole."""
    if isinstance(value, dict):
        return [row for key, item in value.items() for row in flatten(item, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), value)]


def describe(machine: dict) -> str:
    return (f"{machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB RAM, "
            f"Python {machine['python']}, {machine['os']}")


def markdown(results: list[dict]) -> str:
    machines = {describe(result["machine"]) for result in results}
    lines = [f"Machine: {machine}" for machine in sorted(machines)]
    lines += ["", "| Benchmark | Figure | Value |", "|---|---|---|"]
    for result in results:
        name = result["benchmark"] if len(machines) == 1 else f"{result['benchmark']} ({describe(result['machine'])})"
        figures = [(key, value) for key, value in result.items() if key not in NOT_FIGURES]
        rows = [("measured at", result["at"]), *flatten(dict(figures))]
        for figure, value in rows:
            lines.append(f"| {name} | {figure} | {json.dumps(value) if isinstance(value, list) else value} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="quick runs (each benchmark's --small)")
    parser.add_argument("--only", nargs="+", choices=benchmark_names(), metavar="NAME",
                        help=f"run only these ({', '.join(benchmark_names())})")
    parser.add_argument("--report-only", action="store_true", help="run nothing; tabulate the kept results")
    options = parser.parse_args()

    started = None if options.report_only else time.time()
    failed = []
    if not options.report_only:
        failed = [name for name in options.only or benchmark_names() if not run_benchmark(name, options.small)]
    results = load_results(since=started)
    if results:
        print(markdown(results))
    else:
        console.print("no benchmark results to report")
    if failed:
        console.print(f"[red]failed:[/] {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
