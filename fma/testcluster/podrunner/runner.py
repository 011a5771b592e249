"""The pod runner process: watch Pods, give each of ours a worker, answer a health check.

Contract: started by ``fma testcluster up`` as ``python -m fma.testcluster.podrunner
--config <state>/pod-runner.json``, it answers ``GET /healthz`` on 127.0.0.1:<health port>
with 200 once its first list of Pods is handled. From then on each Pod that
:func:`~.images.is_runner_pod` selects gets a :class:`~.pod.PodWorker` within a fraction of
a second of the watch event. On SIGTERM or SIGINT it stops every container (grace
:data:`SHUTDOWN_GRACE_S`), kills what is left of them, removes their network namespaces and
exits 0, writing nothing more to the API (the cluster is going down).

Logs go to stderr (``<state>/logs/pod-runner.log``): every sandbox, IP, GPU assignment,
container start (with its pid and log file), exit, probe failure and deletion.
"""

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Final

import httpx

from fma.testcluster.podrunner import cgroups, network
from fma.testcluster.podrunner.context import Context, RunnerConfig
from fma.testcluster.podrunner.images import is_runner_pod
from fma.testcluster.podrunner.kube import Kube
from fma.testcluster.podrunner.pod import PodWorker
from fma.testcluster.podrunner.watch import PodWatch

_LOG = logging.getLogger("fma.testcluster.podrunner")

SHUTDOWN_GRACE_S: Final = 3.0
"""Grace period of the containers when the runner itself stops (``fma testcluster down``)."""

Pod = dict[str, Any]


class Runner:
    """Dispatches watch events to Pod workers (all on one event loop)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.nodes = frozenset(ctx.config.nodes)
        self.workers: dict[str, PodWorker] = {}
        self.synced = False

    def on_snapshot(self, pods: list[Pod]) -> None:
        """A full list: every Pod in it is an update; a worker whose Pod is missing is gone."""
        present = {str(p["metadata"]["uid"]) for p in pods}
        for pod in pods:
            self.on_event("MODIFIED", pod)
        for uid, worker in list(self.workers.items()):
            if uid not in present:
                worker.removed()
        self.synced = True

    def on_event(self, kind: str, pod: Pod) -> None:
        uid = str(pod["metadata"]["uid"])
        if kind == "DELETED":
            self.ctx.ips.forget(uid)
            worker = self.workers.get(uid)
            if worker is not None:
                worker.removed()
            return
        self.ctx.ips.observe(uid, (pod.get("status") or {}).get("podIP"))
        if self.ctx.shutting_down or not is_runner_pod(pod, self.nodes):
            return
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        meta = pod["metadata"]
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            # Finished before this runner started: never run again, as on a kubelet; only
            # a pending deletion is finished.
            if meta.get("deletionTimestamp"):
                kube = self.ctx.kube
                args = (meta["namespace"], meta["name"], uid)
                asyncio.get_running_loop().run_in_executor(None, kube.finish_deletion, *args)
            return
        _LOG.info(
            "pod %s/%s (uid %s) on %s: running it",
            meta["namespace"],
            meta["name"],
            uid,
            pod["spec"]["nodeName"],
        )
        worker = PodWorker(self.ctx, pod)
        self.workers[uid] = worker
        asyncio.get_running_loop().create_task(self._forget_when_done(uid, worker))

    async def _forget_when_done(self, uid: str, worker: PodWorker) -> None:
        await worker.finished.wait()
        while not worker.gone:  # finalizers may keep the object a while
            await asyncio.sleep(0.5)
        if self.workers.get(uid) is worker:
            del self.workers[uid]

    async def shut_down(self) -> None:
        self.ctx.shutting_down = True
        for worker in self.workers.values():
            worker.shut_down(SHUTDOWN_GRACE_S)
        waits = [w.finished.wait() for w in self.workers.values()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), SHUTDOWN_GRACE_S + 5)


async def _serve_health(runner: Runner, port: int) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            ok = runner.synced
            body = b"ok\n" if ok else b"not synced\n"
            head = b"HTTP/1.1 200 OK" if ok else b"HTTP/1.1 503 Service Unavailable"
            writer.write(
                head + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
            )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", port)


def _remove_leftovers(config: RunnerConfig) -> None:
    """A new runner owns nothing yet: namespaces of its network are an earlier run's."""
    net = network.PodNetwork(config.network_index)
    for name in network.netns_names(net):
        network.delete_netns(name)


async def run(config: RunnerConfig) -> None:
    from kubernetes import config as kube_config

    new_client: Any = kube_config.new_client_from_config
    api_client = new_client(config_file=str(config.kubeconfig))
    cgroup_root = cgroups.cluster_root(config.network_index)
    if cgroup_root is None:
        _LOG.warning("no writable cgroup2 hierarchy: containers are tracked by process group")
    _remove_leftovers(config)
    # Kubelet probes are plain connections to Pod IPs: no proxy, no certificate checks, no
    # keep-alive (each probe opens its own connection).
    async with httpx.AsyncClient(
        verify=False,  # noqa: S501
        trust_env=False,
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as http:
        ctx = Context(
            config=config,
            kube=Kube(api_client, config.gpu_map_namespace),
            http=http,
            cgroup_root=cgroup_root,
        )
        runner = Runner(ctx)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def on_snapshot(pods: list[Pod]) -> None:
            loop.call_soon_threadsafe(runner.on_snapshot, pods)

        def on_event(kind: str, pod: Pod) -> None:
            loop.call_soon_threadsafe(runner.on_event, kind, pod)

        watch = PodWatch(ctx.kube, on_snapshot=on_snapshot, on_event=on_event)
        server = await _serve_health(runner, config.health_port)
        watch.start()
        _LOG.info("pod runner up: nodes %s, network %s", ", ".join(config.nodes), ctx.net.cidr)
        await stop.wait()
        _LOG.info("stopping: %d pods", len(runner.workers))
        watch.stop()
        server.close()
        await runner.shut_down()
    if cgroup_root is not None:
        cgroups.kill(cgroup_root)
    _remove_leftovers(config)
    api_client.close()
    _LOG.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fma.testcluster.podrunner")
    parser.add_argument("--config", required=True, help="pod-runner.json written by `up`")
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe otherwise
    config = RunnerConfig.load(Path(options.config))
    asyncio.run(run(config))
    return 0
