"""The `fma launcher` commands."""

import typer

app = typer.Typer(help="The launcher commands.", no_args_is_help=True)
