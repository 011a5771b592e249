"""Pod IPs: the runner's addresses from each node's pod CIDR, distinct from every other Pod's.

KWOK hands out the fake Pods' IPs from the bottom of a node's CIDR upwards; the runner takes
its Pods' from the top downwards (``.254``, ``.253``, ...), skipping every address any Pod
of the cluster shows in ``status.podIP``. The two meet only past ~127 Pods on one node (the
nodes allow 110), and even then the skip list keeps them apart for all Pods already seen.
"""

import ipaddress


class IpAllocator:
    """Addresses seen on Pods and addresses the runner holds. One event loop owns it."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}  # pod uid -> status.podIP, from the watch
        self._held: dict[str, str] = {}  # pod uid -> address the runner gave its sandbox

    def observe(self, uid: str, pod_ip: str | None) -> None:
        """Record the IP the API shows for Pod ``uid`` (None or empty: none)."""
        if pod_ip:
            self._seen[uid] = pod_ip
        else:
            self._seen.pop(uid, None)

    def forget(self, uid: str) -> None:
        """Pod ``uid`` is gone from the API."""
        self._seen.pop(uid, None)

    def allocate(self, cidr: str, uid: str) -> str:
        """A free address of ``cidr`` for Pod ``uid`` (the same one if it holds one)."""
        if uid in self._held:
            return self._held[uid]
        used = {*self._seen.values(), *self._held.values()}
        network = ipaddress.ip_network(cidr)
        for host in reversed(list(network.hosts())):
            if str(host) not in used:
                self._held[uid] = str(host)
                return str(host)
        raise RuntimeError(f"no free Pod IP left in {cidr}")

    def release(self, uid: str) -> None:
        """The sandbox of Pod ``uid`` is gone; its address may be reused."""
        self._held.pop(uid, None)
