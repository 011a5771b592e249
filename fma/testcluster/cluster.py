"""Bring a local control plane up and down: the orchestration behind ``fma testcluster``.

Contract of :func:`up`: on return every component answers its health check, the fake GPU
nodes are Ready, the ``gpu-map`` ConfigMap exists and the namespace's ``default``
ServiceAccount exists (so pods can be created at once); the state is recorded in the state
directory. On any failure it stops what it started and raises :class:`ComponentFailed` with one
line naming the component and its log. :func:`down` stops every recorded process by pid, in
reverse start order, and leaves none behind.

Where the machine allows it (root, iproute2), ``up`` also reserves a Pod network and starts
the pod runner (:mod:`fma.testcluster.podrunner`), which really runs the Pods of the
project's image; ``down`` removes its bridge, namespaces and leftover processes again.
Without it, every Pod gets KWOK's fake lifecycle, as before.
"""

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from fma.testcluster import components, nodes, pki, process
from fma.testcluster.components import POD_RUNNER, Layout
from fma.testcluster.podrunner import kubelet_api, network, stages
from fma.testcluster.podrunner.context import SYSTEM_PATH, RunnerConfig
from fma.testcluster.ports import free_ports
from fma.testcluster.process import ComponentFailed, Running
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import WaitTimeout, wait_until

START_TIMEOUT_S = 60.0
"""Per component; a warm start of the whole cluster takes far less (see docs/testcluster.md)."""


def _healthy(url: str) -> bool:
    # Health endpoints are open to anonymous clients; certificates are the cluster's own and
    # the connection never leaves this machine (loopback, or the Pod network's bridge), so
    # verifying them adds nothing here, and no proxy of the environment may get in between.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx)
    )
    try:
        with opener.open(url, timeout=2) as resp:
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
            env=_environment(name, lay),
        )
        started.append(comp)
        batch.append(comp)
    for comp in batch:
        _await_healthy(comp, components.health_url(comp.name, lay), START_TIMEOUT_S, started)


def _environment(component: str, lay: Layout) -> dict[str, str] | None:
    """KWOK finds the programs of ``kubectl exec`` through the exec shims first; the others
    get ours."""
    if component != "kwok" or not lay.pod_runner:
        return None
    env = dict(os.environ)
    env["PATH"] = f"{lay.kubelet_dir / 'bin'}:{env.get('PATH', SYSTEM_PATH)}"
    return env


def _fma_program() -> Path:
    """The ``fma`` entrypoint the runner's containers run: this interpreter's, else PATH's."""
    beside = Path(sys.executable).parent / "fma"
    if beside.is_file():
        return beside
    found = shutil.which("fma")
    if found is None:
        raise ComponentFailed("no fma program beside the Python interpreter or on PATH")
    return Path(found)


def _as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items}


def _write_runner_files(
    lay: Layout, net: network.PodNetwork, names: list[str], namespace: str
) -> None:
    lay.kwok_config.write_text(yaml.safe_dump_all(stages.pod_stages(), sort_keys=False))
    fma = _fma_program()
    search_path = [fma.parent, *(Path(d) for d in SYSTEM_PATH.split(":"))]
    kubelet_api.install_exec_shims(lay.kubelet_dir, search_path)
    RunnerConfig(
        state_dir=lay.state_dir,
        kubeconfig=lay.kubeconfig,
        ca_file=lay.ca_file,
        network_index=net.index,
        apiserver_port=lay.ports["kube-apiserver"],
        nodes=tuple(names),
        gpu_map_namespace=namespace,
        fma=fma,
        health_port=lay.ports[POD_RUNNER],
    ).save(lay.runner_config)


def up(
    bin_dir: Path,
    *,
    state_dir: Path | None = None,
    node_count: int = 2,
    gpus_per_node: int = 8,
    namespace: str = "default",
    die_with_parent: bool = False,
    pod_runner: bool = True,
    report: Callable[[str], None] = lambda _msg: None,
) -> LocalCluster:
    """Start a cluster from the binaries in ``bin_dir``; see the module docstring.

    ``die_with_parent`` makes the components exit when the calling process dies (for test
    sessions); without it they keep running until :func:`down` (for the CLI).
    ``pod_runner`` asks for the pod runner; it is left out, with a report saying why, where
    the machine cannot run Pods (see :func:`fma.testcluster.podrunner.network.supported`).
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
    names = nodes.node_names(node_count)
    net: network.PodNetwork | None = None
    why_not = network.supported() if pod_runner else "not asked for"
    if why_not is None:
        try:
            net = network.allocate(state_dir)
        except network.NetworkError as exc:
            raise ComponentFailed(f"pod network: {exc}") from exc
        report(f"pod network {net.cidr} on bridge {net.bridge}")
    elif pod_runner:
        report(f"no pod runner: it {why_not}; every Pod gets KWOK's fake lifecycle")
    lay = Layout(
        state_dir=state_dir,
        bin_dir=bin_dir,
        ports=ports,
        apiserver_host=net.gateway if net else "127.0.0.1",
        pod_cidr=net.cidr if net else components.POD_CIDR,
        pod_runner=net is not None,
    )
    started: list[Running] = []
    try:
        lay.pki.mkdir(exist_ok=True)
        pki.write_service_account_key(lay.sa_key)
        token = pki.write_token_file(lay.token_file)
        pki.write_kubeconfig(lay.kubeconfig, lay.server, lay.ca_file, token)
        if net is not None:
            _write_runner_files(lay, net, names, namespace)
    except BaseException:
        if net is not None:
            network.release(net, state_dir)
        raise

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
            pod_network=net.index if net else None,
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
        if net is not None:  # before KWOK, which watches them
            crds = kubelet_api.crds()
            kubectl(lay, "apply", "-f", "-", stdin=json.dumps(_as_list(crds)))
            established = [f"crd/{crd['metadata']['name']}" for crd in crds]
            kubectl(lay, "wait", "--for=condition=Established", "--timeout=30s", *established)
        last = ["kube-controller-manager", "kube-scheduler", "kwok"]
        last += [POD_RUNNER] if net is not None else []
        report(f"starting {', '.join(last)}")
        _start_and_wait(lay, last, started, die_with_parent=die_with_parent)
        cluster = record()
        report(f"creating {node_count} fake GPU nodes and the gpu-map ConfigMap")
        node_cidr = net.node_cidr if net is not None else nodes.default_pod_cidr
        objects = nodes.cluster_objects(node_count, gpus_per_node, namespace, node_cidr)
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
        if net is not None:
            network.release(net, state_dir)
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
    if cluster.pod_network is not None:
        # The runner has stopped its containers; this also covers a runner that was killed.
        try:
            network.release(network.PodNetwork(cluster.pod_network), cluster.state_dir)
        except (network.NetworkError, OSError) as exc:
            failures.append(ComponentFailed(f"pod network {cluster.pod_network}: {exc}"))
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
        "pod_network": (
            network.PodNetwork(cluster.pod_network).cidr
            if cluster.pod_network is not None
            else None
        ),
    }
