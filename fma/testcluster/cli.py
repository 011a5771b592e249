"""The `fma testcluster` commands: build, up, down, env.

Heavy imports stay inside the commands so that ``fma --help`` stays fast. Errors are one line
on stderr and a non-zero exit; progress goes to stderr so that stdout stays scriptable
(``eval "$(fma testcluster env)"``).
"""

import json
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="A real local Kubernetes control plane for tests (etcd, apiserver, "
    "controller-manager, scheduler, KWOK nodes with fake GPUs).",
    no_args_is_help=True,
)

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="State directory of the cluster (default: the one `up` started last).",
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _resolve_state_dir(state_dir: Path | None) -> Path:
    from fma.testcluster import paths

    if state_dir is not None:
        return state_dir
    pointer = paths.current_pointer()
    if not pointer.is_file():
        raise _fail("no test cluster is recorded; start one with: fma testcluster up")
    return Path(pointer.read_text().strip())


@app.command()
def build(
    force: Annotated[bool, typer.Option(help="Rebuild every binary, even cached ones.")] = False,
    jobs: Annotated[int | None, typer.Option(help="Parallel Go jobs (default: CPUs).")] = None,
) -> None:
    """Build the test binaries once into ${FMA_CACHE:-~/.cache/fma}/testbin/<k8s-version>/."""
    from fma.testcluster import build as b
    from fma.testcluster.pki import PkiError

    started = time.monotonic()
    try:
        bin_dir = b.ensure_binaries(force=force, jobs=jobs, report=_say)
    except (b.BuildError, PkiError) as exc:
        raise _fail(str(exc)) from None
    _say(f"binaries ready in {bin_dir} ({time.monotonic() - started:.1f} s)")
    typer.echo(str(bin_dir))


@app.command()
def up(
    nodes: Annotated[int, typer.Option(min=1, help="Number of fake GPU nodes.")] = 2,
    gpus: Annotated[int, typer.Option(min=0, help="nvidia.com/gpu allocatable per node.")] = 8,
    namespace: Annotated[str, typer.Option(help="Namespace of the gpu-map ConfigMap.")] = "default",
    state_dir: Annotated[
        Path | None, typer.Option(help="Where to keep state (default: a new temp directory).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the cluster as JSON.")] = False,
    pod_runner: Annotated[
        bool,
        typer.Option(help="Really run the Pods of the project's image (needs root)."),
    ] = True,
) -> None:
    """Start a cluster (building missing binaries first) and record it for `down` and `env`."""
    from fma.testcluster import build as b
    from fma.testcluster import cluster as c
    from fma.testcluster import paths, process
    from fma.testcluster.pki import PkiError
    from fma.testcluster.state import LocalCluster

    pointer = paths.current_pointer()
    if pointer.is_file():
        previous = Path(pointer.read_text().strip())
        try:
            old = LocalCluster.load(previous)
        except (FileNotFoundError, ValueError, KeyError):
            old = None
        if old is not None and any(process.is_running(comp) for comp in old.components):
            raise _fail(
                f"a test cluster is already up (state: {previous}); run: fma testcluster down"
            )
    started = time.monotonic()
    try:
        bin_dir = b.ensure_binaries(report=_say)
        cluster = c.up(
            bin_dir,
            state_dir=state_dir,
            node_count=nodes,
            gpus_per_node=gpus,
            namespace=namespace,
            pod_runner=pod_runner,
            report=_say,
        )
    except (b.BuildError, PkiError, process.ComponentFailed) as exc:
        raise _fail(str(exc)) from None
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(f"{cluster.state_dir}\n")
    _say(f"up in {c.elapsed(started)}")
    if as_json:
        typer.echo(json.dumps(c.as_json(cluster), indent=2))
        return
    typer.echo(f"state dir:  {cluster.state_dir}  (state.json, kubeconfig, logs/)")
    typer.echo(f"kubeconfig: {cluster.kubeconfig}")
    typer.echo(f"apiserver:  {cluster.server}")
    typer.echo(f"nodes:      {', '.join(cluster.nodes)} ({cluster.gpus_per_node} GPUs each)")
    typer.echo('use it:     eval "$(fma testcluster env)"; stop it: fma testcluster down')


@app.command()
def down(
    state_dir: StateDirOption = None,
    keep_state: Annotated[
        bool, typer.Option(help="Keep the state directory (logs, etcd data) after stopping.")
    ] = False,
) -> None:
    """Stop every process of the cluster and remove its state directory."""
    from fma.testcluster import cluster as c
    from fma.testcluster import paths, process
    from fma.testcluster.state import LocalCluster

    directory = _resolve_state_dir(state_dir)
    try:
        cluster = LocalCluster.load(directory)
    except FileNotFoundError:
        raise _fail(f"no state.json in {directory}") from None
    try:
        stopped = c.down(cluster, remove_state=not keep_state)
    except process.ComponentFailed as exc:
        raise _fail(str(exc)) from None
    pointer = paths.current_pointer()
    if pointer.is_file() and Path(pointer.read_text().strip()) == directory:
        pointer.unlink()
    _say(f"stopped {', '.join(stopped) or 'nothing (no component was running)'}")


@app.command()
def env(state_dir: StateDirOption = None) -> None:
    """Print `export KUBECONFIG=... PATH=...` lines for using the cluster with kubectl/helm."""
    from fma.testcluster.state import LocalCluster

    directory = _resolve_state_dir(state_dir)
    try:
        cluster = LocalCluster.load(directory)
    except FileNotFoundError:
        raise _fail(f"no state.json in {directory}") from None
    for line in cluster.env_lines():
        typer.echo(line)
