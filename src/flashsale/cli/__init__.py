"""The `flashsale` command line: one Typer sub-app per command group, assembled in `main`."""
