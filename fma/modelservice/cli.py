"""The `fma modelservice` commands: the package's one edge that reads files and prints.

Only typer is imported at module level: the root CLI imports this module at start, and
rendering (pydantic models, YAML) belongs to ``generate`` alone.
"""

from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(help="The ModelService commands.", no_args_is_help=True)


@app.callback()
def modelservice() -> None:
    """ModelService: a model deployment rendered from a ModelService and a BaseConfig."""


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def comma_separated(text: str) -> tuple[str, ...]:
    """``"a, b,"`` -> ``("a", "b")``: the form of the pull-secret options."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


@app.command()
def generate(
    modelservice_file: Annotated[
        Path, typer.Option("--modelservice", "-m", help="The ModelService (YAML).")
    ],
    baseconfig_file: Annotated[
        Path | None,
        typer.Option("--baseconfig", "-b", help="The BaseConfig ConfigMap (YAML); none: empty."),
    ] = None,
    epp_cluster_role: Annotated[
        str | None,
        typer.Option(help="ClusterRole bound to the EPP's ServiceAccount (needed with an EPP)."),
    ] = None,
    epp_pull_secrets: Annotated[
        str, typer.Option(help="Image pull secrets of the EPP's ServiceAccount, A,B,...")
    ] = "",
    pd_pull_secrets: Annotated[
        str, typer.Option(help="Image pull secrets of the prefill/decode ServiceAccount, A,B,...")
    ] = "",
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="Namespace of the children (default: the ModelService's)."
        ),
    ] = None,
) -> None:
    """Print the objects a ModelService would create, as multi-document YAML (a dry run)."""
    import yaml

    from fma.api.loading import InputError, parse, read_yaml
    from fma.api.modelservice import BaseConfigMap, ModelService
    from fma.modelservice.errors import RenderError
    from fma.modelservice.render import RenderOptions, render

    try:
        msvc = parse(ModelService, read_yaml(modelservice_file), str(modelservice_file))
        base = None
        if baseconfig_file is not None:
            base = parse(BaseConfigMap, read_yaml(baseconfig_file), str(baseconfig_file))
    except InputError as error:
        _fail(str(error))
    options = RenderOptions(
        namespace=namespace,
        epp_cluster_role=epp_cluster_role,
        epp_pull_secrets=comma_separated(epp_pull_secrets),
        pd_pull_secrets=comma_separated(pd_pull_secrets),
    )
    try:
        rendering = render(msvc, base, options)
    except RenderError as error:
        if error.source == "option":
            _fail(str(error))
        source = modelservice_file if error.source == "modelservice" else baseconfig_file
        _fail(f"{source}: {error}")
    for warning in rendering.warnings:
        typer.echo(f"warning: {warning}", err=True)
    text = yaml.safe_dump_all(list(rendering.objects), sort_keys=False, width=4096)
    typer.echo(text, nl=False)
