"""What the operator learns by asking, kept between reconciles: launchers' instance lists, the
GPUs requesters report, and the readiness it relayed to them.

These are written by the tasks that ask (a launcher's watch stream, a requester's SPI, the
executor's relays) and read by the gather, which never waits on the network. Each is keyed so
that a restarted Pod or process is not confused with its predecessor: a launcher's report
belongs to the Pod UID it came from, a relay to the requester container run it was made to.
"""

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fma.launcher.api import InstanceState as ReportedInstance


@dataclass(frozen=True, slots=True)
class LauncherReport:
    """A launcher's instances as its watch stream last showed them (complete: every Resync
    replaces the picture). ``pod_uid`` is the launcher Pod it came from; ``restarts`` that
    Pod's container restart count when the stream was (re)opened, so a report from before a
    container restart is recognised as stale."""

    pod_uid: str
    restarts: int
    revision: int
    instances: Mapping[str, ReportedInstance] = field(default_factory=dict)


class ReportBook:
    """Provider Pod name -> the launcher's latest :class:`LauncherReport`."""

    def __init__(self) -> None:
        self._reports: dict[str, LauncherReport] = {}
        self._unseen: dict[str, dict[str, int]] = {}
        """Provider -> instance ID -> revision, of each instance :meth:`add_instance` put in
        that the launcher's stream has not shown yet."""

    def report(self, provider: str) -> LauncherReport | None:
        return self._reports.get(provider)

    def set(self, provider: str, report: LauncherReport) -> None:
        self._reports[provider] = report

    def seen(self, provider: str, instance_ids: Iterable[str]) -> None:
        """The launcher's stream showed these instances."""
        unseen = self._unseen.get(provider)
        if unseen:
            for instance_id in instance_ids:
                unseen.pop(instance_id, None)

    def forget(self, provider: str) -> None:
        self._reports.pop(provider, None)
        self._unseen.pop(provider, None)

    def unseen(self, provider: str) -> Mapping[str, int]:
        """Instance ID -> revision of the instances created here that the stream has not shown
        yet (a re-list taken before their creation keeps them)."""
        return self._unseen.get(provider, {})

    def add_instance(self, provider: str, state: ReportedInstance) -> None:
        """An instance the launcher said it created (its answer to the create), before its
        watch stream says so too: the next reconcile sees it, and does not create it again."""
        report = self._reports.get(provider)
        if report is not None and state.instance_id not in report.instances:
            instances = {**report.instances, state.instance_id: state}
            self._reports[provider] = dataclasses.replace(report, instances=instances)
            self._unseen.setdefault(provider, {})[state.instance_id] = state.revision

    def drop_instance(self, provider: str, instance_id: str) -> None:
        """An instance the launcher said it deleted, before its watch stream says so too."""
        self.seen(provider, (instance_id,))
        report = self._reports.get(provider)
        if report is not None and instance_id in report.instances:
            instances = {k: v for k, v in report.instances.items() if k != instance_id}
            self._reports[provider] = dataclasses.replace(report, instances=instances)


class GpuBook:
    """Requester UID -> the GPU UUIDs its SPI reported (its assignment never changes while the
    Pod lives, so the answer is kept until the Pod goes)."""

    def __init__(self) -> None:
        self._gpus: dict[str, tuple[str, ...]] = {}

    def gpus(self, requester_uid: str) -> tuple[str, ...] | None:
        return self._gpus.get(requester_uid)

    def set(self, requester_uid: str, gpus: tuple[str, ...]) -> None:
        self._gpus[requester_uid] = gpus

    def forget(self, requester_uid: str) -> None:
        self._gpus.pop(requester_uid, None)


@dataclass(frozen=True, slots=True)
class Relay:
    ready: bool
    run: str
    """The requester container run (its ``startedAt``) the relay was made to."""


class Relays:
    """Requester UID -> the readiness last relayed to it. The kubelet shows it only after its
    next probe; until then the relay itself is what the requester reports. A relay to an
    earlier container run no longer counts (a restarted requester starts unready)."""

    def __init__(self) -> None:
        self._relays: dict[str, Relay] = {}

    def relayed(self, requester_uid: str, run: str) -> bool | None:
        relay = self._relays.get(requester_uid)
        return relay.ready if relay is not None and relay.run == run else None

    def set(self, requester_uid: str, run: str, ready: bool) -> None:
        self._relays[requester_uid] = Relay(ready, run)

    def forget(self, requester_uid: str) -> None:
        self._relays.pop(requester_uid, None)


def container_run(pod: Mapping[str, object], container: str) -> str:
    """Which run of ``container`` a Pod shows: ``"<restartCount>/<startedAt>"`` ("" before it
    first ran)."""
    status = pod.get("status")
    statuses = status.get("containerStatuses") if isinstance(status, Mapping) else None
    for entry in statuses if isinstance(statuses, list) else ():
        if isinstance(entry, Mapping) and entry.get("name") == container:
            state = entry.get("state")
            running = state.get("running") if isinstance(state, Mapping) else None
            started = running.get("startedAt") if isinstance(running, Mapping) else None
            return f"{entry.get('restartCount', 0)}/{started or ''}"
    return ""
