"""The `fma requester` commands.

Only typer is imported at module level: the root CLI imports this module at start. Ports and
the dial timeout are taken as text and checked by :mod:`fma.requester.options`, so that a bad
value is one line naming the flag (exit 2), not a usage screen.
"""

from typing import Annotated

import typer

app = typer.Typer(help="The requester commands.", no_args_is_help=True)


@app.callback()
def requester() -> None:
    """The requester: holds GPUs for a model server and relays its readiness."""


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address the probes, the SPI and the proxy listen on.")
    ] = "0.0.0.0",  # noqa: S104 (a requester Pod is called at its Pod IP)
    probes_port: Annotated[
        str | None,
        typer.Option(
            metavar="PORT",
            help="Port of /health and /ready.",
            show_default="$PROBES_PORT, else 8080",
        ),
    ] = None,
    spi_port: Annotated[
        str | None,
        typer.Option(
            metavar="PORT",
            help="Port of the SPI the controller calls.",
            show_default="$SPI_PORT, else 8081",
        ),
    ] = None,
    proxy_port: Annotated[
        str | None,
        typer.Option(
            metavar="PORT",
            help="Port of the TCP proxy to the bound provider, opened once the controller "
            "configures it.",
            show_default="8082",
        ),
    ] = None,
    proxy_dial_timeout: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="How long the proxy waits to connect upstream: 10s, 500ms, or seconds.",
            show_default="10s",
        ),
    ] = None,
    mock_gpus: Annotated[
        str | None,
        typer.Option(
            help="Report these GPUs instead of asking NVML: a count N (GPU-0..GPU-(N-1)) "
            "or comma-separated UUIDs."
        ),
    ] = None,
) -> None:
    """Serve probes (8080), the SPI (8081) and, once configured, the TCP proxy (8082)."""
    import logging

    from fma.requester.server import run

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run(
            host=host,
            probes_port=probes_port,
            spi_port=spi_port,
            proxy_port=proxy_port,
            proxy_dial_timeout=proxy_dial_timeout,
            mock_gpus=mock_gpus,
        )
    except ValueError as error:
        typer.echo(f"fma requester serve: {error}", err=True)
        raise typer.Exit(2) from None
