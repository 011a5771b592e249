"""The ``fma`` command: one entry point for users, tests and CI.

Bad input gets one line naming the field on stderr and exit status 2; nothing else is printed.
"""

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
import yaml

from fma.adapters.k8s.cli import app as operator_app
from fma.api.loading import InputError
from fma.bench.actuation.cli import app as bench_app
from fma.launcher.cli import app as launcher_app
from fma.modelservice.cli import app as modelservice_app
from fma.progress import progress_bar as _progress
from fma.requester.cli import app as requester_app
from fma.testcluster.cli import app as testcluster_app

if TYPE_CHECKING:
    from fma.api.scenario import Scenario
    from fma.bench.digest import Digest, Task

app = typer.Typer(
    help="Fast Model Actuation: dual pods, sleep/wake and launchers for vLLM on Kubernetes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sim_app = typer.Typer(
    help="Simulate scenarios with the same decisions the operator makes.", no_args_is_help=True
)
app.add_typer(sim_app, name="sim")
app.add_typer(bench_app, name="bench")
app.add_typer(launcher_app, name="launcher")
app.add_typer(modelservice_app, name="modelservice")
app.add_typer(operator_app, name="operator")
app.add_typer(requester_app, name="requester")
app.add_typer(testcluster_app, name="testcluster")


def fail(message: str) -> NoReturn:
    """Print one error line and exit 2 (bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def crds(
    out_dir: Annotated[
        Path | None, typer.Option(help="Write one file per CRD here instead of printing.")
    ] = None,
) -> None:
    """Print the CRD manifests generated from the API types (what crds/ holds)."""
    from fma.api.crdgen import KINDS, crd_manifest

    documents = [(info, crd_manifest(info)) for info in KINDS]
    if out_dir is None:
        typer.echo(yaml.safe_dump_all([d for _, d in documents], sort_keys=False), nl=False)
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for info, document in documents:
        target = out_dir / f"{info.plural}.yaml"
        target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        typer.echo(f"wrote {target}", err=True)


@app.command()
def policies(
    namespace: Annotated[
        str | None,
        typer.Option(help="Bind the policies to this namespace only (default: every one)."),
    ] = None,
) -> None:
    """Print the ValidatingAdmissionPolicies that keep FMA's records on Pods to its
    controllers (deploy/admission-policies.yaml holds them for every namespace)."""
    from fma.api.policygen import policy_manifests

    typer.echo(yaml.safe_dump_all(policy_manifests(namespace), sort_keys=False), nl=False)


@sim_app.command("run")
def sim_run(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML, version 1).")],
    seed: Annotated[int | None, typer.Option(help="Overrides the scenario's seed.")] = None,
    out: Annotated[Path, typer.Option(help="Directory for summary, events and report.")] = Path(
        "out"
    ),
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Run a scenario; print the summary JSON; write summary.json, events.jsonl, report.html."""
    from fma.bench.report import run_report
    from fma.runs import gpus_by_node, run_one, summarize_run

    spec = _load(scenario)
    with _progress(enabled=progress and sys.stderr.isatty(), label=spec.name) as advance:
        result, wall_s = run_one(spec, seed, progress=advance)
    summary = summarize_run(result, wall_s)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    result.trace.write_jsonl(out / "events.jsonl")
    html = run_report(
        summary,
        result.trace.events,
        result.gpu_count,
        description=spec.description,
        gpus_by_node=gpus_by_node(spec),
    )
    (out / "report.html").write_text(html, encoding="utf-8")
    typer.echo(json.dumps(summary, indent=2))
    typer.echo(
        f"wrote {out / 'summary.json'}, {out / 'events.jsonl'}, {out / 'report.html'}", err=True
    )


def _load(path: Path) -> "Scenario":
    """The validated scenario at ``path``, or exit 2 with one line naming the field."""
    from fma.api.loading import load_scenario

    try:
        return load_scenario(path)
    except InputError as error:
        fail(str(error))


Workers = Annotated[
    int | None,
    typer.Option(help="Local worker processes (default: one per core; 1 runs in-process)."),
]
DaskCluster = Annotated[
    str | None,
    typer.Option("--cluster", help="Run on this Dask scheduler instead, e.g. tcp://host:8786."),
]
Seeds = Annotated[int, typer.Option(min=1, help="How many seeds: the base seed and the next ones.")]
BaseSeed = Annotated[
    int | None, typer.Option("--seed", help="Base seed (default: the scenario's).")
]
Progress = Annotated[bool, typer.Option(help="Show a progress bar on stderr.")]


def _sweep(
    tasks: "list[Task]", label: str, workers: int | None, cluster: str | None, progress: bool
) -> "list[Digest]":
    """Run tasks with a progress bar; a sweep that cannot start is one error line, exit 2."""
    from fma.sweep import SweepError, run_tasks

    if workers is not None and workers < 1:
        fail("--workers: must be at least 1")
    with _progress(enabled=progress and sys.stderr.isatty(), label=label) as advance:
        try:
            return run_tasks(tasks, workers=workers, cluster=cluster, progress=advance)
        except SweepError as error:
            fail(str(error))


@sim_app.command("compare")
def sim_compare(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML, version 1).")],
    policy: Annotated[
        list[str] | None,
        typer.Option(help="Actuation policy to compare (repeat): fma, direct-sleep, cold."),
    ] = None,
    eviction: Annotated[
        list[str] | None,
        typer.Option(help="Eviction policy to compare (repeat): lru, oldest, cost."),
    ] = None,
    placement: Annotated[
        list[str] | None,
        typer.Option(
            help="Placement to compare (repeat): default, node-affinity, gpu-aware, oracle."
        ),
    ] = None,
    seeds: Seeds = 3,
    seed: BaseSeed = None,
    out: Annotated[Path, typer.Option(help="Directory for compare.json and report.html.")] = Path(
        "out/compare"
    ),
    workers: Workers = None,
    cluster: DaskCluster = None,
    progress: Progress = True,
) -> None:
    """Run a scenario's seeds under several policies; print the comparison JSON; write a report."""
    from fma.bench.compare import (
        ACTUATIONS,
        EVICTIONS,
        PLACEMENTS,
        compare_result,
        compare_table,
        tasks,
        variants,
    )
    from fma.bench.compare_report import compare_report

    spec = _load(scenario)
    for option, given, allowed in (
        ("--policy", policy or [], ACTUATIONS),
        ("--eviction", eviction or [], EVICTIONS),
        ("--placement", placement or [], PLACEMENTS),
    ):
        for value in given:
            if value not in allowed:
                fail(f"{option}: unknown {value!r} (choose {', '.join(allowed)})")
    columns = variants(
        policy or list(ACTUATIONS), eviction or [], spec.policy.eviction, placement or []
    )
    base = spec.seed if seed is None else seed
    seed_list = list(range(base, base + seeds))
    digests = _sweep(tasks(spec, columns, seed_list), spec.name, workers, cluster, progress)
    result = compare_result(spec, columns, seed_list, digests)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    (out / "compare.json").write_text(text + "\n", encoding="utf-8")
    (out / "report.html").write_text(compare_report(spec, result, digests), encoding="utf-8")
    typer.echo(text)
    typer.echo(compare_table(result), err=True)
    typer.echo(f"wrote {out / 'compare.json'}, {out / 'report.html'}", err=True)


@sim_app.command("calibrate")
def sim_calibrate(
    traces: Annotated[
        list[Path], typer.Argument(help="events.jsonl from the operator or a simulation.")
    ],
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario whose latencies are the base (and to write calibrated)."),
    ] = None,
    write: Annotated[
        Path | None, typer.Option(help="Write the scenario, calibrated, to this YAML file.")
    ] = None,
) -> None:
    """Fit a scenario's latency section to measured traces; print what was fitted as JSON."""
    from fma.bench.calibrate import TraceError, calibrate, calibrated_scenario, read_trace

    if write is not None and scenario is None:
        fail("--write: needs --scenario (the scenario to calibrate)")
    spec = _load(scenario) if scenario is not None else None
    try:
        events = [read_trace(path) for path in traces]
    except TraceError as error:
        fail(str(error))
    try:
        fitted = calibrate(events, scenario=spec)
    except (KeyError, TypeError) as error:
        fail(f"an event lacks a field the fit needs: {error}")
    if write is not None and spec is not None:
        data = calibrated_scenario(spec, fitted).model_dump(mode="json", exclude_defaults=True)
        write.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        typer.echo(f"wrote {write}", err=True)
    typer.echo(json.dumps(fitted, indent=2))


@app.command("plan")
def plan_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML, version 1).")],
    vary: Annotated[
        str,
        typer.Option(help="Field and range, e.g. cluster.node_pools[0].count=1..32 (or :STEP)."),
    ],
    target: Annotated[
        list[str],
        typer.Option(help="Target to meet (repeat), e.g. 'p95_actuation_s<=10'."),
    ],
    seeds: Seeds = 3,
    seed: BaseSeed = None,
    search: Annotated[
        str, typer.Option(help="bisect (few runs, neighbours verified) or grid (every value).")
    ] = "bisect",
    out: Annotated[Path, typer.Option(help="Directory for plan.json and report.html.")] = Path(
        "out/plan"
    ),
    workers: Workers = None,
    cluster: DaskCluster = None,
    progress: Progress = True,
) -> None:
    """Find the smallest value of one field meeting every target in every seed; print JSON."""
    from fma.bench.metrics import MetricError, parse_target
    from fma.bench.summary import summarize
    from fma.plan.planner import plan
    from fma.plan.report import plan_report
    from fma.plan.vary import parse_vary

    spec = _load(scenario)
    if search not in ("bisect", "grid"):
        fail(f"--search: unknown {search!r} (choose bisect or grid)")
    empty = summarize(
        [], scenario="", seed=0, sim_time_s=1, wall_s=0, gpu_count=0, unserved=0, slo={}
    )
    try:
        targets = [parse_target(text, check=empty) for text in target]
        varied = parse_vary(vary)
    except (MetricError, InputError) as error:
        fail(f"--target: {error}" if isinstance(error, MetricError) else str(error))
    base = spec.seed if seed is None else seed
    seed_list = list(range(base, base + seeds))

    def run(tasks: "list[Task]") -> "list[Digest]":
        return _sweep(tasks, f"{spec.name}: {varied.path}", workers, cluster, progress)

    try:
        result = plan(
            spec,
            varied,
            targets,
            seed_list,
            run,
            strategy="grid" if search == "grid" else "bisect",
            source=str(scenario),
        )
    except InputError as error:
        fail(str(error))
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    (out / "plan.json").write_text(text + "\n", encoding="utf-8")
    (out / "report.html").write_text(
        plan_report(result, targets, spec.description), encoding="utf-8"
    )
    typer.echo(text)
    typer.echo(f"wrote {out / 'plan.json'}, {out / 'report.html'}", err=True)


def main() -> None:
    app()
