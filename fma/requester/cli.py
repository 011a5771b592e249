"""The `fma requester` commands.

Only typer is imported at module level: the root CLI imports this module at start.
"""

from typing import Annotated

import typer

app = typer.Typer(help="The requester commands.", no_args_is_help=True)


@app.callback()
def requester() -> None:
    """The requester: holds GPUs for a model server and relays its readiness."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",  # noqa: S104
    mock_gpus: Annotated[
        str | None,
        typer.Option(
            help="Report these GPUs instead of asking NVML: a count N (GPU-0..GPU-(N-1)) "
            "or comma-separated UUIDs."
        ),
    ] = None,
) -> None:
    """Serve probes on $PROBES_PORT (8080) and the SPI on $SPI_PORT (8081)."""
    from fma.requester.server import run

    try:
        run(host=host, mock_gpus=mock_gpus)
    except ValueError as error:
        typer.echo(f"fma requester serve: {error}", err=True)
        raise typer.Exit(2) from None
