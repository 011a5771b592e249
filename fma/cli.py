"""The ``fma`` command: one entry point for users, tests and CI.

Bad input gets one line naming the field on stderr and exit status 2; nothing else is printed.
"""

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
import yaml

from fma.api.loading import InputError
from fma.launcher.cli import app as launcher_app
from fma.progress import progress_bar as _progress
from fma.requester.cli import app as requester_app
from fma.testcluster.cli import app as testcluster_app

app = typer.Typer(
    help="Fast Model Actuation: dual pods, sleep/wake and launchers for vLLM on Kubernetes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sim_app = typer.Typer(
    help="Simulate scenarios with the same decisions the operator makes.", no_args_is_help=True
)
app.add_typer(sim_app, name="sim")
app.add_typer(launcher_app, name="launcher")
app.add_typer(requester_app, name="requester")
app.add_typer(testcluster_app, name="testcluster")


def fail(message: str) -> None:
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
    from fma.adapters.sim.runner import run_scenario
    from fma.api.loading import load_scenario
    from fma.bench.report import run_report
    from fma.bench.summary import summarize

    try:
        spec = load_scenario(scenario)
    except InputError as error:
        fail(str(error))
        return
    started = time.perf_counter()
    with _progress(enabled=progress and sys.stderr.isatty(), label=spec.name) as advance:
        result = run_scenario(spec, seed, progress=advance)
    wall_s = time.perf_counter() - started
    summary = summarize(
        result.trace.events,
        scenario=spec.name,
        seed=result.seed,
        sim_time_s=spec.duration,
        wall_s=wall_s,
        gpu_count=result.gpu_count,
        unserved=len(result.unserved),
        slo=spec.slo.model_dump(),
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    result.trace.write_jsonl(out / "events.jsonl")
    (out / "report.html").write_text(
        run_report(summary, result.trace.events, result.gpu_count), encoding="utf-8"
    )
    typer.echo(json.dumps(summary, indent=2))
    typer.echo(
        f"wrote {out / 'summary.json'}, {out / 'events.jsonl'}, {out / 'report.html'}", err=True
    )


def main() -> None:
    app()
