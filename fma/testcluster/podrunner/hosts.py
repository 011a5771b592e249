"""The ``/etc/hosts`` a kubelet gives each container: localhost, the Pod's own name at its IP,
and the Pod's ``hostAliases``.

Without it the Pod's hostname (its name, in its own UTS namespace) resolves nowhere: the
host's resolver is not reachable from a Pod's network, so a program that looks its own name
up (PyTorch's gloo does, at each vLLM start) waits for DNS time-outs, tens of seconds.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

HEADER = """\
# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
"""


def hosts_file(pod: Mapping[str, Any], pod_ip: str, hostname: str) -> str:
    """The kubelet's hosts file for ``pod`` at ``pod_ip`` named ``hostname``."""
    lines = [HEADER, f"{pod_ip}\t{hostname}\n"]
    aliases = (pod.get("spec") or {}).get("hostAliases") or []
    entries = [
        "\t".join([str(alias["ip"]), *(str(name) for name in alias.get("hostnames") or [])])
        for alias in aliases
        if isinstance(alias, Mapping) and alias.get("ip") and alias.get("hostnames")
    ]
    if entries:
        lines.append("\n# Entries added by HostAliases.\n")
        lines += [entry + "\n" for entry in entries]
    return "".join(lines)


def write_hosts_file(path: Path, pod: Mapping[str, Any], pod_ip: str, hostname: str) -> Path:
    """Write :func:`hosts_file` at ``path`` (its directory made if needed); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(hosts_file(pod, pod_ip, hostname))
    return path
