"""In-memory stand-ins for the launcher's process port (no process is ever started)."""

import asyncio
import itertools
import signal
from collections.abc import Sequence

from fma.launcher.errors import InvalidOptions, SpawnFailed
from fma.launcher.spawner import LaunchSpec

REJECTED_OPTION = "--rejected-by-engine"


class FakeProcess:
    """Exits when signalled (unless told to ignore SIGTERM) or when ``crash`` is called."""

    def __init__(self, pid: int, spec: LaunchSpec, *, ignore_sigterm: bool) -> None:
        self._pid = pid
        self.spec = spec
        self.ignore_sigterm = ignore_sigterm
        self.signals: list[int] = []
        self._loop = asyncio.get_running_loop()
        self._exit: asyncio.Future[int] = self._loop.create_future()

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def exited(self) -> bool:
        return self._exit.done()

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def signal_group(self, signum: int) -> None:
        self.signals.append(signum)
        if signum == signal.SIGKILL or (signum == signal.SIGTERM and not self.ignore_sigterm):
            self._set_exit(-signum)

    def crash(self, exit_code: int) -> None:
        """Make the process exit; safe to call from any thread."""
        self._loop.call_soon_threadsafe(self._set_exit, exit_code)

    def _set_exit(self, exit_code: int) -> None:
        if not self._exit.done():
            self._exit.set_result(exit_code)


class FakeSpawner:
    """Records what it was asked to start; writes ``log_text`` into each instance's log."""

    def __init__(self, *, log_text: bytes = b"", ignore_sigterm: bool = False) -> None:
        self.processes: dict[str, FakeProcess] = {}
        self.log_text = log_text
        self.ignore_sigterm = ignore_sigterm
        self.fail_spawn = False
        self._pids = itertools.count(40000)

    def validate(self, options: Sequence[str]) -> None:
        if REJECTED_OPTION in options:
            raise InvalidOptions(f"invalid options: unrecognized arguments: {REJECTED_OPTION}")

    def spawn(self, spec: LaunchSpec) -> FakeProcess:
        if self.fail_spawn:
            raise SpawnFailed("cannot fork: [Errno 11] Resource temporarily unavailable")
        spec.log_path.write_bytes(self.log_text)
        process = FakeProcess(next(self._pids), spec, ignore_sigterm=self.ignore_sigterm)
        self.processes[spec.instance_id] = process
        return process
