"""The process port, and its real implementation: one forked child per instance.

Why fork: the launcher has the engine pre-imported (for vLLM, seconds of imports), and a
forked child inherits the loaded modules, which is the whole warm-start advantage.

The child, before it runs the engine:

- starts its own session (``setsid``), so signals aimed at the launcher's process group
  (a Ctrl-C, a container runtime's group kill of the launcher alone) do not reach it, and so
  the instance *is* a process group the launcher can signal as a whole (vLLM forks workers);
- asks the kernel for SIGTERM when the launcher dies (``PR_SET_PDEATHSIG``, Linux), so an
  abruptly killed launcher does not leave engines behind;
- resets the signal handlers the launcher's server installed to their defaults;
- closes every inherited socket, pipe and event descriptor above 2 (a leaked client socket
  keeps a connection open for as long as the engine lives), keeping regular files and
  devices that pre-imported libraries may hold;
- sends stdout and stderr to the instance's log file and reads stdin from /dev/null;
- adds the instance's environment and runs the engine; it always ends with ``os._exit``.

The parent learns of the exit without polling: a pidfd (``os.pidfd_open``) registered with
the event loop becomes readable when the child exits; where pidfds are missing, a blocking
``waitpid`` in a worker thread does the same job.
"""

import asyncio
import contextlib
import ctypes
import os
import signal
import stat
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn, Protocol

from fma.launcher.engines import Engine
from fma.launcher.errors import SpawnFailed

_PR_SET_PDEATHSIG: Final = 1
_EXIT_CODE_UNKNOWN: Final = 255
_RESET_SIGNALS: Final = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
)


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """One instance to start: its engine options, added environment and log file."""

    instance_id: str
    options: tuple[str, ...]
    env: Mapping[str, str]
    log_path: Path


class Process(Protocol):
    """A started instance process, seen from the launcher's event loop."""

    @property
    def pid(self) -> int: ...

    async def wait(self) -> int:
        """Wait for the exit; the exit status, or minus the signal number. Any number of
        callers may wait; they all get the same code."""
        ...

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the instance's whole process group; a no-op once it is empty."""


class Spawner(Protocol):
    """Starts instance processes. Called from the event loop's thread."""

    def validate(self, options: Sequence[str]) -> None:
        """Raise ``InvalidOptions`` for options the engine would reject."""

    def spawn(self, spec: LaunchSpec) -> Process:
        """Start the instance; raises ``SpawnFailed`` when the OS refuses."""
        ...


class ForkedProcess:
    """A forked child whose exit the event loop learns of from a pidfd (or a waiter thread)."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        loop = asyncio.get_running_loop()
        self._exit: asyncio.Future[int] = loop.create_future()
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            waiter = loop.run_in_executor(None, os.waitpid, pid, 0)
            waiter.add_done_callback(self._on_waited)
        else:
            loop.add_reader(self._pidfd, self._on_pidfd_readable)

    @property
    def pid(self) -> int:
        return self._pid

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def signal_group(self, signum: int) -> None:
        # The group id is the leader's pid (setsid). After the leader is reaped, the id cannot
        # be reused while any member of the group lives, so this never hits a stranger.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pid, signum)

    def _on_pidfd_readable(self) -> None:
        assert self._pidfd is not None
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        try:
            _, status = os.waitpid(self._pid, 0)
        except ChildProcessError:
            # Reaped behind our back (a stray os.wait elsewhere): the status is lost.
            self._finish(_EXIT_CODE_UNKNOWN)
            return
        self._finish(os.waitstatus_to_exitcode(status))

    def _on_waited(self, waiter: "asyncio.Future[tuple[int, int]]") -> None:
        try:
            _, status = waiter.result()
        except ChildProcessError:
            self._finish(_EXIT_CODE_UNKNOWN)
            return
        self._finish(os.waitstatus_to_exitcode(status))

    def _finish(self, exit_code: int) -> None:
        # Whatever the leader left behind (vLLM's engine-core process) goes with it.
        self.signal_group(signal.SIGKILL)
        if not self._exit.done():
            self._exit.set_result(exit_code)


class ForkSpawner:
    """Runs each instance as a forked child of the launcher, executing ``engine.serve``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def validate(self, options: Sequence[str]) -> None:
        self._engine.validate(options)

    def spawn(self, spec: LaunchSpec) -> Process:
        try:
            log_fd = os.open(
                spec.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o640
            )
        except OSError as error:
            raise SpawnFailed(f"cannot create the log file: {error}") from error
        parent_pid = os.getpid()
        # Buffered output would otherwise be written twice: once by each process.
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as error:
            os.close(log_fd)
            raise SpawnFailed(f"cannot fork: {error}") from error
        if pid == 0:
            _child_main(spec, self._engine, log_fd, parent_pid)
        os.close(log_fd)
        return ForkedProcess(pid)


def _child_main(spec: LaunchSpec, engine: Engine, log_fd: int, parent_pid: int) -> NoReturn:
    """The child's whole life: set up, run the engine, exit. Never returns, never raises."""
    exit_code = 1
    try:
        _detach(parent_pid)
        _redirect_stdio(log_fd)
        _close_inherited_descriptors()
        os.environ.update(spec.env)
        exit_code = engine.serve(spec.options)
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)  # what the interpreter would print on exit
        exit_code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(exit_code)


def _detach(parent_pid: int) -> None:
    os.setsid()
    _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:
        # The launcher died between fork and prctl: nobody will ever stop this instance.
        os._exit(1)
    for signum in _RESET_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _set_parent_death_signal(signum: int) -> None:
    """Linux only; best effort (elsewhere, or without libc's prctl, nothing happens)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)


def _redirect_stdio(log_fd: int) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(devnull)
    os.close(log_fd)
    # The launcher's sys.stdout/stderr may be wrappers of something else (a test's capture).
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _close_inherited_descriptors() -> None:
    """Close sockets, pipes and anonymous descriptors (epoll, eventfd, pidfd) above 2."""
    try:
        fds = [int(entry.name) for entry in Path("/proc/self/fd").iterdir()]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd <= 2:
            continue
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISDIR(mode):
            continue
        with contextlib.suppress(OSError):
            os.close(fd)
