"""The `fma testcluster` commands."""

import typer

app = typer.Typer(help="The testcluster commands.", no_args_is_help=True)
