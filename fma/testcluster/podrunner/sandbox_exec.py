"""Enter a Pod's namespaces, then exec the container's program (stdlib only).

Run by the pod runner as ``python -I -S sandbox_exec.py OPTIONS -- PROGRAM ARGS...`` in the
process that becomes the container: it is a tiny "container runtime shim" that ends in
``execve``, so the container's pid is this process's pid. It imports nothing of ``fma`` (it
must start fast and must not depend on the container's environment, which it already has).

In order:

1. ask Linux to send SIGTERM when the runner dies (``PR_SET_PDEATHSIG``), so that even a
   runner killed with SIGKILL does not leave its containers running;
2. join the container's cgroup (``--cgroup``), before anything can fork;
3. either join the namespaces of a running container (``--join PID``: exec probes), or
   enter the Pod's network namespace (``--netns``) and make private mount and UTS
   namespaces: hostname = Pod name, a fresh tmpfs over ``/var/run/secrets`` (hiding the
   host's), read-only bind mounts of the Pod's projected files (``--bind SRC:DST``, the
   ServiceAccount token, CA and namespace) and of its ``/etc/hosts`` (``--hosts FILE``);
4. ``chdir`` and ``execvpe`` the program with the environment it was given.

Errors before the exec are printed to stderr (the container's log) with exit code 127.
"""

import argparse
import ctypes
import os
import signal
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
SECRETS = "/var/run/secrets"
HOSTS = "/etc/hosts"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _setns(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, nstype), f"setns {path}")
    finally:
        os.close(fd)


def _enter_new(options: argparse.Namespace) -> None:
    if options.netns:
        _setns(options.netns, CLONE_NEWNET)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)  # nothing leaks back to the host
    if options.hostname:
        name = options.hostname.encode()
        _check(_libc.sethostname(name, len(name)), "sethostname")
    if Path(SECRETS).is_dir():
        _mount("tmpfs", SECRETS, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=4m")
    binds = [spec.rsplit(":", 1) for spec in options.bind]
    for _, target in binds:
        Path(target).mkdir(parents=True, exist_ok=True)
    if options.hosts:
        binds.append([options.hosts, HOSTS])  # a file over a file: nothing to make
    for source, target in binds:
        _mount(source, target, None, MS_BIND, None)
        _mount("none", target, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)


def _join(pid: int) -> None:
    # The mount namespace last: after it, /proc/<pid> may no longer be the same path.
    for kind, flag in (("net", CLONE_NEWNET), ("uts", CLONE_NEWUTS), ("mnt", CLONE_NEWNS)):
        _setns(f"/proc/{pid}/ns/{kind}", flag)


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: sandbox_exec.py OPTIONS -- PROGRAM ARGS...", file=sys.stderr)
        return 127
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="sandbox_exec")
    parser.add_argument("--parent", type=int, default=0)
    parser.add_argument("--cgroup", default="")
    parser.add_argument("--netns", default="")
    parser.add_argument("--hostname", default="")
    parser.add_argument("--bind", action="append", default=[])
    parser.add_argument("--hosts", default="")
    parser.add_argument("--join", type=int, default=0)
    parser.add_argument("--workdir", default="/")
    options = parser.parse_args(argv[:split])
    program = argv[split + 1 :]
    if not program:
        print("sandbox_exec: no program given", file=sys.stderr)
        return 127
    try:
        if options.parent:
            _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0), "prctl")
            if os.getppid() != options.parent:
                return 127  # the runner died before we could ask to follow it
        if options.cgroup:
            (Path(options.cgroup) / "cgroup.procs").write_text(str(os.getpid()))
        if options.join:
            _join(options.join)
        else:
            _enter_new(options)
        os.chdir(options.workdir)
        os.execvpe(program[0], program, dict(os.environ))  # noqa: S606 (argv, no shell)
    except OSError as error:
        print(f"sandbox_exec: {program[0]}: {error}", file=sys.stderr)
        return 127
    return 127  # not reached: execvpe replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
