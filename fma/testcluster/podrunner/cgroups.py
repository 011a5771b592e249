"""Every process of a container in one cgroup, so that stopping it leaves nothing behind.

A container is its main process *and everything it starts*: a launcher's engines run in
sessions of their own (``setsid``), out of reach of a process-group signal. As a container
runtime does, the runner puts each container run in its own cgroup (v2) and, when the main
process has exited or the grace period is over, kills whatever is left with ``cgroup.kill``.

The tree is ``<cgroup2 mount>/fma-testcluster/<network index>/<pod uid>/<container>-<run>``:
one subtree per cluster, so ``fma testcluster down`` (or the next ``up``, after a crash)
kills the whole cluster's containers with one write, whichever process does it. No
controller is enabled: the cgroups only group processes, they limit nothing.

Where no writable cgroup2 hierarchy exists, :func:`cluster_root` returns None and the
runner falls back to process groups and pid files (see :mod:`.processes`).
"""

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Final

TREE: Final = "fma-testcluster"


def _cgroup2_mount() -> Path | None:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


def cluster_root(network_index: int) -> Path | None:
    """The cgroup directory of one cluster's containers (created), or None if unavailable."""
    mount = _cgroup2_mount()
    if mount is None or not os.access(mount, os.W_OK):
        return None
    root = mount / TREE / str(network_index)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root


def existing_cluster_root(network_index: int) -> Path | None:
    """The cluster's cgroup directory if it exists; never creates it."""
    mount = _cgroup2_mount()
    if mount is None:
        return None
    root = mount / TREE / str(network_index)
    return root if root.is_dir() else None


def procs(group: Path) -> list[int]:
    """The pids in ``group`` and all its descendants."""
    found: list[int] = []
    for path in [group, *(p for p in group.rglob("*") if p.is_dir())]:
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(x) for x in (path / "cgroup.procs").read_text().split())
    return found


def kill(group: Path) -> None:
    """SIGKILL every process in ``group`` and its descendants (``cgroup.kill``, else one by one)."""
    if not group.is_dir():
        return
    try:
        (group / "cgroup.kill").write_text("1")
        return
    except OSError:
        pass  # kernels before 5.14 lack cgroup.kill
    for pid in procs(group):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def remove(group: Path, *, timeout: float = 5.0) -> bool:
    """Kill everything in ``group``, then remove it and its descendants; True if it is gone.

    A cgroup can only be removed once empty; killed processes leave it a moment later, so
    this waits up to ``timeout`` seconds.
    """
    if not group.is_dir():
        return True
    kill(group)
    deadline = time.monotonic() + timeout
    while True:
        dirs = sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for path in [*dirs, group]:
            with contextlib.suppress(OSError):
                path.rmdir()
        if not group.exists():
            if group.parent.name == TREE:
                with contextlib.suppress(OSError):
                    group.parent.rmdir()  # the last cluster's: leave no empty tree behind
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
