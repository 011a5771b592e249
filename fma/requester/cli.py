"""The `fma requester` commands."""

import typer

app = typer.Typer(help="The requester commands.", no_args_is_help=True)
