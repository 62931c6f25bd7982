"""Run the selected benchmarks in order, print each verdict as it lands, then the side-by-side table."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench import hardware
from bench.postgres import server_facts
from bench.report import Result, Skipped, markdown_table, rich_table
from bench.services import Service, services
from bench.suites import NEEDS, Context, Profile, steps_for
from bench.workload import Check, Run

Outcome = Result | Skipped


@dataclass(frozen=True)
class Report:
    facts: dict[str, str]
    results: list[Result]
    skipped: list[Skipped]
    command: str

    @property
    def ok(self) -> bool:
        return all(r.check.ok for r in self.results)


def _redis_facts(url: str) -> str:
    with redis.Redis.from_url(url) as client:
        version = client.info("server")["redis_version"]
        persistence = client.config_get("appendonly") | client.config_get("appendfsync")
    return f"{version} (appendonly {persistence['appendonly']}, appendfsync {persistence['appendfsync']})"


def _server_facts(pg: Service, rds: Service) -> dict[str, str | None]:
    return {
        "postgres": f"{server_facts(pg.url)}; {pg.detail}" if pg.url else None,
        "redis": f"{_redis_facts(rds.url)}; {rds.detail}" if rds.url else None,
    }


def _say(console: Console, outcome: Outcome, step_s: float) -> None:
    if isinstance(outcome, Skipped):
        console.print(f"[yellow]SKIPPED[/] {outcome.engine}: {outcome.reason}")
        return
    verdict = "[green]conservation OK[/]" if outcome.check.ok else "[bold red]conservation FAILED[/]"
    figure = f"{outcome.rate:,.0f} {outcome.unit}"
    console.print(
        f"{outcome.engine} / {outcome.scenario}: {figure} — {verdict}: {outcome.check.detail} "
        f"[dim]({step_s:.1f} s)[/]"
    )


def run(profile: Profile, only: Sequence[str], console: Console, command: str) -> Report:
    """Start or find the services, run every selected step, and return what they measured."""
    results: list[Result] = []
    skipped: list[Skipped] = []
    needs = {need for name in only for need in NEEDS[name]}
    with services(postgres="postgres" in needs, redis="redis" in needs) as (pg, rds):
        facts = hardware.describe(**_server_facts(pg, rds))
        _print_facts(console, facts)
        for service, need in ((pg, "postgres"), (rds, "redis")):
            if service.url is None and need in needs:
                console.print(f"[yellow]{need} unavailable[/]: {service.detail}")
        ctx = Context(profile=profile, postgres_url=pg.url, redis_url=rds.url)
        steps = [step for name in only for step in steps_for(name, ctx)]
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
        with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("benchmarks", total=len(steps))
            for label, step in steps:
                progress.update(task, description=label)
                started = time.monotonic()
                outcome = _attempt(label, step, console)
                (skipped if isinstance(outcome, Skipped) else results).append(outcome)
                _say(progress.console, outcome, time.monotonic() - started)
                progress.advance(task)
    facts["load average at end (1/5/15 min)"] = hardware.load_average()
    return Report(facts, results, skipped, command)


def _attempt(label: str, step: Callable[[], Outcome], console: Console) -> Outcome:
    try:
        return step()
    except Exception as exc:  # one broken engine must not hide the others' figures; the run still fails
        console.print(f"[bold red]{label} crashed[/]:\n{traceback.format_exc()}")
        return Result(label, "—", "decisions/s", Run(0.0, [], [], 0), Check(False, f"crashed: {exc!r}"))


def _print_facts(console: Console, facts: dict[str, str]) -> None:
    table = Table(title="Hardware and software", show_header=False)
    for key, value in facts.items():
        table.add_row(key, value)
    console.print(table)


def print_report(report: Report, console: Console) -> None:
    """Print the side-by-side table and the skipped benchmarks."""
    console.print(rich_table(report.results))
    for skip in report.skipped:
        console.print(f"[yellow]SKIPPED[/] {skip.engine}: {skip.reason}")
    verdict = "all conservation checks OK" if report.ok else "[bold red]a conservation check FAILED[/]"
    console.print(f"{verdict}; load average at end: {report.facts['load average at end (1/5/15 min)']}")


def markdown(report: Report) -> str:
    """Render the run as Markdown: the command, the hardware, the table and what was skipped."""
    lines = [f"Command: `{report.command}`", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in report.facts.items()]
    lines += ["", markdown_table(report.results)]
    lines += [f"- skipped: {s.engine}: {s.reason}" for s in report.skipped]
    return "\n".join(lines) + "\n"
