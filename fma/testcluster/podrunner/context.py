"""What every Pod worker shares: configuration, API, allocators, the probe HTTP client.

:class:`RunnerConfig` is the file ``fma testcluster up`` writes for the runner
(``<state>/pod-runner.json``); :class:`Context` is built from it once per runner process and
owned by its event loop (nothing in it is locked).
"""

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx

from fma.testcluster.podrunner.gpus import GpuAllocator, in_index_order
from fma.testcluster.podrunner.ipam import IpAllocator
from fma.testcluster.podrunner.kube import Kube
from fma.testcluster.podrunner.network import PodNetwork

T = TypeVar("T")

SYSTEM_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class RunnerConfig:
    """The runner's whole configuration (written by ``up``, read by the runner)."""

    state_dir: Path
    kubeconfig: Path
    ca_file: Path
    network_index: int
    apiserver_port: int
    nodes: tuple[str, ...]
    gpu_map_namespace: str
    fma: Path
    health_port: int

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")

    @classmethod
    def load(cls, path: Path) -> "RunnerConfig":
        data = json.loads(path.read_text())
        return cls(
            state_dir=Path(data["state_dir"]),
            kubeconfig=Path(data["kubeconfig"]),
            ca_file=Path(data["ca_file"]),
            network_index=int(data["network_index"]),
            apiserver_port=int(data["apiserver_port"]),
            nodes=tuple(data["nodes"]),
            gpu_map_namespace=str(data["gpu_map_namespace"]),
            fma=Path(data["fma"]),
            health_port=int(data["health_port"]),
        )

    @property
    def pods_dir(self) -> Path:
        return self.state_dir / "pods"


@dataclass
class Context:
    """Shared state of one runner process (see the module docstring)."""

    config: RunnerConfig
    kube: Kube
    http: httpx.AsyncClient
    cgroup_root: Path | None
    gpus: GpuAllocator = field(default_factory=GpuAllocator)
    ips: IpAllocator = field(default_factory=IpAllocator)
    shutting_down: bool = False
    _serial: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))
    _nodes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def net(self) -> PodNetwork:
        return PodNetwork(self.config.network_index)

    def next_serial(self) -> int:
        """A number unique in this runner, for short interface names."""
        return next(self._serial)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call (the API, ``ip``) off the event loop."""
        return await asyncio.to_thread(fn, *args)

    async def node(self, name: str) -> dict[str, Any]:
        """The Node object (cached: pod CIDR, addresses and allocatable do not change)."""
        if name not in self._nodes:
            found = await self.call(self.kube.read_node, name)
            if found is None:
                raise RuntimeError(f"node {name} not found")
            self._nodes[name] = found
        return self._nodes[name]

    def cached_node(self, name: str) -> dict[str, Any]:
        """The Node object if :meth:`node` has fetched it, else an empty dict."""
        return self._nodes.get(name, {})

    async def node_gpus(self, node: str) -> list[str]:
        """The node's GPU UUIDs in index order, from the ``gpu-map`` ConfigMap."""
        gpu_map = await self.call(self.kube.gpu_map)
        return in_index_order(gpu_map.get(node, {}))

    def image_env(self, hostname: str, program: Path | None = None) -> dict[str, str]:
        """What the image and runtime put in every container's environment (the Pod's own
        variables override it): the virtualenv of its ``fma`` ``program`` (default: the
        runner's) first on ``PATH``, unbuffered Python output so that logs keep up, ``HOME``
        and ``HOSTNAME``."""
        return {
            "PATH": f"{(program or self.config.fma).parent}:{SYSTEM_PATH}",
            "HOME": "/root",
            "HOSTNAME": hostname,
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        }
