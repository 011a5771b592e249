"""Start a control-plane program in the background, watch it, and stop it by pid.

Each component runs in its own session (so a terminal's Ctrl-C does not reach it and
``fma testcluster up`` can return while it keeps running), with stdout and stderr in one log
file. Stopping is by the recorded pid only, and only if that pid still runs the recorded
binary: a recycled pid belonging to something else is never signalled.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class ComponentFailed(RuntimeError):
    """A component did not come up; the message is one line naming it and its log."""


@dataclass(frozen=True)
class Running:
    """A started component: what it is, its pid, and where it writes its log."""

    name: str
    pid: int
    binary: str
    log: str


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM us when the parent thread dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start(
    name: str,
    binary: Path,
    args: list[str],
    log: Path,
    *,
    die_with_parent: bool = False,
    env: dict[str, str] | None = None,
) -> Running:
    """Start ``binary args`` detached, appending its output to ``log``.

    ``env`` is the environment (default: ours).

    ``die_with_parent`` ties the component's life to this process (a test session killed
    with SIGKILL, or by a CI time-out, then leaves nothing behind); without it the component
    outlives us, as ``fma testcluster up`` needs.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(binary), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
            env=env,
        )
    return Running(name=name, pid=proc.pid, binary=str(binary), log=str(log))


_exit_status: dict[int, int] = {}
"""Wait statuses of children already reaped, by pid, so an error can say how they ended."""


def _reap(pid: int) -> bool:
    """Collect ``pid`` if it is our exited child; True if it is gone."""
    if pid in _exit_status:
        return True
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False  # not our child (started by an earlier `fma testcluster up`)
    if done == pid:
        _exit_status[pid] = status
        return True
    return False


def is_running(comp: Running) -> bool:
    """True while ``comp.pid`` is alive (not a zombie) and still runs ``comp.binary``."""
    if _reap(comp.pid):
        return False
    proc = Path("/proc") / str(comp.pid)
    try:
        argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    # cmdline reads empty for a moment while the child is still inside exec: that is ours.
    return argv0 in ("", comp.binary) and state != "Z"


def how_it_ended(comp: Running) -> str:
    """A short description of how ``comp`` ended, for error messages."""
    _reap(comp.pid)
    status = _exit_status.get(comp.pid)
    if status is not None and os.WIFEXITED(status):
        return f"exited with code {os.WEXITSTATUS(status)}"
    if status is not None and os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return "exited"


def stop(comp: Running, *, grace: float = 10.0) -> None:
    """SIGTERM ``comp``, SIGKILL it after ``grace`` seconds; return once it is gone.

    Raises :class:`ComponentFailed` if it survives SIGKILL for another ``grace`` seconds.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not is_running(comp):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(comp.pid, sig)
        deadline = time.monotonic() + grace
        while is_running(comp) and time.monotonic() < deadline:
            time.sleep(0.05)
    if is_running(comp):
        raise ComponentFailed(f"{comp.name} (pid {comp.pid}) did not stop; log: {comp.log}")
