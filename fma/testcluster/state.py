"""The record of a running test cluster, kept as ``state.json`` in its state directory.

A state directory holds everything one cluster owns: ``state.json`` (this record), the
admin ``kubeconfig``, ``pki/`` (serving certificate, service-account key, token file),
``etcd/`` (data), ``logs/<component>.log`` and, with a pod runner, ``pods/`` (one directory
per Pod: container logs, volumes, pid files). ``fma testcluster down`` needs nothing but it.
"""

import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fma.testcluster.process import Running

STATE_FILE = "state.json"


@dataclass(frozen=True)
class LocalCluster:
    """A running (or recorded) local control plane and how to reach it."""

    state_dir: Path
    kubeconfig: Path
    bin_dir: Path
    server: str
    namespace: str
    nodes: tuple[str, ...]
    gpus_per_node: int
    ports: dict[str, int] = field(default_factory=dict)
    components: tuple[Running, ...] = ()
    pod_network: int | None = None
    """The index of the Pod network (``10.<index>.0.0/16``) if a pod runner runs Pods."""

    @property
    def kubectl(self) -> Path:
        """The kubectl built with the cluster (same version as the apiserver)."""
        return self.bin_dir / "kubectl"

    @property
    def helm(self) -> Path:
        """The helm built with the cluster."""
        return self.bin_dir / "helm"

    def log(self, component: str) -> Path:
        """The log file of ``component`` (e.g. ``"kube-apiserver"``)."""
        return self.state_dir / "logs" / f"{component}.log"

    def env(self) -> dict[str, str]:
        """This process's environment with ``KUBECONFIG`` and ``PATH`` pointing at the cluster."""
        path = os.environ.get("PATH", "")
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{path}",
        }

    def env_lines(self) -> list[str]:
        """Shell ``export`` lines for :meth:`env` that keep the caller's ``$PATH``."""
        return [
            f"export KUBECONFIG={shlex.quote(str(self.kubeconfig))}",
            f'export PATH={shlex.quote(str(self.bin_dir))}:"$PATH"',
        ]

    def api_client(self) -> Any:
        """A new ``kubernetes.client.ApiClient`` authenticated as the cluster admin."""
        from kubernetes import config  # heavy; only the callers that want a client pay for it

        return config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]

    def save(self) -> None:
        """Write ``state.json`` atomically."""
        data = asdict(self)
        text = json.dumps(data, indent=2, default=str)
        tmp = self.state_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(text + "\n")
        tmp.replace(self.state_dir / STATE_FILE)

    @classmethod
    def load(cls, state_dir: Path) -> "LocalCluster":
        """Read ``state.json`` from ``state_dir``; raises FileNotFoundError if there is none."""
        data = json.loads((state_dir / STATE_FILE).read_text())
        return cls(
            state_dir=Path(data["state_dir"]),
            kubeconfig=Path(data["kubeconfig"]),
            bin_dir=Path(data["bin_dir"]),
            server=str(data["server"]),
            namespace=str(data["namespace"]),
            nodes=tuple(data["nodes"]),
            gpus_per_node=int(data["gpus_per_node"]),
            ports={str(k): int(v) for k, v in data["ports"].items()},
            components=tuple(Running(**c) for c in data["components"]),
            pod_network=data.get("pod_network"),
        )
