"""The kubelet API (``kubectl logs``, ``exec``, ``port-forward``) for the runner's Pods.

KWOK serves the kubelet's endpoints for the nodes it manages, on its own server, and the
apiserver reaches it there as every node's kubelet endpoint (see
:mod:`fma.testcluster.components`). What it does for a Pod is configured by three KWOK
resources named like the Pod, in its namespace, which the runner writes once the Pod has its
IP (:func:`pod_resources`) and which go with the Pod (owner reference; the runner also
deletes them once the Pod is being deleted, so a finished Pod's logs stay readable until then):

- ``Logs``: each container's ``current.cri`` and ``previous.cri`` (:mod:`.crilog`), followed
  with ``-f``;
- ``Exec``: each container's command runs through :mod:`.exec_shim`, which enters the
  container; KWOK runs it from the container's ``workingDir``;
- ``PortForward``: a port forwards to the same port at the Pod IP. KWOK needs the ports
  listed, so the list is those the containers declare plus :data:`UNDECLARED_PORTS`, where
  FMA's servers listen whether declared or not (a requester's proxy port, an engine's);
  any other port is refused.

This module also holds the definitions of those three resources (:func:`crds`, applied by
``up`` before KWOK starts) and the shim directory KWOK finds programs in
(:func:`install_exec_shims`). Manifests are pure; only the installation writes files.
"""

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from fma.testcluster.podrunner import crilog, exec_shim

GROUP: Final = "kwok.x-k8s.io"
VERSION: Final = "v1alpha1"
KINDS: Final = {"Logs": "logs", "Exec": "execs", "PortForward": "portforwards"}
"""Kind -> plural of the per-Pod resources (KWOK's ``--enable-crds`` takes the kinds)."""

UNDECLARED_PORTS: Final = range(8000, 8100)
"""Forwarded even where no container declares them (see the module docstring)."""

Manifest = dict[str, Any]


def crds() -> list[Manifest]:
    """The CustomResourceDefinitions of :data:`KINDS`, schemaless (KWOK validates them)."""
    return [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {
                    "kind": kind,
                    "listKind": f"{kind}List",
                    "plural": plural,
                    "singular": kind.lower(),
                },
                "versions": [
                    {
                        "name": VERSION,
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
        for kind, plural in KINDS.items()
    ]


def _forwarded_ports(spec: dict[str, Any]) -> list[int]:
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    ports = {
        int(port["containerPort"])
        for container in containers
        for port in container.get("ports") or []
        if str(port.get("protocol") or "TCP") == "TCP" and "containerPort" in port
    }
    return sorted(ports.union(UNDECLARED_PORTS))


def pod_resources(pod: Manifest, pod_dir: Path, pod_ip: str) -> list[Manifest]:
    """The ``Logs``, ``Exec`` and ``PortForward`` resources of one running Pod."""
    meta, spec = pod["metadata"], pod["spec"]
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    owner = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": False,
        "blockOwnerDeletion": False,
    }

    def resource(kind: str, body: Manifest) -> Manifest:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "ownerReferences": [owner],
            },
            "spec": body,
        }

    logs = [
        {
            "containers": [c["name"]],
            "logsFile": str(pod_dir / c["name"] / crilog.CURRENT),
            "previousLogsFile": str(pod_dir / c["name"] / crilog.PREVIOUS),
            "follow": True,
        }
        for c in containers
    ]
    execs = [
        {
            "containers": [c["name"]],
            "local": {
                "workDir": str(c.get("workingDir") or "/"),
                "envs": [{"name": exec_shim.CONTAINER_VARIABLE, "value": str(pod_dir / c["name"])}],
            },
        }
        for c in containers
    ]
    forwards = [
        {"ports": [port], "target": {"port": port, "address": pod_ip}}
        for port in _forwarded_ports(spec)
    ]
    return [
        resource("Logs", {"logs": logs}),
        resource("Exec", {"execs": execs}),
        resource("PortForward", {"forwards": forwards}),
    ]


def _program_names(directories: Iterable[Path]) -> set[str]:
    names: set[str] = set()
    for directory in directories:
        try:
            entries = list(directory.iterdir())
        except OSError:
            continue
        names.update(
            entry.name
            for entry in entries
            if entry.is_file() and os.access(entry, os.X_OK) and "/" not in entry.name
        )
    return names


def install_exec_shims(target: Path, search_path: Iterable[Path]) -> Path:
    """Write the exec shim and, in ``target/bin``, a link to it for every program name on
    ``search_path`` (the containers' ``PATH``); return ``target/bin``, to go first on
    KWOK's ``PATH``."""
    bin_dir = target / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = target / "exec-shim"
    shim.write_text(
        f"#!{sys.executable} -IS\n"
        "import sys\n"
        f"sys.path.append({str(Path(exec_shim.__file__).parent)!r})\n"
        "import exec_shim\n"
        "sys.exit(exec_shim.main(sys.argv))\n"
    )
    shim.chmod(0o755)
    for name in _program_names(search_path):
        link = bin_dir / name
        if not link.is_symlink():
            link.symlink_to(shim)
    return bin_dir
