"""``fma bench``: measurements of a trace or a live cluster.

Only typer is imported at module level (the root CLI imports this module at start).
"""

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from fma.bench.actuation.schema import ActuationMetrics

app = typer.Typer(
    help="Measure actuations, from a trace or a live cluster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> NoReturn:
    """One error line on stderr, exit 2 (bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def actuation(
    trace: Annotated[
        list[Path] | None,
        typer.Option(
            "--trace",
            dir_okay=False,
            help="An events.jsonl (the simulator's or the operator's); repeat for one "
            "iteration per trace.",
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(help="A live cluster's namespace: list and watch its Pods."),
    ] = None,
    watch: Annotated[
        float,
        typer.Option(min=0.0, help="With --namespace: seconds to watch after the list."),
    ] = 0.0,
    until_ready: Annotated[
        int | None,
        typer.Option(
            min=1, help="With --namespace: stop watching once this many requesters are ready."
        ),
    ] = None,
    operator_log: Annotated[
        list[Path] | None,
        typer.Option(
            "--operator-log",
            dir_okay=False,
            help="With --namespace: the operator's log, for its actuation records (default: "
            "the logs of the namespace's dual-pods-controller Pods).",
        ),
    ] = None,
    launcher_port: Annotated[
        int, typer.Option(min=1, max=65535, help="The launchers' port, to read engine logs.")
    ] = 8001,
    out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Also write the JSON to this file.")
    ] = None,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the output's JSON Schema and exit.")
    ] = False,
) -> None:
    """Actuation metrics JSON (seed 003): each requester's path judged from timestamps, hit
    rates and timings, from traces or from a live namespace."""
    from fma.bench.actuation.schema import json_schema

    if schema:
        typer.echo(json.dumps(json_schema(), indent=2))
        return
    if bool(trace) == (namespace is not None):
        _fail("give either --trace or --namespace")
    if trace and (watch or until_ready is not None or operator_log):
        _fail("--watch, --until-ready and --operator-log go with --namespace")
    report: ActuationMetrics
    if trace:
        report = _from_traces(trace)
    else:
        assert namespace is not None
        report = _from_cluster(
            namespace, watch, until_ready, operator_log or [], launcher_port=launcher_port
        )
    text = report.model_dump_json(indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)


def _from_traces(paths: list[Path]) -> "ActuationMetrics":
    from fma.bench.actuation.from_trace import TraceProblem, metrics_from_traces
    from fma.bench.calibrate import TraceError

    try:
        return metrics_from_traces(paths)
    except (TraceError, TraceProblem) as error:
        _fail(str(error))


def _from_cluster(
    namespace: str,
    watch_s: float,
    until_ready: int | None,
    operator_logs: list[Path],
    *,
    launcher_port: int,
) -> "ActuationMetrics":
    import httpx
    import urllib3.exceptions
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    from fma.adapters.k8s import kube
    from fma.bench.actuation.cluster import (
        CONTROLLER_SELECTOR_DEFAULT,
        controller_logs,
        launcher_engine_log,
        observe,
    )
    from fma.bench.actuation.records import records_from_log
    from fma.bench.actuation.report import metrics
    from fma.bench.actuation.schema import Source

    for path in operator_logs:
        if not path.is_file():
            _fail(f"--operator-log {path}: no such file")
    lines: dict[str, list[str]] = {}
    try:
        api = kube.connect()
    except (ConfigException, OSError) as error:
        _fail(f"no cluster configuration (in-cluster or $KUBECONFIG): {error}")
    try:
        observed = observe(
            api, namespace, watch_s=watch_s, until_ready=until_ready, clock=time.monotonic
        )
        if not operator_logs:  # read once the watch is over: the records it saw are in
            lines = controller_logs(api, namespace, CONTROLLER_SELECTOR_DEFAULT)
    except ApiException as error:
        _fail(f"--namespace {namespace}: the API server answered {error.status} {error.reason}")
    except (urllib3.exceptions.HTTPError, OSError) as error:
        _fail(f"the API server cannot be reached: {error}")
    finally:
        kube.close(api)
    for path in operator_logs:
        try:
            lines[str(path)] = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as error:
            _fail(f"--operator-log {path}: cannot read: {error.strerror}")
    records = records_from_log(line for found in lines.values() for line in found)
    with httpx.Client(trust_env=False, timeout=5.0) as http:
        evidence = observed.evidence(
            records=records, engine_log=launcher_engine_log(http, launcher_port)
        )
    source = Source(kind="cluster", traces=[], namespace=namespace, operator_records=sorted(lines))
    return metrics(source, [evidence], timing_source="kube_pod_create")
