"""The ``fma operator`` commands.

Only typer is imported at module level: the root CLI imports this module at start, and the
operator's own imports (Kopf, the Kubernetes client) belong to ``run`` alone.
"""

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The operator commands.", no_args_is_help=True)

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@app.callback()
def operator() -> None:
    """The operator: dual pods and the launcher population on a Kubernetes cluster."""


def _default_namespace() -> str:
    """The Pod's own namespace in a cluster, else the kubeconfig context's, else default."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and SERVICE_ACCOUNT_NAMESPACE.is_file():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    try:
        from fma.adapters.k8s.kube import kubeconfig_namespace

        return kubeconfig_namespace() or "default"
    except Exception:  # no kubeconfig: the connection will say so
        return "default"


def _bytes(text: str, option: str) -> int:
    from fma.api.quantity import quantity_bytes

    try:
        return quantity_bytes(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


@app.command()
def run(
    namespace: Annotated[
        str | None,
        typer.Option(
            help="The namespace whose requesters, providers and configuration it serves "
            "(default: the Pod's own, else the kubeconfig context's)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Nodes reconciled at once.")] = 2,
    health_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="Port of /healthz and /readyz (0: no health endpoint)."
        ),
    ] = 8081,
    metrics_port: Annotated[
        int,
        typer.Option(min=0, max=65535, help="Port of the Prometheus /metrics (0: none)."),
    ] = 8002,
    leader_elect: Annotated[
        bool,
        typer.Option(help="Act only while holding the Lease, so that replicas never act at once."),
    ] = True,
    lease_name: Annotated[str, typer.Option(help="Name of the Lease.")] = "fma-controller",
    lease_duration: Annotated[
        float,
        typer.Option(
            help="Seconds a standby waits, after the Lease was last renewed, before taking over."
        ),
    ] = 15.0,
    renew_deadline: Annotated[
        float,
        typer.Option(
            help="Seconds the leader keeps trying to renew the Lease before it stops acting "
            "(less than --lease-duration)."
        ),
    ] = 10.0,
    retry_period: Annotated[
        float,
        typer.Option(
            help="Seconds between a standby's tries to take the Lease and the leader's renewals "
            "(less than --renew-deadline)."
        ),
    ] = 2.0,
    takeover_delay: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds this replica waits, once it sees the Lease free, before taking it, "
            "so that replicas without a delay act first (a standby that steps in only when "
            "none of them comes).",
        ),
    ] = 0.0,
    identity: Annotated[
        str | None, typer.Option(help="This replica's name in the Lease (default: host name).")
    ] = None,
    proxy_all: Annotated[
        bool,
        typer.Option(
            help="Configure every requester's TCP proxy, not only those with the "
            "dual-pods.llm-d.ai/proxy-port annotation."
        ),
    ] = False,
    gpu_memory: Annotated[
        str,
        typer.Option(
            help="One GPU's memory where a node has no nvidia.com/gpu.memory label (a quantity)."
        ),
    ] = "80Gi",
    ready_timeout_s: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="Seconds an engine or launcher may take to become ready before it is "
            "abandoned and the requester placed again.",
        ),
    ] = 600.0,
    eviction: Annotated[
        str, typer.Option(help="Which sleeper goes first: lru, oldest or cost.")
    ] = "lru",
    sleeping_per_gpu_max: Annotated[
        str | None,
        typer.Option(
            help="Host memory the sleepers of one GPU may hold (a quantity; default: "
            "host memory alone bounds them)."
        ),
    ] = None,
    launchers_per_node_max: Annotated[
        int | None,
        typer.Option(min=1, help="Launchers one node may hold (default: two per GPU)."),
    ] = None,
    trace: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Append the event trace (events.jsonl) to this file."),
    ] = None,
    batch_window_s: Annotated[
        float,
        typer.Option(min=0.0, max=5.0, help="Kopf's batching of one object's events, seconds."),
    ] = 0.01,
    epp_cluster_role: Annotated[
        str | None,
        typer.Option(help="ModelService: the ClusterRole bound to each endpoint picker's account."),
    ] = None,
    epp_pull_secrets: Annotated[
        str, typer.Option(help="ModelService: the EPP ServiceAccounts' image pull secrets, A,B.")
    ] = "",
    pd_pull_secrets: Annotated[
        str, typer.Option(help="ModelService: the prefill/decode accounts' pull secrets, A,B.")
    ] = "",
    sleeper_labels: Annotated[
        bool,
        typer.Option(
            help="Label each launcher Pod sleeping.dual-pods.llm-d.ai/<ISC>=true for every "
            "InferenceServerConfig it holds a sleeping instance of (docs/placement.md)."
        ),
    ] = False,
    placement_port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            help="Port of the placement webhook over HTTPS (0: none; needs --placement-tls-dir).",
        ),
    ] = 0,
    placement_tls_dir: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Directory of the webhook's tls.crt and tls.key (PEM)."),
    ] = None,
    placement_weight: Annotated[
        int,
        typer.Option(min=1, max=100, help="Weight of the pod affinity the webhook adds."),
    ] = 100,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the operator until SIGTERM: in-cluster configuration, else $KUBECONFIG."""
    import asyncio
    import logging

    from fma.adapters.k8s.leader import LeaseSettings
    from fma.adapters.k8s.modelservice import ModelServiceOptions
    from fma.adapters.k8s.operator import OperatorOptions, run_operator
    from fma.core.policy import Policy
    from fma.core.sleepers import EVICTION_POLICIES
    from fma.modelservice.cli import comma_separated

    if eviction not in EVICTION_POLICIES:
        raise typer.BadParameter(
            f"choose one of {', '.join(EVICTION_POLICIES)}", param_hint="--eviction"
        )
    lease = LeaseSettings(
        name=lease_name,
        lease_s=lease_duration,
        renew_deadline_s=renew_deadline,
        retry_s=retry_period,
        takeover_delay_s=takeover_delay,
    )
    if (problem := lease.problem()) is not None:
        raise typer.BadParameter(
            problem, param_hint="--lease-duration/--renew-deadline/--retry-period"
        )
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter("choose debug, info, warning or error", param_hint="--log-level")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(max(level, logging.WARNING))
    policy = Policy(
        eviction=eviction,
        ready_timeout_s=ready_timeout_s,
        sleeping_bytes_per_gpu_max=(
            _bytes(sleeping_per_gpu_max, "--sleeping-per-gpu-max")
            if sleeping_per_gpu_max is not None
            else None
        ),
        launchers_per_node_max=launchers_per_node_max,
    )
    placement_tls = _placement_tls(placement_port, placement_tls_dir)
    options = OperatorOptions(
        namespace=namespace or _default_namespace(),
        policy=policy,
        workers=workers,
        leader_election=leader_elect,
        lease=lease,
        identity=identity or "",
        health_port=health_port or None,
        metrics_port=metrics_port or None,
        proxy_all=proxy_all,
        gpu_memory_bytes_default=_bytes(gpu_memory, "--gpu-memory"),
        trace=trace,
        batch_window_s=batch_window_s,
        modelservice=ModelServiceOptions(
            epp_cluster_role=epp_cluster_role,
            epp_pull_secrets=comma_separated(epp_pull_secrets),
            pd_pull_secrets=comma_separated(pd_pull_secrets),
        ),
        sleeper_labels=sleeper_labels,
        placement_port=placement_port or None,
        placement_tls=placement_tls,
        placement_weight=placement_weight,
    )
    try:
        code = asyncio.run(run_operator(options))
    except Exception as error:  # a connection that cannot be made: one line, not a traceback
        typer.echo(f"fma operator run: {error}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def _placement_tls(port: int, directory: Path | None) -> tuple[Path, Path] | None:
    """The webhook's certificate and key, checked to be there when it is served."""
    if not port:
        return None
    if directory is None:
        raise typer.BadParameter("--placement-port needs it", param_hint="--placement-tls-dir")
    files = (directory / "tls.crt", directory / "tls.key")
    for file in files:
        if not file.is_file():
            raise typer.BadParameter(f"no file {file}", param_hint="--placement-tls-dir")
    return files
