"""The operator's record of each actuation: its moments, from the binding to the ready relay.

:class:`ActuationBook` follows every requester from its binding (a provider Pod created for it,
or an existing one bound) through its instance's creation or wake to its first ready relay,
and then hands back one :class:`ActuationRecord`. The executor writes that record to its log
(one ``Actuation recorded`` line at the default level, ``key="value"`` pairs as the benchmark
harness reads them) and into the ``actuation`` event of its trace. ``fma bench actuation``
reads both (:mod:`fma.bench.actuation`).

Times are Unix seconds: the operator's own moments by its clock (fine-grained); the Pods'
``creationTimestamp``, Ready ``lastTransitionTime`` and container ``startedAt`` as the API
server gives them (whole seconds). In the log they are RFC 3339 with nanoseconds, ``""`` when
unknown.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final

from fma.adapters.k8s.calls import log_fields, rfc3339_nano
from fma.adapters.k8s.views import parse_time, server_container

LOG_MESSAGE: Final = "Actuation recorded"
BOOK_ENTRIES_MAX: Final = 4096
"""Requesters followed at once; the oldest is forgotten first (its record is then lost)."""


@dataclass(frozen=True, slots=True)
class PodTimes:
    """What a Pod says of time: its creation, since when it is Ready (None: not Ready), when
    its server container started; its node and first container."""

    created_s: float | None
    ready_s: float | None
    started_s: float | None
    node: str | None
    first_container: str | None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def pod_times(pod: Mapping[str, Any]) -> PodTimes:
    """Read :class:`PodTimes` from a Pod (the API server's JSON)."""
    metadata, spec, status = (_mapping(pod.get(k)) for k in ("metadata", "spec", "status"))
    ready_s = None
    for condition in status.get("conditions") or ():
        condition = _mapping(condition)
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            ready_s = parse_time(condition.get("lastTransitionTime"))
    server = server_container(pod)
    started_s = None
    for entry in status.get("containerStatuses") or ():
        entry = _mapping(entry)
        if entry.get("name") == server:
            running = _mapping(_mapping(entry.get("state")).get("running"))
            started_s = parse_time(running.get("startedAt"))
    containers = [_mapping(c).get("name") for c in spec.get("containers") or ()]
    first = containers[0] if containers and isinstance(containers[0], str) else None
    node = spec.get("nodeName")
    return PodTimes(
        created_s=parse_time(metadata.get("creationTimestamp")),
        ready_s=ready_s,
        started_s=started_s,
        node=node if isinstance(node, str) and node else None,
        first_container=first,
    )


@dataclass(frozen=True, slots=True)
class ActuationRecord:
    """One requester's actuation. Field names are the trace's keys; :data:`LOG_KEYS` gives the
    log's. ``path`` is the controller's (``hot``, ``warm``, ``cold_launcher``, ``cold``);
    ``provider_ready_t`` is set only when the provider was Ready at the binding;
    ``provider_create_t`` only when the provider Pod was made for this requester."""

    requester: str
    requester_name: str
    path: str
    provider: str
    provider_kind: str | None
    instance: str | None
    node: str | None
    requester_created_t: float | None
    requester_started_t: float | None
    provider_created_t: float | None
    provider_ready_t: float | None
    bound_t: float
    provider_create_t: float | None = None
    instance_create_t: float | None = None
    wake_start_t: float | None = None
    wake_end_t: float | None = None
    relay_t: float | None = None

    def trace_fields(self) -> dict[str, Any]:
        """The record as ``actuation`` event fields (but ``requester`` and ``path``, which the
        event has anyway)."""
        fields = asdict(self)
        del fields["requester"], fields["path"]
        return fields

    def log_line(self) -> str:
        """The ``Actuation recorded`` log line."""
        values = {
            LOG_KEYS[name]: _log_value(value)
            for name, value in asdict(self).items()
            if name in LOG_KEYS
        }
        return f"{LOG_MESSAGE} {log_fields(**values)}"


LOG_KEYS: Final = {
    "requester_name": "requesterName",
    "requester": "requesterUID",
    "path": "path",
    "provider": "provider",
    "provider_kind": "providerKind",
    "instance": "instance",
    "node": "node",
    "requester_created_t": "requesterCreationTime",
    "requester_started_t": "requesterStartTime",
    "provider_created_t": "providerCreationTime",
    "provider_ready_t": "providerReadyTime",
    "bound_t": "bindTime",
    "provider_create_t": "providerCreateStartTime",
    "instance_create_t": "instanceCreateStartTime",
    "wake_start_t": "wakeStartTime",
    "wake_end_t": "wakeEndTime",
    "relay_t": "relayReadyTime",
}
"""Trace key -> log key, for every field of :class:`ActuationRecord`."""
TIME_FIELDS: Final = frozenset(f.name for f in fields(ActuationRecord) if f.name.endswith("_t"))

assert set(LOG_KEYS) == {f.name for f in fields(ActuationRecord)}, "every field has a log key"


def _log_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return rfc3339_nano(value)
    return str(value)


class ActuationBook:
    """The actuations in progress, by requester UID (bounded by :data:`BOOK_ENTRIES_MAX`)."""

    def __init__(self) -> None:
        self._records: dict[str, ActuationRecord] = {}
        self._bound_to: dict[str, str] = {}
        """Provider name -> the requester UID whose actuation it serves."""

    def bound(
        self,
        *,
        requester_uid: str,
        requester_pod: Mapping[str, Any],
        provider_pod: Mapping[str, Any],
        provider_kind: str | None,
        instance: str | None,
        path: str,
        bound_at: str,
        provider_create_s: float | None = None,
        node: str | None = None,
    ) -> None:
        """A requester was bound (again: the later binding wins) at ``bound_at`` (the
        ``bound-at`` annotation's text). ``provider_create_s``: the provider Pod was created
        for it, starting then, for ``node`` (a new Pod names no node until scheduled)."""
        requester, provider = pod_times(requester_pod), pod_times(provider_pod)
        name = str(_mapping(requester_pod.get("metadata")).get("name") or "")
        provider_name = str(_mapping(provider_pod.get("metadata")).get("name") or "")
        self._records.pop(requester_uid, None)
        self._records[requester_uid] = ActuationRecord(
            requester=requester_uid,
            requester_name=name,
            path=path,
            provider=provider_name,
            provider_kind=provider_kind,
            instance=instance,
            node=provider.node or node,
            requester_created_t=requester.created_s,
            requester_started_t=requester.started_s,
            provider_created_t=provider.created_s,
            provider_ready_t=provider.ready_s if provider_create_s is None else None,
            bound_t=parse_time(bound_at) or 0.0,
            provider_create_t=provider_create_s,
        )
        self._bound_to[provider_name] = requester_uid
        while len(self._records) > BOOK_ENTRIES_MAX:
            self._records.pop(next(iter(self._records)))

    def path_changed(self, provider: str, path: str) -> None:
        self._update(provider, None, path=path)

    def instance_created(self, provider: str, instance: str, started_s: float) -> None:
        self._update(provider, instance, instance_create_t=started_s)

    def wake_started(self, provider: str, instance: str, started_s: float) -> None:
        self._update(provider, instance, wake_start_t=started_s, wake_end_t=None)

    def wake_ended(self, provider: str, instance: str, ended_s: float) -> None:
        self._update(provider, instance, wake_end_t=ended_s)

    def relayed(self, requester_uid: str, relay_s: float, path: str) -> ActuationRecord | None:
        """The first ready relay (begun at ``relay_s``) of an actuation recorded as ``path``:
        the finished record (None when the binding was not seen, e.g. made before the operator
        started)."""
        record = self._records.pop(requester_uid, None)
        if record is None:
            return None
        if self._bound_to.get(record.provider) == requester_uid:
            del self._bound_to[record.provider]
        return replace(record, path=path, relay_t=relay_s)

    def _update(self, provider: str, instance: str | None, **changes: Any) -> None:
        uid = self._bound_to.get(provider)
        record = self._records.get(uid) if uid is not None else None
        if record is None or record.provider != provider:
            return  # not followed, or the requester was bound elsewhere since
        if instance is not None and record.instance != instance:
            return
        if "wake_start_t" in changes and record.wake_start_t is not None:
            del changes["wake_start_t"]  # a retried wake: the first attempt is the start
        self._records[record.requester] = replace(record, **changes)
