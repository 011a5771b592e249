"""Container processes: start one in its Pod's namespaces, learn when it exits, stop it.

A container run is ``python -I -S sandbox_exec.py ... -- <fma> <args>`` (see
:mod:`.sandbox_exec`), started from the runner's event-loop thread (so the parent-death
signal is tied to a thread that lives as long as the runner), in a session of its own, with
stdout and stderr drained into the run's logs (:mod:`.crilog`). Its exit is noticed through
a pidfd on the event loop, without a thread per process.

When the main process has exited, whatever it left in its cgroup is killed, as a container's
other processes die with its init. :meth:`ContainerProcess.stop` sends SIGTERM to the
process group, waits up to the grace period and then SIGKILLs the cgroup (or the process
group where there is no cgroup).

Each run writes ``<pid> <start time>`` to a pid file beside its logs, removed when it exits,
so that ``fma testcluster down`` and the next ``up`` can kill leftovers after a crash.
"""

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from fma.testcluster.podrunner import cgroups, crilog

_LOG = logging.getLogger(__name__)
SANDBOX_EXEC: Final = Path(__file__).with_name("sandbox_exec.py")


@dataclass(frozen=True)
class Launch:
    """Everything needed to start one container run."""

    argv: list[str]
    env: Mapping[str, str]
    log: Path
    pid_file: Path
    netns_path: str
    hostname: str
    binds: list[tuple[Path, str]] = field(default_factory=list)
    hosts: Path | None = None
    """The Pod's ``/etc/hosts`` (:mod:`.hosts`)."""
    cgroup: Path | None = None
    workdir: str = "/"


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


def exit_code(returncode: int) -> int:
    """A container exit code: a signal ``n`` reads as ``128 + n``, as runtimes report it."""
    return 128 - returncode if returncode < 0 else returncode


class ContainerProcess:
    """One running container process; :attr:`exited` resolves to its exit code."""

    def __init__(self, launch: Launch, loop: asyncio.AbstractEventLoop) -> None:
        launch.log.parent.mkdir(parents=True, exist_ok=True)
        if launch.cgroup is not None:
            launch.cgroup.mkdir(parents=True, exist_ok=True)
        self.launch = launch
        helper = [sys.executable, "-I", "-S", str(SANDBOX_EXEC), f"--parent={os.getpid()}"]
        if launch.cgroup is not None:
            helper.append(f"--cgroup={launch.cgroup}")
        helper += [f"--netns={launch.netns_path}", f"--hostname={launch.hostname}"]
        helper += [f"--bind={src}:{dst}" for src, dst in launch.binds]
        if launch.hosts is not None:
            helper.append(f"--hosts={launch.hosts}")
        helper += [f"--workdir={launch.workdir}", "--", *launch.argv]
        cri = launch.log.with_suffix(".cri")
        output = crilog.OutputPipes(launch.log, cri, loop)
        try:
            self._popen = subprocess.Popen(
                helper,
                env=dict(launch.env),
                stdin=subprocess.DEVNULL,
                stdout=output.stdout,
                stderr=output.stderr,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            output.abandon()
            raise
        output.started()
        crilog.rotate(launch.log.parent, cri)
        self.pid = self._popen.pid
        launch.pid_file.write_text(f"{self.pid} {_start_time(self.pid)}\n")
        self.exited: asyncio.Future[int] = loop.create_future()
        self._loop = loop
        self._pidfd = os.pidfd_open(self.pid)
        loop.add_reader(self._pidfd, self._on_exit)

    def _on_exit(self) -> None:
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        code = exit_code(self._popen.wait())
        if self.launch.cgroup is not None:
            # The rest of the container dies with its main process; then the cgroup goes.
            cgroups.kill(self.launch.cgroup)
            self._loop.run_in_executor(None, cgroups.remove, self.launch.cgroup)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.launch.pid_file.unlink()
        if not self.exited.done():
            self.exited.set_result(code)

    @property
    def running(self) -> bool:
        return not self.exited.done()

    async def stop(self, grace: float) -> int:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds; return the exit code."""
        if self.running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), grace)
            except TimeoutError:
                _LOG.info("pid %d outlived its %.0f s grace period: SIGKILL", self.pid, grace)
                self.kill()
        return await self.exited

    def kill(self) -> None:
        """SIGKILL everything of the container at once."""
        if self.launch.cgroup is not None:
            cgroups.kill(self.launch.cgroup)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


async def exec_in(
    pid: int, command: list[str], env: Mapping[str, str], timeout: float, cgroup: Path | None
) -> tuple[bool, str]:
    """Run ``command`` inside the namespaces of container process ``pid`` (exec probes).

    Passes with exit code 0 within ``timeout`` seconds; the output is returned (shortened)
    as the message of a failure.
    """
    helper = [sys.executable, "-I", "-S", str(SANDBOX_EXEC), f"--join={pid}"]
    if cgroup is not None:
        helper.append(f"--cgroup={cgroup}")
    proc = await asyncio.create_subprocess_exec(
        *helper,
        "--",
        *command,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return False, f"command {command!r} timed out after {timeout:g}s"
    if proc.returncode == 0:
        return True, ""
    text = output.decode(errors="replace").strip()[-300:]
    return False, f"command {command!r} exited with {proc.returncode}: {text}"
