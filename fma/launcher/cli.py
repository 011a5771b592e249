"""The `fma launcher` commands.

Only typer is imported at module level: the root CLI imports this module at start, and the
launcher's own imports (FastAPI, and vLLM for ``--engine vllm``) belong to ``serve`` alone.
"""

from pathlib import Path
from typing import Annotated

import typer

from fma.api.constants import LAUNCHER_PORT

app = typer.Typer(help="The launcher commands.", no_args_is_help=True)


@app.callback()
def launcher() -> None:
    """The launcher: starts vLLM (or stub) instances on a node, fast."""


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on; the default, all addresses, lets the kubelet's probes "
            "and the controller reach the Pod IP."
        ),
    ] = "0.0.0.0",  # noqa: S104 (a launcher Pod is called at its Pod IP)
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = LAUNCHER_PORT,
    engine: Annotated[
        str, typer.Option(help="What instances run: vllm (real) or stub (fma's stub engine).")
    ] = "vllm",
    mock_gpus: Annotated[
        int | None,
        typer.Option(min=0, max=1024, help="Mock N GPUs GPU-0..GPU-(N-1) instead of NVML."),
    ] = None,
    gpu_map: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="JSON file {gpu_uuid: cuda_index}."),
    ] = None,
    log_dir: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Directory of instance logs (default: a temp dir)."),
    ] = None,
    stop_grace_s: Annotated[
        float, typer.Option(min=0.0, max=3600.0, help="SIGTERM-to-SIGKILL grace, seconds.")
    ] = 10.0,
    instance_count_max: Annotated[
        int, typer.Option(min=1, max=4096, help="Most instances (running or stopped) at once.")
    ] = 64,
) -> None:
    """Run the launcher: an HTTP API that starts engine instances as forked processes."""
    import logging

    from fma.launcher.engines import ENGINE_NAMES
    from fma.launcher.server import LauncherOptions, run

    if engine not in ENGINE_NAMES:
        raise typer.BadParameter(f"choose one of {', '.join(ENGINE_NAMES)}", param_hint="--engine")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run(
            LauncherOptions(
                host=host,
                port=port,
                engine=engine,
                mock_gpus=mock_gpus,
                gpu_map=gpu_map,
                log_dir=log_dir,
                stop_grace_s=stop_grace_s,
                instance_count_max=instance_count_max,
            )
        )
    except (ValueError, OSError) as error:
        typer.echo(f"fma launcher serve: {error}", err=True)
        raise typer.Exit(2) from None
    except ImportError as error:
        typer.echo(f"fma launcher serve: cannot load the {engine} engine: {error}", err=True)
        raise typer.Exit(2) from None


@app.command(
    "stub-engine",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def stub_engine(ctx: typer.Context) -> None:
    """Run FMA's stub engine alone, as vLLM's API server would run in a direct provider Pod.

    Every argument is the engine's (``--model``, ``--port``, ``--stub-start-s``, ...; other
    vLLM options are ignored); ``--help`` lists them.
    """
    from fma.launcher.stub_engine import main

    raise typer.Exit(main(ctx.args))
