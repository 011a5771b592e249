"""The launcher's ``GET /metrics``: all of its instances in one Prometheus exposition, labelled
by ``instance_id``, so that one scrape of the launcher's port (8001) covers every engine it
runs — a PodMonitor reaches only the ports a Pod declares, and an engine's port changes with
the instance it serves.

- ``fma_launcher_instances{state}``: how many instances are in each state;
- ``fma_launcher_instance_info{instance_id, model, port, state}``: 1 per instance;
- ``fma_launcher_instance_gpu_memory_bytes{instance_id, gpu_uuid}``: the GPU memory the
  instance's processes hold;
- ``fma_launcher_gpu_memory_used_bytes{gpu_uuid}``, ``..._total_bytes``: each GPU's memory.

An instance's ``state`` is ``stopped`` when its process has exited; otherwise its engine is
asked, on ``127.0.0.1`` at its ``--port``, at each scrape: ``sleeping`` or ``awake`` by
``GET /is_sleeping``, ``starting`` while it does not answer (loading), ``unknown`` when it
answers without a sleep state (vLLM serves ``/is_sleeping`` only in dev mode, which FMA's
launcher Pods set). The GPU metrics come from NVML and are absent without it (no driver, no
``nvidia-ml-py``, a CPU machine); a process counts for the instance whose process group it
is in (an engine is its group's leader; vLLM's engine-core children inherit it). NVML names
processes by their PIDs in the host's PID namespace, so the per-instance metric needs a
launcher Pod with ``hostPID: true`` (in a PID namespace of its own those numbers mean other
processes, or none); the per-GPU metrics need nothing.
"""

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fma.api.constants import STUB_ENGINE_PORT
from fma.launcher.api import InstanceState, InstanceStatus

_LOG = logging.getLogger(__name__)

STARTING: Final = "starting"
AWAKE: Final = "awake"
SLEEPING: Final = "sleeping"
STOPPED: Final = "stopped"
UNKNOWN: Final = "unknown"
STATES: Final = (STARTING, AWAKE, SLEEPING, STOPPED, UNKNOWN)
ENGINE_TIMEOUT_S: Final = 0.5
"""How long a scrape waits for one engine's answer (all are asked at once)."""


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One GPU as NVML sees it: its memory, and the memory each process holds on it."""

    uuid: str
    used_bytes: int
    total_bytes: int
    processes: tuple[tuple[int, int], ...]
    """(PID, bytes) of each compute process."""


GpuSampler = Callable[[], Sequence[GpuSample] | None]
EngineState = Callable[[httpx.AsyncClient, int], Awaitable[str]]


def nvml_sample() -> list[GpuSample] | None:
    """Every GPU of this machine from NVML, or None when NVML or its driver is absent."""
    try:
        pynvml: Any = importlib.import_module("pynvml")
        pynvml.nvmlInit()
    except Exception:  # no package, or NVMLError (no stable import path across versions)
        return None
    try:
        found = []
        for index in range(int(pynvml.nvmlDeviceGetCount())):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            processes = tuple(
                (int(p.pid), int(p.usedGpuMemory or 0))
                for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
            )
            found.append(
                GpuSample(
                    uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    int(memory.used),
                    int(memory.total),
                    processes,
                )
            )
        return found
    except Exception as error:  # a GPU that fails mid-scrape: report none rather than half
        _LOG.warning("NVML sample failed: %s", error)
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


async def ask_engine(http: httpx.AsyncClient, port: int) -> str:
    """The state of the engine serving on ``port`` of this host (see the module docstring)."""
    try:
        answer = await http.get(f"http://127.0.0.1:{port}/is_sleeping")
    except httpx.HTTPError:
        return STARTING
    try:
        sleeping = answer.json().get("is_sleeping") if answer.status_code == 200 else None
    except (ValueError, AttributeError):
        sleeping = None
    if isinstance(sleeping, bool):
        return SLEEPING if sleeping else AWAKE
    return UNKNOWN


def served_model_and_port(options: Sequence[str]) -> tuple[str, int]:
    """The model (``--served-model-name``, else ``--model``) and the ``--port`` an engine's
    options name, read as vLLM's parser reads them (the port defaults to vLLM's 8000)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    parser.add_argument("--model", default="")
    parser.add_argument("--served-model-name", nargs="*", default=None)
    parser.add_argument("--port", default=str(STUB_ENGINE_PORT))
    try:
        known, _ = parser.parse_known_args(list(options))
    except (argparse.ArgumentError, SystemExit):
        return "", STUB_ENGINE_PORT
    names = known.served_model_name or [known.model]
    try:
        port = int(known.port)
    except ValueError:
        port = STUB_ENGINE_PORT
    return str(names[0] if names else ""), port


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:  # gone, or not in this PID namespace
        return None


class LauncherMetrics:
    """Samples the instances of ``instances()`` at each scrape. ``engine_state`` and
    ``gpu_sampler`` replace the engine calls and NVML (tests)."""

    def __init__(
        self,
        instances: Callable[[], Sequence[InstanceState]],
        *,
        engine_state: EngineState = ask_engine,
        gpu_sampler: GpuSampler = nvml_sample,
        process_group: Callable[[int], int | None] = _group_of,
    ) -> None:
        self._instances = instances
        self._engine_state = engine_state
        self._gpu_sampler = gpu_sampler
        self._process_group = process_group

    async def exposition(self) -> bytes:
        """The Prometheus text exposition of this moment."""
        instances = list(self._instances())
        states = await self._states(instances)
        gpus = await asyncio.to_thread(self._gpu_sampler)
        registry = CollectorRegistry()
        registry.register(_Snapshot(instances, states, gpus, self._process_group))
        return generate_latest(registry)

    async def _states(self, instances: Sequence[InstanceState]) -> list[str]:
        async with httpx.AsyncClient(timeout=ENGINE_TIMEOUT_S, trust_env=False) as http:

            async def state(instance: InstanceState) -> str:
                if instance.status is InstanceStatus.STOPPED:
                    return STOPPED
                return await self._engine_state(http, served_model_and_port(instance.options)[1])

            return list(await asyncio.gather(*(state(i) for i in instances)))


class _Snapshot(Collector):
    """One scrape's metrics, from what was sampled for it."""

    def __init__(
        self,
        instances: Sequence[InstanceState],
        states: Sequence[str],
        gpus: Sequence[GpuSample] | None,
        process_group: Callable[[int], int | None],
    ) -> None:
        self.instances = instances
        self.states = states
        self.gpus = gpus
        self.process_group = process_group

    def collect(self) -> Iterator[Metric]:
        counts = Counter(self.states)
        totals = GaugeMetricFamily(
            "fma_launcher_instances", "Instances of this launcher by state.", labels=["state"]
        )
        for state in STATES:
            totals.add_metric([state], float(counts[state]))
        yield totals
        info = GaugeMetricFamily(
            "fma_launcher_instance_info",
            "1 per instance: its model, port and state.",
            labels=["instance_id", "model", "port", "state"],
        )
        for instance, state in zip(self.instances, self.states, strict=True):
            model, port = served_model_and_port(instance.options)
            info.add_metric([instance.instance_id, model, str(port), state], 1.0)
        yield info
        if self.gpus is not None:
            yield from self._gpu_metrics(self.gpus)

    def _gpu_metrics(self, gpus: Sequence[GpuSample]) -> Iterator[Metric]:
        used = GaugeMetricFamily(
            "fma_launcher_gpu_memory_used_bytes", "GPU memory in use.", labels=["gpu_uuid"]
        )
        total = GaugeMetricFamily(
            "fma_launcher_gpu_memory_total_bytes", "GPU memory in all.", labels=["gpu_uuid"]
        )
        by_group = {i.pid: i.instance_id for i in self.instances if i.pid is not None}
        held: Counter[tuple[str, str]] = Counter()
        for gpu in gpus:
            used.add_metric([gpu.uuid], float(gpu.used_bytes))
            total.add_metric([gpu.uuid], float(gpu.total_bytes))
            for pid, size in gpu.processes:
                group = self.process_group(pid)
                if group in by_group:
                    held[(by_group[group], gpu.uuid)] += size
        per_instance = GaugeMetricFamily(
            "fma_launcher_instance_gpu_memory_bytes",
            "GPU memory the processes of an instance hold, per GPU.",
            labels=["instance_id", "gpu_uuid"],
        )
        for (instance_id, uuid), size in sorted(held.items()):
            per_instance.add_metric([instance_id, uuid], float(size))
        return iter((used, total, per_instance))
