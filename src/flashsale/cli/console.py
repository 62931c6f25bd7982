"""Output shared by the commands: refusals go to stderr with an exit code."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

errors = Console(stderr=True)


def refuse(reason: str, *, code: int) -> NoReturn:
    """Print why the command will not run, and exit with `code`."""
    errors.print(f"[red]refused:[/] {reason}")
    raise typer.Exit(code)
