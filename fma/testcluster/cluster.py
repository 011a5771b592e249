"""Bring a local control plane up and down: the orchestration behind ``fma testcluster``.

Contract of :func:`up`: on return every component answers its health check, the fake GPU
nodes are Ready, the ``gpu-map`` ConfigMap exists and the namespace's ``default``
ServiceAccount exists (so pods can be created at once); the state is recorded in the state
directory. On any failure it stops what it started and raises :class:`ComponentFailed` with one
line naming the component and its log. :func:`down` stops every recorded process by pid, in
reverse start order, and leaves none behind.
"""

import http.client
import json
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fma.testcluster import components, nodes, pki, process
from fma.testcluster.components import Layout
from fma.testcluster.ports import free_ports
from fma.testcluster.process import ComponentFailed, Running
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import WaitTimeout, wait_until

START_TIMEOUT_S = 60.0
"""Per component; a warm start of the whole cluster takes far less (see docs/testcluster.md)."""


def _healthy(url: str) -> bool:
    # Health endpoints are open to anonymous clients; certificates are the cluster's own and
    # the connection never leaves loopback, so verifying them adds nothing here.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:  # noqa: S310
            return int(resp.status) == 200
    except (OSError, http.client.HTTPException):  # URLError, refused, reset, time-out, 5xx
        return False


def _await_healthy(comp: Running, url: str, timeout: float, started: list[Running]) -> None:
    """Wait for ``comp`` to answer ``url``; fail early if it, or one before it, exits."""

    def probe() -> bool:
        _check_alive(started)
        return _healthy(url)

    try:
        wait_until(probe, timeout=timeout, what=f"{comp.name} health ({url})", interval=0.05)
    except WaitTimeout as exc:
        raise ComponentFailed(f"{comp.name} not healthy: {exc}; log: {comp.log}") from exc


def kubectl(
    cluster: LocalCluster | Layout, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the cluster's kubectl against it; raise ComponentFailed on failure if ``check``."""
    binary = cluster.bin_dir / "kubectl"
    proc = subprocess.run(
        [str(binary), f"--kubeconfig={cluster.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and proc.returncode != 0:
        msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
        raise ComponentFailed(f"kubectl {' '.join(args)} failed: {' '.join(msg)}")
    return proc


def _nodes_ready(lay: Layout, names: list[str]) -> bool:
    proc = kubectl(lay, "get", "nodes", "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    ready = {
        item["metadata"]["name"]
        for item in json.loads(proc.stdout)["items"]
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in item.get("status", {}).get("conditions", [])
        )
    }
    return set(names) <= ready


def _check_alive(started: list[Running]) -> None:
    """Raise ComponentFailed naming the first started component that is no longer running."""
    for comp in started:
        if not process.is_running(comp):
            raise ComponentFailed(
                f"{comp.name} failed to start ({process.how_it_ended(comp)}); log: {comp.log}"
            )


def _start_and_wait(
    lay: Layout, names: list[str], started: list[Running], *, die_with_parent: bool
) -> None:
    """Start ``names`` together, then wait until each is healthy (they start in parallel)."""
    batch = []
    for name in names:
        comp = process.start(
            name,
            lay.binary(name),
            components.args(name, lay),
            lay.log(name),
            die_with_parent=die_with_parent,
        )
        started.append(comp)
        batch.append(comp)
    for comp in batch:
        _await_healthy(comp, components.health_url(comp.name, lay), START_TIMEOUT_S, started)


def up(
    bin_dir: Path,
    *,
    state_dir: Path | None = None,
    node_count: int = 2,
    gpus_per_node: int = 8,
    namespace: str = "default",
    die_with_parent: bool = False,
    report: Callable[[str], None] = lambda _msg: None,
) -> LocalCluster:
    """Start a cluster from the binaries in ``bin_dir``; see the module docstring.

    ``die_with_parent`` makes the components exit when the calling process dies (for test
    sessions); without it they keep running until :func:`down` (for the CLI).
    """
    missing = [c for c in (*components.COMPONENTS, "kubectl") if not (bin_dir / c).is_file()]
    if missing:
        raise ComponentFailed(
            f"missing binaries {missing} in {bin_dir}; run: fma testcluster build"
        )
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="fma-testcluster-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(components.PORT_NAMES, free_ports(len(components.PORT_NAMES)), strict=True))
    lay = Layout(state_dir=state_dir, bin_dir=bin_dir, ports=ports)
    lay.pki.mkdir(exist_ok=True)
    pki.write_service_account_key(lay.sa_key)
    token = pki.write_token_file(lay.token_file)
    pki.write_kubeconfig(lay.kubeconfig, lay.server, lay.ca_file, token)
    names = nodes.node_names(node_count)
    started: list[Running] = []

    def record() -> LocalCluster:
        cluster = LocalCluster(
            state_dir=state_dir,
            kubeconfig=lay.kubeconfig,
            bin_dir=bin_dir,
            server=lay.server,
            namespace=namespace,
            nodes=tuple(names),
            gpus_per_node=gpus_per_node,
            ports=ports,
            components=tuple(started),
        )
        cluster.save()
        return cluster

    try:
        report("starting etcd")
        _start_and_wait(lay, ["etcd"], started, die_with_parent=die_with_parent)
        record()
        report("starting kube-apiserver")
        _start_and_wait(lay, ["kube-apiserver"], started, die_with_parent=die_with_parent)
        record()
        report("starting kube-controller-manager, kube-scheduler, kwok")
        _start_and_wait(
            lay,
            ["kube-controller-manager", "kube-scheduler", "kwok"],
            started,
            die_with_parent=die_with_parent,
        )
        cluster = record()
        report(f"creating {node_count} fake GPU nodes and the gpu-map ConfigMap")
        objects = nodes.cluster_objects(node_count, gpus_per_node, namespace)
        kubectl(lay, "apply", "-f", "-", stdin=json.dumps(objects))

        def nodes_ready() -> bool:
            _check_alive(started)
            return _nodes_ready(lay, names)

        def service_account() -> bool:
            _check_alive(started)
            get = kubectl(lay, "get", "-n", namespace, "sa", "default", check=False)
            return get.returncode == 0

        wait_until(
            nodes_ready,
            timeout=START_TIMEOUT_S,
            what=f"nodes to be Ready (KWOK makes them so; log: {lay.log('kwok')})",
        )
        wait_until(
            service_account,
            timeout=START_TIMEOUT_S,
            what=f"ServiceAccount {namespace}/default (made by kube-controller-manager; "
            f"log: {lay.log('kube-controller-manager')})",
        )
    except BaseException as exc:
        # Whatever went wrong (a crash, a time-out, Ctrl-C), leave no process behind; the
        # state directory stays for the post-mortem.
        for comp in reversed(started):
            process.stop(comp)
        record()
        if isinstance(exc, ComponentFailed) or not isinstance(
            exc, WaitTimeout | OSError | subprocess.SubprocessError
        ):
            raise
        raise ComponentFailed(f"{exc}; state: {lay.state_dir}") from exc
    return cluster


def down(cluster: LocalCluster, *, remove_state: bool = True) -> list[str]:
    """Stop every component of ``cluster`` (reverse order); return the names that were running.

    With ``remove_state`` the state directory (data, logs, kubeconfig) is deleted afterwards.
    Raises :class:`ComponentFailed` if a process survives SIGKILL (the state is then kept).
    """
    stopped = []
    failures: list[ComponentFailed] = []
    for comp in reversed(cluster.components):
        if process.is_running(comp):
            stopped.append(comp.name)
        try:
            process.stop(comp)
        except ComponentFailed as exc:  # keep stopping the others, then report it
            failures.append(exc)
    if failures:
        raise failures[0]
    if remove_state:
        shutil.rmtree(cluster.state_dir, ignore_errors=True)
    return stopped


def elapsed(start: float) -> str:
    """Seconds since ``start`` (a ``time.monotonic()`` value), formatted for humans."""
    return f"{time.monotonic() - start:.1f} s"


def as_json(cluster: LocalCluster) -> dict[str, Any]:
    """The fields of ``cluster`` a script may want, as plain JSON."""
    return {
        "state_dir": str(cluster.state_dir),
        "kubeconfig": str(cluster.kubeconfig),
        "bin_dir": str(cluster.bin_dir),
        "server": cluster.server,
        "namespace": cluster.namespace,
        "nodes": list(cluster.nodes),
        "gpus_per_node": cluster.gpus_per_node,
        "ports": cluster.ports,
        "pids": {c.name: c.pid for c in cluster.components},
    }
