"""The Pod network of one test cluster: a host bridge, a /16, and its clean-up.

Each cluster with a pod runner gets its own ``10.<index>.0.0/16`` (``index`` from
:data:`INDEX_CANDIDATES`, unique on the host), so several clusters (a test session, the CLI
test's private cluster, another developer's) coexist on one machine:

- the bridge ``fmabr<index>`` holds the gateway ``10.<index>.255.1/16``; the host (tests, an
  operator running outside the cluster) reaches every Pod through it, and the kube-apiserver
  listens on the gateway address so that Pods reach it too;
- node ``i`` has the pod CIDR ``10.<index>.<i>.0/24``;
- each running Pod has a network namespace ``fma<index>-<pod uid>`` whose ``eth0`` is one end
  of a veth pair (host end ``fv<index>p<n>`` on the bridge), see :mod:`.netns`.

Which index belongs to which cluster is recorded host-wide in :data:`REGISTRY` (on ``/run``,
so a reboot forgets it along with the namespaces), under a file lock. :func:`allocate` first
removes the leftovers of every recorded cluster that no longer runs (killed processes, a
crashed runner, a lost terminal), then picks the lowest index that neither a live cluster nor
any other route or address on the host uses. :func:`release` undoes everything one cluster
made: its processes (by cgroup and pid file), namespaces, veths, bridge and record.
"""

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fma.testcluster import process
from fma.testcluster.podrunner import cgroups
from fma.testcluster.state import LocalCluster

_LOG = logging.getLogger(__name__)

REGISTRY: Final = Path("/run/fma-testcluster/networks")
NETNS_DIR: Final = Path("/run/netns")
INDEX_CANDIDATES: Final = (*range(244, 255), *range(200, 244))
"""Second octets tried in order: 10.244/16 first, the usual pod network of small clusters."""


class NetworkError(RuntimeError):
    """The pod network could not be set up or torn down; the message is one line."""


@dataclass(frozen=True)
class PodNetwork:
    """The addresses and names of one cluster's Pod network (see the module docstring)."""

    index: int

    @property
    def cidr(self) -> str:
        return f"10.{self.index}.0.0/16"

    @property
    def prefix_len(self) -> int:
        return 16

    @property
    def gateway(self) -> str:
        return f"10.{self.index}.255.1"

    @property
    def bridge(self) -> str:
        return f"fmabr{self.index}"

    @property
    def netns_prefix(self) -> str:
        return f"fma{self.index}-"

    @property
    def veth_prefix(self) -> str:
        return f"fv{self.index}p"

    def node_cidr(self, node_index: int) -> str:
        """The pod CIDR of node ``node_index`` (0..254)."""
        if not 0 <= node_index < 255:
            raise ValueError(f"node index {node_index} out of range 0..254")
        return f"10.{self.index}.{node_index}.0/24"


def supported() -> str | None:
    """None if this machine can run Pods (root, ``ip``); else why not, in a few words."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths, a bridge)"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    return None


def run_ip(*args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run ``ip args`` (never through a shell); return stdout; raise NetworkError if ``check``."""
    proc = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    with (REGISTRY.parent / "networks.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _cluster_alive(entry: dict[str, Any]) -> bool:
    """True while the cluster of a registry entry may still use its network."""
    owner = int(entry.get("owner_pid", 0))
    if owner and _start_time(owner) == entry.get("owner_start"):
        return True  # the `up` that made it is still starting the cluster
    try:
        cluster = LocalCluster.load(Path(entry["state_dir"]))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return any(process.is_running(comp) for comp in cluster.components)


def _entries() -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for path in REGISTRY.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            found[int(path.stem)] = json.loads(path.read_text())
    return found


def _used_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every IPv4 route and address on the host, as networks."""
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for args in (("-4", "-j", "route", "show", "table", "all"), ("-4", "-j", "addr", "show")):
        with contextlib.suppress(NetworkError, ValueError):
            for item in json.loads(run_ip(*args) or "[]"):
                dst = item.get("dst")
                if dst and dst != "default":
                    with contextlib.suppress(ValueError):
                        used.append(ipaddress.ip_network(dst, strict=False))
                for info in item.get("addr_info", []):
                    with contextlib.suppress(ValueError, KeyError):
                        used.append(
                            ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", False)
                        )
    return used


def allocate(state_dir: Path) -> PodNetwork:
    """Reserve a free Pod network for the cluster in ``state_dir`` and create its bridge.

    Leftovers of dead clusters are removed first (see the module docstring). Raises
    :class:`NetworkError` when every candidate is taken.
    """
    with _locked():
        for index, entry in _entries().items():
            if not _cluster_alive(entry):
                _LOG.info("removing the leftovers of dead cluster %s", entry.get("state_dir"))
                _teardown(PodNetwork(index), Path(str(entry.get("state_dir", ""))))
        taken = set(_entries())
        used = _used_networks()
        for index in INDEX_CANDIDATES:
            net = PodNetwork(index)
            candidate = ipaddress.ip_network(net.cidr)
            if index in taken or any(candidate.overlaps(u) for u in used):
                continue
            entry = {
                "state_dir": str(state_dir),
                "owner_pid": os.getpid(),
                "owner_start": _start_time(os.getpid()),
            }
            (REGISTRY / f"{index}.json").write_text(json.dumps(entry) + "\n")
            try:
                _create_bridge(net)
            except NetworkError:
                _teardown(net, state_dir)
                raise
            return net
    raise NetworkError(f"no free pod network among 10.{{{INDEX_CANDIDATES[0]}...}}.0.0/16")


def _create_bridge(net: PodNetwork) -> None:
    run_ip(
        "-batch",
        "-",
        stdin=(
            f"link add {net.bridge} type bridge\n"
            f"addr add {net.gateway}/{net.prefix_len} dev {net.bridge}\n"
            f"link set {net.bridge} up\n"
        ),
    )


def release(net: PodNetwork, state_dir: Path) -> None:
    """Remove everything the cluster in ``state_dir`` made on the host for ``net``."""
    with _locked():
        _teardown(net, state_dir)


def _teardown(net: PodNetwork, state_dir: Path) -> None:
    kill_leftover_processes(net, state_dir)
    for name in netns_names(net):
        delete_netns(name)
    links = json.loads(run_ip("-j", "link", "show", check=False) or "[]")
    for link in links:
        name = str(link.get("ifname", ""))
        if name.startswith(net.veth_prefix) or name == net.bridge:
            run_ip("link", "del", name, check=False)
    root = cgroups.existing_cluster_root(net.index)
    if root is not None and not cgroups.remove(root):
        _LOG.warning("cgroup %s is not empty yet", root)
    with contextlib.suppress(FileNotFoundError):
        (REGISTRY / f"{net.index}.json").unlink()


def netns_names(net: PodNetwork) -> list[str]:
    """The network namespaces of ``net``'s Pods that exist now."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(net.netns_prefix))


def delete_netns(name: str) -> None:
    """Delete the namespace ``name`` (nothing if it is gone already)."""
    run_ip("netns", "delete", name, check=False)


def kill_leftover_processes(net: PodNetwork, state_dir: Path) -> None:
    """SIGKILL every container process of the cluster: its cgroup tree, then its pid files.

    Pid files (``<state>/pods/*/*/pid``: ``<pid> <start time>``) cover machines without a
    writable cgroup2 hierarchy; a pid whose start time differs was recycled and is spared.
    """
    root = cgroups.existing_cluster_root(net.index)
    if root is not None:
        cgroups.kill(root)
    pods = state_dir / "pods"
    if not pods.is_dir():
        return
    for pid_file in pods.glob("*/*/pid"):
        with contextlib.suppress(OSError, ValueError):
            pid_text, start = pid_file.read_text().split()
            pid = int(pid_text)
            if _start_time(pid) == start:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
