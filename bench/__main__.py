"""`python -m bench`: measure the ledger engines and the buy path side by side with the peers' patterns."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from rich.console import Console

from bench.runner import markdown, print_report, run
from bench.services import PG_URL_ENV, REDIS_URL_ENV
from bench.suites import FULL, NEEDS, QUICK

ORDER = list(NEEDS)  # baselines first: every ratio needs baseline A from the same run


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Replay the same flash-sale crowd (3 tries per user, limit 2, quota = half the requests) on "
            "PostgreSQL baselines A (mall/seckill UPDATE+INSERT) and B (Saleor FOR UPDATE+sum), the "
            "in-process and Redis ledgers, and the HTTP buy path (also under a GET /sessions flood); print "
            "throughput, p50/p99, the ratio to "
            "baseline A from the same run and a conservation check. Exits 1 if any check fails."
        ),
        epilog=(
            f"Servers: {PG_URL_ENV} and {REDIS_URL_ENV} name existing ones (each run uses its own schema, "
            "database and key prefix, and removes them); otherwise throwaway PostgreSQL and Redis servers "
            "are started on 127.0.0.1 and stopped at the end. "
            "Just the Redis HTTP rows (the bare-FastAPI floor, then POST /purchases on the Redis ledger "
            "against it, each with the server's CPU per request): python -m bench --only http"
        ),
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run well under 30 s")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=ORDER,
        metavar="NAME",
        help=f"run only these benchmarks ({', '.join(ORDER)}); default: all",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="also write the hardware and the side-by-side table as Markdown to PATH ('-' for stdout)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and return the exit code."""
    args = parse(sys.argv[1:] if argv is None else argv)
    # Wide enough for the table when stdout is a pipe (the smoke test, `tee`).
    console = Console(width=None if sys.stdout.isatty() else 200)
    only = [name for name in ORDER if args.only is None or name in args.only]
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    report = run(QUICK if args.quick else FULL, only, console, command)
    print_report(report, console)
    if args.out == "-":
        sys.stdout.write(markdown(report))
    elif args.out:
        Path(args.out).write_text(markdown(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
