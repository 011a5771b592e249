"""Put a ``kubectl exec`` command into its container (stdlib only).

KWOK serves the kubelet's exec endpoint by starting the requested program itself, found on
its own ``PATH``, with the variables the Pod's ``Exec`` resource adds (see
:mod:`.kubelet_api`). The test control plane starts KWOK with a directory first on its
``PATH`` in which every program name of the containers' ``PATH`` is a link to this shim.

Started under a program's name with :data:`CONTAINER_VARIABLE` set (the container's
directory in the runner's state, which holds the pid file of its running process), the shim
execs ``sandbox_exec.py --join`` on that process: the program then runs in the container's
network, mount and UTS namespaces and its cgroup, with the container's own environment
(read from the process), from KWOK's working directory (the container's ``workingDir``). So
``curl 127.0.0.1:<port>`` reaches the Pod's own port, as in a real Pod. The argument vector
goes through unchanged; nothing is given to a shell.

Without the variable (a program KWOK starts for anything else) the shim execs the program of
that name from the rest of ``PATH``, as if the shim were not there.
"""

import os
import sys
from pathlib import Path

CONTAINER_VARIABLE = "FMA_EXEC_CONTAINER"
SANDBOX_EXEC = Path(__file__).with_name("sandbox_exec.py")
NOT_RUNNING = 126
"""The exit code when the container has no running process."""


def _container_pid(container_dir: Path) -> int | None:
    try:
        pid_text, start = (container_dir / "pid").read_text().split()
        stat = Path(f"/proc/{pid_text}/stat").read_text()
    except (OSError, ValueError):
        return None
    if stat.rsplit(")", 1)[1].split()[19] != start:
        return None  # the pid was reused
    return int(pid_text)


def _environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def _cgroup(pid: int) -> str:
    """The cgroup v2 directory of ``pid``, or "" where there is none."""
    try:
        line = next(
            text for text in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
            if text.startswith("0::")
        )  # fmt: skip
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except (OSError, StopIteration):
        return ""
    for mount in mounts:
        fields = mount.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return fields[1] + line[3:]
    return ""


def _elsewhere_on_path(name: str, shim_dir: Path) -> str | None:
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and Path(entry) != shim_dir:
            candidate = Path(entry) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def main(argv: list[str]) -> int:
    invoked = Path(argv[0])
    name, args = invoked.name, argv[1:]
    container = os.environ.get(CONTAINER_VARIABLE)
    if not container:
        program = _elsewhere_on_path(name, invoked.parent.absolute())
        if program is None:
            print(f"{name}: not found", file=sys.stderr)
            return 127
        os.execv(program, [name, *args])  # noqa: S606 (argv, no shell)
    pid = _container_pid(Path(container))
    if pid is None:
        print(f"container {Path(container).name} is not running", file=sys.stderr)
        return NOT_RUNNING
    helper = [sys.executable, "-I", "-S", str(SANDBOX_EXEC), f"--join={pid}"]
    cgroup = _cgroup(pid)
    if cgroup:
        helper.append(f"--cgroup={cgroup}")
    helper += [f"--workdir={Path.cwd()}", "--", name, *args]
    os.execve(sys.executable, helper, _environment(pid))  # noqa: S606 (argv, no shell)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
