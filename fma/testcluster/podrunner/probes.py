"""Startup, liveness and readiness probes, with the kubelet's defaults and thresholds.

:func:`parse` reads a probe of the Pod spec (defaults: ``periodSeconds`` 10,
``timeoutSeconds`` 1, ``successThreshold`` 1, ``failureThreshold`` 3, no initial delay).
:func:`check` runs it once: ``httpGet`` (a status from 200 to 399 passes; ``port`` by
number or by the container's port name; the host defaults to the Pod IP; no redirects
followed, no keep-alive), ``tcpSocket`` (the connection opens), ``exec`` (exit code 0, run
by the runner inside the container's namespaces through a callback). ``grpc`` probes are
not supported and always fail, with a message saying so.

:class:`ProbeCounter` turns results into the kubelet's verdicts: a readiness probe starts
*failed* and passes after ``successThreshold`` successes in a row; liveness and startup
probes start *passed* (startup: unknown) and fail after ``failureThreshold`` failures in a
row.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

USER_AGENT: Final = "kube-probe/1.33"

ExecFn = Callable[[list[str], float], Awaitable[tuple[bool, str]]]
"""Run a command in the container with a time-out: (passed, message)."""


@dataclass(frozen=True)
class Probe:
    """One probe of a container, parsed."""

    kind: str
    """``startup``, ``liveness`` or ``readiness``."""
    action: str
    """``httpGet``, ``tcpSocket``, ``exec`` or ``grpc``."""
    spec: Mapping[str, Any]
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace: float | None = None
    ports: Mapping[str, int] = field(default_factory=dict)


def parse(kind: str, probe: Mapping[str, Any], container: Mapping[str, Any]) -> Probe:
    """The ``kind`` probe ``probe`` of ``container``; raises ValueError for an empty one."""
    action = next((a for a in ("httpGet", "tcpSocket", "exec", "grpc") if a in probe), None)
    if action is None:
        raise ValueError(f"{kind} probe of {container.get('name')!r} has no action")
    ports = {
        str(p["name"]): int(p["containerPort"])
        for p in container.get("ports") or []
        if p.get("name") and p.get("containerPort")
    }
    grace = probe.get("terminationGracePeriodSeconds")
    return Probe(
        kind=kind,
        action=action,
        spec=probe[action],
        initial_delay=float(probe.get("initialDelaySeconds") or 0),
        period=float(probe.get("periodSeconds") or 10),
        timeout=float(probe.get("timeoutSeconds") or 1),
        success_threshold=int(probe.get("successThreshold") or 1),
        failure_threshold=int(probe.get("failureThreshold") or 3),
        termination_grace=float(grace) if grace is not None else None,
        ports=ports,
    )


def _port(probe: Probe) -> int:
    port = probe.spec.get("port")
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    if text in probe.ports:
        return probe.ports[text]
    raise ValueError(f"port {text!r} is not a port of the container")


async def check(
    probe: Probe, pod_ip: str, http: httpx.AsyncClient, run_exec: ExecFn
) -> tuple[bool, str]:
    """Run ``probe`` once against the container at ``pod_ip``: (passed, message)."""
    try:
        if probe.action == "httpGet":
            return await _http(probe, pod_ip, http)
        if probe.action == "tcpSocket":
            host = str(probe.spec.get("host") or pod_ip)
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, _port(probe)), probe.timeout
            )
            writer.close()
            return True, ""
        if probe.action == "exec":
            command = [str(part) for part in probe.spec.get("command") or []]
            if not command:
                return False, "exec probe without a command"
            return await run_exec(command, probe.timeout)
    except (OSError, TimeoutError, ValueError, httpx.HTTPError) as error:
        return False, f"{probe.action} failed: {type(error).__name__}: {error}"
    return False, f"{probe.action} probes are not supported by the pod runner"


async def _http(probe: Probe, pod_ip: str, http: httpx.AsyncClient) -> tuple[bool, str]:
    scheme = str(probe.spec.get("scheme") or "HTTP").lower()
    host = str(probe.spec.get("host") or pod_ip)
    path = str(probe.spec.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in probe.spec.get("httpHeaders") or []:
        headers[str(header.get("name"))] = str(header.get("value", ""))
    url = f"{scheme}://{host}:{_port(probe)}{path}"
    response = await http.get(url, headers=headers, timeout=probe.timeout)
    if 200 <= response.status_code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {response.status_code}"


class ProbeCounter:
    """Consecutive results of one probe, and the verdict they give (see the module doc)."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.passed: bool | None = {"readiness": False, "liveness": True}.get(probe.kind)
        self._successes = 0
        self._failures = 0

    def record(self, passed: bool) -> bool | None:
        """Count one result; return the verdict (None while a startup probe is undecided)."""
        if passed:
            self._successes += 1
            self._failures = 0
            if self._successes >= self.probe.success_threshold:
                self.passed = True
        else:
            self._failures += 1
            self._successes = 0
            if self._failures >= self.probe.failure_threshold:
                self.passed = False
        return self.passed
