"""Applies the core's plans to a real cluster, with the meaning each action has in both worlds
(:mod:`fma.core.actions`; the simulator's :mod:`fma.adapters.sim.executor` is its twin).

**Writes.** Every Pod write is one JSON merge patch carrying the Pod's UID and the snapshot's
resourceVersion, so a Pod that changed since the snapshot is a 409 ``CONFLICT``, never a blind
overwrite. Writes of one plan to one object chain: after FMA's own write, the next write of
that object in the same plan expects the resourceVersion that write returned (and nothing
else); FMA's metadata on a requester alone (``UpdateRequesterMeta``) goes over a change of
the Pod's status (and of the ``accelerators`` annotation FMA's GPU fetcher writes) since
(:meth:`K8sExecutor._patch_pod`'s ``status_blind``). Deletions carry a
UID precondition, and for requesters a resourceVersion one too. The
object each write returns goes into the :class:`~fma.adapters.k8s.store.ObjectStore`, so the
next reconcile sees it before its watch event. A write the API server rejects as invalid
(400, 422, or another 4xx but 404, 409, 410 and 429) is also told to the user: a Warning Event
``Rejected`` on the Pod (on the requester, or the LauncherConfig, when the Pod could not be
created), with the server's message; a Pod that cannot even be rendered gets ``RenderFailed``
there; any other ``INVALID`` outcome nobody told yet (a launcher that refused an
instance's options, say) is a Warning Event ``Invalid`` on the requester it concerns (else the
provider or the configuration object). A requester's first ready relay is a Normal Event
``Actuated`` with its path and latency (a Warning ``ContainerName`` too when the requester's
container is not named ``inference-server``), one ``Actuation recorded`` log line with the
actuation's moments (:mod:`fma.adapters.k8s.actuations`), and those moments in its
``actuation`` trace event. Every
provider update also carries what :class:`~fma.adapters.k8s.engines.EngineBook` learnt since
the last one: each instance's last use (``instances-last-used``) and refused sleeps
(``sleep-refused``), merged with what the Pod had.

**Calls.** The Kubernetes client is synchronous: each API call runs in a thread, with explicit
timeouts. HTTP calls go through :class:`~fma.adapters.k8s.calls.Calls`.

**In flight.** A wake, a sleep, and the stop of an engine still on its GPUs are *started*: the
phase is noted (``WAKING``, ``FALLING_ASLEEP``, ``STOPPING``), the call runs as a background
task, and the action is done. The answer writes the end phase (``AWAKE``, ``SLEEPING``), or
the phase before when the call failed (after ``failure_hold_s``, so that an engine that does
not answer is not retried in a tight loop; a refusal is final at once); the EngineBook
re-queues the node. A sleep the engine refuses (it answered with an error) is recorded as
refused, and a Warning Event ``SleepRefused`` on the provider says why. The stop of an
instance that holds nothing on its GPUs (asleep or exited) exits at once: it is awaited, and
the instance is then gone. A stopping instance's note stays until the launcher no longer lists
it (the gather drops it then).

**Notes.** A created direct provider's engine is noted ``STARTING`` for container run ``""``:
valid until its container first runs, when the prober takes over. A launcher's instance is
noted ``STARTING`` when the launcher accepted it, and the launcher's answer goes into its
report (:meth:`~fma.adapters.k8s.observed.ReportBook.add_instance`), so the next reconcile sees
the instance before the launcher's watch stream shows it.

**Outcomes** follow :mod:`fma.core.outcomes`: the API's and the calls' failures are classified
by :func:`api_error_kind` and :mod:`fma.adapters.k8s.calls`; deleting something already gone
is ``OK``; a problem only found here (a template that does not render, GPUs the ``gpu-map``
does not know) is ``INVALID``. An action that fails stops the plan; an Event never does: it
is queued and posted in the background by a thread of its own, in order (no plan waits for the
API server to take an Event, and no write of a plan waits behind one); a failure is logged.
"""

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, assert_never

import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from fma.adapters.k8s import kube
from fma.adapters.k8s.actuations import ActuationBook
from fma.adapters.k8s.calls import CallError, Calls, log_fields, rfc3339, rfc3339_nano
from fma.adapters.k8s.engines import EngineBook, EngineNote
from fma.adapters.k8s.observed import Relays, ReportBook, container_run
from fma.adapters.k8s.render.binding import Binding
from fma.adapters.k8s.render.direct import direct_provider_pod
from fma.adapters.k8s.render.errors import RenderError
from fma.adapters.k8s.render.hashing import canonical_json
from fma.adapters.k8s.render.launcher import launcher_pod
from fma.adapters.k8s.render.routing import applied_routing, routing_patch
from fma.adapters.k8s.render.specs import vllm_config
from fma.adapters.k8s.store import Kind, ObjectStore, name_of, resource_version, uid_of
from fma.adapters.k8s.trace import OperatorTrace
from fma.adapters.k8s.views import server_container
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_ACTUATED,
    ANN_ACTUATION_PATH,
    ANN_BOUND_AT,
    ANN_INSTANCE_ID,
    ANN_INSTANCES_LAST_USED,
    ANN_PROXY_PORT,
    ANN_REQUESTER,
    ANN_SERVER_PORT,
    ANN_SLEEP_REFUSED,
    ANN_STATUS,
    ANN_VLLM_CONFIG,
    API_VERSION,
    CONFIGMAP_GPU_MAP,
    CONTAINER_INFERENCE_SERVER,
    FINALIZER_PROVIDER,
    FINALIZER_REQUESTER,
    GROUP,
    LABEL_DUAL,
    LABEL_INSTANCE,
    LABEL_SLEEPING,
    LAUNCHER_PORT,
    REQUESTER_SPI_PORT,
    VERSION,
)
from fma.api.crds import LauncherConfig
from fma.control.reconcile import Decision
from fma.core.actions import (
    Action,
    Bind,
    ConfigKind,
    CreateDirectProvider,
    CreateInstance,
    CreateLauncher,
    DeleteInstance,
    DeleteProvider,
    DeleteRequester,
    EmitEvent,
    LabelProvider,
    RelayReadiness,
    SetActuationPath,
    SetConfigStatus,
    SetRequesterStatus,
    SleepInstance,
    SubjectKind,
    Unbind,
    UpdateRequesterMeta,
    WakeInstance,
)
from fma.core.gpumap import gpu_indices, parse_gpu_map
from fma.core.model import (
    ActuationPath,
    ConfigSnapshot,
    Instance,
    InstanceState,
    NodeSnapshot,
    Provider,
    ProviderKind,
    Requester,
    ServerSpec,
)
from fma.core.outcomes import Outcome, OutcomeKind
from fma.launcher.api import VllmConfig

log = logging.getLogger("fma.operator")

Obj = dict[str, Any]
Result = tuple[OutcomeKind, str | None]
_OK: Final[Result] = (OutcomeKind.OK, None)

FIELD_MANAGER_DEFAULT: Final = "fma-controller"
REPORTING_COMPONENT: Final = "fma-controller"
MERGE_PATCH: Final = "application/merge-patch+json"
API_TIMEOUT_S_DEFAULT: Final = (2.0, 10.0)
"""(connect, read) seconds of each Kubernetes API call."""
FAILURE_HOLD_S_DEFAULT: Final = 1.0
PLURALS: Final = {
    ConfigKind.ISC: "inferenceserverconfigs",
    ConfigKind.LAUNCHER_CONFIG: "launcherconfigs",
    ConfigKind.POPULATION_POLICY: "launcherpopulationpolicies",
}
REASON_REJECTED: Final = "Rejected"
"""A Warning Event: the API server rejected a write as invalid."""
REASON_RENDER_FAILED: Final = "RenderFailed"
"""A Warning Event: a Pod to create could not be rendered."""
REASON_SLEEP_REFUSED: Final = "SleepRefused"
REASON_INVALID: Final = "Invalid"
"""A Warning Event: an action failed as invalid and nothing else told the user."""
REASON_ACTUATED: Final = "Actuated"
REASON_CONTAINER_NAME: Final = "ContainerName"
"""A Warning Event: a requester's container is not named inference-server (served anyway)."""
"""A Normal Event: a requester's first ready relay, with its path and latency."""
EVENT_MESSAGE_CHARS_MAX: Final = 1024
EVENTS_PENDING_MAX: Final = 1000
"""Events waiting to be posted beyond which a new one is dropped (and logged), as the
Kubernetes event recorder drops them past its queue: Events never hold the operator back."""
MEMORY_ENTRIES_MAX: Final = 4096
"""Bound of each in-memory table (configured proxies, actuations awaiting their relay); the
oldest entry goes first (forgetting one costs a repeated, harmless PUT or a lost trace line)."""
UPSTREAM_TRACKING: Final = (ANN_SERVER_PORT, ANN_VLLM_CONFIG)
"""Annotations upstream's controller writes on a bound launcher; an unbind removes them."""


# --- classification ----------------------------------------------------------------------------


def api_error_kind(error: BaseException) -> OutcomeKind:
    """The outcome kind of a failed Kubernetes API call: 404/410 ``NOT_FOUND``, 409
    ``CONFLICT``, 429/5xx ``TRANSIENT``, other 4xx ``INVALID``; no connection (refused,
    unresolvable, a connect timeout) ``TRANSIENT``; a read timeout or a broken answer
    ``UNKNOWN``."""
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        if status in (404, 410):
            return OutcomeKind.NOT_FOUND
        if status == 409:
            return OutcomeKind.CONFLICT
        if status == 429 or status >= 500:
            return OutcomeKind.TRANSIENT
        if 400 <= status < 500:
            return OutcomeKind.INVALID
        return OutcomeKind.UNKNOWN
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        return api_error_kind(error.reason)
    if isinstance(error, urllib3.exceptions.ConnectTimeoutError):  # NewConnectionError too
        return OutcomeKind.TRANSIENT
    if isinstance(error, ConnectionError):
        return OutcomeKind.TRANSIENT
    return OutcomeKind.UNKNOWN


def api_error_message(error: BaseException) -> str:
    """The API server's message (a Status body's ``message``), else what the error says."""
    if isinstance(error, ApiException):
        try:
            body = json.loads(error.body) if error.body else None
        except (TypeError, ValueError):
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        return str(message) if message else f"{error.status} {error.reason}"
    return " ".join(str(error).split()) or type(error).__name__


# --- reading the snapshot and the Pods -----------------------------------------------------


def _providers(snapshot: NodeSnapshot | ConfigSnapshot) -> tuple[Provider, ...]:
    return snapshot.providers if isinstance(snapshot, NodeSnapshot) else ()


def _requesters(snapshot: NodeSnapshot | ConfigSnapshot) -> tuple[Requester, ...]:
    return snapshot.requesters if isinstance(snapshot, NodeSnapshot) else ()


def _provider(snapshot: NodeSnapshot | ConfigSnapshot, name: str) -> Provider | None:
    return next((p for p in _providers(snapshot) if p.name == name), None)


def _requester(snapshot: NodeSnapshot | ConfigSnapshot, uid: str) -> Requester | None:
    return next((r for r in _requesters(snapshot) if r.uid == uid), None)


def _beyond_status(pod: Mapping[str, Any]) -> tuple[Any, Any]:
    """What a requester Pod says besides its status, write bookkeeping (``resourceVersion``,
    ``managedFields``) and the ``accelerators`` annotation: its metadata and its spec. FMA's
    own GPU fetcher writes that annotation right after it re-queued the node with the GPUs it
    learnt, so a decision has already seen them; and they never change while the Pod lives."""
    meta = {k: v for k, v in _meta(pod).items() if k not in ("resourceVersion", "managedFields")}
    annotations = meta.get("annotations")
    annotations = annotations if isinstance(annotations, Mapping) else {}
    meta["annotations"] = {k: v for k, v in annotations.items() if k != ANN_ACCELERATORS}
    return meta, pod.get("spec")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _string_map(obj: Mapping[str, Any], key: str) -> dict[str, str]:
    value = _meta(obj).get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def _finalizers(obj: Mapping[str, Any]) -> list[str]:
    value = _meta(obj).get("finalizers")
    return [str(f) for f in value] if isinstance(value, list) else []


def _with_finalizer(obj: Mapping[str, Any], finalizer: str, present: bool) -> list[str] | None:
    """The Pod's finalizers with ``finalizer`` present or absent; None when already so."""
    current = _finalizers(obj)
    if (finalizer in current) == present:
        return None
    return [*current, finalizer] if present else [f for f in current if f != finalizer]


def _pod_ip(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status")
    ip = status.get("podIP") if isinstance(status, Mapping) else None
    return str(ip) if ip else None


def _json_value(text: str | None) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _stub(kind: str, name: str, uid: str, rv: str) -> Obj:
    """A Pod reference when the store no longer holds the Pod (for an Event)."""
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "uid": uid, "resourceVersion": rv},
    }


@dataclass(slots=True)
class _Context:
    """One plan's application: its snapshot, and the resourceVersions of FMA's own writes in
    it (UID -> (expected before, returned)), so that a second write of one object in a plan
    expects what the first returned."""

    snapshot: NodeSnapshot | ConfigSnapshot
    written: dict[str, tuple[str, str]] = field(default_factory=dict)

    def expected(self, uid: str, rv: str) -> str:
        chained = self.written.get(uid)
        return chained[1] if chained is not None and chained[0] == rv else rv

    def wrote(self, uid: str, before: str, after: str) -> None:
        if not uid or not after:
            return
        chained = self.written.get(uid)
        origin = chained[0] if chained is not None and chained[1] == before else before
        self.written[uid] = (origin, after)


class _Bounded(dict[Any, Any]):
    """A dict that forgets its oldest entries beyond ``MEMORY_ENTRIES_MAX``."""

    def __setitem__(self, key: Any, value: Any) -> None:
        self.pop(key, None)
        super().__setitem__(key, value)
        while len(self) > MEMORY_ENTRIES_MAX:
            del self[next(iter(self))]


@dataclass(frozen=True, slots=True)
class _Actuation:
    path: ActuationPath
    started_s: float | None
    model: str | None
    isc: str | None


class _Engine(Protocol):
    """What the trace says of an engine: an instance, or an action that creates one."""

    @property
    def instance_id(self) -> str: ...

    @property
    def spec(self) -> ServerSpec: ...

    @property
    def gpu_uuids(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class _Subject:
    """What an Event is about: the core's subject kind and key, and the object."""

    kind: SubjectKind
    key: str
    obj: Mapping[str, Any]


class K8sExecutor:
    """Applies plans (:meth:`apply`) against the API server, the launchers, the engines and
    the requesters. ``clock`` gives Unix seconds; ``proxy_all`` configures every requester's
    proxy, not only those with the ``proxy-port`` annotation. ``core_api`` and ``custom_api``
    replace the clients made on ``api`` (tests)."""

    def __init__(
        self,
        *,
        api: client.ApiClient,
        namespace: str,
        store: ObjectStore,
        engines: EngineBook,
        relays: Relays,
        reports: ReportBook | None = None,
        calls: Calls,
        trace: OperatorTrace,
        clock: Callable[[], float],
        proxy_all: bool = False,
        field_manager: str = FIELD_MANAGER_DEFAULT,
        api_timeout_s: tuple[float, float] = API_TIMEOUT_S_DEFAULT,
        failure_hold_s: float = FAILURE_HOLD_S_DEFAULT,
        core_api: client.CoreV1Api | None = None,
        custom_api: client.CustomObjectsApi | None = None,
        on_launcher_create: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        """``on_launcher_create`` hears of each launcher Pod's create call: (LauncherConfig,
        seconds, whether it succeeded)."""
        self.api = api
        self.on_launcher_create = on_launcher_create
        self.namespace = namespace
        self.store = store
        self.engines = engines
        self.relays = relays
        self.reports = reports
        self.calls = calls
        self.trace = trace
        self.clock = clock
        self.proxy_all = proxy_all
        self.field_manager = field_manager
        self.api_timeout_s = api_timeout_s
        self.failure_hold_s = failure_hold_s
        self._core = core_api if core_api is not None else client.CoreV1Api(api)
        self._custom = custom_api if custom_api is not None else client.CustomObjectsApi(api)
        self._tasks: set[asyncio.Task[None]] = set()
        self._proxied: _Bounded = _Bounded()
        """(requester UID, container run) -> (address, port) its proxy forwards to."""
        self._actuations: _Bounded = _Bounded()
        """Requester UID -> the actuation recorded on it whose ready relay has not succeeded."""
        self.actuations = ActuationBook()
        """The moments of each actuation, logged and traced with its first ready relay."""
        self._event_seq = 0
        self._events: set[asyncio.Task[None]] = set()
        self._event_pool: ThreadPoolExecutor | None = None
        self._told = 0
        """Events the executor told itself (so that an invalid outcome is told once)."""

    # --- the plan ------------------------------------------------------------------------------

    async def apply(self, decision: Decision) -> list[Outcome]:
        """Apply the plan's actions in order; stop at the first that fails (Events never stop
        it). One outcome per action tried."""
        context = _Context(decision.snapshot)
        outcomes: list[Outcome] = []
        for action in decision.plan.actions:
            outcome = await self._apply_one(context, action)
            outcomes.append(outcome)
            if not outcome.ok and not isinstance(action, EmitEvent):
                break
        return outcomes

    async def settled(self) -> None:
        """Wait until every wake, sleep and stop started so far has ended, and every Event
        queued so far is posted (or has failed)."""
        while self._tasks or self._events:
            await asyncio.gather(*list(self._tasks), *list(self._events), return_exceptions=True)

    async def close(self) -> None:
        """Cancel what is in flight, drop the Events not yet posted, close the HTTP clients."""
        tasks = [*self._tasks, *self._events]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._event_pool is not None:
            self._event_pool.shutdown(wait=False, cancel_futures=True)
        await self.calls.aclose()

    async def _apply_one(self, context: _Context, action: Action) -> Outcome:
        told = self._told
        try:
            kind, error = await self._dispatch(context, action)
        except CallError as failure:
            kind, error = failure.kind, failure.message
        except RenderError as failure:
            kind, error = OutcomeKind.INVALID, str(failure)
        except Exception as failure:  # a bug, not the world: say so, and let the plan retry
            log.exception("applying %s failed", action)
            kind, error = OutcomeKind.UNKNOWN, f"{type(failure).__name__}: {failure}"
        if kind is not OutcomeKind.OK:
            log.info("action %s: %s: %s", type(action).__name__, kind.value, error)
        # Best-effort: another plan's Event told meanwhile (two workers) may hide this one.
        if kind is OutcomeKind.INVALID and told == self._told and not isinstance(action, EmitEvent):
            await self._tell_invalid(context, action, error)
        return Outcome(action, kind, error)

    async def _dispatch(self, context: _Context, action: Action) -> Result:
        match action:
            case EmitEvent():
                return await self._emit_event(context, action)
            case CreateDirectProvider():
                return await self._create_direct_provider(context, action)
            case CreateLauncher():
                return await self._create_launcher(context, action)
            case Bind():
                return await self._bind(context, action)
            case SetActuationPath():
                return await self._set_path(context, action)
            case Unbind():
                return await self._unbind(context, action)
            case CreateInstance():
                return await self._create_instance(context, action)
            case WakeInstance() | SleepInstance():
                return await self._sleep_or_wake(context, action)
            case DeleteInstance():
                return await self._delete_instance(context, action)
            case DeleteProvider():
                return await self._delete_provider(context, action)
            case DeleteRequester():
                return await self._delete_requester(context, action)
            case RelayReadiness():
                return await self._relay(context, action)
            case UpdateRequesterMeta():
                return await self._update_requester(context, action)
            case LabelProvider():
                return await self._label_provider(context, action)
            case SetRequesterStatus():
                return await self._set_status(context, action)
            case SetConfigStatus():
                return await self._set_config_status(action)
            case _:
                assert_never(action)

    # --- the Kubernetes API ------------------------------------------------------------------

    async def _api(
        self,
        what: str,
        call: Callable[..., Any],
        *args: Any,
        _pool: ThreadPoolExecutor | None = None,
        **kwargs: Any,
    ) -> Any:
        """One API call in a thread (of ``_pool``, else the loop's default executor); a
        classified :class:`CallError` when it fails."""
        work = functools.partial(
            kube.call_json, call, *args, _request_timeout=self.api_timeout_s, **kwargs
        )
        try:
            if _pool is None:
                return await asyncio.to_thread(work)
            return await asyncio.get_running_loop().run_in_executor(_pool, work)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            kind = api_error_kind(error)
            status = int(error.status or 0) if isinstance(error, ApiException) else 0
            raise CallError(kind, f"{what}: {api_error_message(error)}", status=status) from None

    def _as_dict(self, returned: Any) -> Obj:
        if isinstance(returned, dict):
            return returned  # the API server's JSON already
        value = kube.as_dict(self.api, returned)
        return value if isinstance(value, dict) else {}

    def _namespace_of(self, obj: Mapping[str, Any]) -> str:
        return str(_meta(obj).get("namespace") or self.namespace)

    async def _patch_pod(
        self,
        context: _Context,
        subject: _Subject,
        rv: str,
        metadata: Obj,
        what: str,
        *,
        status_blind: bool = False,
    ) -> Obj:
        """One merge patch of the Pod's metadata, expecting its UID and ``rv``; the Pod as
        written (also in the store). A rejected patch is told on the Pod.

        ``status_blind``: the write does not depend on the Pod's status, so a conflict caused
        by nothing but status writes since ``rv`` (the kubelet's, as a container starts) and
        the GPU fetcher's ``accelerators`` annotation is retried once at the current
        resourceVersion (:meth:`_status_moved`) instead of costing a pass."""
        pod = subject.obj
        uid = uid_of(pod)
        expected = context.expected(uid, rv)
        try:
            returned = await self._merge_patch(subject, metadata, what, expected)
        except CallError as failure:
            conflict = failure.kind is OutcomeKind.CONFLICT
            moved = await self._status_moved(pod, expected) if conflict and status_blind else None
            if moved is None:
                raise
            returned = await self._merge_patch(subject, metadata, what, moved)
        written = self._as_dict(returned)
        self.store.put(Kind.POD, written)
        context.wrote(uid, expected, resource_version(written))
        return written

    async def _merge_patch(self, subject: _Subject, metadata: Obj, what: str, rv: str) -> Any:
        """The merge patch itself, with the Pod's UID and ``rv`` as preconditions; a rejected
        one is told on the Pod."""
        pod = subject.obj
        name = name_of(pod)
        preconditions = {"uid": uid_of(pod), "resourceVersion": rv}
        body = {"metadata": {**metadata, **{k: v for k, v in preconditions.items() if v}}}
        try:
            return await self._api(
                f"{what} (Pod {name})",
                self._core.patch_namespaced_pod,
                name,
                self._namespace_of(pod),
                body,
                field_manager=self.field_manager,
                _content_type=MERGE_PATCH,
            )
        except CallError as failure:
            if failure.kind is OutcomeKind.INVALID:
                await self._tell_rejected(subject, what, failure.message)
            raise

    async def _status_moved(self, pod: Mapping[str, Any], expected: str) -> str | None:
        """The Pod's current resourceVersion when only its status (and its ``accelerators``
        annotation: :func:`_beyond_status`) changed since ``expected`` (``pod`` is that
        version, as the store holds it), else None. A failed read is None: the conflict
        stands."""
        if not expected or resource_version(pod) != expected:
            return None  # the version the decision saw is not at hand to compare
        try:
            current = self._as_dict(
                await self._api(
                    f"read Pod {name_of(pod)}",
                    self._core.read_namespaced_pod,
                    name_of(pod),
                    self._namespace_of(pod),
                )
            )
        except CallError:
            return None
        if _beyond_status(current) != _beyond_status(pod):
            return None
        return resource_version(current) or None

    async def _create_pod(self, body: Obj, what: str, tell: _Subject) -> Obj:
        """Create a Pod; the Pod as created (also in the store). A rejected one is told on
        ``tell`` (the requester, or the LauncherConfig)."""
        namespace = self._namespace_of(body)
        try:
            try:
                pod = client.V1Pod.from_dict(body)
            except ValidationError as problem:
                raise CallError(OutcomeKind.INVALID, f"{what}: {problem}") from None
            returned = await self._api(
                what,
                self._core.create_namespaced_pod,
                namespace,
                pod,
                field_manager=self.field_manager,
            )
        except CallError as failure:
            if failure.kind is OutcomeKind.INVALID:
                await self._tell_rejected(tell, what, failure.message)
            raise
        created = self._as_dict(returned)
        self.store.put(Kind.POD, created)
        return created

    async def _delete_pod(self, subject: _Subject, uid: str, rv: str | None, what: str) -> None:
        """Delete a Pod with a UID (and ``rv``) precondition; one already gone is done."""
        pod = subject.obj
        name = name_of(pod)
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid or None, resource_version=rv or None),
            propagation_policy="Background",
        )
        try:
            returned = await self._api(
                f"{what} (Pod {name})",
                self._core.delete_namespaced_pod,
                name,
                self._namespace_of(pod),
                body=options,
            )
        except CallError as failure:
            if failure.kind is OutcomeKind.NOT_FOUND:
                return
            if failure.kind is OutcomeKind.INVALID:
                await self._tell_rejected(subject, what, failure.message)
            raise
        deleted = self._as_dict(returned)
        if name_of(deleted) and _meta(deleted).get("deletionTimestamp"):
            self.store.put(Kind.POD, deleted)  # still there: its grace or its finalizers
        else:
            self.store.forget(Kind.POD, {"metadata": {"name": name, "uid": uid}})

    # --- Events --------------------------------------------------------------------------------

    def _post_event(self, subject: _Subject, reason: str, message: str, *, warning: bool) -> None:
        """Queue a core/v1 Event about ``subject``: a thread of its own posts it in the
        background, in the order queued, so that no plan waits for an Event and no API call of
        a plan waits behind one. Best-effort: a failure is logged, and the ``k8s_event`` trace
        record follows a success."""
        if len(self._events) >= EVENTS_PENDING_MAX:
            log.warning("Event %s dropped: %d Events wait to be posted", reason, len(self._events))
            return
        body = self._event_body(subject.obj, reason, message, warning=warning)
        work = self._post(body, subject, reason, message, warning=warning)
        task = asyncio.get_running_loop().create_task(work)
        self._events.add(task)
        task.add_done_callback(self._events.discard)

    def _event_body(
        self, obj: Mapping[str, Any], reason: str, message: str, *, warning: bool
    ) -> Obj:
        """A core/v1 Event about ``obj``, stamped now."""
        meta = _meta(obj)
        name = str(meta.get("name") or "")
        namespace = self._namespace_of(obj)
        now_s = self.clock()
        self._event_seq += 1
        stamp = rfc3339(now_s)
        body = {
            "metadata": {
                "name": f"{name}.{int(now_s * 1e9) + self._event_seq:x}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion") or "v1",
                "kind": obj.get("kind") or "Pod",
                "name": name,
                "namespace": namespace,
                "uid": meta.get("uid") or None,
                "resourceVersion": meta.get("resourceVersion") or None,
            },
            "reason": reason,
            "message": message[:EVENT_MESSAGE_CHARS_MAX],
            "type": "Warning" if warning else "Normal",
            "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": REPORTING_COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        return body

    async def _post(
        self, body: Obj, subject: _Subject, reason: str, message: str, *, warning: bool
    ) -> None:
        if self._event_pool is None:
            self._event_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fma-events")
        involved = body["involvedObject"]
        try:
            await self._api(
                f"create Event {reason} on {involved['kind']} {involved['name']}",
                self._core.create_namespaced_event,
                involved["namespace"],
                client.CoreV1Event.from_dict(body),
                field_manager=self.field_manager,
                _pool=self._event_pool,
            )
        except CallError as failure:
            log.warning("Event %s not created: %s", reason, failure.message)
            return
        self.trace.record(
            "k8s_event",
            subject=subject.kind.value,
            key=subject.key,
            reason=reason,
            message=message,
            warning=warning,
        )

    async def _tell(
        self, subject: _Subject, reason: str, message: str, *, warning: bool = True
    ) -> None:
        """An Event the executor itself decided, a Warning unless said otherwise (queued:
        :meth:`_post_event`)."""
        self._told += 1
        self._post_event(subject, reason, message, warning=warning)

    async def warn(
        self, kind: SubjectKind, obj: Mapping[str, Any], reason: str, message: str
    ) -> None:
        """A Warning Event about a requester or provider Pod that no plan decided (a task that
        asks the Pod's process found it unreachable); best-effort, as every Event here."""
        key = uid_of(obj) if kind is SubjectKind.REQUESTER else name_of(obj)
        await self._tell(_Subject(kind, key, obj), reason, message)

    async def _tell_invalid(self, context: _Context, action: Action, error: str | None) -> None:
        """``Invalid`` on whom an invalid action concerns: its requester (or the requester
        bound to its provider), else its provider, else its configuration object."""
        requester_uid = getattr(action, "requester_uid", None)
        provider_name = getattr(action, "provider", None)
        provider = _provider(context.snapshot, provider_name) if provider_name else None
        if requester_uid is None and provider is not None:
            requester_uid = provider.bound_requester_uid
        if requester_uid is not None:
            kind, key = SubjectKind.REQUESTER, requester_uid
        elif provider_name is not None:
            kind, key = SubjectKind.PROVIDER, provider_name
        elif isinstance(action, SetConfigStatus):
            kind, key = SubjectKind.CONFIG, f"{action.kind.value}/{action.name}"
        else:
            return
        obj = self._subject(context, kind, key)
        if obj is not None:
            message = f"{type(action).__name__} failed: {error}"
            await self._tell(_Subject(kind, key, obj), REASON_INVALID, message)

    async def _tell_rejected(self, subject: _Subject, what: str, message: str) -> None:
        await self._tell(subject, REASON_REJECTED, f"the API server rejected {what}: {message}")

    async def _emit_event(self, context: _Context, action: EmitEvent) -> Result:
        """Done once queued (:meth:`_post_event`): the Event is best-effort, and the plan goes
        on without waiting for the API server."""
        obj = self._subject(context, action.subject, action.key)
        if obj is None:
            log.info(
                "Event %s not created: %s %s is gone", action.reason, action.subject, action.key
            )
            return OutcomeKind.NOT_FOUND, f"{action.subject.value} {action.key} is gone"
        subject = _Subject(action.subject, action.key, obj)
        self._post_event(subject, action.reason, action.message, warning=action.warning)
        return _OK

    def _subject(
        self, context: _Context, subject: SubjectKind, key: str
    ) -> Mapping[str, Any] | None:
        match subject:
            case SubjectKind.REQUESTER:
                pod = self.store.pod_by_uid(key)
                requester = _requester(context.snapshot, key)
                if pod is None and requester is not None:
                    return _stub("Pod", requester.name, requester.uid, requester.resource_version)
                return pod
            case SubjectKind.PROVIDER:
                found = self.store.get(Kind.POD, key)
                provider = _provider(context.snapshot, key)
                if found is None and provider is not None:
                    return _stub("Pod", provider.name, provider.uid, provider.resource_version)
                return found
            case SubjectKind.CONFIG:
                kind, _, name = key.partition("/")
                if kind not in (c.value for c in ConfigKind):
                    return None
                obj = self.store.get(Kind(kind), name)
                if obj is None:
                    return None
                return {"apiVersion": API_VERSION, "kind": kind, **obj}
            case _:
                assert_never(subject)

    # --- lookups -------------------------------------------------------------------------------

    def _requester_pod(self, context: _Context, uid: str) -> tuple[Requester | None, Obj]:
        """The requester in the snapshot (if there) and its Pod; ``NOT_FOUND`` without one."""
        pod = self.store.pod_by_uid(uid)
        if pod is None:
            raise CallError(OutcomeKind.NOT_FOUND, f"requester {uid} is gone")
        return _requester(context.snapshot, uid), pod

    def _provider_pod(self, context: _Context, name: str) -> tuple[Provider | None, Obj]:
        """The provider in the snapshot (if there) and its Pod; ``NOT_FOUND`` without one."""
        pod = self.store.get(Kind.POD, name)
        if pod is None:
            raise CallError(OutcomeKind.NOT_FOUND, f"provider {name} is gone")
        return _provider(context.snapshot, name), pod

    @staticmethod
    def _rv(known: Requester | Provider | None, pod: Mapping[str, Any]) -> str:
        """The resourceVersion a write expects: the snapshot's, else the stored Pod's."""
        return known.resource_version if known is not None else resource_version(pod)

    def _requester_name(self, context: _Context, provider: Provider | None) -> str:
        """The name of the requester ``provider`` is bound to ("" when none is known)."""
        if provider is None or provider.bound_requester_uid is None:
            return ""
        requester = _requester(context.snapshot, provider.bound_requester_uid)
        if requester is not None:
            return requester.name
        pod = self.store.pod_by_uid(provider.bound_requester_uid)
        if pod is not None:
            return name_of(pod)
        record = _string_map(self.store.get(Kind.POD, provider.name) or {}, "annotations")
        _, _, name = record.get(ANN_REQUESTER, "").partition(" ")
        return name

    def _run(self, provider: Provider) -> str | None:
        """The container run a direct provider's note is about (None for a launcher's)."""
        if provider.kind is not ProviderKind.DIRECT:
            return None
        pod = self.store.get(Kind.POD, provider.name)
        return container_run(pod, CONTAINER_INFERENCE_SERVER) if pod is not None else ""

    @staticmethod
    def _engine_port(provider: Provider, instance: Instance) -> int:
        """A launcher's instance serves on its own port; a direct provider on the Pod's."""
        if provider.kind is ProviderKind.DIRECT and provider.port is not None:
            return provider.port
        return instance.spec.port

    def _bookkeeping(self, provider: str, annotations: Mapping[str, str]) -> dict[str, str]:
        """The EngineBook's last uses and refused sleeps, merged with what the Pod had, as
        annotation changes (none when the Pod has them already)."""
        changes: dict[str, str] = {}
        used = self.engines.last_used(provider)
        if used:
            had = _json_value(annotations.get(ANN_INSTANCES_LAST_USED))
            merged = {str(k): str(v) for k, v in had.items()} if isinstance(had, dict) else {}
            merged |= {instance: rfc3339(t_s) for instance, t_s in used.items()}
            text = canonical_json(merged)
            if text != annotations.get(ANN_INSTANCES_LAST_USED):
                changes[ANN_INSTANCES_LAST_USED] = text
        refused = self.engines.refused(provider)
        if refused:
            had = _json_value(annotations.get(ANN_SLEEP_REFUSED))
            known = {str(i) for i in had} if isinstance(had, list) else set()
            text = canonical_json(sorted(known | refused))
            if text != annotations.get(ANN_SLEEP_REFUSED):
                changes[ANN_SLEEP_REFUSED] = text
        return changes

    def _trace_instance(
        self, kind: str, provider: str, node: str, engine: _Engine, **extra: Any
    ) -> None:
        spec = engine.spec
        self.trace.record(
            kind,
            provider=provider,
            instance=engine.instance_id,
            node=node,
            gpus=list(engine.gpu_uuids),
            bytes=spec.weights_bytes,
            port=spec.port,
            utilization=spec.gpu_memory_utilization,
            **extra,
        )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- providers: creation and binding -------------------------------------------------------

    def _gpu_indices(self, gpu_uuids: tuple[str, ...], node: str) -> tuple[int, ...]:
        config_map = self.store.get(Kind.CONFIGMAP, CONFIGMAP_GPU_MAP)
        data = config_map.get("data") if config_map is not None else None
        parsed = parse_gpu_map(data) if isinstance(data, dict) else None
        indices, problems = gpu_indices(gpu_uuids, node, parsed[0] if parsed else None)
        if problems:
            raise CallError(OutcomeKind.INVALID, "; ".join(problems))
        return indices

    async def _create_direct_provider(
        self, context: _Context, action: CreateDirectProvider
    ) -> Result:
        _, requester_pod = self._requester_pod(context, action.requester_uid)
        requester_name = name_of(requester_pod)
        tell = _Subject(SubjectKind.REQUESTER, action.requester_uid, requester_pod)
        try:
            indices = self._gpu_indices(action.gpu_uuids, action.node)
            binding = Binding(
                action.requester_uid,
                requester_name,
                action.instance_id,
                action.path,
                rfc3339(self.clock()),
            )
            body = direct_provider_pod(
                requester_pod,
                node=action.node,
                gpu_uuids=action.gpu_uuids,
                gpu_indices=indices,
                binding=binding,
            )
        except (CallError, RenderError) as problem:
            await self._tell(tell, REASON_RENDER_FAILED, f"no provider Pod can be made: {problem}")
            raise
        started_wall_s, started_s = self.clock(), time.perf_counter()
        created = await self._create_pod(body, "create the provider Pod", tell)
        name = name_of(created)
        log.info(
            "Created direct server-providing pod %s",
            log_fields(
                requesterName=requester_name,
                pod=name,
                node=action.node,
                k8sCallStartTime=rfc3339_nano(started_wall_s),
                latencySecs=f"{time.perf_counter() - started_s:.6f}",
            ),
        )
        created_s = self.clock()
        self.trace.record(
            "provider_created",
            at_s=created_s,
            provider=name,
            node=action.node,
            provider_kind=ProviderKind.DIRECT.value,
            launcher_config=None,
            max_instances=None,
        )
        self._trace_bind(
            name, action.requester_uid, action.instance_id, action.path, at_s=created_s
        )
        self.actuations.bound(
            requester_uid=action.requester_uid,
            requester_pod=requester_pod,
            provider_pod=created,
            provider_kind=ProviderKind.DIRECT.value,
            instance=action.instance_id,
            path=action.path.value,
            bound_at=binding.bound_at,
            provider_create_s=started_wall_s,
            node=action.node,
        )
        # Valid until the container first runs (run ""), when the prober takes over.
        self.engines.set_phase(
            name, action.instance_id, InstanceState.STARTING, self.clock(), run=""
        )
        self._trace_instance("instance_starting", name, action.node, action)
        return _OK

    def _trace_bind(
        self,
        provider: str,
        requester_uid: str,
        instance_id: str | None,
        path: ActuationPath | None,
        *,
        at_s: float | None = None,
    ) -> None:
        self.trace.record(
            "bind",
            at_s=at_s,
            provider=provider,
            requester=requester_uid,
            instance=instance_id,
            path=path.value if path is not None else None,
        )

    async def _create_launcher(self, context: _Context, action: CreateLauncher) -> Result:
        lc_obj = self.store.get(Kind.LAUNCHER_CONFIG, action.launcher_config)
        if lc_obj is None:
            return OutcomeKind.NOT_FOUND, f"LauncherConfig {action.launcher_config} is gone"
        lc_ref = {"apiVersion": API_VERSION, "kind": Kind.LAUNCHER_CONFIG.value, **lc_obj}
        tell = _Subject(
            SubjectKind.CONFIG, f"{Kind.LAUNCHER_CONFIG.value}/{action.launcher_config}", lc_ref
        )
        binding, requester_name = None, ""
        if action.requester_uid is not None:
            _, requester_pod = self._requester_pod(context, action.requester_uid)
            requester_name = name_of(requester_pod)
            tell = _Subject(SubjectKind.REQUESTER, action.requester_uid, requester_pod)
            if action.instance_id is None or action.path is None:
                return (
                    OutcomeKind.INVALID,
                    "a launcher made for a requester needs an instance and a path",
                )
            binding = Binding(
                action.requester_uid,
                requester_name,
                action.instance_id,
                action.path,
                rfc3339(self.clock()),
            )
        try:
            lc = LauncherConfig.model_validate(lc_obj)
            body = launcher_pod(
                lc,
                namespace=self.namespace,
                node=action.node,
                lc_uid=uid_of(lc_obj) or None,
                binding=binding,
            )
        except (ValidationError, RenderError) as problem:
            message = " ".join(str(problem).split())
            await self._tell(tell, REASON_RENDER_FAILED, f"no launcher Pod can be made: {message}")
            return OutcomeKind.INVALID, message
        started_wall_s, started_s = self.clock(), time.perf_counter()
        created: Obj | None = None
        try:
            created = await self._create_pod(body, "create the launcher Pod", tell)
        finally:
            if self.on_launcher_create is not None:
                seconds = time.perf_counter() - started_s
                self.on_launcher_create(action.launcher_config, seconds, created is not None)
        name = name_of(created)
        fields = log_fields(
            pod=name,
            node=action.node,
            launcherConfig=action.launcher_config,
            k8sCallStartTime=rfc3339_nano(started_wall_s),
            latencySecs=f"{time.perf_counter() - started_s:.6f}",
        )
        if binding is not None:
            log.info(
                "Created launcher-based server-providing pod %s %s",
                log_fields(requesterName=requester_name),
                fields,
            )
        else:
            log.info("Created launcher pod %s", fields)
        known = context.snapshot.launcher_configs.get(action.launcher_config)
        created_s = self.clock()
        self.trace.record(
            "provider_created",
            at_s=created_s,
            provider=name,
            node=action.node,
            provider_kind=ProviderKind.LAUNCHER.value,
            launcher_config=action.launcher_config,
            max_instances=known.max_instances if known is not None else lc.spec.max_instances,
        )
        if binding is not None:
            self._trace_bind(
                name, binding.requester_uid, binding.instance_id, binding.path, at_s=created_s
            )
            self.actuations.bound(
                requester_uid=binding.requester_uid,
                requester_pod=self.store.pod_by_uid(binding.requester_uid) or {},
                provider_pod=created,
                provider_kind=ProviderKind.LAUNCHER.value,
                instance=binding.instance_id,
                path=binding.path.value,
                bound_at=binding.bound_at,
                provider_create_s=started_wall_s,
                node=action.node,
            )
        return _OK

    async def _bind(self, context: _Context, action: Bind) -> Result:
        provider, pod = self._provider_pod(context, action.provider)
        requester = _requester(context.snapshot, action.requester_uid)
        requester_pod = self.store.pod_by_uid(action.requester_uid)
        if requester is None and requester_pod is None:
            return OutcomeKind.NOT_FOUND, f"requester {action.requester_uid} is gone"
        requester_name = requester.name if requester is not None else name_of(requester_pod or {})
        binding = Binding(
            action.requester_uid,
            requester_name,
            action.instance_id,
            action.path,
            rfc3339(self.clock()),
        )
        annotations = {
            ANN_REQUESTER: binding.requester_annotation,
            ANN_INSTANCE_ID: binding.instance_id,
            ANN_ACTUATION_PATH: binding.path.value,
            ANN_BOUND_AT: binding.bound_at,
            **self._bookkeeping(action.provider, _string_map(pod, "annotations")),
        }
        metadata: Obj = {"annotations": annotations, "labels": {LABEL_DUAL: requester_name}}
        finalizers = _with_finalizer(pod, FINALIZER_PROVIDER, True)
        if finalizers is not None:
            metadata["finalizers"] = finalizers
        subject = _Subject(SubjectKind.PROVIDER, action.provider, pod)
        written = await self._patch_pod(
            context, subject, self._rv(provider, pod), metadata, "the binding"
        )
        self._trace_bind(action.provider, action.requester_uid, action.instance_id, action.path)
        self.actuations.bound(
            requester_uid=action.requester_uid,
            requester_pod=requester_pod or {"metadata": {"name": requester_name}},
            provider_pod=written,
            provider_kind=provider.kind.value if provider is not None else None,
            instance=action.instance_id,
            path=action.path.value,
            bound_at=binding.bound_at,
        )
        return _OK

    async def _set_path(self, context: _Context, action: SetActuationPath) -> Result:
        provider, pod = self._provider_pod(context, action.provider)
        annotations = {
            ANN_ACTUATION_PATH: action.path.value,
            **self._bookkeeping(action.provider, _string_map(pod, "annotations")),
        }
        subject = _Subject(SubjectKind.PROVIDER, action.provider, pod)
        await self._patch_pod(
            context, subject, self._rv(provider, pod), {"annotations": annotations}, "the path"
        )
        self.trace.record("path_changed", provider=action.provider, path=action.path.value)
        self.actuations.path_changed(action.provider, action.path.value)
        return _OK

    async def _unbind(self, context: _Context, action: Unbind) -> Result:
        pod = self.store.get(Kind.POD, action.provider)
        if pod is None:
            return _OK  # gone: nothing is bound to it any more
        provider = _provider(context.snapshot, action.provider)
        labels, annotations = _string_map(pod, "labels"), _string_map(pod, "annotations")
        label_changes, annotation_changes = routing_patch(
            labels, annotations, applied_routing(annotations), None
        )
        for key in (ANN_REQUESTER, ANN_INSTANCE_ID, ANN_ACTUATION_PATH, ANN_BOUND_AT):
            annotation_changes[key] = None
        for key in UPSTREAM_TRACKING:
            if key in annotations:
                annotation_changes[key] = None
        annotation_changes |= self._bookkeeping(action.provider, annotations)
        label_changes |= {LABEL_DUAL: None, LABEL_SLEEPING: "true"}
        metadata: Obj = {"labels": label_changes, "annotations": annotation_changes}
        finalizers = _with_finalizer(pod, FINALIZER_PROVIDER, False)
        if finalizers is not None:
            metadata["finalizers"] = finalizers
        subject = _Subject(SubjectKind.PROVIDER, action.provider, pod)
        try:
            await self._patch_pod(context, subject, self._rv(provider, pod), metadata, "the unbind")
        except CallError as failure:
            if failure.kind is OutcomeKind.NOT_FOUND:
                return _OK
            raise
        requester = provider.bound_requester_uid if provider is not None else None
        if requester is None:
            requester = annotations.get(ANN_REQUESTER, "").partition(" ")[0] or None
        self.trace.record("unbind", provider=action.provider, requester=requester)
        return _OK

    async def _label_provider(self, context: _Context, action: LabelProvider) -> Result:
        provider, pod = self._provider_pod(context, action.provider)
        labels, annotations = _string_map(pod, "labels"), _string_map(pod, "annotations")
        label_changes, annotation_changes = routing_patch(
            labels, annotations, applied_routing(annotations), action.routing
        )
        label_changes[LABEL_SLEEPING] = "true" if action.sleeping else "false"
        annotation_changes |= self._bookkeeping(action.provider, annotations)
        metadata: Obj = {"labels": label_changes}
        if annotation_changes:
            metadata["annotations"] = annotation_changes
        subject = _Subject(SubjectKind.PROVIDER, action.provider, pod)
        await self._patch_pod(context, subject, self._rv(provider, pod), metadata, "the labels")
        routing = provider.routing if provider is not None else applied_routing(annotations)
        if routing != action.routing:
            self.trace.record(
                "routing",
                provider=action.provider,
                instance=provider.bound_instance_id if provider is not None else None,
                on=action.routing is not None,
            )
        return _OK

    # --- instances -----------------------------------------------------------------------------

    async def _create_instance(self, context: _Context, action: CreateInstance) -> Result:
        provider = _provider(context.snapshot, action.provider)
        if provider is None or provider.deleting:
            return OutcomeKind.NOT_FOUND, f"launcher {action.provider} is gone"
        if not provider.ready or provider.ip is None:
            return OutcomeKind.TRANSIENT, f"launcher {action.provider} is not answering"
        body = vllm_config(action.spec, gpu_uuids=action.gpu_uuids, isc_name=action.isc_name)
        try:
            config = VllmConfig.model_validate(body)
        except ValidationError as problem:
            return OutcomeKind.INVALID, " ".join(str(problem).split())
        started_s = self.clock()
        created = await self.calls.create_instance(
            provider.ip,
            provider.port or LAUNCHER_PORT,
            action.instance_id,
            config,
            self._requester_name(context, provider),
        )
        if self.reports is not None:
            self.reports.add_instance(provider.name, created)
        self.actuations.instance_created(provider.name, action.instance_id, started_s)
        self.engines.set_phase(
            provider.name, action.instance_id, InstanceState.STARTING, self.clock()
        )
        self._trace_instance("instance_starting", provider.name, provider.node, action)
        return _OK

    async def _sleep_or_wake(
        self, context: _Context, action: WakeInstance | SleepInstance
    ) -> Result:
        provider = _provider(context.snapshot, action.provider)
        instance = provider.instance(action.instance_id) if provider is not None else None
        if provider is None or instance is None:
            return OutcomeKind.NOT_FOUND, f"instance {action.instance_id} on {action.provider}"
        wake = isinstance(action, WakeInstance)
        if not wake and not instance.sleepable:
            return OutcomeKind.INVALID, "the engine refused to sleep"
        if provider.ip is None:
            return OutcomeKind.TRANSIENT, f"provider {provider.name} has no IP"
        if wake:
            moving, before, after = (
                InstanceState.WAKING,
                InstanceState.SLEEPING,
                InstanceState.AWAKE,
            )
        else:
            moving, before, after = (
                InstanceState.FALLING_ASLEEP,
                InstanceState.AWAKE,
                InstanceState.SLEEPING,
            )
        run = self._run(provider)
        self.engines.set_phase(provider.name, instance.instance_id, moving, self.clock(), run=run)
        note = self.engines.note(provider.name, instance.instance_id)
        self._trace_instance(f"instance_{moving.value}", provider.name, provider.node, instance)
        if wake:
            self.actuations.wake_started(provider.name, instance.instance_id, self.clock())
        move = _Move(
            provider=provider,
            instance=instance,
            ip=provider.ip,
            port=self._engine_port(provider, instance),
            wake=wake,
            note=note,
            before=before,
            after=after,
            run=run,
            requester_name=self._requester_name(context, provider),
        )
        self._spawn(self._finish_move(move))
        return _OK

    async def _finish_move(self, move: "_Move") -> None:
        """The end of a wake or a sleep: the end phase when the engine answered, else the
        phase before (a refused sleep recorded and told)."""
        name, instance_id = move.provider.name, move.instance.instance_id
        try:
            if move.wake:
                await self.calls.wake(move.ip, move.port, move.requester_name)
            else:
                await self.calls.sleep(move.ip, move.port, move.requester_name)
        except CallError as failure:
            await self._move_failed(move, failure)
            return
        except Exception:
            log.exception("the %s of %s on %s failed", move.verb, instance_id, name)
            await self._hold()
            self._end(move, move.before)
            return
        if self._end(move, move.after):
            if move.wake:
                self.actuations.wake_ended(name, instance_id, self.clock())
            kind = f"instance_{move.after.value}"
            self._trace_instance(kind, name, move.provider.node, move.instance)

    async def _move_failed(self, move: "_Move", failure: CallError) -> None:
        name, instance_id = move.provider.name, move.instance.instance_id
        if move.wake or not failure.status:
            log.warning(
                "the %s of %s on %s failed: %s", move.verb, instance_id, name, failure.message
            )
            await self._hold()
            self._end(move, move.before)
            return
        # The engine answered with an error: it cannot sleep (vLLM without sleep mode).
        self.engines.refuse_sleep(name, instance_id)
        self._end(move, move.before)
        self.trace.record("sleep_refused", provider=name, instance=instance_id)
        pod = self.store.get(Kind.POD, name) or _stub(
            "Pod", name, move.provider.uid, move.provider.resource_version
        )
        message = (
            f"the engine of instance {instance_id} refused to sleep ({failure.message}); it will "
            "be deleted instead of kept asleep (vLLM sleeps only with --enable-sleep-mode, on a "
            "GPU)"
        )
        await self._tell(_Subject(SubjectKind.PROVIDER, name, pod), REASON_SLEEP_REFUSED, message)

    async def _hold(self) -> None:
        if self.failure_hold_s > 0:
            await asyncio.sleep(self.failure_hold_s)

    def _end(self, move: "_Move", phase: InstanceState) -> bool:
        """Write ``phase`` unless the note changed meanwhile (a stop, or the instance gone)."""
        name, instance_id = move.provider.name, move.instance.instance_id
        if self.engines.note(name, instance_id) is not move.note:
            return False
        self.engines.set_phase(name, instance_id, phase, self.clock(), run=move.run)
        return True

    async def _delete_instance(self, context: _Context, action: DeleteInstance) -> Result:
        provider = _provider(context.snapshot, action.provider)
        instance = provider.instance(action.instance_id) if provider is not None else None
        if provider is None or instance is None or instance.state is InstanceState.STOPPING:
            return _OK  # gone, or going: what was asked
        if provider.kind is ProviderKind.DIRECT:
            return OutcomeKind.INVALID, f"{provider.name} is a direct provider: delete the Pod"
        if provider.ip is None:
            return OutcomeKind.TRANSIENT, f"launcher {provider.name} has no IP"
        ip, port = provider.ip, provider.port or LAUNCHER_PORT
        requester_name = self._requester_name(context, provider)
        if not instance.state.on_gpus:  # asleep or exited: it stops at once
            try:
                await self.calls.delete_instance(ip, port, instance.instance_id, requester_name)
            except CallError as failure:
                if failure.kind is not OutcomeKind.NOT_FOUND:
                    raise
            self.engines.forget(provider.name, instance.instance_id)
            if self.reports is not None:  # gone now, not when the watch stream says so
                self.reports.drop_instance(provider.name, instance.instance_id)
            self._trace_instance(
                "instance_deleted", provider.name, provider.node, instance, reason=action.reason
            )
            return _OK
        self.engines.set_phase(
            provider.name, instance.instance_id, InstanceState.STOPPING, self.clock()
        )
        note = self.engines.note(provider.name, instance.instance_id)
        self._trace_instance(
            "instance_stopping",
            provider.name,
            provider.node,
            instance,
            reason=action.reason,
            by="controller",
        )
        self._spawn(
            self._finish_stop(provider, instance, ip, port, note, action.reason, requester_name)
        )
        return _OK

    async def _finish_stop(
        self,
        provider: Provider,
        instance: Instance,
        ip: str,
        port: int,
        note: EngineNote | None,
        reason: str,
        requester_name: str,
    ) -> None:
        """The end of a stop: the instance is gone (its note stays ``STOPPING`` until the
        launcher no longer lists it), or, when the launcher did not do it, the phase before."""
        name, instance_id = provider.name, instance.instance_id
        try:
            await self.calls.delete_instance(ip, port, instance_id, requester_name, stopping=True)
        except Exception as failure:
            if not isinstance(failure, CallError) or failure.kind is not OutcomeKind.NOT_FOUND:
                log.warning("the stop of %s on %s failed: %s", instance_id, name, failure)
                await self._hold()
                if self.engines.note(name, instance_id) is note:
                    self.engines.set_phase(name, instance_id, instance.state, self.clock())
                return
        self._trace_instance("instance_deleted", name, provider.node, instance, reason=reason)

    # --- deletions -----------------------------------------------------------------------------

    async def _delete_provider(self, context: _Context, action: DeleteProvider) -> Result:
        provider = _provider(context.snapshot, action.provider)
        pod = self.store.get(Kind.POD, action.provider)
        if pod is None and provider is None:
            return _OK  # gone already: what was asked
        if pod is None:
            assert provider is not None
            pod = _stub("Pod", provider.name, provider.uid, provider.resource_version)
        uid = provider.uid if provider is not None and provider.uid else uid_of(pod)
        subject = _Subject(SubjectKind.PROVIDER, action.provider, pod)
        await self._delete_pod(subject, uid, None, "the deletion")
        log.info(
            "Deleted server-providing pod %s",
            log_fields(pod=action.provider, reason=action.reason),
        )
        self.trace.record(
            "provider_deleting", provider=action.provider, reason=action.reason, by="controller"
        )
        if provider is not None:
            for instance in provider.instances:
                self._stopping_with_pod(provider, instance, action.reason)
        return _OK

    def _stopping_with_pod(self, provider: Provider, instance: Instance, reason: str) -> None:
        """An engine of a deleted Pod: one on its GPUs stops (holding them until the Pod is
        gone); one asleep exits at once; one already stopping or exited is left as it is."""
        if instance.state in (InstanceState.STOPPING, InstanceState.STOPPED):
            return
        if instance.state.on_gpus:
            self.engines.set_phase(
                provider.name,
                instance.instance_id,
                InstanceState.STOPPING,
                self.clock(),
                run=self._run(provider),
            )
            kind, extra = "instance_stopping", {"reason": reason, "by": "controller"}
        else:
            self.engines.forget(provider.name, instance.instance_id)
            kind, extra = "instance_deleted", {"reason": reason}
        self._trace_instance(kind, provider.name, provider.node, instance, **extra)

    async def _delete_requester(self, context: _Context, action: DeleteRequester) -> Result:
        requester = _requester(context.snapshot, action.requester_uid)
        pod = self.store.pod_by_uid(action.requester_uid)
        if pod is None and requester is None:
            return _OK  # gone already: what was asked
        if pod is None:
            assert requester is not None
            pod = _stub("Pod", requester.name, requester.uid, requester.resource_version)
        rv = context.expected(action.requester_uid, self._rv(requester, pod))
        subject = _Subject(SubjectKind.REQUESTER, action.requester_uid, pod)
        await self._delete_pod(subject, action.requester_uid, rv, "the deletion")
        self.trace.record(
            "requester_deleting",
            requester=action.requester_uid,
            reason=action.reason,
            by="controller",
        )
        return _OK

    # --- requesters ----------------------------------------------------------------------------

    async def _relay(self, context: _Context, action: RelayReadiness) -> Result:
        requester, pod = self._requester_pod(context, action.requester_uid)
        ip = requester.ip if requester is not None else _pod_ip(pod)
        if ip is None:
            return OutcomeKind.TRANSIENT, f"requester {action.requester_uid} has no IP yet"
        spi_port = requester.spi_port if requester is not None else None
        port = spi_port or REQUESTER_SPI_PORT
        name = name_of(pod)
        run = container_run(pod, CONTAINER_INFERENCE_SERVER)
        if action.ready:
            await self._configure_proxy(context, action.requester_uid, pod, ip, port, run)
            actuated = requester.actuated if requester is not None else False
            if action.actuation is not None and not actuated:
                await self._record_actuation(context, requester, pod, action.actuation)
        relay_s = self.clock()
        await self.calls.relay(ip, port, action.ready, name)
        self.relays.set(action.requester_uid, run, action.ready)
        self.trace.record("ready" if action.ready else "unready", requester=action.requester_uid)
        pending = self._actuations.pop(action.requester_uid, None) if action.ready else None
        if isinstance(pending, _Actuation):
            now_s = self.clock()
            started_s = pending.started_s if pending.started_s is not None else now_s
            latency_s = round(now_s - started_s, 6)
            record = self.actuations.relayed(action.requester_uid, relay_s, pending.path.value)
            if record is not None:
                log.info("%s", record.log_line())
            self.trace.record(
                "actuation",
                **(record.trace_fields() if record is not None else {}),
                requester=action.requester_uid,
                path=pending.path.value,
                latency_s=latency_s,
                model=pending.model,
                isc=pending.isc,
            )
            subject = _Subject(SubjectKind.REQUESTER, action.requester_uid, pod)
            message = f"ready {latency_s:.2f} s after its container started ({pending.path.value})"
            await self._tell(subject, REASON_ACTUATED, message, warning=False)
        return _OK

    async def _configure_proxy(
        self, context: _Context, uid: str, pod: Obj, ip: str, port: int, run: str
    ) -> None:
        """Point the requester's proxy at its provider's engine, once per container run, when
        the requester asks for it (the ``proxy-port`` annotation) or every requester should."""
        if not self.proxy_all and ANN_PROXY_PORT not in _string_map(pod, "annotations"):
            return
        provider = (
            context.snapshot.provider_bound_to(uid)
            if isinstance(context.snapshot, NodeSnapshot)
            else None
        )
        instance = provider.instance(provider.bound_instance_id) if provider is not None else None
        if provider is None or instance is None:
            raise CallError(OutcomeKind.NOT_FOUND, f"requester {uid} has no bound instance")
        if provider.ip is None:
            raise CallError(OutcomeKind.TRANSIENT, f"provider {provider.name} has no IP yet")
        target = (provider.ip, self._engine_port(provider, instance))
        if self._proxied.get((uid, run)) == target:
            return
        await self.calls.configure_proxy(ip, port, target[0], target[1], name_of(pod))
        self._proxied[(uid, run)] = target

    async def _record_actuation(
        self, context: _Context, requester: Requester | None, pod: Obj, path: ActuationPath
    ) -> None:
        """Write the ``actuated`` annotation before the relay (after it, the kubelet's next
        probe would change the Pod first); its trace line follows the relay's success."""
        uid = uid_of(pod)
        stamp = rfc3339(self.clock())
        subject = _Subject(SubjectKind.REQUESTER, uid, pod)
        metadata = {"annotations": {ANN_ACTUATED: f"{path.value} {stamp}"}}
        await self._patch_pod(
            context, subject, self._rv(requester, pod), metadata, "the actuation record"
        )
        self._actuations[uid] = _Actuation(
            path,
            requester.started_s if requester is not None else None,
            self._model(context, requester),
            requester.isc_name if requester is not None else None,
        )
        container = server_container(pod)
        if container != CONTAINER_INFERENCE_SERVER:
            message = (
                f"its container is named {container!r}, not {CONTAINER_INFERENCE_SERVER!r}: "
                "tools that time actuations from that container's start (llm-d-benchmark) "
                "fall back to the Pod's creation"
            )
            await self._tell(subject, REASON_CONTAINER_NAME, message)

    @staticmethod
    def _model(context: _Context, requester: Requester | None) -> str | None:
        if requester is None:
            return None
        if requester.spec is not None:
            return requester.spec.model
        isc = context.snapshot.iscs.get(requester.isc_name or "")
        return isc.spec.model if isc is not None else requester.isc_name

    async def _update_requester(self, context: _Context, action: UpdateRequesterMeta) -> Result:
        requester, pod = self._requester_pod(context, action.requester_uid)
        labels = _string_map(pod, "labels")
        wanted = {LABEL_DUAL: action.dual, LABEL_INSTANCE: action.instance_id}
        metadata: Obj = {}
        label_changes = {k: v for k, v in wanted.items() if labels.get(k) != v}
        if label_changes:
            metadata["labels"] = label_changes
        finalizers = _with_finalizer(pod, FINALIZER_REQUESTER, action.finalizer)
        if finalizers is not None:
            metadata["finalizers"] = finalizers
        if metadata:
            subject = _Subject(SubjectKind.REQUESTER, action.requester_uid, pod)
            await self._patch_pod(
                context,
                subject,
                self._rv(requester, pod),
                metadata,
                "FMA's metadata",
                status_blind=True,
            )
        had = (
            requester.finalizer
            if requester is not None
            else FINALIZER_REQUESTER in _finalizers(pod)
        )
        if had != action.finalizer:
            self.trace.record("finalizer", requester=action.requester_uid, present=action.finalizer)
        return _OK

    async def _set_status(self, context: _Context, action: SetRequesterStatus) -> Result:
        requester, pod = self._requester_pod(context, action.requester_uid)
        status = json.dumps({"Errors": list(action.errors)}, separators=(",", ":"))
        subject = _Subject(SubjectKind.REQUESTER, action.requester_uid, pod)
        await self._patch_pod(
            context,
            subject,
            self._rv(requester, pod),
            {"annotations": {ANN_STATUS: status}},
            "the status",
        )
        self.trace.record("status", requester=action.requester_uid, errors=list(action.errors))
        return _OK

    # --- configuration objects -----------------------------------------------------------------

    async def _set_config_status(self, action: SetConfigStatus) -> Result:
        kind = Kind(action.kind.value)
        obj = self.store.get(kind, action.name)
        if obj is None:
            return OutcomeKind.NOT_FOUND, f"{action.kind.value} {action.name} is gone"
        metadata: Obj = {}
        if resource_version(obj):
            metadata["resourceVersion"] = resource_version(obj)
        status: Obj = {"errors": list(action.errors)}
        generation = _meta(obj).get("generation")
        if isinstance(generation, int):
            status["observedGeneration"] = generation
        body: Obj = {"status": status}
        if metadata:
            body["metadata"] = metadata
        returned = await self._api(
            f"write the status of {action.kind.value} {action.name}",
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            self._namespace_of(obj),
            PLURALS[action.kind],
            action.name,
            body,
            field_manager=self.field_manager,
            _content_type=MERGE_PATCH,
        )
        written = self._as_dict(returned)
        if name_of(written):
            self.store.put(kind, written)
        self.trace.record(
            "config_status", config=f"{action.kind.value}/{action.name}", errors=list(action.errors)
        )
        return _OK


@dataclass(frozen=True, slots=True)
class _Move:
    """A wake or a sleep in flight: where to call, and the phases around it."""

    provider: Provider
    instance: Instance
    ip: str
    port: int
    wake: bool
    note: EngineNote | None
    before: InstanceState
    after: InstanceState
    run: str | None
    requester_name: str

    @property
    def verb(self) -> str:
        return "wake" if self.wake else "sleep"
