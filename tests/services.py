"""The one place that decides whether a test needing Redis, PostgreSQL or a browser runs, skips or fails.

Mark such a test (or a module, or a `pytest.param`) with `pytest.mark.redis`, `pytest.mark.redis_cluster`,
`pytest.mark.postgres`, `pytest.mark.redis_server` and/or `pytest.mark.browser` (Debian's chromium),
and nothing else: the hooks below (a plugin, loaded by tests/conftest.py) skip it when what its markers
need is absent. Under FLASHSALE_TEST_REQUIRE_SERVICES=1 (CI sets it) a test with one of these markers
that is skipped, for whatever reason, fails instead. Under pytest-xdist a worker runs the test and
fails its report; the controller, which gets the reports, prints the summary of those failures.
"""

from __future__ import annotations

import os
import shutil

import pytest

REDIS_URL = os.environ.get("FLASHSALE_TEST_REDIS_URL") or None
# a node of a Redis Cluster (redis+cluster://host:port), started by .ci/services.sh
REDIS_CLUSTER_URL = os.environ.get("FLASHSALE_TEST_REDIS_CLUSTER_URL") or None
POSTGRES_URL = os.environ.get("FLASHSALE_TEST_POSTGRES_URL") or None
REDIS_SERVER = shutil.which("redis-server")
CHROMIUM = shutil.which("chromium")
try:
    import playwright  # noqa: F401  (only whether it is there)
except ImportError:  # pragma: no cover - a dev install has it
    HAS_PLAYWRIGHT = False
else:
    HAS_PLAYWRIGHT = True
REQUIRE_SERVICES = os.environ.get("FLASHSALE_TEST_REQUIRE_SERVICES", "").lower() in ("1", "true", "yes")

# marker -> (what it needs, whether that is there)
NEEDS: dict[str, tuple[str, bool]] = {
    "redis": ("FLASHSALE_TEST_REDIS_URL is not set", REDIS_URL is not None),
    "redis_cluster": ("FLASHSALE_TEST_REDIS_CLUSTER_URL is not set", REDIS_CLUSTER_URL is not None),
    "postgres": ("FLASHSALE_TEST_POSTGRES_URL is not set", POSTGRES_URL is not None),
    "redis_server": ("redis-server is not installed", REDIS_SERVER is not None),
    "browser": (
        "chromium or playwright is not installed (apt-get install chromium; pip install -e '.[dev]')",
        CHROMIUM is not None and HAS_PLAYWRIGHT,
    ),
}


def service_markers(item: pytest.Item) -> list[str]:
    """The service markers on the test, in a stable order."""
    return [name for name in NEEDS if item.get_closest_marker(name) is not None]


def missing(item: pytest.Item) -> list[str]:
    """Why the test cannot run here: one reason per service it needs that is absent."""
    return [NEEDS[name][0] for name in service_markers(item) if not NEEDS[name][1]]


def header() -> str:
    """One line for the session header: which services the run has."""
    have = ", ".join(f"{name}={'yes' if there else 'no'}" for name, (_, there) in NEEDS.items())
    required = "1" if REQUIRE_SERVICES else "unset"
    return f"flashsale services: {have}; FLASHSALE_TEST_REQUIRE_SERVICES={required}"


def skip_reason(report: pytest.TestReport) -> str:
    """The reason a skipped report gives."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


# (test id, why it was skipped) of every skip turned into a failure in this run
FAILED_SKIPS: list[tuple[str, str]] = []
# the user property a failed skip's report carries: under pytest-xdist the report is made in a worker
# and read in the controller, which prints the summary; user properties travel with the report
FAILED_SKIP_PROPERTY = "flashsale_failed_skip"


def fail_skip(item: pytest.Item, report: pytest.TestReport) -> None:
    """Turn the skip of a test with a service marker into a failure (FLASHSALE_TEST_REQUIRE_SERVICES=1)."""
    markers = "/".join(service_markers(item))
    reason = skip_reason(report)
    report.outcome = "failed"
    report.longrepr = (
        f"FLASHSALE_TEST_REQUIRE_SERVICES=1: this test is marked {markers} and must run, "
        f"but it was skipped: {reason}"
    )
    report.user_properties.append((FAILED_SKIP_PROPERTY, reason))


def note(report: pytest.TestReport) -> None:
    """Remember a failed skip for the summary (in the process that prints it: the controller under xdist)."""
    for name, reason in report.user_properties:
        if name == FAILED_SKIP_PROPERTY:
            FAILED_SKIPS.append((report.nodeid, str(reason)))


def summary() -> list[str]:
    """The end-of-run lines about skips that failed, grouped by reason."""
    if not FAILED_SKIPS:
        return []
    by_reason: dict[str, int] = {}
    for _, reason in FAILED_SKIPS:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    return [
        f"{len(FAILED_SKIPS)} test(s) needing Redis/PostgreSQL/chromium were skipped, "
        "which FLASHSALE_TEST_REQUIRE_SERVICES=1 turns into failures:",
        *(f"  {count} x {reason}" for reason, count in by_reason.items()),
    ]


# -- the hooks ------------------------------------------------------------------------------------
def pytest_report_header(config: pytest.Config) -> str:
    return header()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip a test marked redis / postgres / redis_server when what the marker needs is absent."""
    for item in items:
        reasons = missing(item)
        if reasons:
            item.add_marker(pytest.mark.skip(reason="; ".join(reasons)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """Under FLASHSALE_TEST_REQUIRE_SERVICES=1, a skipped test with a service marker fails instead."""
    report: pytest.TestReport = yield
    if REQUIRE_SERVICES and report.skipped and not hasattr(report, "wasxfail") and service_markers(item):
        fail_skip(item, report)
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    note(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = summary()
    if lines:
        terminalreporter.section("skips that must not happen (FLASHSALE_TEST_REQUIRE_SERVICES=1)", red=True)
        for line in lines:
            terminalreporter.write_line(line, red=True)
