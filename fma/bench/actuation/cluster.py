"""Evidence from a live namespace: a list and a watch of its Pods, the operator's records, and
the engines' own logs.

:class:`Observation` keeps what the Pods showed (pure: it is fed Pods, in the API server's JSON):
every requester as last seen (also after it was deleted), its first Ready time, and the binding
its provider showed while bound to it — ``bound-at``, the instance, whether the launcher was
Ready before the binding. :func:`observe` feeds it from the API server: a list, then a watch
until ``watch_s`` have passed or ``until_ready`` requesters are ready and bound.

Sleep/wake evidence comes, per requester, from the operator's ``Actuation recorded`` line when
there is one (its own log, given as files, or the logs of the namespace's controller Pods),
else from the engine's log read through its launcher (``GET /v2/vllm/instances/{id}/log``, as
the benchmark harness reads it): a wake that ended within the requester's window, or an engine
start (vLLM's ``non-default args:`` line) within it.

Kubernetes timestamps have one-second resolution. The launcher was Ready before the binding
when its Ready time is at least a whole second before ``bound-at``; not Ready, or Ready after
``bound-at``, says it was not; within the same second nothing is concluded.
"""

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from fma.adapters.k8s.actuations import PodTimes, pod_times
from fma.adapters.k8s.views import (
    PodRole,
    annotations_of,
    binding_of,
    labels_of,
    parse_time,
    pod_role,
)
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_ACTUATED,
    ANN_ACTUATION_PATH,
    ANN_BOUND_AT,
    ANN_INSTANCE_ID,
    LABEL_DUAL,
    LABEL_INSTANCE,
)
from fma.bench.actuation.evidence import Evidence, ProviderKind
from fma.bench.actuation.from_trace import record_changes
from fma.bench.actuation.vllm_log import moves, starts

Obj = Mapping[str, Any]
EngineLog = Callable[[Obj, str], str | None]
"""``(provider Pod, instance id) -> the engine's log text`` (None: unreadable)."""


def _meta(pod: Obj) -> Mapping[str, Any]:
    meta = pod.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


@dataclass(slots=True)
class _Binding:
    provider: str
    bound_s: float | None
    instance: str | None
    path: str | None
    ready_before: bool | None


@dataclass(slots=True)
class _Requester:
    pod: Obj
    ready_s: float | None = None
    binding: _Binding | None = None


def ready_before(times: PodTimes, bound_s: float | None) -> bool | None:
    """Whether a launcher showing ``times`` was Ready before ``bound_s`` (see the module
    docstring for the one-second rule)."""
    if bound_s is None:
        return None
    if times.ready_s is None or times.ready_s > bound_s:
        return False
    return True if times.ready_s + 1.0 <= bound_s else None


@dataclass
class Observation:
    """What the namespace's Pods showed, requester by requester."""

    namespace: str
    requesters: dict[str, _Requester] = field(default_factory=dict)
    providers: dict[str, Obj] = field(default_factory=dict)

    def see(self, pod: Obj) -> None:
        """One Pod as listed or watched (a deleted one as last seen)."""
        role = pod_role(pod)
        uid, name = str(_meta(pod).get("uid") or ""), str(_meta(pod).get("name") or "")
        if role is PodRole.REQUESTER and uid:
            seen = self.requesters.setdefault(uid, _Requester(pod))
            seen.pod = pod
            ready_s = pod_times(pod).ready_s
            if seen.ready_s is None and ready_s is not None and labels_of(pod).get(LABEL_DUAL):
                seen.ready_s = ready_s
        elif role in (PodRole.LAUNCHER, PodRole.DIRECT) and name:
            self.providers[name] = pod
            self._see_binding(pod, name)

    def _see_binding(self, pod: Obj, name: str) -> None:
        bound = binding_of(pod)
        if bound is None:
            return
        seen = self.requesters.get(bound[0])
        annotations = annotations_of(pod)
        bound_s = parse_time(annotations.get(ANN_BOUND_AT))
        if seen is not None and seen.ready_s is not None and seen.binding is not None:
            return  # actuated: a later binding is not this actuation's
        if seen is None:
            seen = self.requesters.setdefault(bound[0], _Requester({}))
        if seen.binding is not None and seen.binding.bound_s == bound_s:
            return  # the same binding, seen again: what it showed first stands
        seen.binding = _Binding(
            provider=name,
            bound_s=bound_s,
            instance=annotations.get(ANN_INSTANCE_ID) or None,
            path=annotations.get(ANN_ACTUATION_PATH) or None,
            ready_before=ready_before(pod_times(pod), bound_s),
        )

    def ready_count(self) -> int:
        """Requesters seen Ready and bound."""
        return sum(1 for r in self.requesters.values() if r.ready_s is not None)

    def evidence(
        self,
        *,
        records: Mapping[str, dict[str, Any]] | None = None,
        engine_log: EngineLog | None = None,
    ) -> list[Evidence]:
        """One :class:`Evidence` per requester seen, in order of creation."""
        found = [
            self._evidence(uid, seen, records or {}, engine_log)
            for uid, seen in self.requesters.items()
            if seen.pod
        ]
        return sorted(found, key=lambda e: (e.requester_created_s or 0.0, e.requester))

    def _evidence(
        self,
        uid: str,
        seen: _Requester,
        records: Mapping[str, dict[str, Any]],
        engine_log: EngineLog | None,
    ) -> Evidence:
        pod = seen.pod
        labels, annotations = labels_of(pod), annotations_of(pod)
        times = pod_times(pod)
        binding = seen.binding
        provider_name = binding.provider if binding is not None else labels.get(LABEL_DUAL)
        provider = self.providers.get(provider_name or "")
        actuated = annotations.get(ANN_ACTUATED, "").split(" ")[0] or None
        evidence = Evidence(
            requester=uid,
            requester_name=str(_meta(pod).get("name") or "") or None,
            namespace=self.namespace,
            requester_created_s=times.created_s,
            container_started_s=times.started_s,
            ready_s=seen.ready_s,
            gpu_uuids=tuple(g for g in annotations.get(ANN_ACCELERATORS, "").split(",") if g),
            provider=provider_name or None,
            instance=(binding.instance if binding else None) or labels.get(LABEL_INSTANCE),
            bound_s=binding.bound_s if binding else None,
            launcher_ready_before_bind=binding.ready_before if binding else None,
            controller_path=actuated or (binding.path if binding else None),
        )
        if provider is not None:
            provider_times = pod_times(provider)
            role = pod_role(provider)
            evidence = replace(
                evidence,
                provider_kind=ProviderKind.LAUNCHER
                if role is PodRole.LAUNCHER
                else ProviderKind.DIRECT,
                container_name=provider_times.first_container,
                node=provider_times.node,
                provider_created_s=provider_times.created_s,
            )
            if evidence.provider_kind is ProviderKind.DIRECT:
                evidence = replace(evidence, launcher_ready_before_bind=None)
        elif provider_name:
            evidence = replace(evidence, problems=(f"provider {provider_name} was not seen",))
        record = records.get(uid)
        if record is not None:
            return replace(evidence, wake_evidence=True, **record_changes(record, evidence))
        if provider is not None and evidence.instance and engine_log is not None:
            return _with_engine_log(evidence, engine_log(provider, evidence.instance))
        return evidence


def _local_year(t_s: float) -> int:
    return dt.datetime.fromtimestamp(t_s).year


def _with_engine_log(e: Evidence, text: str | None) -> Evidence:
    """What the bound instance's log says of the window: a wake that ended in it, or the
    engine's start in it (the window runs from the requester's creation to its readiness)."""
    if text is None:
        return replace(e, problems=(*e.problems, f"the log of instance {e.instance} is unread"))
    if e.requester_created_s is None:
        return e
    low, high = e.requester_created_s, e.ready_s if e.ready_s is not None else float("inf")
    year = _local_year(low)
    changes: dict[str, Any] = {"wake_evidence": True}
    for move in moves(text, year=year):
        if move.kind == "wake" and low <= move.ended_s <= high:
            changes |= {"wake_started_s": move.started_s, "wake_ended_s": move.ended_s}
    started = [t for t in starts(text, year=year) if low <= t <= high]
    if started:
        changes["instance_started_s"] = started[0]
    return replace(e, **changes)


# --- the API server and the launchers ---------------------------------------------------------

CONTROLLER_SELECTOR_DEFAULT: Final = "app.kubernetes.io/component=dual-pods-controller"
"""Where the controller's logs are, as llm-d-benchmark's harness looks for them."""
LOG_TAIL_BYTES: Final = 1024 * 1024
WATCH_WINDOW_S: Final = 30


def observe(
    api: Any,
    namespace: str,
    *,
    watch_s: float,
    until_ready: int | None,
    clock: Callable[[], float],
) -> Observation:
    """List the namespace's Pods, then watch them for up to ``watch_s`` seconds, or until
    ``until_ready`` requesters are Ready and bound."""
    from kubernetes import client, watch
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api)
    found = Observation(namespace)
    deadline = clock() + watch_s

    def done() -> bool:
        return clock() >= deadline or (
            until_ready is not None and found.ready_count() >= until_ready
        )

    version: str | None = None
    while True:
        if version is None:
            listed = api.sanitize_for_serialization(core.list_namespaced_pod(namespace))
            for pod in listed.get("items") or ():
                found.see(pod)
            version = str(_meta(listed).get("resourceVersion") or "") or None
        if done():
            return found
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        window = max(1, min(WATCH_WINDOW_S, int(deadline - clock()) + 1))
        try:
            for event in stream.stream(  # type: ignore[no-untyped-call]
                core.list_namespaced_pod,
                namespace,
                resource_version=version,
                timeout_seconds=window,
            ):
                pod = api.sanitize_for_serialization(event["object"])
                if event["type"] == "ERROR":
                    version = None
                    break
                version = str(_meta(pod).get("resourceVersion") or version)
                found.see(pod)
                if done():
                    break
        except ApiException as error:
            if error.status != 410:
                raise
            version = None  # the watch fell too far behind: list again
        finally:
            stream.stop()  # type: ignore[no-untyped-call]


def controller_logs(api: Any, namespace: str, selector: str) -> dict[str, list[str]]:
    """The logs of the controller Pods (``pod/<name>`` -> lines); none when there are none."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    listed = api.sanitize_for_serialization(
        core.list_namespaced_pod(namespace, label_selector=selector)
    )
    logs: dict[str, list[str]] = {}
    for pod in listed.get("items") or ():
        name = str(_meta(pod).get("name"))
        for container in (pod.get("spec") or {}).get("containers") or ():
            text = core.read_namespaced_pod_log(name, namespace, container=container["name"])
            logs[f"pod/{name}/{container['name']}"] = str(text).splitlines()
    return logs


def launcher_engine_log(http: Any, launcher_port: int) -> EngineLog:
    """Reads an instance's log through its launcher (the last :data:`LOG_TAIL_BYTES`)."""
    import httpx

    def read(provider: Obj, instance: str) -> str | None:
        if pod_role(provider) is not PodRole.LAUNCHER:
            return None
        status = provider.get("status")
        ip = status.get("podIP") if isinstance(status, Mapping) else None
        if not ip:
            return None
        url = f"http://{ip}:{launcher_port}/v2/vllm/instances/{instance}/log"
        try:
            response = http.get(url, headers={"Range": f"bytes=-{LOG_TAIL_BYTES}"})
        except httpx.HTTPError:
            return None
        if response.status_code not in (200, 206):
            return None
        return str(response.content.decode("utf-8", errors="replace"))

    return read
