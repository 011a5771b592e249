"""One network namespace per Pod: ``lo``, an ``eth0`` with the Pod IP, a default route.

The namespace ``fma<index>-<pod uid>`` holds one end of a veth pair, renamed ``eth0`` and
addressed with the Pod IP in the cluster's /16; the other end sits on the cluster's bridge.
So every Pod has its own ports (two launchers both listen on 8001), reaches itself at
127.0.0.1 and the other Pods and the kube-apiserver (on the bridge's gateway address) by IP,
and the host reaches it at its Pod IP. Commands go to ``ip -batch`` as fixed words built from
validated names, never through a shell.
"""

import logging
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fma.testcluster.podrunner.network import NETNS_DIR, PodNetwork, delete_netns, run_ip

_LOG = logging.getLogger(__name__)
GARP: Final = Path(__file__).with_name("garp.py")
_UID_RE: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Sandbox:
    """A Pod's network namespace and the host end of its veth."""

    netns: str
    host_if: str
    ip: str

    @property
    def netns_path(self) -> str:
        return str(NETNS_DIR / self.netns)


def sandbox_names(net: PodNetwork, pod_uid: str, serial: int) -> tuple[str, str]:
    """(namespace, host interface) names; ``serial`` keeps interface names short and unique."""
    if not _UID_RE.fullmatch(pod_uid):
        raise ValueError(f"not a Pod UID: {pod_uid!r}")
    host_if = f"{net.veth_prefix}{serial}"
    if len(host_if) > 15:  # IFNAMSIZ - 1
        raise ValueError(f"interface name {host_if!r} too long")
    return f"{net.netns_prefix}{pod_uid}", host_if


def create(net: PodNetwork, netns: str, host_if: str, ip: str) -> Sandbox:
    """Create the namespace, the veth pair and the addresses; raises NetworkError."""
    delete(Sandbox(netns, host_if, ip))  # a leftover of an earlier attempt
    try:
        run_ip(
            "-batch",
            "-",
            stdin=(
                f"netns add {netns}\n"
                f"link add {host_if} type veth peer name eth0 netns {netns}\n"
                f"link set {host_if} master {net.bridge} up\n"
            ),
        )
        run_ip(
            "-n",
            netns,
            "-batch",
            "-",
            stdin=(
                "link set lo up\n"
                f"addr add {ip}/{net.prefix_len} dev eth0\n"
                "link set eth0 up\n"
                f"route add default via {net.gateway}\n"
            ),
        )
    except Exception:
        delete(Sandbox(netns, host_if, ip))
        raise
    forget_neighbour(net, ip)
    sandbox = Sandbox(netns, host_if, ip)
    announce(sandbox)
    return sandbox


def forget_neighbour(net: PodNetwork, ip: str) -> None:
    """Drop what the host remembers of ``ip``'s link-layer address.

    A Pod IP is reused once its Pod is gone; the host's neighbour entry for it still names the
    old veth's MAC and stays REACHABLE for up to ~30 s after its last use, so connections to
    the new Pod would time out until then (a CNI plugin sends a gratuitous ARP instead).
    """
    run_ip("neigh", "flush", "to", ip, "dev", net.bridge, check=False)


def announce(sandbox: Sandbox) -> None:
    """Tell every neighbour on the bridge that the sandbox's IP is at its ``eth0`` now (a
    gratuitous ARP, :mod:`.garp`): the other Pods that talked to the address's previous owner
    would otherwise send to that Pod's MAC until their entries expire. A failure is logged:
    the Pod works, only a reused address may be reached late."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(GARP), sandbox.netns_path, "eth0", sandbox.ip],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if done.returncode != 0:
        _LOG.warning("sandbox %s: no gratuitous ARP: %s", sandbox.netns, done.stderr.strip())


def delete(sandbox: Sandbox) -> None:
    """Remove the veth (both ends) and the namespace; nothing if they are gone.

    The veth is deleted explicitly: a namespace still pinned by a dying process would
    otherwise keep it (and its address) a while after ``ip netns delete``.
    """
    run_ip("link", "del", sandbox.host_if, check=False)
    delete_netns(sandbox.netns)
