"""A running container's probes: startup first, then readiness and liveness side by side.

Contract of :func:`supervise`: it returns when the process exits (or at once for a container
without probes). It sets ``view.started`` when the startup probe passes (at once without
one) and ``view.ready`` from the readiness verdicts (true once started, without a readiness
probe), calling ``changed()`` after each change. A startup or liveness probe that fails
stops the process, SIGTERM then SIGKILL after ``kill_grace(probe)`` seconds; the container's
restart policy then decides, as on a kubelet. Each probe waits its ``initialDelaySeconds``
from the container's start and then runs every ``periodSeconds``.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from fma.testcluster.podrunner import probes
from fma.testcluster.podrunner.processes import ContainerProcess, Launch, exec_in
from fma.testcluster.podrunner.status import ContainerView

_LOG = logging.getLogger(__name__)

Verdict = Callable[[bool | None, str], bool]
"""Told each verdict and message; returns False to end its probe's loop."""


@dataclass(frozen=True)
class Target:
    """What the probes of one container run reach: its process, at the Pod IP."""

    process: ContainerProcess
    launch: Launch
    pod_ip: str
    http: httpx.AsyncClient
    began: float
    """``time.monotonic()`` when the process started."""


async def _loop(probe: probes.Probe, target: Target, verdict: Verdict) -> None:
    async def run_exec(command: list[str], timeout: float) -> tuple[bool, str]:
        launch = target.launch
        return await exec_in(target.process.pid, command, launch.env, timeout, launch.cgroup)

    counter = probes.ProbeCounter(probe)
    await asyncio.sleep(max(0.0, target.began + probe.initial_delay - time.monotonic()))
    while target.process.running:
        tick = time.monotonic()
        passed, message = await probes.check(probe, target.pod_ip, target.http, run_exec)
        if not verdict(counter.record(passed), message):
            return
        await asyncio.sleep(max(0.0, probe.period - (time.monotonic() - tick)))


async def supervise(
    spec: Mapping[str, Any],
    view: ContainerView,
    target: Target,
    *,
    changed: Callable[[], None],
    kill_grace: Callable[[probes.Probe], float],
    describe: str,
) -> None:
    """Run the container's probes (see the module docstring)."""
    parsed = {
        kind: probes.parse(kind, spec[f"{kind}Probe"], spec)
        for kind in ("startup", "liveness", "readiness")
        if spec.get(f"{kind}Probe")
    }

    def kill_if_failed(probe: probes.Probe) -> Verdict:
        def on_verdict(passed: bool | None, message: str) -> bool:
            if passed is False:
                _LOG.info(
                    "%s failed its %s probe (%s): restarting it", describe, probe.kind, message
                )
                asyncio.get_running_loop().create_task(target.process.stop(kill_grace(probe)))
                return False
            return not (probe.kind == "startup" and passed)  # a passed startup probe is done

        return on_verdict

    def readiness(passed: bool | None, _message: str) -> bool:
        if bool(passed) != view.ready:
            view.ready = bool(passed)
            changed()
        return True

    if "startup" in parsed:
        await _loop(parsed["startup"], target, kill_if_failed(parsed["startup"]))
        if not target.process.running:
            return
        view.started = True
        view.ready = "readiness" not in parsed
        changed()
    loops = []
    if "readiness" in parsed:
        loops.append(_loop(parsed["readiness"], target, readiness))
    if "liveness" in parsed:
        loops.append(_loop(parsed["liveness"], target, kill_if_failed(parsed["liveness"])))
    await asyncio.gather(*loops)
